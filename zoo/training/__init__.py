"""Training and evaluation: typed run settings (:mod:`zoo.training.settings`), paper recipes
(:mod:`zoo.training.recipes`), the run directory layout (:mod:`zoo.training.rundir`), one engine
(:mod:`zoo.training.engine`), evaluation (:mod:`zoo.training.evaluate`), resume checkpoints, metrics and ablation
grids. Imported lazily by ``zoo.train(...)``.
"""

from __future__ import annotations

from zoo.training.engine import NonFiniteLossError, TrainResult, train
from zoo.training.evaluate import evaluate

__all__ = ["NonFiniteLossError", "TrainResult", "evaluate", "train"]
