"""emotion-zoo: composable emotion-recognition models (CAER-Net-S, GLAMOR-Net, LDLVA).

``import zoo`` is cheap: torch, timm and huggingface_hub are imported on first use.

    >>> import zoo
    >>> model = zoo.create("glamor_resnet18")
    >>> zoo.list_models("glamor*")

Plugins mark their hook implementations with ``zoo.hookimpl`` (specifications: :mod:`zoo.registry.hookspecs`).
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from zoo.version import __version__

# progress and information go to the "zoo" logger; a library stays silent until its user configures logging
# (``zoo-cli`` shows INFO on stderr, see zoo.cli.configure_logging)
logging.getLogger("zoo").addHandler(logging.NullHandler())

#: public name -> the module defining it, imported on first access (tests/test_architecture.py reads this table
#: as the root's imports: the root sits above every module named here)
_LAZY = {
    "create": "zoo.factory",
    "parse_model_name": "zoo.names",
    "list_models": "zoo.registry.plugins",
    "list_components": "zoo.registry.plugins",
    "get_preset": "zoo.registry.plugins",
    "save_pretrained": "zoo.weights.files",
    "EmotionModel": "zoo.models.model",
    "EmotionOutput": "zoo.models.model",
    "build_target": "zoo.models.model",
    "ModelConfig": "zoo.config",
    "DataConfig": "zoo.config",
    "ZooError": "zoo.errors",
    "model_info": "zoo.factory",
    "plugin_infos": "zoo.registry.plugins",
    "register_plugin": "zoo.registry.plugins",
    "unregister_plugin": "zoo.registry.plugins",
    "use_plugin": "zoo.registry.plugins",
    "hookimpl": "zoo.registry.hookspecs",
    "train": "zoo.training.engine",
    "evaluate": "zoo.training.evaluate",
    "predict": "zoo.inference.predict",
}

__all__ = [
    "DataConfig",
    "EmotionModel",
    "EmotionOutput",
    "ModelConfig",
    "ZooError",
    "build_target",
    "create",
    "evaluate",
    "get_preset",
    "hookimpl",
    "list_components",
    "list_models",
    "model_info",
    "parse_model_name",
    "plugin_infos",
    "predict",
    "register_plugin",
    "save_pretrained",
    "train",
    "unregister_plugin",
    "use_plugin",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover
    from zoo.config import DataConfig, ModelConfig
    from zoo.errors import ZooError
    from zoo.factory import create, model_info
    from zoo.inference.predict import predict
    from zoo.models.model import EmotionModel, EmotionOutput, build_target
    from zoo.names import parse_model_name
    from zoo.registry.hookspecs import hookimpl
    from zoo.registry.plugins import (
        get_preset,
        list_components,
        list_models,
        plugin_infos,
        register_plugin,
        unregister_plugin,
        use_plugin,
    )
    from zoo.training.engine import train
    from zoo.training.evaluate import evaluate
    from zoo.weights.files import save_pretrained


#: subpackages reachable as attributes (``zoo.data``) without an import statement; not dependencies of the root
_SUBMODULES = {"labels", "data", "registry", "config", "models", "weights", "training", "inference", "publish", "apps", "ldl"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"zoo.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'zoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names (``__all__``) and the subpackages ``__getattr__`` imports on first use."""
    return sorted({*__all__, *_SUBMODULES})
