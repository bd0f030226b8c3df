"""Deprecated alias of :mod:`zoo.registry.hookspecs`, kept for plugins written before the package layout.

Write ``from zoo import hookimpl`` instead; the hook specifications live in :mod:`zoo.registry.hookspecs`.
"""

from __future__ import annotations

import warnings

from zoo.registry.hookspecs import (  # noqa: F401 - re-exported for old plugins
    hookimpl,
    hookspec,
    register_attentions,
    register_backbones,
    register_datasets,
    register_face_detectors,
    register_fusions,
    register_presets,
    register_targets,
)

warnings.warn(
    "zoo.hookspecs is deprecated: import the marker with `from zoo import hookimpl` "
    "(the hook specifications are in zoo.registry.hookspecs).",
    DeprecationWarning,
    stacklevel=2,
)
