"""The package's public surface is explicit and importable."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import consumers
import simulator


@pytest.mark.parametrize("package", [simulator, consumers])
def test_all_lists_exactly_the_public_names(package: object) -> None:
    names = package.__all__  # type: ignore[attr-defined]
    assert sorted(names) == names, "keep __all__ sorted"
    for name in names:
        assert hasattr(package, name), name


def test_every_module_declares_all_that_resolves() -> None:
    for info in pkgutil.iter_modules(simulator.__path__, "simulator."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        assert hasattr(module, "__all__"), info.name
        for name in module.__all__:
            assert hasattr(module, name), f"{info.name}.{name}"


def test_every_shipped_data_file_is_declared_as_package_data() -> None:
    """A data file the package-data globs miss works in a checkout and breaks once installed."""
    import fnmatch
    import tomllib
    from pathlib import Path

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
