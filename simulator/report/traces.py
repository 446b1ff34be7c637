"""The traces fraud leaves in its card's history, per scenario, for ``txnsim report``.

A fraud model sees a transaction against its card's own past: how long since the card
was last used, how the amount compares with the card's usual one, whether the merchant
is new to the card, how many transactions the last hour held, how fast the card would
have moved since its last card-present use. This module measures those on the cards
that carry any fraud, and on the genuine rows of the same cards for comparison.

Two passes over the transactions: the first finds the cards with fraud, the second keeps
only their rows. Memory is bounded by those cards' rows (a few percent of a run at the
default prevalence), never by the whole folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runtime.units import US_PER_HOUR, US_PER_MINUTE, US_PER_SECOND
from simulator.core.geo import haversine_km

__all__ = ["GENUINE", "HISTORY", "JUMP_KMH", "FraudTrace", "fraud_traces"]

#: The row that describes the genuine transactions of the same cards.
GENUINE = "(genuine, same cards)"
#: The card's usual amount is the median of its last this many amounts.
HISTORY = 20
#: Faster than an airliner door to door: a distance jump.
JUMP_KMH = 1000.0
_NEEDED = ["event_time", "card_id", "merchant_id", "amount", "currency", "is_fraud"]
_OPTIONAL = ["fraud_scenario", "merchant_lat", "merchant_lon"]

#: Reads the transactions in batches: a folder name and the columns wanted.
BatchReader = Callable[[str, list[str]], Iterator[pa.RecordBatch]]


@dataclass(frozen=True)
class FraudTrace:
    """What one scenario's transactions look like against their card's history.

    Attributes:
        name: The scenario (or :data:`GENUINE`).
        rows: Transactions measured.
        amount_vs_usual: Median of amount / the card's running median amount.
        new_merchant: Share at a merchant the card had not used before.
        minutes_since_last: Median minutes since the card's previous transaction.
        burst: Median count of the card's transactions in the hour up to this one.
        kmh: Median km/h from the card's previous card-present use (card-present rows
            that have one), NaN when none has.
        jumps: Share of those rows faster than :data:`JUMP_KMH` (no flight is).
    """

    name: str
    rows: int
    amount_vs_usual: float
    new_merchant: float
    minutes_since_last: float
    burst: float
    kmh: float
    jumps: float


def _fraud_cards(read: BatchReader) -> pa.Array:
    cards: list[pa.Array] = []
    for batch in read("transactions", ["card_id", "is_fraud"]):
        if {"card_id", "is_fraud"} - set(batch.schema.names):
            return pa.array([], pa.string())
        fraud = pc.fill_null(batch["is_fraud"], False)
        cards.append(pc.unique(batch["card_id"].filter(fraud)))
    return pc.unique(pa.concat_arrays(cards)) if cards else pa.array([], pa.string())


def _rows_of(read: BatchReader, cards: pa.Array, rates: Mapping[str, float]) -> pa.Table | None:
    currencies = pa.array(list(rates), pa.string())
    per_usd = pa.array([float(v) for v in rates.values()], pa.float64())
    parts: list[pa.Table] = []
    for batch in read("transactions", _NEEDED + _OPTIONAL):
        if set(_NEEDED) - set(batch.schema.names):
            return None
        mine = batch.filter(pc.is_in(batch["card_id"], value_set=cards))
        rate = pc.take(per_usd, pc.index_in(mine["currency"], value_set=currencies))
        usd = pc.divide(pc.cast(mine["amount"], pa.float64()), rate)
        names = mine.schema.names
        nan = pa.nulls(mine.num_rows, pa.float64())
        none = pa.nulls(mine.num_rows, pa.string())
        parts.append(
            pa.table(
                {
                    "time": pc.cast(mine["event_time"], pa.timestamp("us", "UTC")).cast(pa.int64()),
                    "card": pc.index_in(mine["card_id"], value_set=cards),
                    "merchant": mine["merchant_id"],
                    "usd": usd,
                    "fraud": pc.fill_null(mine["is_fraud"], False),
                    "scenario": pc.fill_null(
                        mine["fraud_scenario"] if "fraud_scenario" in names else none,
                        "(no scenario)",
                    ),
                    "lat": pc.cast(
                        mine["merchant_lat"] if "merchant_lat" in names else nan, pa.float64()
                    ),
                    "lon": pc.cast(
                        mine["merchant_lon"] if "merchant_lon" in names else nan, pa.float64()
                    ),
                }
            )
        )
    return pa.concat_tables(parts) if parts else None


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False)


def _per_row(table: pa.Table) -> dict[str, np.ndarray]:
    """The five measures per row, from each card's earlier rows, in (card, time) order."""
    card, t = _column(table, "card").astype(np.int64), _column(table, "time")
    order = np.lexsort((t, card))
    c, tt = card[order], t[order]
    usd = _column(table, "usd").astype(np.float64)[order]
    n = len(c)
    pos = np.arange(n)
    first = np.r_[True, c[1:] != c[:-1]]
    start = np.maximum.accumulate(np.where(first, pos, 0))

    log_a = np.log(np.maximum(usd, 0.01))
    lag = pos[:, None] - np.arange(1, HISTORY + 1)
    history = np.where(lag >= start[:, None], log_a[np.maximum(lag, 0)], np.nan)
    vs_usual = np.full(n, np.nan)
    seen = ~np.isnan(log_a) & np.isfinite(history).any(axis=1)  # else nanmedian warns
    vs_usual[seen] = np.exp(log_a[seen] - np.nanmedian(history[seen], axis=1))

    since = np.where(first, np.nan, np.r_[0, np.diff(tt)] / US_PER_MINUTE)
    key = c * (1 << 42) + (tt - tt.min()) // US_PER_SECOND
    burst = pos - np.searchsorted(key, key - 3600, side="right") + 1

    merchant = pc.index_in(
        table.column("merchant"), value_set=pc.unique(table.column("merchant"))
    ).to_numpy(zero_copy_only=False)
    pair = c * (int(merchant.max(initial=0)) + 1) + merchant[order]
    new = np.zeros(n, dtype=bool)
    new[np.unique(pair, return_index=True)[1]] = True

    la = _column(table, "lat").astype(np.float64)[order]
    lo = _column(table, "lon").astype(np.float64)[order]
    present = ~(np.isnan(la) | np.isnan(lo))
    last_cp = np.maximum.accumulate(np.where(present, pos, -1))
    prev = np.r_[-1, last_cp[:-1]]
    has = present & (prev >= start)
    p = np.maximum(prev, 0)
    hours = np.maximum((tt - tt[p]) / US_PER_HOUR, 1 / 60)
    kmh = np.where(has, haversine_km(la[p], lo[p], la, lo) / hours, np.nan)

    return {
        "fraud": _column(table, "fraud").astype(bool)[order],
        "scenario": _column(table, "scenario")[order],
        "vs_usual": vs_usual,
        "new": new,
        "since": since,
        "burst": burst.astype(np.float64),
        "kmh": kmh,
    }


