"""``zoo.create``: build a model from a preset, a local directory, the Hub or components (timm ``create_model``).

One path for every name: resolve (:func:`zoo.weights.sources.resolve`: the name's arguments and weights) ->
merge (the caller's overrides) -> build (:class:`~zoo.models.model.EmotionModel`) -> init (encoders from
published weights, :mod:`zoo.weights.backbones`) -> load (the weights, then a checkpoint, strictly; only a
classifier built for other classes than the weights' is left fresh, as timm's ``load_pretrained`` does).
Building only: which model to run and whether it must be trained is :mod:`zoo.inference.loading`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from zoo.config import COMPONENT_FIELDS, ModelConfig
from zoo.errors import ConfigError
from zoo.models.info import describe
from zoo.models.model import EmotionModel
from zoo.weights.backbones import init_backbones
from zoo.weights.files import load_state_dict, load_weights, load_weights_from_state
from zoo.weights.sources import Resolved, resolve

logger = logging.getLogger(__name__)


def merge_model_args(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Apply overrides; a replaced component drops the preset's arguments for the old component."""
    merged = dict(base)
    replaced = set()
    for field, args_field in COMPONENT_FIELDS.items():
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
    return build(resolve(name, pretrained=pretrained), checkpoint, backbone_pretrained, context_backbone_pretrained,
                 **overrides)


def build(
    resolved: Resolved,
    checkpoint: str | os.PathLike | None = None,
    backbone_pretrained: bool | str = False,
    context_backbone_pretrained: bool | str | None = None,
    **overrides: Any,
) -> EmotionModel:
    """The model of a resolved name (:func:`zoo.weights.sources.resolve`): merge the overrides, build, initialise
    the encoders, load the weights; the arguments are :func:`create`'s. One :class:`ModelConfig` is built: the
    resolved one, or the merged one when there are overrides."""
    config = resolved.config if not overrides else ModelConfig.from_dict(
        merge_model_args(resolved.model_args, overrides), source=f"create({resolved.text!r})")
    resolved.check_published()
    # A pretrained model's class names are its own: other names for the same trained head would rename its
    # outputs (output 0, trained as Angry, called Happy). Ask for a new head (num_classes) or map classes by name.
    trained_names = resolved.model_args.get("label_names")
    if (resolved.weights is not None and overrides.get("label_names") is not None and trained_names is not None
            and config.num_classes == resolved.model_args.get("num_classes", ModelConfig.num_classes)
            and tuple(config.label_names or ()) != tuple(trained_names)):
        raise ConfigError(
            f"create({resolved.text!r}, label_names={list(config.label_names or ())}): the trained classifier's outputs are "
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
    #: where the weights came from: timm's ``model.pretrained_cfg``, a plain dict as timm's is (the tag's
    #: :class:`~zoo.registry.entries.PretrainedCfg` fields and the source); a Hub branch/tag is recorded as its commit
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


def model_info(name_or_model: str | EmotionModel, **overrides: Any) -> dict[str, Any]:
    """Components, parameter counts, input sizes and FLOPs of a model, or of the model a name creates
    (``create(name, **overrides)``)."""
    model = create(name_or_model, **overrides) if isinstance(name_or_model, str) else name_or_model
    return describe(model)
