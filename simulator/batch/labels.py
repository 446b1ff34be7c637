"""The fraud side of a batch run: labels landed by label date, and the manifest's figures."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runtime.units import US_PER_DAY
from simulator.batch.files import FileRecord
from simulator.batch.output import Destination, Partition, flush_together
from simulator.fraud.cards import CardRegistry
from simulator.world.build import World

__all__ = ["FraudTally", "LabelFiles", "label_stem"]


class FraudTally:
    """Counts fraud by scenario, by count and by value (US dollars), slice by slice."""

    def __init__(self, world: World) -> None:
        self._scale = pa.array(world.currency_scale, pa.float64())
        self._currencies = pa.array(world.currencies, pa.string())
        self.rows = 0
        self.fraud_rows = 0
        self.value_usd = 0.0
        self.fraud_value_usd = 0.0
        self.by_scenario: Counter[str] = Counter()
        self.cases: set[str] = set()

    def add(self, table: pa.Table) -> None:
        """Count one slice's transactions."""
        scale = self._scale.take(pc.index_in(table.column("currency"), self._currencies))
        usd = pc.divide(pc.cast(table.column("amount"), pa.float64()), scale)
        fraud = table.column("is_fraud")
        self.rows += table.num_rows
        self.value_usd += float(pc.sum(usd).as_py() or 0.0)
        self.fraud_value_usd += float(pc.sum(pc.filter(usd, fraud)).as_py() or 0.0)
        frauds = table.filter(fraud)
        self.fraud_rows += frauds.num_rows
        self.by_scenario.update(frauds.column("fraud_scenario").to_pylist())
        self.cases.update(frauds.column("fraud_case_id").to_pylist())

    def summary(
        self, target: float, cards: CardRegistry, end_us: int, labels: pa.Table | None
    ) -> dict[str, Any]:
        """The manifest's ``fraud`` section."""
        blocked = int(np.count_nonzero(cards.block_at[: len(cards)] < end_us))
        sources: dict[str, int] = {}
        wrong = 0
        if labels is not None and labels.num_rows:
            sources = dict(Counter(labels.column("source").to_pylist()))
            wrong = int(labels.column("fraud_scenario").null_count)
        return {
            "target_rate": target,
            "transactions": self.fraud_rows,
            "rate_by_count": self.fraud_rows / self.rows if self.rows else 0.0,
            "rate_by_value": self.fraud_value_usd / self.value_usd if self.value_usd else 0.0,
            "value_usd": round(self.fraud_value_usd, 2),
            "all_value_usd": round(self.value_usd, 2),
            "by_scenario": dict(sorted(self.by_scenario.items())),
            "cases": len(self.cases),
            "cards_blocked": blocked,
            "labels": {
                "rows": 0 if labels is None else labels.num_rows,
                "by_source": dict(sorted(sources.items())),
                "wrong_disputes": wrong,
            },
        }


def label_stem(day: dt.date) -> str:
    """How the label files of the transactions of ``day`` are named: ``txn-<day>-``."""
    return f"txn-{day.isoformat()}-"


class LabelFiles:
    """A run's label files, landed a transaction date at a time as the run goes.

    Labels land in ``labels/dt=<label date>/``, one set of files per transaction date. A
    labels partition holds the labels of every run whose transactions are labelled on
    that date, so a daily job's days share partitions. Each file holds the labels of the
    transactions of one date and is named by it (``txn-2026-11-24-part-00000.parquet``):
    a run replaces the label files of its own transaction dates, in every partition that
    has them, and keeps the others'. Each file is sorted by label time.

    A shard's files carry its name after the date (``txn-2026-11-24-shard-00000-of-00002-``);
    it replaces its own and keeps the other shards' of the same dates.

    A label is decided in the slice of its transaction, so a date's label files are
    final once its last slice is simulated: :meth:`add` writes them then, into their
    partitions' staging, and :meth:`commit` flushes every partition at once and commits
    them in date order after the run. The files are small (a 7-day run of 100k
    cardholders has 310, six rows each on average) and each costs its fixed costs (a
    Parquet writer, a new file): 0.25 CPU-s in all, which written after the last slice
    were the run's last 0.15 s (2026-12-07).

    Args:
        destination: Where the run lands.
        run_days: The run's transaction dates.
    """

    def __init__(self, destination: Destination, run_days: Sequence[dt.date]) -> None:
        self._destination = destination
        self._days = tuple(label_stem(day) for day in run_days)
        self._staged: dict[dt.date, Partition] = {}

    def _keep(self, name: str) -> bool:
        # Files of other days' runs stay; unstemmed ones (before 0.2: of unknown days) go;
        # of this run's days, only the other shards' files stay.
        if not name.startswith("txn-"):
            return False
        return not name.startswith(self._days) or self._destination.naming.sibling(name)

    def _partition(self, day: dt.date) -> Partition:
        staged = self._staged.get(day)
        if staged is None:
            staged = self._destination.partition("labels", day, keep=self._keep)
            self._staged[day] = staged
        return staged

    def add(self, labels: pa.Table) -> None:
        """Stage the labels of the transactions of one date, all of them.

        Raises:
            ValueError: If ``labels`` hold transactions of more than one date.
        """
        if not labels.num_rows:
            return
        times = labels.column("label_time").cast(pa.int64()).to_numpy()
        events = labels.column("event_time").cast(pa.int64()).to_numpy() // US_PER_DAY
        if events.min() != events.max():
            raise ValueError(
                f"labels of transactions of {_date(int(events.min()))} to "
                f"{_date(int(events.max()))}: label files are landed one date at a time"
            )
        stem = label_stem(_date(int(events[0]))) + self._destination.naming.stem
        # By label date, then label time: each label date's rows are one run.
        order = np.lexsort((times, times // US_PER_DAY))
        labels = labels.take(pa.array(order))
        label_days = times[order] // US_PER_DAY
        days, firsts = np.unique(label_days, return_index=True)
        ends = [*firsts[1:].tolist(), len(order)]
        for day, first, end in zip(days.tolist(), firsts.tolist(), ends, strict=True):
            self._partition(_date(day)).write(labels.slice(first, end - first), stem=stem)

    def commit(self) -> list[FileRecord]:
        """Put every staged partition in place, in date order; the files written.

        Partitions that hold earlier files of this run's dates are rewritten without them
        even where this run labels nothing on their date.
        """
        naming = self._destination.naming
        stems = [day + naming.stem for day in self._days]
        for day in self._destination.replace_stems("labels", stems):
            self._partition(day)
        staged = [self._staged[day] for day in sorted(self._staged)]
        flush_together(staged)
        files: list[FileRecord] = []
        for day in sorted(self._staged):
            files.extend(self._staged[day].commit())
            del self._staged[day]
        return files

    def abort(self) -> None:
        """Drop every staged partition, leaving the earlier ones in place."""
        while self._staged:
            self._staged.popitem()[1].abort()


def _date(days: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=days)
