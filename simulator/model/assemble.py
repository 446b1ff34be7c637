"""From per-block arrays to the event table: merge, order, link, and label columns.

Each block's fraud is planned by the block's own planner from the block's genuine
count (:mod:`simulator.fraud.planner`). Blocks of one slice are then merged and sorted
by event time (ties by position), so the result is the same however many processes
computed the blocks, and a shard's rows are the whole run's rows of its blocks.
Each card's previous transaction is linked here, across slices and days, from the
running state this object keeps.

A genuine purchase whose card has been blocked and whose replacement is still in the
post cannot be made on that card (:meth:`Assembler._while_waiting`): a share of them
moves to another card of the holder that works, the rest is not made. Links are made
after that, so each card's chain holds only the rows it really carries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from runtime.units import to_us
from schemas.event import transaction_schema
from simulator.core.ids import (
    FRAUD_FIRST,
    hex_ids,
    keyed_normals,
    keyed_uniforms,
    mix64,
    pack_keys,
)
from simulator.core.seeding import Streams
from simulator.fraud.cases import FraudRows
from simulator.fraud.context import delays_us
from simulator.fraud.model import FraudModel
from simulator.fraud.planner import FraudPlanner
from simulator.model.behaviour import BlockEvents
from simulator.settings.run import RunSpec
from simulator.world.build import World
from simulator.world.cache import cached

__all__ = ["ENTRY_MODE_ECOMMERCE", "Assembled", "Assembler"]

ENTRY_MODE_ECOMMERCE = "ecommerce"


@dataclass(frozen=True)
class Assembled:
    """One slice's output.

    Attributes:
        table: Transactions in event-time order.
        card: Card index of each row (world cards, then replacements).
        key: Position key of each row (its transaction id unmixed): ties in event time
            are ordered by it.
        labels: Labels decided in this slice (``fraud_label`` schema), for later times,
            ordered by label time, then as their transactions are.
        label_key: Position key of each label's transaction.
        new_cards: Ids of the cards issued since the previous slice, in index order.
    """

    table: pa.Table
    card: np.ndarray
    key: np.ndarray
    labels: pa.Table
    label_key: np.ndarray
    new_cards: pa.StringArray


class Assembler:
    """Turns the blocks of successive slices into Arrow tables of the transaction schema.

    Args:
        world: The built world.
        spec: The run's slice length, entry modes and fraud model.
        streams: The run's random streams.
        blocks: The cardholder blocks whose slices :meth:`table` is given, in order
            (every block of the world by default).
    """

    def __init__(
        self, world: World, spec: RunSpec, streams: Streams, blocks: Sequence[int] | None = None
    ) -> None:
        self._world = world
        self._spec = spec
        self._streams = streams
        n_cards = len(world.cards)
        self._last = np.zeros(n_cards, dtype=np.uint64)
        self._has_last = np.zeros(n_cards, dtype=bool)
        self._secret = streams.key64("transaction-ids")
        self._case_secret = streams.key64("fraud-case-ids")
        self._wait_secret = streams.key64("card-wait")
        self._dispute_secret = streams.key64("false-disputes")
        self._schema = transaction_schema().arrow
        self._label_schema = transaction_schema("fraud_label").arrow
        self._slice_us = spec.slice_us
        self.fraud = FraudModel(
            world,
            spec.fraud,
            streams,
            spec.slice_us,
            spec.entry_modes,
            memo=lambda kind, build: cached(spec.cache_dir, spec.calibration_hash, build, kind),
            calibration=spec.calibration,
        )
        self.cards = self.fraud.cards
        self._blocks = list(range(world.n_blocks) if blocks is None else blocks)
        self._planners = {b: FraudPlanner(self.fraud, b) for b in self._blocks}
        self._scenario_names = pa.array(self.fraud.names, pa.string())
        self._cards_reported = n_cards
        self._ids: pa.StringArray = world.cards.ids
        m = world.merchants
        currency = [world.currencies[i] for i in world.currency_of_country]
        m_country = world.country_of_city[m.city]
        self._m_currency = pa.array([currency[c] for c in m_country.tolist()], pa.string())
        self._m_country = pa.array([world.countries[c] for c in m_country.tolist()], pa.string())
        self._m_mcc = pa.array([world.mcc_codes[i] for i in m.mcc.tolist()], pa.string())
        self._m_city = pa.array(world.cities.name[m.city].tolist(), pa.string())
        self._channels = pa.array(["card_present", "ecommerce"], pa.string())
        self._modes = pa.array([*spec.entry_modes, ENTRY_MODE_ECOMMERCE], pa.string())

    def table(self, parts: list[BlockEvents], start: dt.datetime) -> Assembled:
        """Merge one slice's blocks and their fraud into a table sorted by event time.

        ``parts`` are the slice's blocks in the order given at construction. Returns the
        table and, row for row, the card index (the Kafka key's partition is computed
        per card once), with the labels and cards the slice produced.
        """
        if len(parts) != len(self._blocks):
            raise ValueError(f"{len(parts)} block results for {len(self._blocks)} blocks")
        w = self._world
        start_us = to_us(start)
        frauds = [
            self._planners[b].plan_slice(start_us, len(p))
            for b, p in zip(self._blocks, parts, strict=True)
        ]
        col = {
            name: np.concatenate([getattr(p, name) for p in parts]) if parts else np.zeros(0)
            for name in BlockEvents.__dataclass_fields__
        }
        del parts  # the blocks' arrays are copied: a caller passing the only list frees them
        col = self._with_fraud(col, frauds, start)
        order = np.lexsort((col["key"], col["time_us"]))
        for name in col:  # one column at a time: each unsorted copy goes as its sorted one comes
            col[name] = col[name][order]
        n = len(order)
        ids = mix64(col["key"].astype(np.uint64), self._secret)
        genuine = ~col["is_fraud"].astype(bool)
        registry = self.cards
        card = col["card"].astype(np.int64)
        card[genuine] = registry.resolve_many(card[genuine], col["time_us"][genuine])
        keep = self._while_waiting(card, col["time_us"], genuine, col["key"])
        if not keep.all():
            self._forgo(col["holder"][~keep])
            for name in col:
                col[name] = col[name][keep]
            card, ids, n = card[keep], ids[keep], int(keep.sum())
        col["holder"] = registry.holder[card]
        card_id = self._card_ids(card)
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
            "card_id": card_id,
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
            "is_fraud": pa.array(col["is_fraud"]),
            "fraud_scenario": self._scenario_names.take(
                pa.array(col["scenario"], mask=col["scenario"] < 0)
            ),
            "fraud_case_id": hex_ids(
                mix64(np.maximum(col["case"], 0).astype(np.uint64), self._case_secret),
                mask=col["case"] < 0,
            ),
            "label_available_at": _timestamps(col["label_at"], col["label_at"] < 0),
        }
        table = pa.Table.from_arrays([columns[f.name] for f in self._schema], schema=self._schema)
        labels, label_rows = self._labels(table, col)
        new_cards = registry.card_ids(self._cards_reported)
        self._cards_reported = len(registry)
        key = col["key"].astype(np.uint64)
        return Assembled(table, card, key, labels, key[label_rows], new_cards)

    def _forgo(self, holder: np.ndarray) -> None:
        """Tell each block's planner how many of its genuine rows were not made."""
        block = holder.astype(np.int64) // self._world.block_size
        for b, count in zip(*np.unique(block, return_counts=True), strict=True):
            self._planners[int(b)].forgo(int(count))

    def _with_fraud(
        self, col: dict[str, np.ndarray], frauds: list[FraudRows], start: dt.datetime
    ) -> dict[str, np.ndarray]:
        """Append the blocks' campaign rows, with label columns for every row."""
        fraud = FraudRows.concat(frauds)
        n, k = len(col["key"]), len(fraud)
        entry = fraud.entry_mode.astype(np.int8)
        index = start.hour // self._spec.slice_hours
        keys = [
            pack_keys(start.date(), index, b, len(f), first=FRAUD_FIRST)
            for b, f in zip(self._blocks, frauds, strict=True)
        ]
        out = {
            "time_us": fraud.time_us,
            "holder": self.cards.holder[fraud.card],
            "card": fraud.card,
            "merchant": fraud.merchant,
            "amount_minor": fraud.amount_minor,
            "entry_mode": entry,
            "null_city": np.zeros(k, dtype=bool),
            "null_coordinates": np.zeros(k, dtype=bool),
            "key": np.concatenate(keys) if keys else np.zeros(0, dtype=np.uint64),
        }
        merged = {
            name: np.concatenate([col[name].astype(out[name].dtype, copy=False), out[name]])
            for name in out
        }
        merged["is_fraud"] = np.concatenate([np.zeros(n, dtype=bool), fraud.fraud])
        merged["scenario"] = np.concatenate(
            [np.full(n, -1, dtype=np.int32), np.where(fraud.fraud, fraud.scenario, -1)]
        )
        merged["case"] = np.concatenate(
            [np.full(n, -1, dtype=np.int64), np.where(fraud.fraud, fraud.case, -1)]
        )
        merged["label_at"] = np.concatenate([np.full(n, -1, dtype=np.int64), fraud.label_at_us])
        return merged

    def _labels(self, table: pa.Table, col: dict[str, np.ndarray]) -> tuple[pa.Table, np.ndarray]:
        """Fraud labels of this slice's rows, plus wrong disputes of genuine ones.

        Returns the labels and the row of each one's transaction.

        Whether a genuine row is disputed, and when, are keyed hashes of its position,
        so they do not depend on the other rows of the slice (nor on the shard).
        """
        cfg = self._spec.fraud
        genuine = np.flatnonzero(~col["is_fraud"])
        key = col["key"][genuine]
        disputed = genuine[keyed_uniforms(key, self._dispute_secret) < cfg.false_dispute_rate]
        label_at = col["label_at"].copy()
        z = keyed_normals(col["key"][disputed], self._dispute_secret ^ 1)
        label_at[disputed] = col["time_us"][disputed] + delays_us(cfg.false_dispute_delay, z)
        rows = np.flatnonzero(label_at >= 0)
        rows = rows[np.argsort(label_at[rows], kind="stable")]
        take = pa.array(rows)
        sources = self.fraud.label_sources
        scen = col["scenario"][rows]
        chargeback = np.where(scen >= 0, sources[np.maximum(scen, 0)], True)
        columns = {
            "transaction_id": table.column("transaction_id").take(take),
            "card_id": table.column("card_id").take(take),
            "cardholder_id": table.column("cardholder_id").take(take),
            "event_time": table.column("event_time").take(take),
            "label_time": _timestamps(label_at[rows], np.zeros(len(rows), dtype=bool)),
            "source": pa.array(np.where(chargeback, "chargeback", "issuer_confirmed"), pa.string()),
            "fraud_scenario": table.column("fraud_scenario").take(take),
            "fraud_case_id": table.column("fraud_case_id").take(take),
        }
        labels = pa.Table.from_arrays(
            [columns[f.name] for f in self._label_schema], schema=self._label_schema
        )
        return labels, rows

    def _while_waiting(
        self, card: np.ndarray, time_us: np.ndarray, genuine: np.ndarray, key: np.ndarray
    ) -> np.ndarray:
        """Genuine rows on a replacement not yet arrived: move them or drop them.

        A row moves (``card`` is changed in place) with probability
        ``fraud.replacement.moved_share`` to the holder's first other card, in slot order,
        that can be used then; with none, or otherwise, it is dropped. The coin is a
        keyed hash of the row's key, so it does not depend on the other rows.

        Returns the rows kept.
        """
        reg = self.cards
        keep = np.ones(len(card), dtype=bool)
        waiting = np.flatnonzero(genuine & (reg.usable_at[card] > time_us))
        if len(waiting) == 0:
            return keep
        h = self._world.holders
        holder = reg.holder[card[waiting]]
        t = time_us[waiting]
        other = np.full(len(waiting), -1, dtype=np.int64)
        for slot in range(int(h.card_count.max())):
            ask = np.flatnonzero((other < 0) & (slot < h.card_count[holder]))
            cand = reg.resolve_many(h.card_offset[holder[ask]] + slot, t[ask])
            ok = (cand != card[waiting[ask]]) & (reg.usable_at[cand] <= t[ask])
            other[ask[ok]] = cand[ok]
        u = keyed_uniforms(key[waiting], self._wait_secret)
        moves = (other >= 0) & (u < self._spec.fraud.replacement.moved_share)
        card[waiting[moves]] = other[moves]
        keep[waiting[~moves]] = False
        return keep

    def _card_ids(self, card: np.ndarray) -> pa.Array:
        registry = self.cards
        if len(self._ids) < len(registry):
            self._ids = registry.card_ids()
            grow = len(registry) - len(self._last)
            self._last = np.concatenate([self._last, np.zeros(grow, dtype=np.uint64)])
            self._has_last = np.concatenate([self._has_last, np.zeros(grow, dtype=bool)])
        return self._ids.take(pa.array(card))

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


def _timestamps(us: np.ndarray, null: np.ndarray) -> pa.Array:
    return pa.array(us.astype(np.int64), pa.int64(), mask=null).cast(pa.timestamp("us", tz="UTC"))


def _decimal(minor: np.ndarray, typ: pa.DataType) -> pa.Array:
    """Decimal128 values from integer minor units (the unscaled value), without Python objects."""
    words = np.empty((len(minor), 2), dtype=np.int64)
    words[:, 0] = minor
    words[:, 1] = minor >> 63
    return pa.Array.from_buffers(typ, len(minor), [None, pa.py_buffer(words.tobytes())])
