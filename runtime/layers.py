"""Settings layers merged by what the settings model says each key is, remembering who set what.

The merge reads the pydantic model's field annotations, so no list of names is kept:

* a **section** (a field whose type is a settings model, or one entry of a table of
  sections such as ``mcc_groups.grocery``) merges key by key: a layer that gives
  ``population: {cardholders: 5}`` keeps every other ``population`` default;
* a **mapping setting** (a ``dict[...]`` field: country weights, MCC weights, currency
  rates, scenario and hotspot tables, ...) is one value: a mapping given for it replaces
  the lower layers' mapping whole, so ``geography.home_countries: {JP: 1.0}`` means Japan
  only;
* a **dotted key** sets the one value it names and leaves its neighbours:
  ``--set geography.home_countries.JP=0.5`` adds or edits one entry,
  ``--set mcc_groups.fuel.share=0.2`` one field of one group. Dotted keys work on the
  command line, in environment variables (``__`` for the dots) and as keys of a file's
  sections;
* anything else (numbers, strings, lists) replaces.

Every value remembers the layer that set it, for ``txnsim config show --explain``.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel

from runtime.errors import ConfigError

__all__ = ["Assignment", "Merged", "environment_assignments", "explain_lines", "merge"]

Path = tuple[str, ...]


@dataclass(frozen=True)
class Assignment:
    """One value a layer gives, at a path of keys.

    Attributes:
        path: The keys from the root, e.g. ``("geography", "home_countries")``.
        value: The value; a mapping at a section merges into it key by key.
        source: Who gave it, as shown by ``--explain`` (``default``, ``file c.yaml``,
            ``env TXNSIM_DAYS``, ``flag``, ``--set``).
        fold_case: Match existing mapping keys case-insensitively (environment names).
    """

    path: Path
    value: Any
    source: str
    fold_case: bool = False


@dataclass
class Merged:
    """The merged raw settings and, for each path a layer set, the layers that set it."""

    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[Path, str] = field(default_factory=dict)


def _unwrap(annotation: Any) -> Any:
    """``Annotated[X, ...]`` and ``X | None`` as ``X``; other unions stay as they are."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            rest = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_mapping_setting(annotation: Any) -> bool:
    return typing.get_origin(annotation) is dict or annotation is dict


def _child(annotation: Any, key: str) -> Any:
    """The type of ``key`` inside a value of type ``annotation`` (``Any`` when unknown)."""
    if _is_section(annotation):
        info = annotation.model_fields.get(key)
        return Any if info is None else _unwrap(info.annotation)
    if typing.get_origin(annotation) is dict:
        return _unwrap(typing.get_args(annotation)[1])
    return Any


def _type_at(model: type[BaseModel], path: Path) -> Any:
    annotation: Any = model
    for key in path:
        annotation = _child(annotation, key)
    return annotation


def merge(model: type[BaseModel], assignments: Iterable[Assignment]) -> Merged:
    """Apply ``assignments`` in order (lowest priority first) by the rules of the module."""
    merged = Merged()
    for order, item in enumerate(assignments):
        _apply(merged, model, item.path, item.value, item, order)
    return merged


def _apply(
    merged: Merged, model: type[BaseModel], path: Path, value: Any, item: Assignment, order: int
) -> None:
    annotation = _type_at(model, path)
    if _is_section(annotation) and isinstance(value, Mapping):
        _node(merged, path, item.fold_case)
        for key, sub in value.items():
            # Field names never hold dots, so a dotted key in a section is a path.
            _apply(merged, model, (*path, *str(key).split(".")), sub, item, order)
        return
    if not path:
        raise ConfigError("the settings must be a mapping of sections and values")
    parent = _node(merged, path[:-1], item.fold_case)
    key = _key(parent, path[-1], item.fold_case)
    parent[key] = copy.deepcopy(value)
    where = (*_resolved(merged, path[:-1], item.fold_case), key)
    for known in [p for p in merged.origins if p[: len(where)] == where]:
        del merged.origins[known]
    merged.origins[where] = item.source


def _key(node: dict[str, Any], key: str, fold_case: bool) -> str:
    if fold_case and key not in node:
        for existing in node:
            if isinstance(existing, str) and existing.lower() == key.lower():
                return existing
    return key


def _node(merged: Merged, path: Path, fold_case: bool) -> dict[str, Any]:
    """The mapping at ``path``, made (or made a mapping, replacing a null) on the way."""
    node = merged.data
    for part in path:
        key = _key(node, part, fold_case)
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    return node


def _resolved(merged: Merged, path: Path, fold_case: bool) -> Path:
    node: Any = merged.data
    keys = []
    for part in path:
        key = _key(node, part, fold_case)
        keys.append(key)
        node = node[key]
    return tuple(keys)


def environment_assignments(
    model: type[BaseModel], environ: Mapping[str, str], prefix: str, delimiter: str = "__"
) -> list[Assignment]:
    """Assignments from ``PREFIX<KEY>`` variables, nested with ``delimiter``.

    Names match case-insensitively (``TXNSIM_POPULATION__CARDHOLDERS``); a mapping's entry
    keeps the case it is given unless an existing entry matches (``..._HOME_COUNTRIES__JP``).
    A value whose setting is a section, mapping or list is read as JSON; any other is a
    string the model converts. Variables naming no top-level setting are left alone.

    Raises:
        ConfigError: For a JSON value that does not parse, naming the variable.
    """
    found = []
    for name in sorted(environ):
        if not name.upper().startswith(prefix.upper()):
            continue
        parts = name[len(prefix) :].split(delimiter)
        path: list[str] = []
        annotation: Any = model
        for part in parts:
            if _is_section(annotation):
                names = {n.lower(): n for n in annotation.model_fields}
                part = names.get(part.lower(), part.lower())
            path.append(part)
            annotation = _child(annotation, part)
        if path[0] not in model.model_fields:
            continue
        raw = environ[name]
        value: Any = raw
        if _is_section(annotation) or typing.get_origin(annotation) in (dict, list, tuple, set):
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise ConfigError(f"{name}: expected a JSON value ({exc})") from exc
        found.append(Assignment(tuple(path), value, f"env {name}", fold_case=True))
    return found


def _sources(origins: Mapping[Path, str], path: Path) -> str:
    """Who set the value at ``path``.

    The last layer that set it (or a mapping holding it), then every layer that edited
    an entry of it afterwards.
    """
    above = [src for p, src in origins.items() if p == path[: len(p)]]
    below = [src for p, src in origins.items() if len(p) > len(path) and p[: len(path)] == path]
    names = above[-1:] + below
    if not names:
        return "model default"
    return ", ".join(dict.fromkeys(names))


def explain_lines(
    model: type[BaseModel], data: Mapping[str, Any], origins: Mapping[Path, str]
) -> Iterator[tuple[str, Any, str]]:
    """``(dotted key, value, source)`` for every value of ``data`` (a model dump).

    Sections, and tables of sections, are followed down to their values; a mapping
    setting is one value with the sources of all its entries.
    """
    yield from _explain(model, data, (), origins)


def _explain(
    annotation: Any, value: Any, path: Path, origins: Mapping[Path, str]
) -> Iterator[tuple[str, Any, str]]:
    if isinstance(value, Mapping) and value:
        table = _is_mapping_setting(annotation) and _is_section(_child(annotation, ""))
        if _is_section(annotation) or table:
            for key, sub in value.items():
                yield from _explain(_child(annotation, key), sub, (*path, key), origins)
            return
    yield ".".join(path), value, _sources(origins, path)
