"""Avro schemas of the events, shipped as package data.

The ``.avsc`` files in this package are the single source of truth for the event
formats; everything else (the Parquet schema, encoders, decoders) is derived from
them. They are located with :mod:`importlib.resources`, never relative to the
working directory.
"""

from __future__ import annotations

import importlib.resources
from functools import cache
from typing import Any

import orjson

__all__ = ["load_schema", "schema_text"]


@cache
def schema_text(name: str) -> bytes:
    """Return the raw bytes of the schema file ``<name>.avsc``.

    Args:
        name: Schema name without extension, e.g. ``"transaction"``.

    Raises:
        FileNotFoundError: If the package ships no such schema.
    """
    resource = importlib.resources.files(__name__).joinpath(f"{name}.avsc")
    if not resource.is_file():
        raise FileNotFoundError(f"no schema named {name!r} in package {__name__!r}")
    return resource.read_bytes()


def load_schema(name: str) -> dict[str, Any]:
    """Return the schema ``<name>.avsc`` as a fresh JSON object (not parsed by fastavro)."""
    loaded: dict[str, Any] = orjson.loads(schema_text(name))
    return loaded
