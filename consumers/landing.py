"""Cutting one Kafka partition's records into Parquet files, decided by the records alone.

A :class:`PartitionLog` takes a partition's records in offset order, in batches of any
size, and closes files ("cuts") by four rules: the event date (UTC) changes, the writer
schema changes (a file never mixes schemas), the file reached ``max_rows`` rows, or
adding the next record would pass ``max_bytes`` of Avro value. So the same offsets give
the same files however they were polled. A file's name
holds its partition and first offset; its key-value metadata, its offset range.

Records that do not decode become dead letters; they never open a file. Two other cuts
come from outside the records (an idle partition, the memory budget); when offsets are
read again after a crash, such a file may already be landed with another range, and
:meth:`PartitionLog.skip_through` lets the sink adopt it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.avro_decode import Decoded
from schemas.event import EventSchema, landing_of, transaction_schema

__all__ = ["Cut", "DeadLetter", "Limits", "PartitionLog", "file_key"]

_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class Limits:
    """When a file is full."""

    max_rows: int
    max_bytes: int


@dataclass
class Cut:
    """A closed file: rows of one event date and writer schema, consecutive in a partition."""

    day: dt.date
    tables: list[pa.Table]
    offsets: np.ndarray
    value_bytes: int
    #: The writer schema of every row (the file's Arrow schema and fingerprint).
    schema: EventSchema = field(default_factory=transaction_schema)

    @property
    def first(self) -> int:
        """Offset of the file's first row (its name)."""
        return int(self.offsets[0])

    @property
    def last(self) -> int:
        """Offset of the file's last row."""
        return int(self.offsets[-1])

    @property
    def rows(self) -> int:
        """Number of rows."""
        return len(self.offsets)

    def table(self) -> pa.Table:
        """The rows as one table."""
        return pa.concat_tables(self.tables) if len(self.tables) != 1 else self.tables[0]

    def after(self, offset: int) -> Cut | None:
        """The rows past ``offset``, or None if there are none."""
        keep = self.offsets > offset
        if not keep.any():
            return None
        if keep.all():
            return self
        start = int(np.argmax(keep))
        return Cut(
            self.day,
            [self.table().slice(start)],
            self.offsets[start:],
            self.value_bytes,
            self.schema,
        )


@dataclass(frozen=True)
class DeadLetter:
    """A record that did not decode: kept whole, with why."""

    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    error: str


@dataclass
class _Open:
    day: dt.date
    schema: EventSchema
    tables: list[pa.Table] = field(default_factory=list)
    offsets: list[np.ndarray] = field(default_factory=list)
    rows: int = 0
    value_bytes: int = 0
    arrow_bytes: int = 0
    opened_at: float = 0.0

    def close(self) -> Cut:
        return Cut(
            self.day, self.tables, np.concatenate(self.offsets), self.value_bytes, self.schema
        )


