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
    keyed_normals,
    keyed_uniforms,
    mix64,
    pack_keys,
)
from simulator.core.order import stable_order, time_then_key
from simulator.core.seeding import Streams
from simulator.fraud.cases import FraudRows
from simulator.fraud.context import delays_us
from simulator.fraud.model import FraudModel
from simulator.fraud.planner import FraudPlanner
from simulator.model.behaviour import BlockEvents
from simulator.model.rows import Lookups, Rows, SliceRows, timestamps
from simulator.settings.run import RunSpec
from simulator.world.build import World
from simulator.world.cache import cached

__all__ = ["ENTRY_MODE_ECOMMERCE", "Assembled", "Assembler"]

ENTRY_MODE_ECOMMERCE = "ecommerce"

#: The label columns copied from the transaction's own.
_LABEL_FROM_ROW = (
    "transaction_id",
    "card_id",
    "cardholder_id",
    "event_time",
    "fraud_scenario",
    "fraud_case_id",
)


@dataclass(frozen=True)
class Assembled:
    """One slice's output.

    Attributes:
        rows: Transactions in event-time order (their Arrow columns built when asked).
        card: Card index of each row (world cards, then replacements).
        key: Position key of each row (its transaction id unmixed): ties in event time
            are ordered by it.
        labels: Labels decided in this slice (``fraud_label`` schema), for later times,
            ordered by label time, then as their transactions are.
        label_key: Position key of each label's transaction.
        new_cards: Ids of the cards issued since the previous slice, in index order.
    """

    rows: Rows
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
        self._warmed = False
        self._cards_reported = n_cards
        self._ids: pa.StringArray = world.cards.ids
        m = world.merchants
        self._lookups = Lookups(
            world=world,
            schema=self._schema,
            currency=pa.array(world.currencies, pa.string()).take(world.merchant_currency),
            country=pa.array(world.countries, pa.string()).take(world.merchant_country),
            mcc=pa.array([world.mcc_codes[i] for i in m.mcc.tolist()], pa.string()),
            city=pa.array(world.cities.name[m.city].tolist(), pa.string()),
            channels=pa.array(["card_present", "ecommerce"], pa.string()),
            modes=pa.array([*spec.entry_modes, ENTRY_MODE_ECOMMERCE], pa.string()),
            scenarios=pa.array(self.fraud.names, pa.string()),
            case_secret=self._case_secret,
        )

    @property
    def lookups(self) -> Lookups:
        """What turns this assembler's numbers into string columns (the same in every lane)."""
        return self._lookups

    def table(self, parts: list[BlockEvents], start: dt.datetime) -> Assembled:
        """Merge one slice's blocks and their fraud into a table sorted by event time.

        ``parts`` are the slice's blocks in the order given at construction; the list is
        emptied once their arrays are copied, so a caller holding nothing else frees them.
        Returns the rows and, row for row, the card index (the Kafka key's partition is
        computed per card once), with the labels and cards the slice produced.
        """
        if len(parts) != len(self._blocks):
            raise ValueError(f"{len(parts)} block results for {len(self._blocks)} blocks")
        start_us = to_us(start)
        if not self._warmed:
            self._warm_up(start_us)
        frauds = [
            self._planners[b].plan_slice(start_us, len(p))
            for b, p in zip(self._blocks, parts, strict=True)
        ]
        col = self._with_fraud(parts, frauds, start)
        parts.clear()
        order = time_then_key(col["time_us"], col["key"])
        for name in col:  # one column at a time: each unsorted copy goes as its sorted one comes
            col[name] = col[name][order]
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
            card, ids = card[keep], ids[keep]
        col["holder"] = registry.holder[card]
        self._grow()
        prev, has_prev = self._link(card, ids)
        col["card"], col["id"], col["prev"], col["has_prev"] = card, ids, prev, has_prev
        rows = SliceRows(self._lookups, self._ids, col)
        labels, label_rows = self._labels(rows, col)
        new_cards = registry.card_ids(self._cards_reported)
        self._cards_reported = len(registry)
        key = col["key"].astype(np.uint64, copy=False)  # shared with the rows: never written
        return Assembled(rows, card, key, labels, key[label_rows], new_cards)

    def _warm_up(self, start_us: int) -> None:
        """Warm every block's planner up before the first slice, or take kept warm-ups.

        A block's warm-up depends on the seed, the settings and the run's start only;
        kept in ``cache_dir`` under those and this lane's blocks, it is planned once for
        every replay of a run (its 62 days planned 0.20-0.33 CPU-s of a 7-day run of 100k
        cardholders, 2026-12-07). The blocks' warm-ups come in their order either way.
        """
        self._warmed = True
        spec = self._spec
        key = f"{spec.config_hash}\0{start_us}\0{','.join(map(str, self._blocks))}"
        planners = [self._planners[b] for b in self._blocks]
        warm = cached(
            spec.cache_dir if spec.config_hash else None,
            key,
            lambda: [p.warm_up(start_us) for p in planners],
            "fraud-warmup",
        )
        for planner, block_warm in zip(planners, warm, strict=True):
            if not planner.warmed:
                planner.resume(block_warm)

    def _forgo(self, holder: np.ndarray) -> None:
        """Tell each block's planner how many of its genuine rows were not made."""
        block = holder.astype(np.int64) // self._world.block_size
        for b, count in zip(*np.unique(block, return_counts=True), strict=True):
            self._planners[int(b)].forgo(int(count))

    def _with_fraud(
        self, parts: list[BlockEvents], frauds: list[FraudRows], start: dt.datetime
    ) -> dict[str, np.ndarray]:
        """The blocks' rows, then their campaigns' rows, with label columns for every row.

        Each column is copied once, blocks and campaigns together, in the campaigns' types.
        """
        fraud = FraudRows.concat(frauds)
        n, k = sum(len(p) for p in parts), len(fraud)
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
            name: np.concatenate(
                [*(getattr(p, name) for p in parts), out[name]], dtype=out[name].dtype
            )
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

    def _labels(
        self, slice_rows: SliceRows, col: dict[str, np.ndarray]
    ) -> tuple[pa.Table, np.ndarray]:
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
        of = slice_rows.columns(rows, _LABEL_FROM_ROW)
        sources = self.fraud.label_sources
        scen = col["scenario"][rows]
        chargeback = np.where(scen >= 0, sources[np.maximum(scen, 0)], True)
        columns = {
            **of,
            "label_time": timestamps(label_at[rows], np.zeros(len(rows), dtype=bool)),
            "source": pa.array(np.where(chargeback, "chargeback", "issuer_confirmed"), pa.string()),
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

    def _grow(self) -> None:
        """Make room for the cards issued since the last slice (ids and last links)."""
        registry = self.cards
        if len(self._ids) < len(registry):
            self._ids = registry.card_ids()
            grow = len(registry) - len(self._last)
            self._last = np.concatenate([self._last, np.zeros(grow, dtype=np.uint64)])
            self._has_last = np.concatenate([self._has_last, np.zeros(grow, dtype=bool)])

    def _link(self, card: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Previous transaction of the same card for every row (rows are in time order)."""
        n = len(card)
        perm = stable_order(card)
        c = card[perm]
        # Where each card's rows start and end in card order (row numbers, not masks).
        first = np.flatnonzero(np.r_[True, c[1:] != c[:-1]]) if n else np.zeros(0, np.intp)
        last = np.r_[first[1:] - 1, n - 1] if n else first
        sorted_ids = ids[perm]
        prev_sorted = np.empty(n, dtype=np.uint64)
        prev_sorted[1:] = sorted_ids[:-1]
        has_sorted = np.ones(n, dtype=bool)
        first_card = c[first]
        prev_sorted[first] = self._last[first_card]
        has_sorted[first] = self._has_last[first_card]
        last_card = c[last]
        self._last[last_card] = sorted_ids[last]
        self._has_last[last_card] = True
        prev = np.empty(n, dtype=np.uint64)
        prev[perm] = prev_sorted
        has = np.empty(n, dtype=bool)
        has[perm] = has_sorted
        return prev, has
