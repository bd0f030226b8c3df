"""The package's structure: layers that import only downwards, no import cycle inside ``zoo/``, and listing
models imports no torch.

The package root ``zoo`` imports its API lazily (``_LAZY`` in zoo/__init__.py: name -> module), so no import
statement shows what it depends on; the graph reads ``_LAZY`` instead, an edge from ``zoo`` to each module
named there. The root is therefore not a foundation but the API façade: a layer of its own above everything it
re-exports (up to ``training`` and ``publish``) and below ``apps`` and ``cli``, which may use ``zoo.create`` & co. A lower
module that imports the bare ``zoo`` package (``from zoo import __version__``) both imports upwards and closes
a cycle through the root, and both tests below report it; the version lives in ``zoo.version`` for them."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ZOO = Path(__file__).resolve().parents[1] / "zoo"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ZOO.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_modules(tree: ast.AST, name: str, is_package: bool, modules: set[str]) -> set[str]:
    """The ``zoo`` modules a module imports, at top level and inside functions alike; ``if TYPE_CHECKING:``
    blocks are skipped. ``from a import b`` counts as importing ``a.b`` when that is a module, else ``a``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in modules and m != name}


def lazy_exports(tree: ast.AST) -> dict[str, str]:
    """The ``_LAZY = {"name": "module", ...}`` table of a package ``__init__``, read from its syntax tree."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign | ast.AnnAssign):
            continue
        targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
        if any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in targets) and isinstance(node.value, ast.Dict):
            return {ast.literal_eval(k): ast.literal_eval(v) for k, v in zip(node.value.keys, node.value.values, strict=True)}
    return {}


def import_graph() -> dict[str, set[str]]:
    """Module -> the ``zoo`` modules it imports; the root ``zoo`` also depends on each module in its ``_LAZY``."""
    paths = {module_name(p): p for p in ZOO.rglob("*.py")}
    modules = set(paths)
    graph = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[name] = imported_modules(tree, name, path.name == "__init__.py", modules)
        if name == "zoo":
            graph[name] |= {m for m in lazy_exports(tree).values() if m in modules}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[tuple[list[str], list[str]]]:
    """Per strongly connected component of more than one module (Tarjan): one cycle in it, as a path
    ``a -> ... -> a``, and all its modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    cycles = []
    for component in components:
        start = min(component)
        path, seen = [start], {start}
        while True:  # walk inside the component until a module repeats: that closes a cycle
            step = min(w for w in graph[path[-1]] if w in component)
            if step in seen:
                cycles.append((path[path.index(step):] + [step], sorted(component)))
                break
            path.append(step)
            seen.add(step)
    return sorted(cycles)


def test_the_cycle_finder_finds_a_cycle_and_ignores_type_checking_imports():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [(["a", "b", "c", "a"], ["a", "b", "c"])]
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import zoo.b\ndef f():\n    from zoo import c\n"
    assert imported_modules(ast.parse(source), "zoo.a", False, {"zoo", "zoo.a", "zoo.b", "zoo.c"}) == {"zoo.c"}


def test_the_lazy_table_of_the_root_is_read_as_its_imports():
    source = ('import importlib\nfrom zoo.version import __version__\n'
              '_LAZY = {"create": "zoo.factory", "train": "zoo.training.engine"}\n'
              'def __getattr__(name):\n    return getattr(importlib.import_module(_LAZY[name]), name)\n')
    tree = ast.parse(source)
    assert lazy_exports(tree) == {"create": "zoo.factory", "train": "zoo.training.engine"}
    assert lazy_exports(ast.parse("_LAZY: dict[str, str] = {'a': 'zoo.a'}\n")) == {"a": "zoo.a"}
    assert lazy_exports(ast.parse("LAZY = {'a': 'zoo.a'}\n")) == {}
    assert imported_modules(tree, "zoo", True, {"zoo", "zoo.version", "zoo.factory"}) == {"zoo.version"}
    graph = import_graph()
    assert {"zoo.factory", "zoo.training.engine", "zoo.inference.predict", "zoo.version"} <= graph["zoo"]


def cycle_report(graph: dict[str, set[str]]) -> str:
    return "\n".join(f"{' -> '.join(cycle)}  (modules in this tangle: {', '.join(members)})"
                     for cycle, members in find_cycles(graph))


