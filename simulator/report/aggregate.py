"""Streaming reduction of a landed folder to the small aggregates ``txnsim report`` draws.

The transactions are read with ``pyarrow.dataset`` in batches and reduced to small
aggregates as they stream past (:func:`aggregate`), so memory is bounded by the
catalogs, never by the number of rows. The map's points are an even stride through the
catalogs (:func:`strided_coordinates`), read in batches too.

Hours are *local* when the catalogs allow: a card-present transaction happens where the
merchant is, so it takes the merchant's time zone; any other (e-commerce) takes the
cardholder's home time zone. Without catalogs (e.g. a folder the sink landed) the hours
are UTC and the figure says so. Amounts are converted to US dollars with the run's
``currency_per_usd`` table, so groups are comparable across currencies.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from simulator.errors import ConfigError
from simulator.report.traces import FraudTrace, fraud_traces

__all__ = [
    "AMOUNT_EDGES",
    "DELAY_EDGES",
    "MAP_POINTS",
    "Aggregates",
    "aggregate",
    "read_manifest",
    "strided_coordinates",
]

#: Log-spaced amount bins in US dollars; amounts outside fall into the end bins.
AMOUNT_EDGES = np.logspace(-1, 5, 61)
#: Label delay bins in days; longer delays fall into the last bin.
DELAY_EDGES = np.arange(0.0, 121.0, 1.0)
#: At most this many points per population on the map (an even stride through the catalog).
MAP_POINTS = 100_000
_BATCH_ROWS = 131_072
_TX_COLUMNS = ["event_time", "merchant_id", "cardholder_id", "amount", "currency", "mcc"]
_TX_COLUMNS += ["channel", "is_fraud", "fraud_scenario"]


@dataclass
class Aggregates:
    """Everything the figures draw, reduced from the transactions in one pass."""

    rows: int = 0
    #: Counts per (weekday Monday=0, hour).
    hour_by_weekday: np.ndarray = field(default_factory=lambda: np.zeros((7, 24), np.int64))
    local_time: bool = False
    #: MCC group -> counts per :data:`AMOUNT_EDGES` bin.
    amount_hist: dict[str, np.ndarray] = field(default_factory=dict)
    #: Rows whose currency has no rate (left out of the amount histograms).
    unconverted: int = 0
    merchant_counts: Counter[str] = field(default_factory=Counter)
    merchants_in_catalog: int | None = None
    fraud_rows: int = 0
    fraud_by_scenario: Counter[str] = field(default_factory=Counter)
    #: Counts per :data:`DELAY_EDGES` bin, or None when there is no ``labels/`` folder.
    label_delay_hist: np.ndarray | None = None
    labels: int = 0
    #: Per scenario, then the same cards' genuine rows: fraud against its card's history.
    fraud_traces: list[FraudTrace] = field(default_factory=list)

    def rank_frequency(self) -> np.ndarray:
        """Transactions per merchant, most popular first."""
        return np.sort(np.fromiter(self.merchant_counts.values(), np.int64))[::-1]


def read_manifest(root: Path) -> dict[str, Any]:
    """The folder's ``manifest.json``, or an empty mapping when there is none."""
    path = root / "manifest.json"
    if not path.is_file():
        return {}
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"report: cannot read {path}: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _run_config(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The run's effective configuration, or the defaults when there is no manifest."""
    config = manifest.get("config")
    if isinstance(config, dict):
        return config
    from simulator.settings.loading import load_settings

    return load_settings(environ=False).model_dump(mode="json")


def _catalog(root: Path, name: str, columns: list[str]) -> pa.Table | None:
    """``catalog/<name>.parquet``, or a sharded run's ``catalog/<name>/`` folder of files."""
    path = root / "catalog" / f"{name}.parquet"
    if not path.is_file():
        path = path.with_suffix("")
    if not path.exists():
        return None
    try:
        return pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise ConfigError(f"report: cannot read {path}: {exc}") from exc