class PartitionLog:
    """One partition's records between the last commit and the files that land them.

    Args:
        limits: When a file is full.
        start: The offset consumption starts from (the committed offset).
    """

    def __init__(self, limits: Limits, start: int) -> None:
        self._limits = limits
        self._open: _Open | None = None
        self._skip_through = start - 1
        #: Closed files waiting to land, in offset order.
        self.cuts: list[Cut] = []
        #: Dead letters waiting to land, in offset order.
        self.dead: list[DeadLetter] = []
        #: The offset after the last record seen.
        self.next = start

    # --- Input ----------------------------------------------------------------------------

    def add(
        self,
        offsets: np.ndarray,
        sizes: np.ndarray,
        decoded: Decoded,
        dead: list[DeadLetter],
        now: float,
        schema: EventSchema | None = None,
    ) -> None:
        """Take the next records of the partition, all written with one schema.

        Args:
            offsets: The offsets of the polled records, increasing.
            sizes: The byte size of each record's value.
            decoded: The records decoded (``decoded.rows`` index ``offsets``).
            dead: The records that did not decode.
            now: A monotonic time, for the age of the open file.
            schema: The writer schema they were decoded with (default: the full
                transaction schema); a change of schema cuts the open file.
        """
        schema = schema or transaction_schema()
        if len(offsets):
            self.next = max(self.next, int(offsets[-1]) + 1)
        self.dead += [letter for letter in dead if letter.offset > self._skip_through]
        if decoded.table.num_rows == 0:
            return
        row_offsets = offsets[decoded.rows]
        keep = row_offsets > self._skip_through
        table = decoded.table
        if not keep.all():
            table = table.filter(pa.array(keep))
            row_offsets, rows = row_offsets[keep], decoded.rows[keep]
        else:
            rows = decoded.rows
        days = _days(table.column(landing_of(schema)[1]))
        self._append(table, row_offsets, days, sizes[rows], now, schema)

    def _append(
        self,
        table: pa.Table,
        offsets: np.ndarray,
        days: np.ndarray,
        sizes: np.ndarray,
        now: float,
        schema: EventSchema,
    ) -> None:
        limits = self._limits
        cumulative = np.cumsum(sizes)
        start = 0
        count = len(offsets)
        while start < count:
            day = int(days[start])
            run_end = (
                start + int(np.argmax(days[start:] != day))
                if (days[start:] != day).any()
                else count
            )
            current = self._open
            if current is not None and (
                (current.day - _EPOCH).days != day
                or current.schema.fingerprint != schema.fingerprint
            ):
                self.close()
                current = None
            if current is None:
                current = self._open = _Open(_EPOCH + dt.timedelta(days=day), schema, opened_at=now)
            room_rows = limits.max_rows - current.rows
            # Rows fit while the file's value bytes stay within max_bytes; an empty file
            # takes at least one row, however large.
            base = cumulative[start - 1] if start else 0
            budget = limits.max_bytes - current.value_bytes
            fitting = int(np.searchsorted(cumulative[start:run_end] - base, budget, side="right"))
            if current.rows == 0:
                fitting = max(fitting, 1)
            take = min(run_end - start, room_rows, fitting)
            if take > 0:
                piece = table.slice(start, take)
                current.tables.append(piece)
                current.offsets.append(offsets[start : start + take])
                current.rows += take
                current.value_bytes += int(cumulative[start + take - 1] - base)
                current.arrow_bytes += piece.nbytes
                start += take
            if take == 0 or current.rows >= limits.max_rows or start < run_end:
                self.close()

    # --- Decisions from outside the records --------------------------------------------------

    def close(self) -> None:
        """Cut the open file now (a full file, a date change, age, budget, caught up)."""
        if self._open is not None and self._open.rows:
            self.cuts.append(self._open.close())
        self._open = None

    def skip_through(self, offset: int) -> None:
        """Records up to ``offset`` are landed already (adopted): drop them wherever held."""
        self._skip_through = max(self._skip_through, offset)
        self.cuts = [rest for cut in self.cuts if (rest := cut.after(offset)) is not None]
        self.dead = [letter for letter in self.dead if letter.offset > offset]
        current = self._open
        if current is not None:
            self._open = None
            rest = current.close().after(offset)
            if rest is not None:
                # The kept rows reopen a file starting at the first of them.
                self._open = _Open(
                    rest.day,
                    rest.schema,
                    [rest.table()],
                    [rest.offsets],
                    rest.rows,
                    current.value_bytes,  # an upper bound; only limits the file earlier
                    rest.table().nbytes,
                    current.opened_at,
                )
        self.next = max(self.next, offset + 1)

    def passed(self, position: int) -> None:
        """The consumer's position moved to ``position`` with nothing more for us before it.

        Under read_committed, transaction markers and aborted records take offsets but
        never reach the sink; once nothing is held, the commit may move past them.
        """
        if self.commit_position() == self.next:
            self.next = max(self.next, position)

    # --- State ---------------------------------------------------------------------------

    def open_age(self, now: float) -> float:
        """Seconds since the open file took its first row (0 if none is open)."""
        return now - self._open.opened_at if self._open is not None else 0.0

    @property
    def held_bytes(self) -> int:
        """Arrow bytes held by the open file and the cuts not yet landed."""
        held = sum(t.nbytes for cut in self.cuts for t in cut.tables)
        return held + (self._open.arrow_bytes if self._open is not None else 0)

    @property
    def open_bytes(self) -> int:
        """Arrow bytes of the open file."""
        return self._open.arrow_bytes if self._open is not None else 0

    def commit_position(self) -> int:
        """The offset to commit: everything before it is landed."""
        pending = [self.next]
        if self.cuts:
            pending.append(self.cuts[0].first)
        if self.dead:
            pending.append(self.dead[0].offset)
        if self._open is not None and self._open.offsets:
            pending.append(int(self._open.offsets[0][0]))
        return min(pending)


def _days(event_time: pa.ChunkedArray) -> np.ndarray:
    """UTC calendar day numbers (days since 1970-01-01) of a timestamp column."""
    return pc.cast(event_time, pa.date32()).to_numpy().astype(np.int64)


def file_key(table_name: str, day: dt.date, topic: str, partition: int, first: int) -> str:
    """``<table>/dt=YYYY-MM-DD/<topic>-<partition>-<first offset>.parquet`` (sortable)."""
    return f"{table_name}/dt={day.isoformat()}/{topic}-{partition:05d}-{first:020d}.parquet"
