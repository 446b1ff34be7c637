"""Files landed whole: staged partitions are flushed, then swapped in; failures name the file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from simulator.batch.files import flush_files
from simulator.batch.output import PartitionWriter, flush_together
from simulator.errors import OutputError
from simulator.settings.models import WriterConfig

WRITER = WriterConfig(rows_per_file=4, row_group_size=4, compression="zstd")
DAY = dt.date(2026, 11, 24)


def _table(n: int, start: int = 0) -> pa.Table:
    return pa.table({"n": pa.array(range(start, start + n), pa.int64())})


def test_flushing_many_files_names_the_one_that_cannot_be_flushed(tmp_path: Path) -> None:
    present = [tmp_path / f"f{i}" for i in range(20)]
    for path in present:
        path.write_bytes(b"x")
    flush_files(present)  # side by side, no error
    missing = tmp_path / "gone"
    with pytest.raises(OutputError, match=r"cannot flush .*gone"):
        flush_files([*present[:10], missing, *present[10:]])


def test_partitions_flushed_together_commit_whole_and_replace_the_earlier_ones(
    tmp_path: Path,
) -> None:
    first = PartitionWriter(tmp_path, DAY, WRITER, {})
    first.write(_table(3))
    first.commit()
    days = [DAY, DAY + dt.timedelta(days=1)]
    writers = [PartitionWriter(tmp_path, day, WRITER, {}) for day in days]
    for w in writers:
        w.write(_table(10, 100))  # three files of at most four rows
    flush_together(writers)
    records = [r for w in writers for r in w.commit()]
    assert sorted(r.path for r in records) == [
        f"transactions/dt={day}/part-0000{i}.parquet" for day in days for i in range(3)
    ]
    for day in days:
        landed = pq.read_table(tmp_path / "transactions" / f"dt={day}")
        assert landed.column("n").to_pylist() == list(range(100, 110))
    assert not [p for p in (tmp_path / "transactions").iterdir() if p.name.startswith(".")]


def test_an_aborted_partition_leaves_the_earlier_one_in_place(tmp_path: Path) -> None:
    first = PartitionWriter(tmp_path, DAY, WRITER, {})
    first.write(_table(2))
    first.commit()
    again = PartitionWriter(tmp_path, DAY, WRITER, {})
    again.write(_table(5, 50))
    again.abort()
    landed = pq.read_table(tmp_path / "transactions" / f"dt={DAY}")
    assert landed.column("n").to_pylist() == [0, 1]
    assert not [p for p in (tmp_path / "transactions").iterdir() if p.name.startswith(".")]
