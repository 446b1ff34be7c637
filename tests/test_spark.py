"""The Spark engine in local mode: the lake Spark writes is the single process's, per dt.

Spark starts a JVM (about 10 s here), so this is a slow test: `.ci/run` runs it in its
`-m slow` step, with the `spark` extra installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from schemas.event import transaction_schema
from simulator.settings.models import Settings
from tests.conftest import run, small_settings

pyspark = pytest.importorskip("pyspark", reason="the spark extra is not installed")

pytestmark = [
    pytest.mark.slow,
    # py4j leaves its gateway sockets to the garbage collector after session.stop().
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

_CLI = {"days": 2, "start_date": "2026-11-24"}


def _lake(root: Path, name: str, schema: pa.Schema) -> dict[str, pa.Table]:
    """Each ``dt`` partition of ``root/name``, cast to the project's schema and sorted."""
    table = ds.dataset(root / name, format="parquet", partitioning="hive").to_table()
    out = {}
    for day in sorted(set(table.column("dt").cast(pa.string()).to_pylist())):
        rows = table.filter(pc.equal(table.column("dt").cast(pa.string()), day))
        rows = rows.select([f.name for f in schema]).cast(schema)
        keys = [("transaction_id", "ascending")]
        if "label_time" in schema.names:
            keys.append(("label_time", "ascending"))
        out[day] = rows.sort_by(keys)
    return out


def _loose(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_nullable(True) for f in schema])


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Settings:
    return small_settings(tmp_path_factory.mktemp("local"), cache_dir, **_CLI)


def test_the_spark_lake_is_the_single_process_lake(settings: Settings, tmp_path: Path) -> None:
    from simulator.batch import spark

    run(settings)
    session = spark.session("local[2]")
    try:
        summary = spark.generate(session, settings, out=(tmp_path / "spark").as_uri(), shards=3)
    finally:
        session.stop()
    local = Path(settings.out)
    tx = _loose(transaction_schema().arrow)
    got, want = _lake(tmp_path / "spark", "transactions", tx), _lake(local, "transactions", tx)
    assert sorted(got) == sorted(want) == ["2026-11-24", "2026-11-25"]
    for day in want:
        assert got[day].equals(want[day]), day
    assert summary.transactions == sum(t.num_rows for t in want.values())
    lb = _loose(transaction_schema("fraud_label").arrow)
    got_labels = pa.concat_tables(_lake(tmp_path / "spark", "labels", lb).values())
    want_labels = pa.concat_tables(_lake(local, "labels", lb).values())
    key = [("transaction_id", "ascending"), ("label_time", "ascending")]
    assert got_labels.num_rows == summary.labels > 0
    assert got_labels.sort_by(key).equals(want_labels.sort_by(key))


def test_the_spark_engine_needs_a_seed(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TXNSIM_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulator",
            "generate",
            "--engine",
            "spark",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 2
    assert "seed" in done.stderr