class _Zones:
    """Time zone of each transaction: the merchant's when card-present, else the holder's."""

    def __init__(self, merchants: pa.Table, holders: pa.Table) -> None:
        names = pc.unique(
            pa.concat_arrays(
                [merchants["timezone"].combine_chunks(), holders["timezone"].combine_chunks()]
            )
        ).drop_null()
        self.names: list[str] = [str(n) for n in names.to_pylist()]
        self._merchant_ids = merchants["merchant_id"].combine_chunks()
        self._holder_ids = holders["cardholder_id"].combine_chunks()
        self._merchant_zone = pc.index_in(merchants["timezone"], value_set=names)
        self._holder_zone = pc.index_in(holders["timezone"], value_set=names)

    def codes(self, batch: pa.RecordBatch) -> np.ndarray:
        """Index into :attr:`names` per row; -1 where the catalogs do not know the row."""
        merchant = pc.take(
            self._merchant_zone, pc.index_in(batch["merchant_id"], value_set=self._merchant_ids)
        )
        holder = pc.take(
            self._holder_zone, pc.index_in(batch["cardholder_id"], value_set=self._holder_ids)
        )
        present = pc.equal(batch["channel"], "card_present")
        zone = pc.if_else(present, merchant, holder)
        return pc.fill_null(zone, -1).to_numpy(zero_copy_only=False)


def _hour_cells(times: pa.Array, zone: str | None) -> np.ndarray:
    """``weekday * 24 + hour`` per timestamp, in ``zone`` (UTC when None)."""
    if zone is not None:
        try:
            times = times.cast(pa.timestamp("us", tz=zone))
        except pa.ArrowException as exc:
            raise ConfigError(f"report: the catalog's time zone {zone!r} is unknown") from exc
    hour = pc.hour(times).to_numpy(zero_copy_only=False)
    return pc.day_of_week(times).to_numpy(zero_copy_only=False) * 24 + hour


def _mcc_groups(config: Mapping[str, Any]) -> tuple[list[str], pa.Array, pa.Array]:
    """Group names (plus "other"), and the MCC -> group index lookup as two arrays."""
    groups = list(config.get("mcc_groups", {}))
    mccs: list[str] = []
    index: list[int] = []
    for i, name in enumerate(groups):
        for mcc in config["mcc_groups"][name].get("mccs", {}):
            mccs.append(str(mcc))
            index.append(i)
    return [*groups, "other"], pa.array(mccs, pa.string()), pa.array(index, pa.int64())


def _batches(root: Path, folder: str, columns: list[str]) -> Iterator[pa.RecordBatch]:
    path = root / folder
    try:
        dataset = ds.dataset(path, format="parquet", partitioning="hive")
        present = [c for c in columns if c in dataset.schema.names]
        yield from dataset.to_batches(columns=present, batch_size=_BATCH_ROWS)
    except (OSError, pa.ArrowException) as exc:
        raise ConfigError(f"report: cannot read {path}: {exc}") from exc


def aggregate(root: Path) -> Aggregates:
    """Reduce the landed folder ``root`` to the figures' aggregates in one bounded pass.

    Raises:
        ConfigError: ``root`` or its ``transactions/`` folder does not exist or is unreadable.
    """
    if not root.is_dir():
        raise ConfigError(f"report: {root} is not a directory")
    if not (root / "transactions").is_dir():
        raise ConfigError(f"report: {root / 'transactions'} does not exist")
    config = _run_config(read_manifest(root))
    groups, group_mccs, group_index = _mcc_groups(config)
    rates = config.get("currency_per_usd", {})
    currencies = pa.array(list(rates), pa.string())
    per_usd = pa.array([float(v) for v in rates.values()], pa.float64())
    merchants = _catalog(root, "merchants", ["merchant_id", "timezone"])
    holders = _catalog(root, "cardholders", ["cardholder_id", "timezone"])
    zones = _Zones(merchants, holders) if merchants is not None and holders is not None else None
    agg = Aggregates(
        local_time=zones is not None,
        amount_hist={g: np.zeros(len(AMOUNT_EDGES) - 1, np.int64) for g in groups},
        merchants_in_catalog=None if merchants is None else merchants.num_rows,
    )
    for batch in _batches(root, "transactions", _TX_COLUMNS):
        _add_batch(agg, batch, zones, groups, (group_mccs, group_index), (currencies, per_usd))
    if (root / "labels").is_dir():
        _add_labels(agg, root)
    if agg.fraud_rows:
        agg.fraud_traces = fraud_traces(
            lambda folder, columns: _batches(root, folder, columns),
            {str(k): float(v) for k, v in rates.items()},
        )
    return agg


