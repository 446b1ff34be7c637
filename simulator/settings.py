"""Building the one :class:`~simulator.config.Settings` object of a process.

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
from pydantic import BaseModel, ValidationError
from pydantic_settings import EnvSettingsSource

from simulator.config import Settings
from simulator.errors import ConfigError

__all__ = ["deep_merge", "format_validation_error", "load_settings", "parse_overrides"]


class _Loader(yaml.SafeLoader):
    """A safe YAML loader that leaves dates as strings, so the settings model checks them."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def _defaults() -> dict[str, Any]:
    text = importlib.resources.files("simulator").joinpath("data/defaults.yaml").read_text("utf-8")
    loaded: dict[str, Any] = _yaml(text)
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
        data = _yaml(text)  # JSON is a subset of YAML
    except yaml.YAMLError as exc:
        raise ConfigError(f"--config {path}: not valid YAML or JSON ({exc})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: the top level must be a mapping of settings")
    return data


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """Turn ``["a.b=1", "c=[1, 2]"]`` into ``{"a": {"b": 1}, "c": [1, 2]}``.

    Values are read as YAML scalars or flow collections, so numbers, booleans, lists
    and mappings keep their types.

    Raises:
        ConfigError: For an item without ``=`` or with an empty key.
    """
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(f"--set {pair!r}: expected dotted.key=value")
        try:
            value = _yaml(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {pair!r}: value is not valid YAML ({exc})") from exc
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {pair!r}: {part} is both a value and a section")
        node[parts[-1]] = value
    return result


def deep_merge(base: Mapping[str, Any], *overlays: Mapping[str, Any]) -> dict[str, Any]:
    """Merge mappings recursively; later overlays win, nested mappings merge key by key."""
    merged: dict[str, Any] = dict(base)
    for overlay in overlays:
        for key, value in overlay.items():
            current = merged.get(key)
            if isinstance(current, Mapping) and isinstance(value, Mapping):
                merged[key] = deep_merge(current, value)
            else:
                merged[key] = value
    return merged


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
        raise ConfigError(format_validation_error(exc)) from exc


def _environment() -> dict[str, Any]:
    try:
        return dict(EnvSettingsSource(Settings)())
    except Exception as exc:  # pydantic-settings raises SettingsError for bad JSON in env values
        raise ConfigError(f"environment: {exc}") from exc


def format_validation_error(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One line per problem: the dotted field, what is wrong, what is allowed.

    Args:
        exc: The validation error.
        model: The model that was validated (default: :class:`Settings`), for the
            lists of allowed keys.
    """
    lines = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in error["loc"]) or "(settings)"
        if error["type"] == "extra_forbidden":
            allowed = _allowed_keys(error["loc"][:-1], model or Settings)
            hint = f"; allowed here: {', '.join(allowed)}" if allowed else ""
            lines.append(f"{loc}: unknown setting{hint}")
            continue
        got = error.get("input")
        shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
        lines.append(f"{loc}: {error['msg']}{shown}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _allowed_keys(loc: tuple[int | str, ...], root: type[BaseModel]) -> list[str]:
    model: Any = root
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            model = None
            break
        field = model.model_fields.get(str(part))
        if field is None:
            # A dict-valued field (e.g. mcc_groups.<name>): step into its value type.
            continue
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        model = args[-1] if args and getattr(annotation, "__origin__", None) is dict else annotation
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(model.model_fields)
    return []
