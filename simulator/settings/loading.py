"""Building the one :class:`~simulator.settings.models.Settings` object of a process.

Sources, lowest priority first: the shipped ``defaults.yaml``, an optional config
file (YAML or JSON), ``TXNSIM_*`` environment variables (nested with ``__``), and the
command line (flags and ``--set dotted.key=value``). Sections merge key by key, so a
file that sets ``population.cardholders`` keeps every other default; a mapping setting
(``geography.home_countries``, ``currency_per_usd``, ``fraud.scenarios``, ...) given by a
layer replaces the mapping below it whole. The rules are :mod:`runtime.layers`'.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from runtime.layers import Assignment, Merged, environment_assignments, merge
from runtime.overrides import format_validation_error, parse_override, yaml_value
from simulator.errors import ConfigError
from simulator.settings.models import Settings

#: Environment variables of the settings: ``TXNSIM_<KEY>``, ``__`` between sections.
ENV_PREFIX = "TXNSIM_"

__all__ = ["Origins", "load_settings", "load_settings_explained", "read_config_file"]

#: For each dotted path a layer set, who set it (see :func:`runtime.layers.explain_lines`).
Origins = dict[tuple[str, ...], str]


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
    environ: bool | Mapping[str, str] = True,
) -> Settings:
    """Build the effective settings from every source.

    Args:
        config_file: Optional YAML/JSON file.
        cli: Values from explicit command-line flags (already nested).
        overrides: ``dotted.key=value`` strings from ``--set``; they win over ``cli``.
        environ: Whether to read ``TXNSIM_*`` environment variables (True: the
            process's), or the variables to read.

    Raises:
        ConfigError: Naming every invalid field and what it allows.
    """
    return load_settings_explained(config_file, cli, overrides, environ=environ)[0]


def load_settings_explained(
    config_file: Path | None = None,
    cli: Mapping[str, Any] | None = None,
    overrides: Iterable[str] = (),
    *,
    environ: bool | Mapping[str, str] = True,
) -> tuple[Settings, Origins]:
    """:func:`load_settings`, and who set each value.

    Sources are named ``default``, ``file PATH``, ``env NAME``, ``flag`` and ``--set``.

    Raises:
        ConfigError: Naming every invalid field and what it allows.
    """
    merged = _merge(config_file, cli, overrides, environ)
    try:
        return Settings.model_validate(merged.data), merged.origins
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, Settings)) from exc


def _merge(
    config_file: Path | None,
    cli: Mapping[str, Any] | None,
    overrides: Iterable[str],
    environ: bool | Mapping[str, str],
) -> Merged:
    layers = [Assignment((), _defaults(), "default")]
    if config_file is not None:
        layers.append(Assignment((), read_config_file(config_file), f"file {config_file}"))
    if environ is not False:
        variables = os.environ if environ is True else environ
        layers += environment_assignments(Settings, variables, ENV_PREFIX, "__")
    layers.append(Assignment((), dict(cli or {}), "flag"))
    layers += [Assignment(*parse_override(pair), "--set") for pair in overrides]
    return merge(Settings, layers)
