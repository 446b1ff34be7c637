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
