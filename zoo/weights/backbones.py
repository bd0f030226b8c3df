"""Backbone initialisation from published weights, through the same Hub machinery as ``pretrained=True``.

``create(..., backbone_pretrained=...)`` accepts

* ``True`` — timm's published weights of a timm backbone (``resnet18``, ``timm:<name>[.<tag>]``), by the
  timm Hub id of its default (or named) tag, e.g. ``timm/resnet18.a1_in1k``;
* ``"hf-hub:org/name[@rev]"`` — the ``model.safetensors`` of any Hub repo (a face-recognition trunk, a timm
  repo pinned to a commit, an emotion-zoo model whose ``face_encoder.*`` tensors are reused);
* ``"local-dir:DIR"`` — ``DIR/model.safetensors``, no network;
* ``"preset.tag"`` — a preset's published weights (``fer_cnn.expw``: a bundled model's face encoder).

Files come from the Hub cache or the network (``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` read at call time); offline
without a cached copy it fails with :class:`zoo.errors.HubError`, naming the repo, file and how to prefetch.
The weights must cover every tensor of the encoder (strict); extra tensors (a classifier) are ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.errors import HubError, WeightsError
from zoo.names import parse
from zoo.weights.files import check_weight_values, key_report, load_state_dict
from zoo.weights.sources import resolve


def timm_hub_id(model_name: str) -> str:
    """The Hub repo timm publishes ``model_name``'s weights in (``resnet18`` -> ``timm/resnet18.a1_in1k``)."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(model_name)
    if cfg is None or not cfg.hf_hub_id:
        raise HubError(
            f"timm publishes no Hub weights for {model_name!r}; name a tag that has them (see "
            f"timm.list_pretrained('{model_name.split('.')[0]}*')) or pass backbone_pretrained='hf-hub:ORG/NAME'."
        )
    return cfg.hf_hub_id


def resolve_source(spec: bool | str, encoder: nn.Module, stream: str) -> tuple[Path, dict[str, Any]]:
    """Where the weights of one encoder come from: a local path and a record for ``model.pretrained_cfg``."""
    if spec is True:
        name = getattr(encoder, "model_name", None)
        if name is None:
            raise HubError(
                f"backbone_pretrained=True: the {stream} backbone ({type(encoder).__name__}) has no published "
                f"ImageNet weights (only timm backbones do); pass 'hf-hub:ORG/NAME' or 'local-dir:DIR' instead."
            )
        spec = f"hf-hub:{timm_hub_id(name)}"
    parsed = parse(spec)
    if parsed.is_preset and parsed.tag is None:
        raise HubError(f"backbone_pretrained={spec!r}: give True, a preset's weights tag ('fer_cnn.expw'), "
                       f"'hf-hub:ORG/NAME[@REV]' or 'local-dir:DIR'.")
    resolved = resolve(parsed, pretrained=True) if parsed.is_preset else resolve(parsed, weights_only=True)
    return resolved.weights, {"stream": stream, **resolved.record}


def load_encoder_state(encoder: nn.Module, state: dict[str, torch.Tensor], stream: str, where: str) -> None:
    """Load ``state`` into ``encoder``, matching keys as they are, under ``body.`` (timm trunks) or from an
    emotion-zoo model's ``<stream>_encoder.`` tensors."""
    target = encoder.state_dict()
    prefixes = (f"{stream}_encoder.", "face_encoder.")
    candidates = [
        state,
        {f"body.{k}": v for k, v in state.items()},
        *({k[len(p):]: v for k, v in state.items() if k.startswith(p)} for p in prefixes),
    ]
    best = max(candidates, key=lambda c: len(set(c) & set(target)))
    report = key_report(best, target, what="encoder", unexpected=False, missing_title="missing", limit=6)
    if report:
        raise WeightsError(f"{where} does not fit the {stream} backbone ({report}).")
    chosen = {k: best[k] for k in target}
    check_weight_values(chosen, target, where)
    encoder.load_state_dict(chosen, strict=True)


def init_backbones(
    model: nn.Module, backbone_pretrained: bool | str, context_backbone_pretrained: bool | str | None = None
) -> list[dict[str, Any]]:
    """Initialise the face (and context) encoders of ``model``; returns one record per encoder loaded.

    ``context_backbone_pretrained=None`` follows ``backbone_pretrained`` when both streams use the same
    backbone with the same arguments (the ResNet-18 GLAMOR-Net starts both from ImageNet); ``False`` leaves that encoder as built.
    """
    config = model.config
    same_backbone = config.context_backbone_spec == (config.backbone, config.backbone_args)
    if context_backbone_pretrained is None:
        context_backbone_pretrained = backbone_pretrained if same_backbone else False
    records = []
    for stream, spec in (("face", backbone_pretrained), ("context", context_backbone_pretrained)):
        encoder = getattr(model, f"{stream}_encoder", None)
        if not spec or encoder is None:
            continue
        path, record = resolve_source(spec, encoder, stream)
        load_encoder_state(encoder, load_state_dict(path), stream, str(path))
        records.append(record)
    return records