def _median(values: np.ndarray) -> float:
    kept = values[~np.isnan(values)]
    return float(np.median(kept)) if len(kept) else float("nan")


def _share_above(values: np.ndarray, limit: float) -> float:
    kept = values[~np.isnan(values)]
    return float((kept > limit).mean()) if len(kept) else float("nan")


def fraud_traces(read: BatchReader, rates: Mapping[str, float]) -> list[FraudTrace]:
    """Per scenario (most rows first), then :data:`GENUINE`: the traces in card histories.

    Empty when the folder carries no fraud labels (``is_fraud``) or card ids.
    """
    cards = _fraud_cards(read)
    if not len(cards):
        return []
    table = _rows_of(read, cards, rates)
    if table is None or not table.num_rows:
        return []
    rows = _per_row(table)
    fraud = rows["fraud"]
    names, counts = np.unique(rows["scenario"][fraud].astype(str), return_counts=True)
    groups = [
        (str(n), fraud & (rows["scenario"] == n)) for n in names[np.lexsort((names, -counts))]
    ]
    groups.append((GENUINE, ~fraud))
    return [
        FraudTrace(
            name=name,
            rows=int(sel.sum()),
            amount_vs_usual=_median(rows["vs_usual"][sel]),
            new_merchant=float(rows["new"][sel].mean()) if sel.any() else float("nan"),
            minutes_since_last=_median(rows["since"][sel]),
            burst=_median(rows["burst"][sel]),
            kmh=_median(rows["kmh"][sel]),
            jumps=_share_above(rows["kmh"][sel], JUMP_KMH),
        )
        for name, sel in groups
    ]
