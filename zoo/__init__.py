"""emotion-zoo: composable emotion-recognition models (CAER-Net-S, GLAMOR-Net, LDLVA).

``import zoo`` is cheap: torch, timm and huggingface_hub are imported on first use.

    >>> import zoo
    >>> model = zoo.create("glamor_resnet18")
    >>> zoo.list_models("glamor*")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "create": "zoo.factory",
    "parse_model_name": "zoo.factory",
    "list_models": "zoo.registry",
    "list_components": "zoo.registry",
    "get_preset": "zoo.registry",
    "save_pretrained": "zoo.hub",
    "EmotionModel": "zoo.model",
    "EmotionOutput": "zoo.model",
    "build_target": "zoo.model",
    "ModelConfig": "zoo.config",
    "DataConfig": "zoo.config",
    "ZooError": "zoo.registry",
    "model_info": "zoo.info",
    "plugin_infos": "zoo.plugins",
    "train": "zoo.training.engine",
    "evaluate": "zoo.training.engine",
    "predict": "zoo.inference",
}

__all__ = [
    "DataConfig",
    "EmotionModel",
    "EmotionOutput",
    "ModelConfig",
    "ZooError",
    "build_target",
    "create",
    "get_preset",
    "list_components",
    "list_models",
    "model_info",
    "parse_model_name",
    "plugin_infos",
    "save_pretrained",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover
    from zoo.config import DataConfig, ModelConfig
    from zoo.factory import create, parse_model_name
    from zoo.hub import save_pretrained
    from zoo.info import model_info
    from zoo.model import EmotionModel, EmotionOutput, build_target
    from zoo.plugins import plugin_infos
    from zoo.registry import ZooError, get_preset, list_components, list_models


_SUBMODULES = {"labels", "data", "hub", "hookspecs", "registry", "plugins", "config", "model", "info"}


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
    return __all__
