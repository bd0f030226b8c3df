"""Built-in components, one module per kind (backbones, attention, fusion, targets).

They are registered by :mod:`zoo.models.builtin` without importing them. The constants below are shared with
the presets and that registration, so they live here, free of torch.
"""

#: Keras BatchNormalization defaults (momentum 0.99 = PyTorch momentum 0.01, eps 1e-3), as in the TF2 code.
KERAS_BN = {"bn_momentum": 0.01, "bn_eps": 1e-3}

#: units per stage of each published depth of ArcFace's IR networks (:mod:`zoo.models.components.iresnet`)
IR_DEPTHS: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 14, 3),
    100: (3, 13, 30, 3),
}
