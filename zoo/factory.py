"""``zoo.create``: build a model from a preset, a local directory or components (timm ``create_model``)."""

from __future__ import annotations

import os
from typing import Any

from zoo.config import ModelConfig
from zoo.errors import UntrainedModelError, UntrainedModelWarning, ZooError
from zoo.models.model import EmotionModel
from zoo.registry.entries import split_model_name_tag
from zoo.registry.plugins import get_preset

SOURCES = ("hf-hub", "local-dir")
_COMPONENT_FIELDS = {
    "backbone": "backbone_args",
    "context_backbone": "context_backbone_args",
    "attention": "attention_args",
    "fusion": "fusion_args",
    "target": "target_args",
}


def parse_model_name(name: str) -> tuple[str | None, str]:
    """Split ``"hf-hub:org/x"`` / ``"local-dir:/p"`` into source and rest; reject bare paths and repo ids."""
    if ":" in name:
        prefix, rest = name.split(":", 1)
        if prefix.replace("_", "-") in SOURCES:
            return prefix.replace("_", "-"), rest
    if any(sep in name for sep in ("/", "\\", ":")):
        raise ZooError(
            f"{name!r} is not a model name. For a Hugging Face Hub repo write 'hf-hub:{name}', "
            f"for a local directory written by zoo.save_pretrained write 'local-dir:{name}'."
        )
    return None, name


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
    ``overrides`` replace any :class:`zoo.config.ModelConfig` field; ``None`` values are ignored.
    ``checkpoint`` loads a weights file (safetensors, or a weights-only torch file) after building.
    ``backbone_pretrained`` (True: timm's published weights; or ``"hf-hub:…"`` / ``"local-dir:…"``)
    initialises the encoders before any model weights are loaded (``zoo.weights.backbones``).
    """
    from zoo.weights import files as hub

    overrides = {k: v for k, v in overrides.items() if v is not None}
    weights_path = published = None
    loaded_from: dict[str, Any] = {}
    if name is None:
        if pretrained:
            raise ZooError("pretrained=True needs a model name; pass e.g. create('glamor_net', pretrained=True).")
        base: dict[str, Any] = {}
    else:
        source, rest = parse_model_name(name)
        if source == "local-dir":
            config, extra, weights_path = hub.load_local_dir(rest)
            base = config.to_dict()
            loaded_from = {**extra, "source": "local-dir", "path": str(weights_path.parent)}
        elif source == "hf-hub":
            config, _, weights_path, loaded_from = hub.load_hub_config(rest)
            base = config.to_dict()
        else:
            arch, tag = split_model_name_tag(rest)
            preset = get_preset(arch)
            if tag is not None:
                preset.pretrained_cfg(tag)  # validates the tag
            if pretrained:
                weights_path, loaded_from, published = hub.fetch_pretrained(preset, tag)
            base = {**preset.model_args, "architecture": preset.name}
    config = ModelConfig.from_dict(merge_model_args(base, overrides), source=f"create({name!r})")
    if published is not None:
        where = (f"{name} ({loaded_from['path']})" if loaded_from.get("source") == "package"
                 else f"{name} ({loaded_from['hf_hub_id']}@{loaded_from['commit']})")
        hub.check_pretrained_config(ModelConfig.from_dict(base), published, where)
    model = EmotionModel(config)
    backbone_records = []
    if backbone_pretrained or context_backbone_pretrained:
        from zoo.weights.backbones import init_backbones

        backbone_records = init_backbones(model, backbone_pretrained, context_backbone_pretrained)
    if weights_path is not None:
        hub.load_weights(model, weights_path)
    #: where the weights came from (timm's ``model.pretrained_cfg``); a Hub branch/tag is recorded as its commit
    model.pretrained_cfg = {**loaded_from, "backbones": backbone_records} if backbone_records else loaded_from
    if checkpoint is not None:
        hub.load_weights(model, checkpoint)
        model.pretrained_cfg = {**model.pretrained_cfg, "checkpoint": str(checkpoint)}
    return model


#: the model ``zoo.predict`` and ``zoo-cli predict`` use when none is named: the bundled FER2013 model
DEFAULT_MODEL = "fer_cnn.fer2013"


def has_trained_weights(model: EmotionModel) -> bool:
    """Whether any weights were loaded into ``model`` (a tag, a local dir, the Hub or a checkpoint)."""
    return bool(getattr(model, "pretrained_cfg", None))


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
    source, rest = parse_model_name(name)
    pretrained = False
    if source is None:
        arch, _ = split_model_name_tag(rest)
        pretrained = bool(get_preset(arch).pretrained) and checkpoint is None
    model = create(name, pretrained=pretrained, checkpoint=checkpoint, **overrides)
    if not has_trained_weights(model):
        from zoo.registry.plugins import list_models

        message = (f"{name!r} has no trained weights: its outputs would be random. Use a preset with a "
                   f"pretrained tag ({', '.join(list_models(pretrained=True)) or 'none installed'}), "
                   f"local-dir:RUN/best from `zoo-cli train`, --checkpoint FILE, or --allow-untrained to run it anyway.")
        if not allow_untrained:
            raise UntrainedModelError(message)
        import warnings

        warnings.warn(message, UntrainedModelWarning, stacklevel=2)
    return model
