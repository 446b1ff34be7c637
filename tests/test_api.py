"""The package's public surface is explicit and importable.

Every module of every package declares a sorted ``__all__`` whose names resolve. A plain
module lists exactly the public classes and functions it defines, and nothing it imports;
a package ``__init__`` may re-export, but must list what it defines itself too.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest

import consumers
import runtime
import schemas
import simulator

PACKAGES = [runtime, schemas, simulator, consumers]


def _module_names() -> list[str]:
    """Every module of the packages; a subpackage that fails to import is kept, to fail below.

    (``walk_packages`` would otherwise skip it and everything under it without a word.)
    """
    names: list[str] = []
    for package in PACKAGES:
        names.append(package.__name__)
        names += [
            info.name
            for info in pkgutil.walk_packages(
                package.__path__, f"{package.__name__}.", onerror=names.append
            )
            if info.name.rpartition(".")[2] != "__main__"
        ]
    return sorted(set(names))


def _main_modules() -> list[Path]:
    """``__main__`` files run the command line when imported, so they are read, not imported."""
    return sorted(p for package in PACKAGES for p in Path(package.__path__[0]).rglob("__main__.py"))


MODULES = _module_names()


def _isort_key(name: str) -> tuple[int, list[int | str]]:
    """Ruff's RUF022 order: SCREAMING_CASE, then CamelCase, then the rest, each naturally."""
    if len(name) > 1 and name.upper() == name != name.lower():
        kind = 0
    elif name[:1].isupper():
        kind = 1
    else:
        kind = 2
    return kind, [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _is_package(module: ModuleType) -> bool:
    return hasattr(module, "__path__")


def _defined(module: ModuleType) -> set[str]:
    """The public classes and functions whose home is ``module`` (not imported into it)."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isroutine(value))
        and getattr(value, "__module__", None) == module.__name__
    }


def _assigned(module: ModuleType) -> set[str]:
    """Names bound by a top-level assignment in the module's source (its constants)."""
    source = inspect.getsource(module)
    names: set[str] = set()
    for node in ast.parse(source).body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def test_the_walk_finds_the_layout() -> None:
    """A walk that silently found nothing would make every parametrised test vacuous."""
    for expected in (
        "consumers.landing",
        "runtime.units",
        "schemas.framing",
        "schemas.partitioner",
        "simulator.core.ids",
        "simulator.fraud.contract",
        "simulator.stream.publishers",
    ):
        assert expected in MODULES
    assert len(MODULES) > 60


def test_the_sort_order_is_ruffs() -> None:
    """RUF022 sorts (and ``ruff --fix`` rewrites) ``__all__`` so; a plain sort would fight it."""
    names = ["b", "a10", "Campaign", "a9", "ENTRY_POINT_GROUP", "X", "AB"]
    assert sorted(names, key=_isort_key) == [
        "AB",
        "ENTRY_POINT_GROUP",
        "Campaign",
        "X",
        "a9",
        "a10",
        "b",
    ]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_declared_sorted_and_resolves(name: str) -> None:
    module = importlib.import_module(name)
    if "__all__" not in vars(module):
        pytest.fail(f"{name} declares no __all__")
    names = list(module.__all__)
    expected = sorted(names, key=_isort_key)
    assert names == expected, f"keep {name}.__all__ sorted as ruff's RUF022 does: {expected}"
    assert len(set(names)) == len(names), f"{name}.__all__ repeats a name"
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not have: {missing}"


@pytest.mark.parametrize("name", MODULES)
def test_all_lists_exactly_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    listed = set(getattr(module, "__all__", ()))
    defined = _defined(module)
    unlisted = sorted(defined - listed)
    assert not unlisted, f"{name} defines public names missing from __all__: {unlisted}"
    if _is_package(module):
        return  # a package __init__ may re-export what its modules define
    foreign = sorted(
        n for n in listed - defined if hasattr(module, n) and (n not in _assigned(module))
    )
    assert not foreign, f"{name}.__all__ lists names it imports rather than defines: {foreign}"


@pytest.mark.parametrize("path", _main_modules(), ids=lambda p: f"{p.parent.name}.__main__")
def test_main_modules_only_run_the_command_line(path: Path) -> None:
    """A ``__main__`` is not imported here (it would run); it must define nothing public."""
    tree = ast.parse(path.read_text())
    defs = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    assert defs == [], f"{path}: define {defs} in a module that can be imported"


def test_every_shipped_data_file_is_declared_as_package_data() -> None:
    """A data file the package-data globs miss works in a checkout and breaks once installed."""
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parent.parent
    declared = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    for package in ("simulator", "schemas"):
        base = root / package
        for path in base.rglob("*"):
            if path.is_dir() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(base).as_posix()
            assert any(fnmatch.fnmatch(relative, g) for g in declared[package]), (
                f"{package}/{relative}"
            )
