"""The package's structure: layers that import only downwards, no import cycle inside ``zoo/``, and listing
models imports no torch."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

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


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in ZOO.rglob("*.py")}
    modules = set(paths)
    return {
        name: imported_modules(ast.parse(path.read_text(), str(path)), name, path.name == "__init__.py", modules)
        for name, path in paths.items()
    }


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


def test_no_import_cycle_inside_zoo():
    """Top-level and function-level imports of zoo modules form no cycle (``if TYPE_CHECKING:`` aside)."""
    graph = import_graph()
    assert len(graph) > 50 and "zoo.registry.plugins" in graph["zoo.registry.entries"] | graph["zoo.models.model"]
    cycles = find_cycles(graph)
    assert not cycles, "import cycles inside zoo/:\n" + "\n".join(
        f"{' -> '.join(cycle)}  (modules in this tangle: {', '.join(members)})" for cycle, members in cycles)


#: the layers, bottom up (README "Architecture"); a module imports only from its own layer or lower ones
LAYERS: tuple[tuple[str, ...], ...] = (
    ("zoo", "errors", "names", "labels", "runtime", "viz"),
    ("config", "registry"),
    ("data", "models"),
    ("weights", "factory"),
    ("ldl", "training"),
    ("inference", "publish"),
    ("apps",),
    ("cli", "__main__", "hookspecs"),
)


def layer_of(module: str) -> int:
    unit = module.split(".")[1] if "." in module else module
    for number, units in enumerate(LAYERS):
        if unit in units:
            return number
    raise AssertionError(f"{module}: its package {unit!r} is in no layer; add it to LAYERS (and the README)")


def test_imports_go_only_downwards_through_the_layers():
    """Every import inside ``zoo/`` (top level or in a function) reaches the same layer or a lower one."""
    upward = [f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
              for module, targets in sorted(import_graph().items()) for target in sorted(targets)
              if layer_of(target) > layer_of(module)]
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
