"""Label files landed a transaction date at a time: all or nothing, one date per call."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from simulator.batch.labels import LabelFiles
from simulator.batch.lander import Lander
from simulator.batch.output import FolderDestination
from simulator.model.slices import Slice
from tests.conftest import run, small_settings


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_a_run_failing_after_its_first_date_leaves_the_earlier_labels(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A date's label files are staged while the next date is simulated.

    They are dropped with the run, and the earlier run's label partitions stay as they
    were (its transaction partitions are committed day by day: the manifest decides).
    """
    earlier = run(small_settings(tmp_path, cache_dir, days=2))
    assert earlier.manifest["fraud"]["labels"]["rows"] > 0
    before = _files(tmp_path / "labels")
    land = Lander.land
    seen: list[dt.date] = []

    def fail_on_the_second_date(self: Lander, part: Slice) -> None:
        land(self, part)  # the second date's first slice queues the first date's labels
        seen.append(part.start.date())
        if len(set(seen)) == 2:
            assert self._last is not None
            self._last.result()  # the writer runs its jobs in order: the labels are staged
            assert list((tmp_path / "labels").glob(".dt=*.staging/txn-*.parquet"))
            raise RuntimeError("the run fails on its second date")

    monkeypatch.setattr(Lander, "land", fail_on_the_second_date)
    with pytest.raises(RuntimeError, match="second date"):
        run(small_settings(tmp_path, cache_dir, days=2, seed=8))
    assert _files(tmp_path / "labels") == before
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")], "no staging leftovers"


def test_labels_of_two_transaction_dates_are_refused_naming_them(tmp_path: Path) -> None:
    day = dt.datetime(2026, 11, 24, 23, 0, tzinfo=dt.UTC)
    times = pa.array([day, day + dt.timedelta(hours=2)], pa.timestamp("us", tz="UTC"))
    labels = pa.table({"event_time": times, "label_time": times})
    settings = small_settings(tmp_path, tmp_path / "cache")
    files = LabelFiles(
        FolderDestination(tmp_path, settings.writer, {}), [day.date(), day.date().replace(day=25)]
    )
    with pytest.raises(ValueError, match="2026-11-24 to 2026-11-25"):
        files.add(labels)
    assert not list(tmp_path.rglob("*.parquet"))
