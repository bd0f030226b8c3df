"""Built-in components, one module per kind (backbones, attention, fusion, targets).

They are registered by :mod:`zoo.builtin` without importing them. The constants below are shared with that
registration, so they live there, free of torch, and are re-exported here.
"""

from zoo.builtin.backbones import IR_DEPTHS
from zoo.builtin.presets import KERAS_BN

__all__ = ["IR_DEPTHS", "KERAS_BN"]
