"""The registries, the plugin loader that fills them, and the only accessors to them.

Plugin loading: built-ins and ``emotion_zoo`` entry points, each loaded in isolation.

The pattern is llm's (``llm/plugins.py``): one ``pluggy.PluginManager``, built-in modules registered as
plugins exactly like third-party ones, an allow-list environment variable. Unlike pluggy's own
``load_setuptools_entrypoints``, a plugin that fails to import or whose hooks raise is unregistered, its
partial registrations are dropped and a warning names it; ``ZOO_STRICT_PLUGINS=1`` raises instead. The same
holds for hooks called later (``register_commands``, when ``zoo-cli`` builds its app: :func:`run_plugin_hooks`).

In-process plugins (tests, notebooks): :func:`register_plugin` / :func:`unregister_plugin`, or the
:func:`use_plugin` context manager, register an object or module with ``@hookimpl`` functions without installing it.

Environment:
  ``ZOO_LOAD_PLUGINS``   comma-separated allow-list of entry-point or distribution names ("" = none).
  ``ZOO_STRICT_PLUGINS`` "1" turns a broken plugin into an exception.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata as metadata
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pluggy

from zoo.errors import RegistryClashError, UnknownComponentError, ZooError
from zoo.names import split_model_name_tag
from zoo.registry import hookspecs
from zoo.registry.entries import (
    COMPONENT_KINDS,
    ComponentEntry,
    Preset,
    PretrainedCfg,
    Registry,
    import_object,
    natural_key,
)

ENTRY_POINT_GROUP = "emotion_zoo"

#: the built-in plugins, one module per kind (:mod:`zoo.builtin`), each named after its module and registered
#: exactly as an installed plugin is. None of them imports torch: their factories are
#: :class:`~zoo.registry.entries.LazyFactory` strings.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "zoo.builtin.backbones",
    "zoo.builtin.attention",
    "zoo.builtin.fusion",
    "zoo.builtin.targets",
    "zoo.builtin.presets",
    "zoo.builtin.datasets",
    "zoo.builtin.detectors",
)

HOOKS: dict[str, str] = {**COMPONENT_KINDS, "model": "register_presets"}
#: hooks called after loading, by the code that needs them (not by :func:`load_plugins`)
LATER_HOOKS: tuple[str, ...] = ("register_commands",)


_REGISTRIES: dict[str, Registry] = {kind: Registry(kind) for kind in COMPONENT_KINDS}
_PRESETS = Registry("model", what="model preset")



class PluginLoadError(ZooError):
    """A plugin failed to load while ``ZOO_STRICT_PLUGINS=1``."""


class PluginLoadWarning(UserWarning):
    pass


@dataclass
class PluginInfo:
    name: str
    version: str | None
    builtin: bool
    hooks: list[str] = field(default_factory=list)
    distribution: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "builtin": self.builtin,
            "distribution": self.distribution,
            "hooks": self.hooks,
            "error": self.error,
        }


class _State:
    def __init__(self) -> None:
        self.loaded = False
        self.loading = False
        self.manager: pluggy.PluginManager | None = None
        self.infos: list[PluginInfo] = []


_state = _State()


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager("emotion_zoo")
    manager.add_hookspecs(hookspecs)
    return manager


def reset() -> None:
    """Forget every loaded plugin and registration (for tests and after changing the environment)."""
    for registry in all_registries().values():
        registry.clear()
    _state.loaded = False
    _state.manager = None
    _state.infos = []


def _strict() -> bool:
    return os.environ.get("ZOO_STRICT_PLUGINS", "").strip().lower() in {"1", "true", "yes"}


def _allow_list() -> set[str] | None:
    raw = os.environ.get("ZOO_LOAD_PLUGINS")
    if raw is None:
        return None
    return {_normalise(name) for name in raw.split(",") if name.strip()}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _selected_entry_points() -> list[metadata.EntryPoint]:
    allowed = _allow_list()
    selected, seen = [], set()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else ""
        if allowed is not None and not ({_normalise(ep.name), _normalise(dist)} & allowed):
            continue
        if (ep.name, ep.value) in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add((ep.name, ep.value))
        selected.append(ep)
    if allowed:
        found = {_normalise(ep.name) for ep in selected} | {
            _normalise(ep.dist.name) for ep in selected if ep.dist is not None
        }
        for missing in sorted(allowed - found):
            warnings.warn(
                f"ZOO_LOAD_PLUGINS names {missing!r}, but no installed distribution has an "
                f"{ENTRY_POINT_GROUP!r} entry point by that name.",
                PluginLoadWarning,
                stacklevel=3,
            )
    return selected


def load_plugins() -> None:
    """Fill the registries once: built-ins first, then the allowed entry points."""
    if _state.loaded or _state.loading:
        return
    reset()
    _state.loading = True
    try:
        _state.manager = _new_manager()
        for name in DEFAULT_PLUGINS:
            _register_plugin(import_object(name), name, version=_zoo_version(), builtin=True)
        for ep in _selected_entry_points():
            dist_name = ep.dist.name if ep.dist is not None else None
            version = ep.dist.version if ep.dist is not None else None
            try:
                plugin = ep.load()
            except BaseException as exc:  # noqa: BLE001 - even sys.exit() at import isolates this plugin only
                if isinstance(exc, KeyboardInterrupt):
                    raise
                _record_failure(PluginInfo(ep.name, version, False, distribution=dist_name), exc)
                continue
            _register_plugin(plugin, ep.name, version=version, builtin=False, distribution=dist_name)
        _state.loaded = True
    except BaseException:
        reset()
        raise
    finally:
        _state.loading = False


def _zoo_version() -> str:
    from zoo.version import __version__

    return __version__


def _record_failure(info: PluginInfo, exc: BaseException, strict: bool | None = None) -> None:
    info.error = f"{type(exc).__name__}: {exc}"
    _state.infos.append(info)
    who = f"emotion-zoo plugin {info.name!r}" + (
        f" (distribution {info.distribution} {info.version})" if info.distribution else "")
    if _strict() if strict is None else strict:
        raise PluginLoadError(
            f"{who} failed to load: {info.error}. ZOO_STRICT_PLUGINS=1 makes this an error; fix or uninstall the "
            f"plugin, leave it out with ZOO_LOAD_PLUGINS, or unset ZOO_STRICT_PLUGINS to skip it with a warning."
        ) from exc
    warnings.warn(
        f"{who} failed to load and was skipped: {info.error}. Everything else keeps working; `zoo-cli plugins` "
        f"lists it. Set ZOO_STRICT_PLUGINS=1 to make this an error, or leave the plugin out with ZOO_LOAD_PLUGINS.",
        PluginLoadWarning, stacklevel=4,
    )


def _check_staged(staged: list[tuple[str, Any]], name: str) -> None:
    """A plugin's registrations, before any is added: no name twice, no clash with what is already registered
    (a built-in or another plugin). Each name's own form (a preset name without a dot, ...) was checked by the
    ``register`` callback that staged it (:func:`_make_register`)."""
    registries = all_registries()
    seen: set[tuple[str, str]] = set()
    for kind, entry in staged:
        if (kind, entry.name) in seen:
            raise RegistryClashError(
                f"plugin {name!r} registers {registries[kind].what} {entry.name!r} twice; register it once.")
        seen.add((kind, entry.name))
        registries[kind].check_free(entry.name, name)


def _implementations(manager: pluggy.PluginManager, hook_name: str, plugin_name: str) -> list[Any]:
    return [i for i in getattr(manager.hook, hook_name).get_hookimpls() if i.plugin_name == plugin_name]


def _register_plugin(
    plugin: Any, name: str, *, version: str | None, builtin: bool, distribution: str | None = None,
    strict: bool | None = None,
) -> PluginInfo:
    manager = _state.manager
    assert manager is not None
    info = PluginInfo(name, version, builtin, distribution=distribution)
    staged: list[tuple[str, Any]] = []
    registered = False
    try:
        manager.register(plugin, name=name)
        registered = True
        manager.check_pending()
        for kind, hook_name in HOOKS.items():
            for impl in _implementations(manager, hook_name, name):
                impl.function(register=_make_register(kind, name, staged, builtin))
                if hook_name not in info.hooks:
                    info.hooks.append(hook_name)
        _check_staged(staged, name)
    except BaseException as exc:  # noqa: BLE001 - a hook calling sys.exit() is a plugin failure too
        if registered:
            manager.unregister(plugin)
        if builtin or isinstance(exc, KeyboardInterrupt):
            raise
        _record_failure(info, exc, strict)
        return info
    info.hooks += [hook for hook in LATER_HOOKS if _implementations(manager, hook, name)]
    registries = all_registries()
    for kind, entry in staged:
        registries[kind].add(entry)
    _state.infos.append(info)
    return info


def _make_register(kind: str, plugin_name: str, staged: list[tuple[str, Any]], builtin: bool):
    """The ``register`` callback a plugin's hook receives; every entry it stages carries the plugin's name and
    ``builtin`` (set here, by the loader, never by the plugin)."""
    if kind == "model":

        def register_preset(
            name: str,
            model_args: dict[str, Any],
            description: str = "",
            pretrained: tuple[PretrainedCfg | dict[str, Any], ...] | list[Any] = (),
            without_weights: str = "",
        ) -> None:
            if not isinstance(name, str) or not name or "." in name or ":" in name or "/" in name:
                raise ValueError(f"preset name {name!r} is not allowed: a preset name is a non-empty string without "
                                 f"'.', ':' or '/' ('.' separates the pretrained tag: 'fer_cnn.expw').")
            if not isinstance(model_args, dict):
                raise TypeError(f"preset {name!r}: model_args must be a dict, got {type(model_args).__name__}.")
            cfgs = tuple(c if isinstance(c, PretrainedCfg) else PretrainedCfg(**c) for c in pretrained)
            if not isinstance(without_weights, str):
                raise TypeError(f"preset {name!r}: without_weights must be a string (what to use or run instead).")
            staged.append(("model", Preset(name, dict(model_args), plugin_name, description, cfgs, without_weights,
                                           builtin=builtin)))

        return register_preset

    def register_component(name: str, factory: Any, description: str = "", prefix: bool = False) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"A {kind} name must be a non-empty string (got {name!r}).")
        if prefix and not name.endswith(":"):
            raise ValueError(f"A prefix {kind} name must end with ':' (got {name!r}).")
        if not callable(factory):
            raise TypeError(f"{kind} {name!r}: factory must be callable, got {factory!r}.")
        staged.append((kind, ComponentEntry(kind, name, factory, plugin_name, description, prefix, builtin=builtin)))

    return register_component


def register_plugin(plugin: Any, name: str | None = None, *, strict: bool | None = None) -> PluginInfo:
    """Register ``plugin`` (a module, class or object with ``@zoo.hookimpl`` functions) in this process, as if
    it were installed: for testing a plugin without installing it, and in notebooks (llm's pattern).

    ``name`` defaults to the plugin's ``__name__`` (its class name for an instance). A plugin that fails (a
    hook raises, a name clashes) is refused as an installed one is: a warning, nothing of it registered, the
    error in the returned :class:`PluginInfo`; ``strict=True`` (default: ``ZOO_STRICT_PLUGINS``) raises a
    :class:`PluginLoadError` instead. Undo it with :func:`unregister_plugin`, or use :func:`use_plugin`.
    """
    load_plugins()
    name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
    manager = _state.manager
    assert manager is not None
    if manager.has_plugin(name) or any(info.name == name for info in _state.infos):
        raise PluginLoadError(f"A plugin named {name!r} is registered already; call unregister_plugin({name!r}) "
                              f"first, or register this one under another name.")
    if manager.is_registered(plugin):
        raise PluginLoadError(f"Plugin {plugin!r} is registered already, as {manager.get_name(plugin)!r}.")
    return _register_plugin(plugin, name, version=None, builtin=False, strict=strict)


def unregister_plugin(name: str) -> None:
    """Undo :func:`register_plugin`: drop the plugin and everything it registered (nothing if it is not there)."""
    manager = _state.manager
    if manager is not None and manager.get_plugin(name) is not None:
        manager.unregister(name=name)
    for registry in all_registries().values():
        registry.remove_plugin(name)
    _state.infos = [i for i in _state.infos if i.name != name]


@contextmanager
def use_plugin(plugin: Any, name: str | None = None) -> Iterator[PluginInfo]:
    """``with use_plugin(MyPlugin): ...``: ``plugin`` registered for the block (:func:`register_plugin` with
    ``strict=True``, so a broken plugin raises), and unregistered after it, whatever happens inside."""
    info = register_plugin(plugin, name, strict=True)
    try:
        yield info
    finally:
        unregister_plugin(info.name)


def run_plugin_hooks(hook_name: str, run: Callable[[str, Callable[..., Any]], None]) -> None:
    """Call ``run(plugin_name, implementation)`` for every loaded plugin implementing ``hook_name`` (one of
    :data:`LATER_HOOKS`), in load order. A third-party plugin for which ``run`` raises is refused as if it had
    failed to load: it is unregistered with everything it registered and a warning names it
    (``ZOO_STRICT_PLUGINS=1``: a :class:`PluginLoadError`). ``run`` must leave nothing behind when it raises."""
    load_plugins()
    manager = _state.manager
    assert manager is not None
    implementations = [(info, impl.function) for info in list(_state.infos) if info.error is None
                       for impl in _implementations(manager, hook_name, info.name)]
    for info, function in implementations:
        if info.error is not None:  # refused by one of its earlier implementations
            continue
        try:
            run(info.name, function)
        except BaseException as exc:  # noqa: BLE001 - as in loading: even sys.exit() refuses this plugin only
            if info.builtin or isinstance(exc, KeyboardInterrupt):
                raise
            unregister_plugin(info.name)
            _record_failure(info, exc)


def plugin_infos() -> list[PluginInfo]:
    """Every plugin that was tried: name, version, hooks and load error (``zoo-cli plugins``)."""
    load_plugins()
    return list(_state.infos)


def component_registry(kind: str) -> Registry:
    load_plugins()
    if kind not in _REGISTRIES:
        raise UnknownComponentError(
            f"Unknown component kind {kind!r}; kinds are: {', '.join(_REGISTRIES)}."
        )
    return _REGISTRIES[kind]


def get_component(kind: str, name: str) -> tuple[ComponentEntry, str | None]:
    return component_registry(kind).lookup(name)


def preset_registry() -> Registry:
    load_plugins()
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
    load_plugins()
    kinds = [kind] if kind else list(_REGISTRIES)
    result = {}
    for k in kinds:
        registry = component_registry(k)
        result[k] = [e.name + ("<name>" if e.prefix else "") for e in registry.entries()]
    return result


def all_registries() -> dict[str, Registry]:
    """Every registry, the presets included under the key ``"model"`` (used by the plugin loader)."""
    return {**_REGISTRIES, "model": _PRESETS}
