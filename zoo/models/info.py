"""Model facts for ``zoo-cli info``: components, parameters, input sizes and FLOPs."""

from __future__ import annotations

from typing import Any

import torch

from zoo.config import ModelConfig
from zoo.models.model import EmotionModel


def example_inputs(config: ModelConfig, batch_size: int = 1) -> dict[str, torch.Tensor]:
    """Random inputs of the model's default sizes: ``{"face": ..., "context": ...}`` as it needs them."""
    inputs = {}
    if config.uses_face:
        inputs["face"] = torch.randn(batch_size, 3, *config.data.face_size)
    if config.uses_context:
        inputs["context"] = torch.randn(batch_size, 3, *config.data.context_size)
    return inputs


def count_parameters(model: torch.nn.Module, trainable_only: bool = True) -> int:
    """Number of parameter values (the trainable ones only by default); the one count every report uses."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_flops(model: EmotionModel, batch_size: int = 1) -> int:
    """FLOPs of one forward pass at the default input size (torch's FlopCounterMode: 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(**example_inputs(model.config, batch_size))
    model.train(was_training)
    return int(counter.get_total_flops())


def describe(model: EmotionModel) -> dict[str, Any]:
    """Components, parameter counts, input sizes and FLOPs of a model (``zoo.model_info`` takes names too)."""
    c = model.config
    components = {"streams": c.streams}
    if c.uses_face or c.uses_context:
        components["backbone"] = c.backbone
    if c.uses_context:
        components["context_backbone"] = c.context_backbone_spec[0]
        components["attention"] = c.attention
    if c.streams == "both":
        components["fusion"] = c.fusion
    components["target"] = c.target
    return {
        "architecture": c.architecture,
        "components": components,
        "num_classes": c.num_classes,
        "label_names": list(c.resolved_label_names),
        "parameters": count_parameters(model, trainable_only=True),
        "parameters_with_buffers": count_parameters(model, False) + sum(b.numel() for b in model.buffers()),
        "face_size": list(c.data.face_size) if c.uses_face else None,
        "context_size": list(c.data.context_size) if c.uses_context else None,
        "mean": list(c.data.mean),
        "std": list(c.data.std),
        "gflops": count_flops(model) / 1e9,
        "config": c.to_dict(),
    }
