"""Landing a run's slices as they come: the writer thread, its queue, and the tail's order.

The simulating thread hands each slice to :class:`Lander`, which lands it into its date
partition on a writer thread while the next slice is simulated; a date's label files
and each partition's commit are queued behind the date's last slice.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, Protocol

import pyarrow as pa

from simulator.batch.files import FileRecord
from simulator.batch.labels import FraudTally, LabelFiles
from simulator.batch.output import Destination, Partition
from simulator.model.slices import Slice

__all__ = ["Lander", "Meter"]


class Meter(Protocol):
    """Where a run reports its progress as metrics (:class:`simulator.metrics.BatchMeter`)."""

    def events(self, table: pa.Table) -> None:
        """Count a landed table's transactions (called on the writer thread)."""
        ...

    def simulated_until(self, at: dt.datetime) -> None:
        """The simulated time the run has reached."""
        ...


#: The largest slice whose strings the writer thread builds (else the simulating thread
#: does). The writer holds the slice's numbers (about 100 bytes a row) while the next
#: slice is simulated: for 7 days x 1M cardholders (1.2-1.7M rows a slice) that was
#: 1.45 GB of peak RSS against 1.32 GB (2026-12-07), past 1.1x of a day's run.
_WRITER_BUILDS_UP_TO = 400_000


class Lander:
    """Lands slices into their date partitions on a background thread.

    Parquet encoding and most of the string building release the GIL, so while one
    slice is landed the next one is simulated. A slice's tables (its id and lookup
    strings) are built by whichever thread has room: by the writer when it is idle as
    the slice comes (one process simulating every block keeps the other thread busier)
    and the slice is at most :data:`_WRITER_BUILDS_UP_TO` rows, else here while the
    writer finishes the slice before (lanes share the simulation, and the writer
    becomes the slower side). Either way they are built a file at a time and the bytes
    are the same. At most one slice waits for the writer, which bounds memory. The
    writer commits each partition after its last file, in order, so this thread never
    waits for a day to be flushed; on error every partition not committed is dropped.

    A date's label files are written by the same thread once the date's last slice is
    landed (a label is decided in its transaction's slice), while the next date is
    simulated; the last date's are written here at :meth:`finish_labels`, which commits
    them all. Written after the run, their 310 small files (7 days x 100k cardholders)
    were its last 0.15-0.3 s; on a thread of their own they held the simulating thread
    back more than that (interleaved runs, 2026-12-07).

    Args:
        destination: Where the partitions go.
        rows_per_file: Rows per table handed to the partition (its files' size).
        tally: Counts every landed table's rows, fraud and value (on the writer thread).
        labels: Where the run's label files go.
        meter: Counts every landed table's transactions for Prometheus, if given.
    """

    def __init__(
        self,
        destination: Destination,
        rows_per_file: int,
        tally: FraudTally,
        labels: LabelFiles,
        meter: Meter | None,
    ) -> None:
        self._destination = destination
        self._meter = meter
        self._stem = destination.naming.stem
        self._rows_per_file = rows_per_file
        self._tally = tally
        self._labels = labels
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="txnsim-writer")
        #: Slices queued for the writer: at most one waits behind the one it writes.
        self._slices: deque[Future[None]] = deque()
        #: Partition commits and label files, queued behind the slices before them.
        self._after: deque[Future[None]] = deque()
        self._last: Future[Any] | None = None
        self._current: Partition | None = None
        #: Partitions written to and not committed yet: dropped on error.
        self._open: list[Partition] = []
        self._day: dt.date | None = None
        self._of_day: list[pa.Table] = []
        self.files: list[FileRecord] = []
        self.partitions: dict[str, int] = {}
        #: Every slice's labels, for the manifest's figures.
        self.label_tables: list[pa.Table] = []

    def __enter__(self) -> Lander:
        return self

    def land(self, part: Slice) -> None:
        """Queue the slice ``part`` (time-sorted rows) for the partition of its day."""
        day = part.start.date()
        if day != self._day:
            self._land_labels()
        self._of_day.append(part.labels)
        self.label_tables.append(part.labels)
        if part.rows.num_rows <= _WRITER_BUILDS_UP_TO and self._writer_idle():
            self._hand_over(day, part.rows.num_rows, partial(self._write_tables, part))
            return
        for table in part.tables(self._rows_per_file):
            self._hand_over(day, table.num_rows, partial(self._write, table))
            del table

    def _submit(self, job: Callable[..., Any], *args: Any) -> Future[Any]:
        self._last = self._pool.submit(job, *args)
        return self._last

    def _writer_idle(self) -> bool:
        # One thread runs the jobs in order: the last one done, all are.
        return self._last is None or self._last.done()

    def _hand_over(self, day: dt.date, rows: int, job: Callable[[Partition], None]) -> None:
        current = self._current
        if current is None or day != self._day:
            # Committed by the writer after the day's last file: this thread goes on.
            if current is not None:
                self._after.append(self._submit(self._commit, current))
            current = self._current = self._destination.partition("transactions", day)
            self._open.append(current)
            self._day = day
            self.partitions[day.isoformat()] = 0
        self.partitions[day.isoformat()] += rows
        self._slices.append(self._submit(job, current))
        while len(self._slices) > 1:
            self._slices.popleft().result()
        while self._after and self._after[0].done():
            self._after.popleft().result()  # a failed commit or label file stops the run

    def _commit(self, partition: Partition) -> None:
        self.files.extend(partition.commit())
        self._open.remove(partition)

    def _write_tables(self, part: Slice, partition: Partition) -> None:
        # A file's worth at a time: a slice's strings are built as they are landed.
        for table in part.tables(self._rows_per_file):
            self._write(table, partition)
            del table

    def _write(self, table: pa.Table, partition: Partition) -> None:
        partition.write(table, self._stem)
        self._tally.add(table)
        if self._meter is not None:
            self._meter.events(table)

    def after_slices(self, job: Callable[[], Any]) -> Future[Any]:
        """Run ``job`` on the writer once the slices queued so far are landed.

        For work of the run's end that needs no slice and nothing of this thread's:
        :meth:`finish_labels` does not wait for it.
        """
        return self._submit(job)

    def _land_labels(self) -> None:
        """Queue the label files of the date landed last, after its transactions."""
        if self._of_day:
            self._after.append(self._submit(self._labels.add, pa.concat_tables(self._of_day)))
            self._of_day = []

    def finish_labels(self) -> list[FileRecord]:
        """Land the last date's label files here, then commit every label partition.

        Called after the last slice: the writer's label jobs were all queued before that
        slice, so once they are done the label files are this thread's, and it writes
        the last date's while the writer encodes the last slice.
        """
        while self._after:
            self._after.popleft().result()
        if self._of_day:
            self._labels.add(pa.concat_tables(self._of_day))
            self._of_day = []
        return self._labels.commit()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                if self._current is not None:
                    self._after.append(self._submit(self._commit, self._current))
                for queued in (self._slices, self._after):
                    while queued:
                        queued.popleft().result()
        finally:
            for pending in (*self._slices, *self._after):
                pending.cancel()
            self._pool.shutdown(wait=True)
            for partition in self._open:
                partition.abort()
            if exc_type is not None:
                self._labels.abort()
