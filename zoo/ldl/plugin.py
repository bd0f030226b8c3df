"""Built-in plugin registering the ``ldl_va`` target (LDLVA, Le et al., WACV 2023)."""

from __future__ import annotations

from zoo.registry.hookspecs import hookimpl


def _ldl_va(num_classes: int, feature_dim: int, num_samples: int | None = None, **args):
    from zoo.ldl.target import LDLVATarget

    return LDLVATarget(num_classes, feature_dim, num_samples, **args)


@hookimpl
def register_targets(register):
    register(
        "ldl_va",
        _ldl_va,
        "LDLVA: label distributions from valence-arousal neighbours, per-sample uncertainty, discriminative loss",
    )
