"""Registries of components and presets (timm ``_registry.py`` shape, filled by pluggy hooks).

Nothing here imports torch: listing models stays cheap. The registries are filled lazily, on first use,
by :func:`zoo.registry.plugins.load_plugins`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from zoo.errors import RegistryClashError, UnknownComponentError
from zoo.names import split_model_name_tag, split_spec

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

    @property
    def tags(self) -> list[str]:
        return [cfg.tag for cfg in self.pretrained]

    @property
    def default_tag(self) -> str | None:
        return self.pretrained[0].tag if self.pretrained else None

    def pretrained_cfg(self, tag: str | None = None) -> PretrainedCfg:
        if not self.pretrained:
            raise UnknownComponentError(
                f"Model {self.name!r} has no published weights. Create it with pretrained=False, or list the "
                f"models that have weights with `zoo-cli list --pretrained`."
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
    """Name -> entry for one kind. A second registration of a name is an error naming both plugins."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}

    def add(self, entry: Any) -> None:
        existing = self._entries.get(entry.name)
        if existing is not None:
            raise RegistryClashError(
                f"{self.kind} {entry.name!r} is registered by two plugins: {existing.plugin!r} and "
                f"{entry.plugin!r}. Uninstall one of them, or choose which plugins load with "
                f"ZOO_LOAD_PLUGINS=name1,name2."
            )
        self._entries[entry.name] = entry

    def remove_plugin(self, plugin: str) -> None:
        self._entries = {k: v for k, v in self._entries.items() if v.plugin != plugin}

    def clear(self) -> None:
        self._entries.clear()

    def names(self) -> list[str]:
        return sorted(self._entries, key=natural_key)

    def entries(self) -> list[Any]:
        return [self._entries[name] for name in self.names()]

    def __contains__(self, name: str) -> bool:
        try:
            self.lookup(name)
        except UnknownComponentError:
            return False
        return True

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


_REGISTRIES: dict[str, Registry] = {kind: Registry(kind) for kind in COMPONENT_KINDS}
_PRESETS = Registry("model")


def _ensure_loaded() -> None:
    from zoo.registry.plugins import load_plugins

    load_plugins()


def component_registry(kind: str) -> Registry:
    _ensure_loaded()
    if kind not in _REGISTRIES:
        raise UnknownComponentError(
            f"Unknown component kind {kind!r}; kinds are: {', '.join(_REGISTRIES)}."
        )
    return _REGISTRIES[kind]


def get_component(kind: str, name: str) -> tuple[ComponentEntry, str | None]:
    return component_registry(kind).lookup(name)


def preset_registry() -> Registry:
    _ensure_loaded()
    return _PRESETS


def get_preset(name: str) -> Preset:
    arch, _ = split_model_name_tag(name)
    return preset_registry().lookup(arch)[0]


def list_models(
    pattern: str | Iterable[str] = "*", pretrained: bool = False, exclude: str | Iterable[str] = ()
) -> list[str]:
    """Preset names matching fnmatch ``pattern``, naturally sorted.

    With ``pretrained=True`` only models with published weights are listed, one ``arch.tag`` per weight set.
    """
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    excludes = [exclude] if isinstance(exclude, str) else list(exclude)
    names: list[str] = []
    for preset in preset_registry().entries():
        candidates = [f"{preset.name}.{tag}" for tag in preset.tags] if pretrained else [preset.name]
        for candidate in candidates:
            arch = candidate.split(".")[0]
            if not any(fnmatch.fnmatch(candidate, p) or fnmatch.fnmatch(arch, p) for p in patterns):
                continue
            if any(fnmatch.fnmatch(candidate, p) for p in excludes):
                continue
            names.append(candidate)
    return sorted(names, key=natural_key)


def list_components(kind: str | None = None) -> dict[str, list[str]]:
    """Registered component names by kind (all kinds, or only ``kind``)."""
    _ensure_loaded()
    kinds = [kind] if kind else list(_REGISTRIES)
    result = {}
    for k in kinds:
        registry = component_registry(k)
        result[k] = [e.name + ("<name>" if e.prefix else "") for e in registry.entries()]
    return result


def all_registries() -> dict[str, Registry]:
    """Every registry, the presets included under the key ``"model"`` (used by the plugin loader)."""
    return {**_REGISTRIES, "model": _PRESETS}
