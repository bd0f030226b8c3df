"""Registries of components and presets (timm ``_registry.py`` shape, filled by pluggy hooks).

Pure data: the entry types and the :class:`Registry` container. The registries themselves, the loader that
fills them and the accessors (``get_component``, ``get_preset``, ``list_models``, ...) are in
:mod:`zoo.registry.plugins`.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from zoo.errors import RegistryClashError, UnknownComponentError
from zoo.names import split_spec

#: component kind -> name of the hook that fills its registry
COMPONENT_KINDS: dict[str, str] = {
    "backbone": "register_backbones",
    "attention": "register_attentions",
    "fusion": "register_fusions",
    "target": "register_targets",
    "dataset": "register_datasets",
    "face_detector": "register_face_detectors",
}


@dataclass(frozen=True)
class ComponentEntry:
    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    description: str = ""
    prefix: bool = False  # a family such as "timm:" that accepts any suffix
    #: registered by a built-in plugin (:data:`zoo.registry.plugins.DEFAULT_PLUGINS`); set by the loader
    builtin: bool = False


def import_object(target: str) -> Any:
    """``"package.module:attribute.path"`` (an entry point's form) -> that object; ``"package.module"`` -> the
    module."""
    module_name, _, attribute = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attribute.split(".")):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class LazyFactory:
    """A factory named by ``"package.module:attribute"`` and imported on its first call, so that registering a
    component imports nothing: the built-ins register these, and listing models or components loads no torch.

    ``args`` are bound before the caller's arguments (:func:`functools.partial`). ``inspect.signature`` sees
    the target's signature, so argument checks (:func:`zoo.config.accepted_arguments`) work unchanged.
    """

    target: str
    args: tuple[Any, ...] = ()

    def load(self) -> Callable[..., Any]:
        obj = import_object(self.target)
        return functools.partial(obj, *self.args) if self.args else obj

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.load()(*args, **kwargs)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self.load())


@dataclass(frozen=True)
class PretrainedCfg:
    """Where one set of published weights lives and what it was trained on (timm ``PretrainedCfg``)."""

    tag: str
    hf_hub_id: str | None = None
    #: weights shipped with a package instead of the Hub (timm's ``file=``): a folder holding
    #: ``config_filename`` and ``filename``, relative to ``package`` (its package data) or absolute
    file: str | None = None
    package: str = "zoo"
    revision: str | None = None
    filename: str = "model.safetensors"
    config_filename: str = "config.json"
    dataset: str | None = None
    license: str | None = None
    description: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    #: model arguments these weights were fitted with beyond the preset's (timm keeps per-weight settings such as
    #: ``mean``/``std`` in its pretrained cfg): e.g. the calibration ``temperature``; never an architecture change
    model_args: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Preset:
    """A named model: a complete set of model arguments plus the weights published for it."""

    name: str
    model_args: dict[str, Any]
    plugin: str
    description: str = ""
    pretrained: tuple[PretrainedCfg, ...] = ()
    #: for a preset without weights: what to use or run instead (shown when pretrained weights are asked for)
    without_weights: str = ""
    #: registered by a built-in plugin; set by the loader
    builtin: bool = False

    @property
    def tags(self) -> list[str]:
        return [cfg.tag for cfg in self.pretrained]

    def pretrained_cfg(self, tag: str | None = None) -> PretrainedCfg:
        if not self.pretrained:
            raise UnknownComponentError(
                f"Model {self.name!r} has no published weights. "
                + (f"{self.without_weights} " if self.without_weights else "")
                + "Create it with pretrained=False, or list the models that have weights with "
                "`zoo-cli list --pretrained`."
            )
        if tag is None:
            return self.pretrained[0]
        for cfg in self.pretrained:
            if cfg.tag == tag:
                return cfg
        raise UnknownComponentError(
            f"Model {self.name!r} has no pretrained tag {tag!r}; available tags: {', '.join(self.tags)}."
        )


def natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


class Registry:
    """Name -> entry for one kind; an entry is anything with a ``name`` and the ``plugin`` that registered it.
    A second registration of a name is an error naming both plugins (:meth:`check_free`)."""

    def __init__(self, kind: str, what: str | None = None) -> None:
        self.kind = kind
        #: how messages call an entry of this kind ("model preset" for the kind "model")
        self.what = what or kind
        self._entries: dict[str, Any] = {}

    def check_free(self, name: str, plugin: str) -> None:
        """The one name-clash check: ``name`` registered already (by a built-in or another plugin) refuses
        ``plugin``'s registration with a :class:`RegistryClashError` naming both."""
        existing = self._entries.get(name)
        if existing is not None:
            raise RegistryClashError(
                f"{self.what} {name!r} is registered by two plugins: {existing.plugin!r} and {plugin!r}; "
                f"{plugin!r} was refused. Uninstall one of them, or choose which plugins load with "
                f"ZOO_LOAD_PLUGINS=name1,name2."
            )

    def add(self, entry: Any) -> None:
        self.check_free(entry.name, entry.plugin)
        self._entries[entry.name] = entry

    def remove_plugin(self, plugin: str) -> None:
        self._entries = {k: v for k, v in self._entries.items() if v.plugin != plugin}

    def clear(self) -> None:
        self._entries.clear()

    def names(self) -> list[str]:
        return sorted(self._entries, key=natural_key)

    def entries(self) -> list[Any]:
        return [self._entries[name] for name in self.names()]

    def lookup(self, name: str) -> tuple[Any, str | None]:
        """Return ``(entry, suffix)``; ``suffix`` is the part after a family prefix such as ``timm:``."""
        if name in self._entries and not getattr(self._entries[name], "prefix", False):
            return self._entries[name], None
        if ":" in name:
            family, suffix = split_spec(name)
            entry = self._entries.get(family + ":")
            if entry is not None and suffix:
                return entry, suffix
        raise UnknownComponentError(self._unknown_message(name))

    def _unknown_message(self, name: str) -> str:
        import difflib

        names = self.names()
        close = difflib.get_close_matches(name, names, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return (
            f"Unknown {self.kind} {name!r}.{hint} Registered {self.kind}s: {', '.join(names) or '(none)'}. "
            f"A plugin that failed to load is listed by `zoo-cli plugins`."
        )


