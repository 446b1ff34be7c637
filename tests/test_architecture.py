"""The layout is the architecture: layers import downwards only, and nothing imports in a circle.

Every import counts, including the ones inside functions (a lazy import is still a
dependency). The graph is read from the source with :mod:`ast`, so the test needs no
import to succeed and names the offending line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("runtime", "schemas", "storage", "simulator", "consumers")

#: Lowest first. A module may import its own room and the rooms of lower layers; rooms
#: that share a layer are peers and import none of each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("runtime",),
    ("schemas", "storage"),
    ("simulator.errors", "consumers.errors"),
    ("simulator.core", "consumers.metrics"),
    ("simulator.settings", "consumers.settings", "consumers.stats"),
    ("simulator.world", "consumers.landing"),
    (
        "simulator.fraud",
        "consumers.dead_letters",
        "consumers.membership",
        "consumers.writer_schemas",
    ),
    ("simulator.model", "consumers.intake", "consumers.lander"),
    ("simulator.metrics", "consumers.sink"),
    ("simulator.batch", "simulator.stream", "simulator.validate", "simulator.report"),
    ("simulator.cli_parser",),
    ("simulator.cli", "consumers.cli"),
    ("simulator.console", "consumers.console"),
    ("simulator", "simulator.__main__", "consumers", "consumers.__main__"),
)

MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """The project modules ``name`` imports, with the line of each import."""
    return _imports_of(name, path, path.read_text("utf-8"))


def _imports_of(name: str, path: Path, source: str) -> Iterator[tuple[str, int]]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            # ``from package import module`` depends on the module; ``from module import
            # name`` on the module.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target, node.lineno


GRAPH = {name: sorted(set(_imports(name, path))) for name, path in MODULES.items()}


def _room(module: str) -> tuple[int, str]:
    best: tuple[int, str] | None = None
    for level, rooms in enumerate(LAYERS):
        for room in rooms:
            if (module == room or module.startswith(room + ".")) and (
                best is None or len(room) > len(best[1])
            ):
                best = (level, room)
    assert best is not None, f"{module} is in no layer: add its room to LAYERS"
    return best


def test_every_module_has_a_room() -> None:
    for module in MODULES:
        _room(module)


Graph = dict[str, list[tuple[str, int]]]


def _climbs(graph: Graph) -> list[str]:
    """Imports that climb to a higher layer or cross to a peer room."""
    problems = []
    for module, imports in graph.items():
        level, room = _room(module)
        for target, line in imports:
            t_level, t_room = _room(target)
            if t_room == room or (room == "simulator" and target.startswith("simulator.")):
                continue  # within a room, or the package facade naming its own modules
            if t_level > level or (t_level == level and t_room != room):
                problems.append(f"{module}:{line} -> {target}")
    return problems


def _circles(graph: Graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target, _ in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return circles


def test_imports_only_go_down() -> None:
    problems = _climbs(GRAPH)
    assert not problems, "imports that climb up or cross to a peer:\n" + "\n".join(problems)


def test_the_sink_stands_without_the_simulator() -> None:
    crossing = [
        f"{module} -> {target} (line {line})"
        for module, imports in GRAPH.items()
        if module.split(".")[0] in ("consumers", "schemas", "storage", "runtime")
        for target, line in imports
        if target.split(".")[0] == "simulator"
    ]
    assert not crossing


def test_no_import_circles() -> None:
    assert not _circles(GRAPH)


def test_the_checks_catch_what_they_forbid() -> None:
    """A planted climb, peer import and circle are each found, lazy imports included."""
    seeding = [target for target, _ in GRAPH["simulator.world.build"]]
    assert "simulator.core.seeding" in seeding, "the graph misses a real downward import"
    planted = {name: list(edges) for name, edges in GRAPH.items()}
    planted["simulator.core.ids"].append(("simulator.batch.generate", 1))  # climbs
    planted["simulator.stream.job"].append(("simulator.batch.output", 2))  # peer room
    assert _climbs(planted) == [
        "simulator.core.ids:1 -> simulator.batch.generate",
        "simulator.stream.job:2 -> simulator.batch.output",
    ]
    planted["simulator.core.sampling"].append(("simulator.core.geo", 3))
    planted["simulator.core.geo"].append(("simulator.core.sampling", 4))
    assert ["simulator.core.geo", "simulator.core.sampling"] in _circles(planted)
    lazy = "def f():\n    from simulator.batch import generate\n"
    path = ROOT / "tests" / "__init__.py"
    assert ("simulator.batch.generate", 2) in list(_imports_of("simulator.core.probe", path, lazy))


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_passes_the_size_limit(module: str) -> None:
    lines = len(MODULES[module].read_text("utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module}: {lines} lines; split it along its seams"
