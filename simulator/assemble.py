"""From per-block arrays to the event table: merge, order, link, and label columns.

Blocks of one slice are merged in block order and sorted by event time (ties by
position), so the result is the same however many processes computed the blocks.
Each card's previous transaction is linked here, across slices and days, from the
running state this object keeps.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from simulator.behaviour import BlockEvents
from simulator.ids import hex_ids, mix64
from simulator.schema import transaction_schema
from simulator.world import World

__all__ = ["ENTRY_MODE_ECOMMERCE", "Assembler"]

ENTRY_MODE_ECOMMERCE = "ecommerce"


class Assembler:
    """Turns the blocks of successive slices into Arrow tables of the transaction schema."""

    def __init__(self, world: World) -> None:
        self._world = world
        n_cards = len(world.cards)
        self._last = np.zeros(n_cards, dtype=np.uint64)
        self._has_last = np.zeros(n_cards, dtype=bool)
        self._secret = world.streams.key64("transaction-ids")
        self._schema = transaction_schema().arrow
        m = world.merchants
        currency = [world.currencies[i] for i in world.currency_of_country]
        m_country = world.country_of_city[m.city]
        self._m_currency = pa.array([currency[c] for c in m_country.tolist()], pa.string())
        self._m_country = pa.array([world.countries[c] for c in m_country.tolist()], pa.string())
        self._m_mcc = pa.array([world.mcc_codes[i] for i in m.mcc.tolist()], pa.string())
        self._m_city = pa.array(world.cities.name[m.city].tolist(), pa.string())
        self._channels = pa.array(["card_present", "ecommerce"], pa.string())
        self._modes = pa.array([*world.settings.pos_entry_modes, ENTRY_MODE_ECOMMERCE], pa.string())

    def table(self, parts: list[BlockEvents]) -> tuple[pa.Table, np.ndarray]:
        """Merge one slice's blocks into a table sorted by event time.

        Returns the table and, row for row, the card index (the Kafka key's partition
        is computed per card once).
        """
        w = self._world
        col = {
            name: np.concatenate([getattr(p, name) for p in parts]) if parts else np.zeros(0)
            for name in BlockEvents.__dataclass_fields__
        }
        order = np.lexsort((col["key"], col["time_us"]))
        col = {k: v[order] for k, v in col.items()}
        n = len(order)
        ids = mix64(col["key"].astype(np.uint64), self._secret)
        card = col["card"].astype(np.int64)
        prev, has_prev = self._link(card, ids)

        merchant = col["merchant"].astype(np.int64)
        m_idx = pa.array(merchant)
        lat = w.merchants.lat[merchant]
        lon = w.merchants.lon[merchant]
        no_coords = np.isnan(lat) | col["null_coordinates"].astype(bool)
        entry = col["entry_mode"].astype(np.int64)
        channel = w.merchants.channel[merchant].astype(np.int64)
        columns = {
            "transaction_id": hex_ids(ids),
            "event_time": pa.Array.from_buffers(
                pa.timestamp("us", tz="UTC"),
                n,
                [None, pa.py_buffer(col["time_us"].astype(np.int64))],
            ),
            "card_id": w.cards.ids.take(pa.array(card)),
            "cardholder_id": w.holders.ids.take(pa.array(col["holder"].astype(np.int64))),
            "merchant_id": w.merchants.ids.take(m_idx),
            "amount": _decimal(
                col["amount_minor"].astype(np.int64), self._schema.field("amount").type
            ),
            "currency": self._m_currency.take(m_idx),
            "mcc": self._m_mcc.take(m_idx),
            "channel": self._channels.take(pa.array(channel)),
            "pos_entry_mode": self._modes.take(pa.array(np.maximum(entry, 0), mask=entry < 0)),
            "merchant_country": self._m_country.take(m_idx),
            "merchant_city": self._m_city.take(
                pa.array(merchant, mask=col["null_city"].astype(bool))
            ),
            "merchant_lat": pa.array(np.where(no_coords, 0.0, lat), mask=no_coords),
            "merchant_lon": pa.array(np.where(no_coords, 0.0, lon), mask=no_coords),
            "previous_transaction_id": hex_ids(prev, mask=~has_prev),
            "is_fraud": pa.array(np.zeros(n, dtype=bool)),
            "fraud_scenario": pa.nulls(n, pa.string()),
            "fraud_case_id": pa.nulls(n, pa.string()),
        }
        table = pa.Table.from_arrays([columns[f.name] for f in self._schema], schema=self._schema)
        return table, card

    def _link(self, card: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Previous transaction of the same card for every row (rows are in time order)."""
        n = len(card)
        perm = np.argsort(card, kind="stable")
        c = card[perm]
        first = np.ones(n, dtype=bool)
        first[1:] = c[1:] != c[:-1]
        sorted_ids = ids[perm]
        prev_sorted = np.empty(n, dtype=np.uint64)
        prev_sorted[1:] = sorted_ids[:-1]
        has_sorted = np.ones(n, dtype=bool)
        prev_sorted[first] = self._last[c[first]]
        has_sorted[first] = self._has_last[c[first]]
        last = np.ones(n, dtype=bool)
        last[:-1] = first[1:]
        self._last[c[last]] = sorted_ids[last]
        self._has_last[c[last]] = True
        prev = np.empty(n, dtype=np.uint64)
        prev[perm] = prev_sorted
        has = np.empty(n, dtype=bool)
        has[perm] = has_sorted
        return prev, has


def _decimal(minor: np.ndarray, typ: pa.DataType) -> pa.Array:
    """Decimal128 values from integer minor units (the unscaled value), without Python objects."""
    words = np.empty((len(minor), 2), dtype=np.int64)
    words[:, 0] = minor
    words[:, 1] = minor >> 63
    return pa.Array.from_buffers(typ, len(minor), [None, pa.py_buffer(words.tobytes())])
