"""``zoo.create``: build a model from a preset, a local directory, the Hub or components (timm ``create_model``).

One path for every name: resolve (:func:`zoo.weights.sources.resolve`: the name's arguments and weights) ->
merge (the caller's overrides) -> build (:class:`~zoo.models.model.EmotionModel`) -> init (encoders from
published weights, :mod:`zoo.weights.backbones`) -> load (the weights, then a checkpoint, strictly; only a
classifier built for other classes than the weights' is left fresh, as timm's ``load_pretrained`` does).
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

import torch

from zoo.config import ModelConfig
from zoo.errors import ConfigError, UntrainedModelError, UntrainedModelWarning
from zoo.models.info import describe
from zoo.models.model import EmotionModel
from zoo.names import parse
from zoo.registry.plugins import get_preset, list_models
from zoo.weights.backbones import init_backbones
from zoo.weights.files import load_state_dict, load_weights, load_weights_from_state
from zoo.weights.sources import Resolved, resolve

logger = logging.getLogger(__name__)

_COMPONENT_FIELDS = {
    "backbone": "backbone_args",
    "context_backbone": "context_backbone_args",
    "attention": "attention_args",
    "fusion": "fusion_args",
    "target": "target_args",
}


def merge_model_args(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Apply overrides; a replaced component drops the preset's arguments for the old component."""
    merged = dict(base)
    replaced = set()
    for field, args_field in _COMPONENT_FIELDS.items():
        if field in overrides and overrides[field] != base.get(field):
            merged.pop(args_field, None)  # the old component's arguments mean nothing to the new one
            replaced.add(args_field)
    for key, value in overrides.items():
        if key == "data" and isinstance(value, dict):
            base_data = base.get("data") or {}
            if not isinstance(base_data, dict):
                import dataclasses

                base_data = dataclasses.asdict(base_data)
            merged["data"] = {**base_data, **value}
        elif (key.endswith("_args") and isinstance(value, dict) and isinstance(base.get(key), dict) and key in merged
              and key not in replaced):
            merged[key] = {**base[key], **value}
        else:
            merged[key] = value
    return merged


def create(
    name: str | None = None,
    pretrained: bool = False,
    checkpoint: str | os.PathLike | None = None,
    backbone_pretrained: bool | str = False,
    context_backbone_pretrained: bool | str | None = None,
    **overrides: Any,
) -> EmotionModel:
    """Create a model.

    ``name`` is a preset (``"glamor_resnet18"``, ``"glamor_net.tag"``), ``"local-dir:DIR"``, or None to
    compose from components (``create(backbone="timm:convnext_atto", attention="gla", num_classes=8)``).
    ``"hf-hub:org/name[@revision]"`` builds a Hub repo from its config.json and loads its weights;
    ``pretrained=True`` loads the preset tag's published weights (the default tag when none is named).
    ``overrides`` replace any :class:`zoo.config.ModelConfig` field, ``None`` included (``label_names=None``:
    generic ``class_i`` names). With weights and another ``num_classes`` than theirs, everything but the
    classifier's output layer is loaded and that layer starts fresh (logged on the ``zoo`` logger).
    ``checkpoint`` loads a weights file (safetensors, or a weights-only torch file) after building.
    ``backbone_pretrained`` (True: timm's published weights; or ``"hf-hub:…"`` / ``"local-dir:…"``)
    initialises the encoders before any model weights are loaded (``zoo.weights.backbones``).
    """
    resolved = resolve(name, pretrained=pretrained)
    config = ModelConfig.from_dict(merge_model_args(resolved.model_args, overrides), source=f"create({name!r})")
    resolved.check_published()
    # A pretrained model's class names are its own: other names for the same trained head would rename its
    # outputs (output 0, trained as Angry, called Happy). Ask for a new head (num_classes) or map classes by name.
    trained_names = resolved.model_args.get("label_names")
    if (resolved.weights is not None and overrides.get("label_names") is not None and trained_names is not None
            and config.num_classes == resolved.model_args.get("num_classes", ModelConfig.num_classes)
            and tuple(config.label_names or ()) != tuple(trained_names)):
        raise ConfigError(
            f"create({name!r}, label_names={list(config.label_names or ())}): the trained classifier's outputs are "
            f"{list(trained_names)}, in that order; new names would rename them, not retrain them. Keep the model's "
            f"names (zoo.evaluate / zoo-cli eval --class-map map a dataset's classes by name), or build a head for "
            f"your classes and train it: another num_classes gives a fresh one, or pretrained=False.")
    model = EmotionModel(config)
    backbone_records = []
    if backbone_pretrained or context_backbone_pretrained:
        backbone_records = init_backbones(model, backbone_pretrained, context_backbone_pretrained)
    load(model, resolved, backbone_records, checkpoint)
    return model


