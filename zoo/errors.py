"""The errors this package raises on purpose, shared across layers. Imports nothing of the package.

Every message names what was wrong (file, key or value) and what to do. Errors that only one layer raises
(``RecipeError``, ``CheckpointError``, ``VideoError``, ...) live beside the code that raises them and subclass
:class:`ZooError` too, so ``except zoo.ZooError`` catches them all.
"""

from __future__ import annotations


class ZooError(Exception):
    """Base class of the errors this package raises on purpose."""


class UnknownComponentError(ZooError, KeyError):
    """A component, preset or recipe name that no registry holds; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class RegistryClashError(ZooError):
    """Two plugins registered the same name in the same registry."""


class ConfigError(ZooError, ValueError):
    """A model configuration that cannot be built; the message names the key and what to change."""


class ComponentBuildError(ConfigError, TypeError):
    """A component factory that raised, or returned something that is not a module; names it and its plugin."""


class WeightsError(ZooError):
    """A weights file that cannot be loaded into the model; the message names the file and the keys."""


class HubError(ZooError):
    """A Hub repo, revision or file that cannot be fetched; the message says which and what to do."""


class UntrainedModelError(ZooError):
    """A model with no trained weights was asked to predict or evaluate."""


class UntrainedModelWarning(UserWarning):
    """Predictions come from randomly initialised weights."""


class DataError(ZooError, ValueError):
    """Base class of data errors."""


class ImageReadError(DataError):
    """An image file that is missing, unreadable, corrupt, truncated or in an unsupported pixel format."""


class AnnotationError(DataError):
    """A malformed annotation row or file (bad column count, non-numeric value, x2 < x1, label out of range)."""


class UnknownClassError(DataError):
    """A class folder or label name that the dataset family does not define."""


#: the network error classes huggingface_hub may let through (requests, httpx, httpx2: by version), for
#: :func:`optional_exceptions`
TRANSPORT_ERRORS = ("requests:RequestException", "httpx:HTTPError", "httpx2:HTTPError")


def optional_exceptions(*names: str) -> tuple[type[BaseException], ...]:
    """The exception classes named ``"module:Class"`` whose module can be imported here (an optional
    dependency, or one whose name changed between versions: requests, httpx, httpx2); the others are left out."""
    import importlib

    found: list[type[BaseException]] = []
    for name in names:
        module, _, attribute = name.partition(":")
        try:
            found.append(getattr(importlib.import_module(module), attribute))
        except (ImportError, AttributeError):
            continue
    return tuple(found)
