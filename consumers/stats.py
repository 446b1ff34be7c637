"""The counters of one sink run, kept in step with its Prometheus metrics.

Every count goes through a :class:`SinkStats` method, so the summary line the sink prints
and what ``/metrics`` serves (:mod:`consumers.metrics`) never disagree.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from consumers import metrics

__all__ = ["SinkStats"]


@dataclass
class SinkStats:
    """Counters of one run (also exported as metrics)."""

    consumed: int = 0
    rows_landed: int = 0
    files_landed: int = 0
    bytes_landed: int = 0
    files_adopted: int = 0
    dead_letters: int = 0
    commits: int = 0
    store_retries: int = 0
    registry_retries: int = 0
    rebalances: int = 0
    seconds: float = 0.0
    #: Event time (epoch microseconds) of the last row landed, per partition.
    freshness_us: dict[int, int] = field(default_factory=dict)
    # Retries are counted from the writer threads; every other count from the loop.
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def as_json(self) -> dict[str, Any]:
        """The counters for the summary line."""
        return {
            "consumed": self.consumed,
            "rows_landed": self.rows_landed,
            "files_landed": self.files_landed,
            "bytes_landed": self.bytes_landed,
            "files_adopted": self.files_adopted,
            "dead_letters": self.dead_letters,
            "commits": self.commits,
            "store_retries": self.store_retries,
            "registry_retries": self.registry_retries,
            "rebalances": self.rebalances,
            "seconds": round(self.seconds, 2),
        }

    def count_consumed(self, records: int) -> None:
        """``records`` more were read from Kafka."""
        self.consumed += records
        metrics.CONSUMED.inc(records)

    def count_file(self, partition: int, rows: int, size: int, last_event_us: int) -> None:
        """A file of ``rows`` rows and ``size`` bytes landed for ``partition``."""
        self.files_landed += 1
        self.rows_landed += rows
        self.bytes_landed += size
        self.freshness_us[partition] = last_event_us
        metrics.FILES.inc()
        metrics.ROWS.inc(rows)
        metrics.BYTES.inc(size)

    def count_adopted(self) -> None:
        """A file was found already landed and adopted."""
        self.files_adopted += 1
        metrics.ADOPTED.inc()

    def count_dead_letter(self) -> None:
        """A dead letter was written."""
        self.dead_letters += 1
        metrics.DEAD_LETTERS.inc()

    def count_registry_retry(self, _: Exception) -> None:
        """A Schema Registry lookup failed transiently and is retried."""
        self.registry_retries += 1
        metrics.REGISTRY_RETRIES.inc()

    def count_retry(self, _: Exception) -> None:
        """A destination operation failed transiently and is retried (any thread)."""
        with self._lock:
            self.store_retries += 1
        metrics.STORE_RETRIES.inc()

    def count_rebalance(self) -> None:
        """Partitions were assigned or revoked."""
        self.rebalances += 1

    def count_commit(self) -> None:
        """Offsets were committed."""
        self.commits += 1
        metrics.COMMITS.inc()

    def committed(self, partition: int, position: int, high: int | None) -> None:
        """Set ``partition``'s lag and freshness gauges after committing ``position``.

        Args:
            partition: The partition committed.
            position: The offset committed.
            high: The partition's high watermark as last seen, if known.
        """
        if high is not None and high >= 0:
            metrics.COMMIT_LAG.labels(partition=str(partition)).set(max(0, high - position))
        fresh = self.freshness_us.get(partition)
        if fresh is not None:
            metrics.FRESHNESS.labels(partition=str(partition)).set(fresh / 1e6)
