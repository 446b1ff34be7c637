"""What the releaser hands over: encoded chunks of transactions and the labels due with them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.avro_encode import TableEncoder
from schemas.event import EventSchema, public_transaction_schema, transaction_schema
from schemas.framing import Framing, RawAvro
from schemas.partitioner import partitions_for
from simulator import metrics
from simulator.stream.records import OutRecords

__all__ = [
    "NO_RECORDS",
    "Chunk",
    "ChunkEncoder",
    "LabelsMode",
    "PendingLabels",
    "count_labels",
    "count_released",
    "label_schema",
    "writer_schema",
]

LabelsMode = Literal["separate", "inline"]


def writer_schema(labels: LabelsMode) -> EventSchema:
    """The schema transactions are written with: public (``separate``) or full (``inline``)."""
    if labels == "inline":
        return transaction_schema()
    if labels == "separate":
        return public_transaction_schema()
    raise ValueError(f"labels must be 'separate' or 'inline', got {labels!r}")


def label_schema() -> EventSchema:
    """The schema of the labels topic (``fraud_label.avsc``)."""
    return transaction_schema("fraud_label")


@dataclass(frozen=True)
class Chunk:
    """Transactions, and the labels due before the next chunk's first transaction."""

    event_us: np.ndarray
    records: OutRecords
    #: Per row, an index into ``scenarios`` (for the events metric).
    scenario: np.ndarray
    scenarios: list[str]
    label_us: np.ndarray
    labels: OutRecords
    label_sources: list[str]


NO_RECORDS = OutRecords.of([], [], np.empty(0, np.int64), np.empty(0, np.int32))


class PendingLabels:
    """Labels decided but not yet due, sorted by label time (stably)."""

    def __init__(self, schema: pa.Schema) -> None:
        self._table = schema.empty_table()
        self._us = np.empty(0, np.int64)

    def __len__(self) -> int:
        return len(self._us)

    def add(self, labels: pa.Table) -> None:
        """Keep ``labels`` until they are due."""
        if labels.num_rows == 0:
            return
        us = labels.column("label_time").cast(pa.int64()).to_numpy()
        table = pa.concat_tables([self._table, labels.cast(self._table.schema)])
        merged = np.concatenate([self._us, us])
        order = np.argsort(merged, kind="stable")
        self._table = table.take(pa.array(order)).combine_chunks()
        self._us = merged[order]

    def pop_before(self, until_us: int) -> tuple[pa.Table, np.ndarray]:
        """Remove and return the labels whose time is before ``until_us``."""
        k = int(np.searchsorted(self._us, until_us, side="left"))
        due, us = self._table.slice(0, k), self._us[:k]
        self._table, self._us = self._table.slice(k), self._us[k:]
        return due, us


class ChunkEncoder:
    """Encodes chunks to Avro (in a worker thread), with the framing of each topic.

    Args:
        labels: Which transaction schema to write (``separate``: public, ``inline``: full).
        label_partitions: Partition count of the labels topic; None: labels are dropped.
        framing: Transaction values' framing; ``label_framing``: the labels'.
    """

    def __init__(
        self,
        labels: LabelsMode,
        label_partitions: int | None,
        framing: Framing | None = None,
        label_framing: Framing | None = None,
    ) -> None:
        self._encoder = TableEncoder(writer_schema(labels), framing or RawAvro())
        self._label_encoder = TableEncoder(label_schema(), label_framing or RawAvro())
        self._label_partitions = label_partitions

    def encode(
        self,
        sub: pa.Table,
        event_us: np.ndarray,
        partition: np.ndarray,
        due: pa.Table,
        label_us: np.ndarray,
    ) -> Chunk:
        """Encode a chunk's transactions and labels (in a worker thread)."""
        if sub.num_rows:
            values = self._encoder.encode_array(sub)
            keys = _binary(sub.column("card_id"))
            records = OutRecords(keys, values, event_us // 1000, partition)
            codes = pc.dictionary_encode(sub.column("fraud_scenario").fill_null("none"))
            codes = codes.combine_chunks()
            scenario = codes.indices.to_numpy(zero_copy_only=False)
            scenarios = codes.dictionary.to_pylist()
        else:
            records, scenario, scenarios = NO_RECORDS, np.empty(0, np.int32), []
        if due.num_rows and self._label_partitions is not None:
            card_ids = due.column("card_id").combine_chunks()
            labels = OutRecords(
                _binary(card_ids),
                self._label_encoder.encode_array(due),
                label_us // 1000,
                partitions_for(card_ids, self._label_partitions),
            )
            sources = due.column("source").to_pylist()
        else:
            labels, sources = NO_RECORDS, []
        return Chunk(event_us, records, scenario, scenarios, label_us, labels, sources)


def _binary(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A string column's UTF-8 bytes as one binary array (record keys)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column.cast(pa.binary())


def count_released(chunk: Chunk, lo: int, hi: int) -> None:
    """Count the chunk's rows ``lo:hi`` as released, by fraud scenario."""
    counts = np.bincount(chunk.scenario[lo:hi], minlength=len(chunk.scenarios))
    for name, count in zip(chunk.scenarios, counts.tolist(), strict=True):
        if count:
            metrics.EVENTS.labels(type="transaction", scenario=name).inc(count)
            if name != "none":
                metrics.FRAUD_INJECTED.labels(scenario=name).inc(count)


def count_labels(sources: list[str]) -> None:
    """Count released labels by source."""
    for name in sorted(set(sources)):
        metrics.LABELS.labels(source=name).inc(sources.count(name))
