"""Same seed and settings: the same bytes, whatever the worker count; re-runs replace, never add."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from simulator.batch.generate import generate
from simulator.batch.lander import Lander
from simulator.cli import main
from simulator.model.engine import SliceSource
from simulator.settings.run import RunSeed, RunSpec
from simulator.world.build import build_world
from tests.conftest import read_transactions, run, small_settings


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("golden")
    run(small_settings(out, cache_dir, days=2, workers=1))
    return _files(out)


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_same_seed_same_bytes_for_any_worker_count(
    workers: int, golden: dict[str, bytes], tmp_path: Path, cache_dir: Path
) -> None:
    run(small_settings(tmp_path, cache_dir, days=2, workers=workers))
    assert _files(tmp_path) == golden


def test_another_seed_gives_other_events(
    golden: dict[str, bytes], tmp_path: Path, cache_dir: Path
) -> None:
    run(small_settings(tmp_path, cache_dir, days=2, seed=8))
    other = _files(tmp_path)

    def data(files: dict[str, bytes]) -> set[str]:
        # Label partitions are named by label dates, which the seed decides.
        return {k for k in files if not k.startswith("labels/")}

    assert data(other) == data(golden)
    assert (
        other["transactions/dt=2026-11-24/part-00000.parquet"]
        != golden["transactions/dt=2026-11-24/part-00000.parquet"]
    )


def test_a_day_is_the_same_whatever_the_run_length(tmp_path: Path, cache_dir: Path) -> None:
    """Streams are keyed by date: day one of a two-day run equals a one-day run, ids included."""
    run(small_settings(tmp_path / "one", cache_dir, days=1))
    run(small_settings(tmp_path / "two", cache_dir, days=2))
    day = "transactions/dt=2026-11-24"
    a = read_transactions(tmp_path / "one")
    b = pq.read_table(tmp_path / "two" / day / "part-00000.parquet")
    assert a.drop_columns(["dt"]).equals(b)


def test_rerun_replaces_files_and_never_duplicates(tmp_path: Path, cache_dir: Path) -> None:
    settings = small_settings(tmp_path, cache_dir, days=1)
    first = run(settings)
    before = _files(tmp_path)
    # A smaller rows_per_file cuts more files; a re-run must not leave the old ones behind.
    second = run(small_settings(tmp_path, cache_dir, "writer.rows_per_file=1000", days=1))
    table = read_transactions(tmp_path)
    assert table.num_rows == first.rows == second.rows
    assert len(set(table["transaction_id"].to_pylist())) == table.num_rows
    third = run(settings)
    assert _files(tmp_path) == before
    assert third.manifest == first.manifest
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")], "no staging leftovers"


def test_seed_from_os_entropy_is_recorded_and_replays(
    tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = [
        "--cardholders",
        "1500",
        "--set",
        f"cache_dir={cache_dir}",
        "--set",
        "population.block_size=500",
    ]
    assert main(["--log-level", "WARNING", "generate", "--out", str(tmp_path / "a"), *common]) == 0
    manifest = orjson.loads((tmp_path / "a" / "manifest.json").read_bytes())
    assert manifest["seed_source"] == "os-entropy"
    seed = manifest["seed"]
    assert isinstance(seed, int)
    assert 0 <= seed < 2**63
    assert (
        main(
            [
                "--log-level",
                "WARNING",
                "generate",
                "--out",
                str(tmp_path / "b"),
                "--seed",
                str(seed),
                *common,
            ]
        )
        == 0
    )
    replay = orjson.loads((tmp_path / "b" / "manifest.json").read_bytes())
    assert [f["sha256"] for f in replay["files"]] == [f["sha256"] for f in manifest["files"]]
    capsys.readouterr()


def test_a_seed_of_other_settings_is_refused(tmp_path: Path, cache_dir: Path) -> None:
    settings = small_settings(tmp_path, cache_dir, days=1)
    other = RunSeed.from_settings(settings.model_copy(update={"seed": 8}))
    with pytest.raises(ValueError, match="not the settings' seed"):
        generate(settings, other)
    unseeded = settings.model_copy(update={"seed": None})
    drawn = RunSeed.from_settings(unseeded)
    assert drawn.source == "os-entropy"
    assert drawn.pin(unseeded).seed == drawn.entropy
    with pytest.raises(ValueError, match="not the settings' seed"):
        drawn.pin(settings)  # drawn for settings without a seed, not for seed 7
    assert not (tmp_path / "transactions").exists()
    seed = RunSeed.from_settings(settings)
    world = build_world(settings, seed)
    start = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="built from seed 7, not 8"):
        SliceSource(world, RunSpec.from_settings(settings), other, start, None)


def test_files_cut_a_slice_without_changing_its_rows(tmp_path: Path, cache_dir: Path) -> None:
    """A slice is built and landed a file at a time: the cut changes files, never rows."""
    whole = run(small_settings(tmp_path / "whole", cache_dir, days=1))
    cut = run(small_settings(tmp_path / "cut", cache_dir, "writer.rows_per_file=1000", days=1))
    files = sorted((tmp_path / "cut" / "transactions").rglob("*.parquet"))
    sizes = [pq.ParquetFile(f).metadata.num_rows for f in files]
    assert len(files) == -(-whole.rows // 1000) > 1
    assert sizes[:-1] == [1000] * (len(files) - 1)
    assert read_transactions(tmp_path / "cut").equals(read_transactions(tmp_path / "whole"))
    assert cut.manifest["fraud"] == whole.manifest["fraud"]


@pytest.mark.parametrize("writer_idle", [True, False])
def test_the_strings_land_the_same_bytes_on_either_thread(
    writer_idle: bool, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slice's tables are built by the writer when it is idle, else by the simulating thread."""
    whole = tmp_path / "whole"
    run(small_settings(whole, cache_dir, "writer.rows_per_file=1000", days=2))
    monkeypatch.setattr(Lander, "_writer_idle", lambda self: writer_idle)
    forced = tmp_path / "forced"
    summary = run(small_settings(forced, cache_dir, "writer.rows_per_file=1000", days=2))
    assert len(list((forced / "transactions").rglob("*.parquet"))) > 2
    assert _files(forced) == _files(whole)
    assert summary.manifest["fraud"]["transactions"] > 0


def test_a_slice_in_tables_is_the_slice(tmp_path: Path, cache_dir: Path) -> None:
    settings = small_settings(tmp_path, cache_dir, days=1)
    seed = RunSeed.from_settings(settings)
    world = build_world(settings, seed)
    start = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    spec = RunSpec.from_settings(settings)
    built = next(iter(SliceSource(world, spec, seed, start, None)))
    lazy = next(iter(SliceSource(world, spec, seed, start, None)))
    pieces = list(lazy.tables(777))  # built piece by piece, before the whole is asked for
    assert [t.num_rows for t in pieces[:-1]] == [777] * (len(pieces) - 1)
    assert pa.concat_tables(pieces).equals(built.table)
    assert pa.concat_tables(built.tables(777)).equals(built.table)