def _add_batch(
    agg: Aggregates,
    batch: pa.RecordBatch,
    zones: _Zones | None,
    groups: list[str],
    group_lookup: tuple[pa.Array, pa.Array],
    rates: tuple[pa.Array, pa.Array],
) -> None:
    agg.rows += batch.num_rows
    times = batch["event_time"]
    if zones is None:
        cells = _hour_cells(times, None)
    else:
        codes = zones.codes(batch)
        cells = np.empty(batch.num_rows, np.int64)
        for code in np.unique(codes):
            rows = np.flatnonzero(codes == code)
            zone = zones.names[code] if code >= 0 else "UTC"
            cells[rows] = _hour_cells(times.take(pa.array(rows)), zone)
    agg.hour_by_weekday += np.bincount(cells, minlength=7 * 24).reshape(7, 24)

    rate = pc.take(rates[1], pc.index_in(batch["currency"], value_set=rates[0]))
    usd = pc.divide(pc.cast(batch["amount"], pa.float64()), rate).to_numpy(zero_copy_only=False)
    known = ~np.isnan(usd)
    agg.unconverted += int((~known).sum())
    group = pc.take(group_lookup[1], pc.index_in(batch["mcc"], value_set=group_lookup[0]))
    group_np = pc.fill_null(group, len(groups) - 1).to_numpy(zero_copy_only=False)
    bins = np.clip(np.searchsorted(AMOUNT_EDGES, usd, side="right") - 1, 0, len(AMOUNT_EDGES) - 2)
    flat = np.bincount(
        group_np[known] * (len(AMOUNT_EDGES) - 1) + bins[known],
        minlength=len(groups) * (len(AMOUNT_EDGES) - 1),
    )
    for name, part in zip(groups, flat.reshape(len(groups), -1), strict=True):
        agg.amount_hist[name] += part

    counts = pc.value_counts(batch["merchant_id"])
    agg.merchant_counts.update(
        dict(
            zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
        )
    )
    if "is_fraud" in batch.schema.names:
        fraud = batch.filter(pc.fill_null(batch["is_fraud"], False))
        agg.fraud_rows += fraud.num_rows
        if fraud.num_rows and "fraud_scenario" in fraud.schema.names:
            scenario = pc.fill_null(fraud["fraud_scenario"], "(no scenario)")
            agg.fraud_by_scenario.update(scenario.to_pylist())


def _add_labels(agg: Aggregates, root: Path) -> None:
    agg.label_delay_hist = np.zeros(len(DELAY_EDGES) - 1, np.int64)
    for batch in _batches(root, "labels", ["event_time", "label_time"]):
        if {"event_time", "label_time"} - set(batch.schema.names):
            raise ConfigError(f"report: {root / 'labels'} needs columns event_time and label_time")
        delay = pc.subtract(
            pc.cast(batch["label_time"], pa.timestamp("us", "UTC")),
            pc.cast(batch["event_time"], pa.timestamp("us", "UTC")),
        )
        micros = pc.cast(delay, pa.int64()).to_numpy(zero_copy_only=False).astype(np.float64)
        days = micros[~np.isnan(micros)] / 86_400e6
        agg.labels += len(days)
        bins = np.clip(
            np.searchsorted(DELAY_EDGES, days, side="right") - 1, 0, len(DELAY_EDGES) - 2
        )
        agg.label_delay_hist += np.bincount(bins, minlength=len(DELAY_EDGES) - 1)


def strided_coordinates(
    root: Path, name: str, lat: str, lon: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """Coordinates of every k-th catalog row, at most :data:`MAP_POINTS`; also the total."""
    path = root / "catalog" / f"{name}.parquet"
    if not path.is_file():
        return np.empty(0), np.empty(0), 0
    try:
        file = pq.ParquetFile(path)
        total = file.metadata.num_rows
        step = max(1, -(-total // MAP_POINTS))
        lats: list[np.ndarray] = []
        lons: list[np.ndarray] = []
        seen = 0
        for batch in file.iter_batches(columns=[lat, lon], batch_size=_BATCH_ROWS):
            first = (-seen) % step
            seen += batch.num_rows
            part = batch.slice(first).take(pa.array(range(0, batch.num_rows - first, step)))
            lats.append(part[lat].to_numpy(zero_copy_only=False).astype(np.float64))
            lons.append(part[lon].to_numpy(zero_copy_only=False).astype(np.float64))
    except (OSError, pa.ArrowException) as exc:
        raise ConfigError(f"report: cannot read {path}: {exc}") from exc
    la = np.concatenate(lats) if lats else np.empty(0)
    lo = np.concatenate(lons) if lons else np.empty(0)
    keep = ~(np.isnan(la) | np.isnan(lo))
    return la[keep], lo[keep], total