def test_no_import_cycle_inside_zoo():
    """Top-level and function-level imports of zoo modules form no cycle (``if TYPE_CHECKING:`` aside)."""
    graph = import_graph()
    assert len(graph) > 50 and "zoo.registry.plugins" in graph["zoo.registry.entries"] | graph["zoo.models.model"]
    assert not find_cycles(graph), "import cycles inside zoo/:\n" + cycle_report(graph)


def test_a_lower_module_importing_the_package_root_is_a_cycle_and_an_upward_import():
    """What ``from zoo import __version__`` in zoo/weights/files.py did before ``zoo.version`` existed."""
    graph = import_graph()
    graph["zoo.weights.files"] = graph["zoo.weights.files"] | {"zoo"}
    assert "zoo -> zoo.factory -> " in cycle_report(graph) and "zoo.weights.files" in cycle_report(graph)
    assert upward_imports(graph) == ["zoo.weights.files (layer 3) imports zoo (layer 6)"]


#: the layers, bottom up (docs/architecture.md); a module imports only from its own layer or lower ones
#: (the root ``zoo`` is the API façade over layers 0-5, see the module docstring)
LAYERS: tuple[tuple[str, ...], ...] = (
    ("version", "errors", "names", "labels", "runtime", "viz", "outputs"),
    ("config", "registry", "builtin"),
    ("data", "models"),
    ("weights", "factory"),
    ("inference",),
    ("ldl", "training", "publish"),
    ("zoo",),
    ("apps",),
    ("cli", "__main__"),
)


def layer_of(module: str) -> int:
    unit = module.split(".")[1] if "." in module else module
    for number, units in enumerate(LAYERS):
        if unit in units:
            return number
    raise AssertionError(f"{module}: its package {unit!r} is in no layer; add it to LAYERS (and docs/architecture.md)")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
            for module, targets in sorted(graph.items()) for target in sorted(targets)
            if layer_of(target) > layer_of(module)]


