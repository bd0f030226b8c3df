"""Training and evaluation: one engine (:mod:`zoo.training.engine`), paper recipes (:mod:`zoo.training.recipes`),
resume checkpoints, metrics, DDP helpers and ablation grids. Imported lazily by ``zoo.train(...)``.
"""

from __future__ import annotations

from zoo.training.engine import NonFiniteLossError, TrainResult, evaluate, train

__all__ = ["NonFiniteLossError", "TrainResult", "evaluate", "train"]
