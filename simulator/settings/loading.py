"""Building the one :class:`~simulator.settings.models.Settings` object of a process.

Sources, lowest priority first: the shipped ``defaults.yaml``, an optional config
file (YAML or JSON), ``TXNSIM_*`` environment variables (nested with ``__``), and the
command line (flags and ``--set dotted.key=value``). Nested mappings are merged key
by key, so a file that sets ``population.cardholders`` keeps every other default.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_settings import EnvSettingsSource

from runtime.overrides import deep_merge, format_validation_error, parse_overrides, yaml_value
from simulator.errors import ConfigError
from simulator.settings.models import Settings

__all__ = ["load_settings", "read_config_file"]


def _defaults() -> dict[str, Any]:
    text = importlib.resources.files("simulator").joinpath("data/defaults.yaml").read_text("utf-8")
    loaded: dict[str, Any] = yaml_value(text)
    return loaded


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML or JSON config file into a mapping.

    Raises:
        ConfigError: If the file cannot be read or is not a mapping.
    """
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"--config {path}: cannot read the file ({exc.strerror or exc})") from exc
    try:
        data = yaml_value(text)  # JSON is a subset of YAML
    except yaml.YAMLError as exc:
        raise ConfigError(f"--config {path}: not valid YAML or JSON ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: the top level must be a mapping of settings")
    return data


def load_settings(
    config_file: Path | None = None,
    cli: Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
    *,
    environ: bool = True,
) -> Settings:
    """Build the effective settings from every source.

    Args:
        config_file: Optional YAML/JSON file.
        cli: Values from explicit command-line flags (already nested).
        overrides: ``dotted.key=value`` strings from ``--set``; they win over ``cli``.
        environ: Whether to read ``TXNSIM_*`` environment variables.

    Raises:
        ConfigError: Naming every invalid field and what it allows.
    """
    layers: list[Mapping[str, Any]] = [_defaults()]
    if config_file is not None:
        layers.append(read_config_file(config_file))
    if environ:
        layers.append(_environment())
    layers.append(dict(cli or {}))
    layers.append(parse_overrides(overrides))
    merged = deep_merge(*layers)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, Settings)) from exc


def _environment() -> dict[str, Any]:
    try:
        return dict(EnvSettingsSource(Settings)())
    except Exception as exc:  # pydantic-settings raises SettingsError for bad JSON in env values
        raise ConfigError(f"environment: {exc}") from exc
