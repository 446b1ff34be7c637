"""Settings plumbing both command lines share: ``--set`` overrides, merging, error text.

Values are YAML (JSON is a subset), parsed with dates left as strings so the settings
models check them; every problem comes back as one line naming the dotted field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from runtime.errors import ConfigError

__all__ = [
    "deep_merge",
    "format_validation_error",
    "parse_override",
    "parse_overrides",
    "yaml_value",
]


# libyaml's parser when PyYAML was built with it: the defaults parse about 10x faster.
_Safe = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_Safe):  # type: ignore[misc, valid-type]
    """A safe YAML loader that leaves dates as strings, so the settings model checks them."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def yaml_value(text: str) -> Any:
    """Parse YAML (or JSON, a subset) with dates left as strings for the models to check."""
    return yaml.load(text, Loader=_Loader)


def parse_override(pair: str) -> tuple[tuple[str, ...], Any]:
    """Split one ``dotted.key=value`` into its path of keys and its YAML value.

    Raises:
        ConfigError: For an item without ``=`` or with an empty key, or a value that
            is not YAML.
    """
    key, sep, raw = pair.partition("=")
    parts = tuple(key.strip().split("."))
    if not sep or not all(parts):
        raise ConfigError(f"--set {pair!r}: expected dotted.key=value")
    try:
        value = yaml_value(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {pair!r}: value is not valid YAML ({exc})") from exc
    return parts, value


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """Turn ``["a.b=1", "c=[1, 2]"]`` into ``{"a": {"b": 1}, "c": [1, 2]}``.

    Values are read as YAML scalars or flow collections, so numbers, booleans, lists
    and mappings keep their types.

    Raises:
        ConfigError: For an item without ``=`` or with an empty key.
    """
    result: dict[str, Any] = {}
    for pair in pairs:
        parts, value = parse_override(pair)
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {pair!r}: {part} is both a value and a section")
        node[parts[-1]] = value
    return result


def deep_merge(base: Mapping[str, Any], *overlays: Mapping[str, Any]) -> dict[str, Any]:
    """Merge mappings recursively; later overlays win, nested mappings merge key by key.

    It knows no settings model, so every mapping merges: fit for settings without
    mapping-valued fields (the sink's). The simulator's layers go through
    :func:`runtime.layers.merge`, where a mapping setting given replaces the default.
    """
    merged: dict[str, Any] = dict(base)
    for overlay in overlays:
        for key, value in overlay.items():
            current = merged.get(key)
            if isinstance(current, Mapping) and isinstance(value, Mapping):
                merged[key] = deep_merge(current, value)
            else:
                merged[key] = value
    return merged


def format_validation_error(exc: ValidationError, model: type[BaseModel]) -> str:
    """One line per problem: the dotted field, what is wrong, what is allowed.

    Args:
        exc: The validation error.
        model: The model that was validated, for the lists of allowed keys.
    """
    lines = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in error["loc"]) or "(settings)"
        if error["type"] == "extra_forbidden":
            allowed = _allowed_keys(error["loc"][:-1], model)
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