def test_imports_go_only_downwards_through_the_layers():
    """Every import inside ``zoo/`` (top level or in a function, and the root's ``_LAZY``) reaches the same
    layer or a lower one."""
    upward = upward_imports(import_graph())
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_listing_models_and_components_imports_no_torch():
    """The built-in registrations are lazy references: listing needs no torch (a third-party plugin may)."""
    code = ("import sys, zoo\n"
            "assert 'glamor_net' in zoo.list_models() and 'gla' in zoo.list_components()['attention']\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'timm', 'torchvision'}))\n")
    env = {**os.environ, "ZOO_LOAD_PLUGINS": "", "PYTHONPATH": str(ZOO.parent)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_public_names_of_the_root_are_its_lazy_table_and_the_version():
    """``__all__`` is exactly the ``_LAZY`` names and ``__version__``; ``dir(zoo)`` lists them and the subpackages
    reachable as attributes; each name is the object of the module ``_LAZY`` names; pyproject reads the version
    from ``zoo.version``."""
    import zoo
    import zoo.version

    table = lazy_exports(ast.parse((ZOO / "__init__.py").read_text()))
    assert table == zoo._LAZY and {"create", "train", "evaluate", "predict"} <= set(table)
    assert sorted(zoo.__all__) == sorted([*table, "__version__"]) and len(set(zoo.__all__)) == len(zoo.__all__)
    assert set(dir(zoo)) == set(zoo.__all__) | zoo._SUBMODULES
    for name, module in table.items():
        assert getattr(zoo, name) is getattr(sys.modules[module], name), name
    assert zoo.__version__ == zoo.version.__version__
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ZOO.parent / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"] and "version" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "zoo.version.__version__"}


# ---- built-ins in one room, and no lower layer naming an upper module by string ---------------------------

#: ``"zoo.pkg.module"`` or ``"zoo.pkg.module:attribute"``: a string that names a zoo module (an entry point's form)
MODULE_STRING = re.compile(r"^zoo(\.[A-Za-z_]\w*)+(:[\w.]+)?$")


def _is_lazy_factory(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and (
        (isinstance(node.func, ast.Name) and node.func.id == "LazyFactory")
        or (isinstance(node.func, ast.Attribute) and node.func.attr == "LazyFactory"))


def named_modules(tree: ast.AST, modules: set[str]) -> tuple[set[str], list[str]]:
    """The zoo modules a module names in string constants (``"zoo.a.b"``, ``"zoo.a.b:attr"``), and apart from
    them the targets of its ``LazyFactory("...")`` calls, the deferred references a registration makes."""
    lazy_nodes = {id(node.args[0]) for node in ast.walk(tree) if _is_lazy_factory(node) and node.args}
    named, lazy = set(), []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_STRING.match(node.value)):
            continue
        if id(node) in lazy_nodes:
            lazy.append(node.value)
            continue
        module = node.value.split(":")[0]
        while module not in modules and "." in module:
            module = module.rpartition(".")[0]
        if module in modules:
            named.add(module)
    return named, lazy


def string_references() -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    """Module -> the zoo modules it names by string; module -> its LazyFactory targets."""
    paths = {module_name(p): p for p in ZOO.rglob("*.py")}
    named, lazy = {}, {}
    for name, path in paths.items():
        named[name], lazy[name] = named_modules(ast.parse(path.read_text(), str(path)), set(paths))
        named[name].discard(name)
    return named, lazy


def test_the_string_reader_finds_module_names_and_keeps_lazy_factories_apart():
    source = ('X = "zoo.inference.predict"\nY = "zoo.factory:create"\nZ = "zoo is great"\n'
              'F = LazyFactory("zoo.ldl.target:LDLVATarget")\n')
    modules = {"zoo", "zoo.inference.predict", "zoo.factory", "zoo.ldl.target"}
    assert named_modules(ast.parse(source), modules) == ({"zoo.inference.predict", "zoo.factory"},
                                                         ["zoo.ldl.target:LDLVATarget"])
    named, _ = string_references()
    named["zoo.registry.plugins"] = named["zoo.registry.plugins"] | {"zoo.ldl.target"}  # the old DEFAULT_PLUGINS
    assert upward_imports(named) == ["zoo.registry.plugins (layer 1) imports zoo.ldl.target (layer 5)"]


def test_no_lower_layer_names_an_upper_module_by_string():
    """A string naming a zoo module (``"zoo.a.b"``, ``"zoo.a.b:attr"``) is a dependency as an import is: it must
    point to the same layer or a lower one. ``DEFAULT_PLUGINS`` (layer 1) names only ``zoo.builtin`` (layer 1)."""
    named, _ = string_references()
    upward = upward_imports(named)
    assert not upward, "strings naming a module of a higher layer:\n" + "\n".join(upward)
    assert named["zoo.registry.plugins"] >= {"zoo.builtin.presets", "zoo.builtin.targets"}


def test_builtins_live_in_zoo_builtin_and_are_registered_as_plugins():
    """Every built-in plugin is a module of ``zoo/builtin/`` named after itself, with module-level ``@hookimpl``
    functions; ``DEFAULT_PLUGINS`` is exactly those modules; no other module of ``zoo/`` implements a hook or
    makes a ``LazyFactory``; each lazy target (the one sanctioned reference to a higher layer, resolved when the
    component is built) names an object that exists; the loader marks what they register ``builtin``."""
    from zoo.registry import plugins
    from zoo.registry.entries import import_object

    folder = ZOO / "builtin"
    modules = sorted(module_name(p) for p in folder.glob("*.py") if p.name != "__init__.py")
    assert sorted(plugins.DEFAULT_PLUGINS) == modules and len(modules) == 7
    assert {m.rpartition(".")[2] for m in modules} == {"backbones", "attention", "fusion", "targets", "presets",
                                                       "datasets", "detectors"}
    for path in ZOO.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        hooks = [node for node in tree.body if isinstance(node, ast.FunctionDef)
                 and any(isinstance(d, ast.Name) and d.id == "hookimpl" for d in node.decorator_list)]
        nested = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.ClassDef)
                  and node not in hooks and any(isinstance(d, ast.Name) and d.id == "hookimpl"
                                                for d in getattr(node, "decorator_list", []))]
        lazy = [node for node in ast.walk(tree) if _is_lazy_factory(node)]
        if path.parent == folder and path.name != "__init__.py":
            assert hooks and not nested, f"{path}: a built-in plugin is module-level @hookimpl functions"
        else:
            assert not hooks and not nested and not lazy, f"{path}: registrations belong in zoo/builtin/"
    _, lazy = string_references()
    targets = [t for name in modules for t in lazy[name]]
    assert len(targets) > 20 and all(not lazy[m] for m in lazy if m not in modules)
    for target in targets:
        assert callable(import_object(target)), target
    plugins.load_plugins()
    infos = {info.name: info for info in plugins.plugin_infos()}
    assert all(infos[m].builtin and infos[m].error is None for m in modules)
    for registry in plugins.all_registries().values():
        assert all(entry.builtin == (entry.plugin in modules) for entry in registry.entries())