def load(
    model: EmotionModel,
    resolved: Resolved,
    backbone_records: list[dict[str, Any]] | None = None,
    checkpoint: str | os.PathLike | None = None,
) -> None:
    """Load the resolved weights, then ``checkpoint``, into ``model`` (strictly) and record where they came from.

    When ``model`` was asked for another ``num_classes`` than the resolved weights have, their classifier
    output layer is not loaded (:func:`fresh_head`) and the record says so (``"new_head"``)."""
    loaded_from = resolved.record
    if resolved.weights is not None:
        state = load_state_dict(resolved.weights)
        state, new_head = fresh_head(model, state, resolved.model_args.get("num_classes", ModelConfig.num_classes),
                                     str(resolved.weights))
        load_weights_from_state(model, state, source=str(resolved.weights))
        if new_head:
            loaded_from = {**loaded_from, "new_head": new_head}
    #: where the weights came from (timm's ``model.pretrained_cfg``); a Hub branch/tag is recorded as its commit
    model.pretrained_cfg = {**loaded_from, "backbones": backbone_records} if backbone_records else loaded_from
    if checkpoint is not None:
        load_weights(model, checkpoint)
        model.pretrained_cfg = {**model.pretrained_cfg, "checkpoint": str(checkpoint)}


def fresh_head(
    model: EmotionModel, state: dict[str, torch.Tensor], weights_classes: int, source: str
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``state`` with the model's own fresh classifier output layer in place of the weights' when the model
    has other classes than the weights (``weights_classes``), and what was replaced (``{}`` when nothing).

    timm's ``load_pretrained`` drops the classifier for another ``num_classes`` the same way; every other key
    still loads strictly, so a mismatch outside the output layer stays an error.
    """
    classes = model.config.num_classes
    expected = model.state_dict()
    replaced = [k for k in model.head_keys if k in state and state[k].shape != expected[k].shape]
    if classes == weights_classes or not replaced:
        return state, {}
    shapes = "; ".join(f"{k}: {tuple(state[k].shape)} -> {tuple(expected[k].shape)}" for k in replaced)
    logger.info("%s has %d classes, the model %d: its classifier output layer is not loaded (%s) and starts "
                "untrained; train it before predicting.", source, weights_classes, classes, shapes)
    return {**state, **{k: expected[k] for k in replaced}}, {"keys": replaced, "num_classes": [weights_classes, classes]}


#: the model ``zoo.predict`` and ``zoo-cli predict`` use when none is named: the bundled face + context model,
#: which reads faces in web photos better than the FER2013 face model (ExpW val 43.8% against 31.6%;
#: docs/real-photos.md). ``fer_cnn.expw`` reads them better still (45.9%) but has lost FER2013 (51.8% on
#: PublicTest, the guard is 67%), so it is not the default; for 48×48 face crops use ``fer_cnn.fer2013``.
DEFAULT_MODEL = "glamor_fer_cnn.expw"


def has_trained_weights(model: EmotionModel) -> bool:
    """Whether trained weights were loaded into ``model`` (a tag, a local dir, the Hub or a checkpoint); a
    fresh classifier for other classes (``pretrained_cfg["new_head"]``) is untrained until a checkpoint."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return bool(cfg) and ("new_head" not in cfg or "checkpoint" in cfg)


def create_for_inference(
    name: str,
    checkpoint: str | os.PathLike | None = None,
    allow_untrained: bool = False,
    **overrides: Any,
) -> EmotionModel:
    """A model with trained weights for ``predict`` / ``eval``: a preset with published weights loads them
    (its default tag unless ``name`` gives one); ``local-dir:`` / ``hf-hub:`` names and ``checkpoint`` load
    theirs. A preset without weights is refused unless ``allow_untrained`` (then it only warns).
    """
    parsed = parse(name)
    pretrained = parsed.is_preset and bool(get_preset(parsed.arch).pretrained) and checkpoint is None
    model = create(name, pretrained=pretrained, checkpoint=checkpoint, **overrides)
    if not has_trained_weights(model):
        message = (f"{name!r} has no trained weights: its outputs would be random. Use a preset with a "
                   f"pretrained tag ({', '.join(list_models(pretrained=True)) or 'none installed'}), "
                   f"local-dir:RUN/best from `zoo-cli train`, --checkpoint FILE, or --allow-untrained to run it anyway.")
        if not allow_untrained:
            raise UntrainedModelError(message)
        warnings.warn(message, UntrainedModelWarning, stacklevel=2)
    return model


def model_info(name_or_model: str | EmotionModel, **overrides: Any) -> dict[str, Any]:
    """Components, parameter counts, input sizes and FLOPs of a model, or of the model a name creates
    (``create(name, **overrides)``)."""
    model = create(name_or_model, **overrides) if isinstance(name_or_model, str) else name_or_model
    return describe(model)
