"""A slice's rows: kept as numbers, turned into Arrow columns for the rows asked for.

The assembler (:mod:`simulator.model.assemble`) orders, links and labels a slice as
numpy arrays; :class:`SliceRows` builds the transaction table's string, decimal and
timestamp columns from them a range of rows at a time, so a consumer that lands a file
at a time holds one file's strings, not the slice's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa

from simulator.core.ids import hex_ids, mix64
from simulator.world.build import World

__all__ = ["Lookups", "Rows", "SliceRows", "TableRows", "timestamps"]


class Rows(Protocol):
    """A slice's rows in event-time order, whose Arrow table is built for the rows asked."""

    @property
    def num_rows(self) -> int:
        """How many rows the slice has."""
        ...

    def table(self, lo: int = 0, hi: int | None = None) -> pa.Table:
        """Rows ``lo`` to ``hi`` (exclusive; the end by default) as a transaction table."""
        ...


@dataclass(frozen=True)
class TableRows:
    """:class:`Rows` of a table already built (a merge of lanes, a shard's slice)."""

    whole: pa.Table

    @property
    def num_rows(self) -> int:
        """How many rows the table has."""
        return self.whole.num_rows

    def table(self, lo: int = 0, hi: int | None = None) -> pa.Table:
        """A zero-copy slice of the table."""
        hi = self.whole.num_rows if hi is None else hi
        return self.whole.slice(lo, hi - lo)


@dataclass(frozen=True)
class Lookups:
    """What turns a slice's numbers into its string and decimal columns (per merchant, code)."""

    world: World
    schema: pa.Schema
    currency: pa.StringArray
    country: pa.StringArray
    mcc: pa.StringArray
    city: pa.StringArray
    channels: pa.StringArray
    modes: pa.StringArray
    scenarios: pa.StringArray
    case_secret: int


class SliceRows:
    """One slice's rows as numbers; their Arrow columns are built for the rows asked for.

    A slice takes about 100 bytes a row as numbers and 225 as Arrow columns: building
    the table a file at a time keeps one file's strings in memory, not the slice's.
    """

    def __init__(
        self, lookups: Lookups, card_ids: pa.StringArray, col: dict[str, np.ndarray]
    ) -> None:
        self._lookups = lookups
        self._card_ids = card_ids  # the ids as of this slice (replacements included)
        self._col = col
        self.num_rows = len(col["key"])

    @property
    def numbers(self) -> dict[str, np.ndarray]:
        """The rows as numbers, column by column (not to be written to).

        All another process needs to rebuild the rows, with its own :class:`Lookups`
        and card ids.
        """
        return self._col

    def table(self, lo: int = 0, hi: int | None = None) -> pa.Table:
        """Rows ``lo`` to ``hi`` (exclusive; the end by default) as a transaction table."""
        schema = self._lookups.schema
        got = self.columns(slice(lo, self.num_rows if hi is None else hi), schema.names)
        return pa.Table.from_arrays([got[name] for name in schema.names], schema=schema)

    def columns(self, at: slice | np.ndarray, names: Sequence[str]) -> dict[str, pa.Array]:
        """The Arrow columns ``names`` of the rows ``at`` (a range or row numbers)."""
        a, w = self._lookups, self._lookups.world
        col = {name: values[at] for name, values in self._col.items()}
        merchant = col["merchant"].astype(np.int64)
        m_idx = pa.array(merchant)
        build: dict[str, Callable[[], pa.Array]] = {
            "transaction_id": lambda: hex_ids(col["id"]),
            "event_time": lambda: pa.Array.from_buffers(
                pa.timestamp("us", tz="UTC"),
                len(merchant),
                [None, pa.py_buffer(col["time_us"].astype(np.int64))],
            ),
            "card_id": lambda: self._card_ids.take(pa.array(col["card"])),
            "cardholder_id": lambda: w.holders.ids.take(pa.array(col["holder"].astype(np.int64))),
            "merchant_id": lambda: w.merchants.ids.take(m_idx),
            "amount": lambda: _decimal(
                col["amount_minor"].astype(np.int64), a.schema.field("amount").type
            ),
            "currency": lambda: a.currency.take(m_idx),
            "mcc": lambda: a.mcc.take(m_idx),
            "channel": lambda: a.channels.take(
                pa.array(w.merchants.channel[merchant].astype(np.int64))
            ),
            "pos_entry_mode": lambda: _entry_modes(a.modes, col["entry_mode"]),
            "merchant_country": lambda: a.country.take(m_idx),
            "merchant_city": lambda: a.city.take(
                pa.array(merchant, mask=col["null_city"].astype(bool))
            ),
            "merchant_lat": lambda: _coordinate(w.merchants.lat[merchant], col),
            "merchant_lon": lambda: _coordinate(w.merchants.lon[merchant], col),
            "previous_transaction_id": lambda: hex_ids(col["prev"], mask=~col["has_prev"]),
            "is_fraud": lambda: pa.array(col["is_fraud"]),
            "fraud_scenario": lambda: a.scenarios.take(
                pa.array(col["scenario"], mask=col["scenario"] < 0)
            ),
            "fraud_case_id": lambda: hex_ids(
                mix64(np.maximum(col["case"], 0).astype(np.uint64), a.case_secret),
                mask=col["case"] < 0,
            ),
            "label_available_at": lambda: timestamps(col["label_at"], col["label_at"] < 0),
        }
        return {name: build[name]() for name in names}


def _entry_modes(modes: pa.StringArray, entry: np.ndarray) -> pa.Array:
    entry = entry.astype(np.int64)
    return modes.take(pa.array(np.maximum(entry, 0), mask=entry < 0))


def _coordinate(values: np.ndarray, col: dict[str, np.ndarray]) -> pa.Array:
    """Merchant latitudes or longitudes, null where the merchant has none or it is withheld."""
    missing = np.isnan(values) | col["null_coordinates"].astype(bool)
    return pa.array(np.where(missing, 0.0, values), mask=missing)


def timestamps(us: np.ndarray, null: np.ndarray) -> pa.Array:
    """UTC microsecond timestamps, null where ``null`` is true."""
    return pa.array(us.astype(np.int64), pa.int64(), mask=null).cast(pa.timestamp("us", tz="UTC"))


def _decimal(minor: np.ndarray, typ: pa.DataType) -> pa.Array:
    """Decimal128 values from integer minor units (the unscaled value), without Python objects."""
    words = np.empty((len(minor), 2), dtype=np.int64)
    words[:, 0] = minor
    words[:, 1] = minor >> 63
    return pa.Array.from_buffers(typ, len(minor), [None, pa.py_buffer(words.tobytes())])
