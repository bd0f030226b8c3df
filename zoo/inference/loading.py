"""Loading a model to run: trained weights or a clear refusal, and the model used when none is named.

Inference policy on top of :func:`zoo.factory.build`: a preset loads its published weights (its default tag
unless the name gives one), ``local-dir:`` / ``hf-hub:`` names and a checkpoint load theirs, and a model without
trained weights is refused unless the caller allows it. Prediction, evaluation, export, the web app, LDL
teachers and training from a trained model all load through :func:`create_for_inference`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from zoo.errors import UntrainedModelError, UntrainedModelWarning
from zoo.factory import build
from zoo.inference.defaults import DEFAULT_MODEL
from zoo.models.model import EmotionModel
from zoo.registry.plugins import list_models
from zoo.weights.sources import resolve

__all__ = ["DEFAULT_MODEL", "create_for_inference", "has_trained_weights", "model_files"]


def model_files(name: Any) -> list[Path]:
    """A ``local-dir:`` model's folder and the files in it (inputs that no output may be); none for other names."""
    if not isinstance(name, str) or not name.startswith("local-dir:"):
        return []
    folder = Path(os.path.expanduser(name.removeprefix("local-dir:")))
    return [folder, *(folder.iterdir() if folder.is_dir() else ())]


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
    resolved = resolve(name, pretrained=None if checkpoint is None else False)
    model = build(resolved, checkpoint=checkpoint, **overrides)
    if not has_trained_weights(model):
        message = (f"{name!r} has no trained weights: its outputs would be random. Use a preset with a "
                   f"pretrained tag ({', '.join(list_models(pretrained=True)) or 'none installed'}), "
                   f"local-dir:RUN/best from `zoo-cli train`, --checkpoint FILE, or --allow-untrained to run it anyway.")
        if not allow_untrained:
            raise UntrainedModelError(message)
        warnings.warn(message, UntrainedModelWarning, stacklevel=2)
    return model
