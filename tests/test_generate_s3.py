"""`txnsim generate --out s3://...` on a real S3-compatible server (moto, on loopback).

The run lands the same rows, labels and catalogs as in a folder; the manifest is written
last and lists exactly the objects a reader should read; re-running a date leaves one
run's objects; an outage is ridden out, or past ``retry_give_up_s`` fails with exit 1
and the previous run's manifest intact.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import read_catalog, read_transactions, run, small_settings
from tests.s3_server import S3Server

_CLI = {"days": 2, "start_date": "2026-11-24", "writer": {"rows_per_file": 2500}}


@pytest.fixture
def bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A bucket of this test's own, with the server's credentials in the environment."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server.bucket(f"gen-{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """The same run in a folder: what every S3 run must equal."""
    out = tmp_path_factory.mktemp("local")
    run(small_settings(out, cache_dir, **_CLI))
    return out


def _get(s3_server: S3Server, bucket: str, key: str) -> bytes:
    return bytes(s3_server.client().get_object(Bucket=bucket, Key=key)["Body"].read())


def _manifest(s3_server: S3Server, bucket: str, prefix: str) -> dict:
    manifest: dict = orjson.loads(_get(s3_server, bucket, f"{prefix}/manifest.json"))
    return manifest


def _dataset(s3_server: S3Server, bucket: str, prefix: str, manifest: dict, name: str) -> pa.Table:
    """Every file listed under ``name`` (a path prefix), checked against its hash."""
    tables = []
    for entry in manifest["files"]:
        if not entry["path"].startswith(name):
            continue
        body = _get(s3_server, bucket, f"{prefix}/{entry['path']}")
        assert hashlib.sha256(body).hexdigest() == entry["sha256"], entry["path"]
        assert len(body) == entry["bytes"]
        table = pq.read_table(io.BytesIO(body))
        assert table.num_rows == entry["rows"]
        if name in ("transactions/", "labels/"):
            day = entry["path"].split("/")[1].removeprefix("dt=")
            table = table.append_column("dt", pa.array([day] * table.num_rows))
        tables.append(table)
    return pa.concat_tables(tables)


def _sorted(table: pa.Table, key: str) -> pa.Table:
    return table.sort_by([(key, "ascending")])


def _only_the_manifests_objects(s3_server: S3Server, bucket: str, prefix: str) -> dict:
    manifest = _manifest(s3_server, bucket, prefix)
    listed = {f"{prefix}/{entry['path']}" for entry in manifest["files"]}
    assert set(s3_server.keys(bucket, f"{prefix}/")) == listed | {f"{prefix}/manifest.json"}
    return manifest


def test_an_s3_run_lands_what_a_folder_run_lands(
    s3_server: S3Server, bucket: str, cache_dir: Path, local: Path
) -> None:
    summary = run(small_settings(f"s3://{bucket}/lake", cache_dir, **_CLI))  # type: ignore[arg-type]
    manifest = _only_the_manifests_objects(s3_server, bucket, "lake")
    local_manifest = orjson.loads((local / "manifest.json").read_bytes())
    for key in ("row_counts", "partitions", "fraud", "config_hash", "seed"):
        assert manifest[key] == local_manifest[key], key
    assert summary.rows == local_manifest["row_counts"]["transactions"]
    rows = _dataset(s3_server, bucket, "lake", manifest, "transactions/")
    expected = read_transactions(local)
    expected = expected.set_column(
        expected.schema.get_field_index("dt"), "dt", expected.column("dt").cast(pa.string())
    )
    assert _sorted(rows, "transaction_id").equals(_sorted(expected, "transaction_id"))
    labels = _dataset(s3_server, bucket, "lake", manifest, "labels/")
    assert labels.num_rows == manifest["fraud"]["labels"]["rows"] > 0
    for name in ("cardholders", "cards", "merchants"):
        assert _dataset(s3_server, bucket, "lake", manifest, f"catalog/{name}-").equals(
            read_catalog(local, name)
        )


def test_rerunning_a_date_leaves_one_runs_objects(
    s3_server: S3Server, bucket: str, cache_dir: Path
) -> None:
    url = f"s3://{bucket}/lake"
    run(small_settings(url, cache_dir, **_CLI))  # type: ignore[arg-type]
    first = _only_the_manifests_objects(s3_server, bucket, "lake")
    # The same settings: the same names and bytes.
    run(small_settings(url, cache_dir, **_CLI))  # type: ignore[arg-type]
    assert _only_the_manifests_objects(s3_server, bucket, "lake")["files"] == first["files"]
    # Another seed over the same dates: the first run's objects are gone.
    run(small_settings(url, cache_dir, **{**_CLI, "seed": 8}))  # type: ignore[arg-type]
    second = _only_the_manifests_objects(s3_server, bucket, "lake")
    assert second["seed"] == 8
    assert not {e["path"] for e in first["files"]} & {e["path"] for e in second["files"]}


def test_daily_runs_into_one_prefix_keep_the_other_days(
    s3_server: S3Server, bucket: str, cache_dir: Path
) -> None:
    """An Airflow-style daily job: each date's run replaces only its own day."""
    url = f"s3://{bucket}/lake"
    first = run(small_settings(url, cache_dir, start_date="2026-11-24", days=1))  # type: ignore[arg-type]
    run(small_settings(url, cache_dir, start_date="2026-11-25", days=1))  # type: ignore[arg-type]
    kept = {
        f"lake/{f.path}" for f in first.files if f.path.startswith(("transactions/", "labels/"))
    }
    assert kept <= set(s3_server.keys(bucket, "lake/"))
    assert _manifest(s3_server, bucket, "lake")["simulated_start"].startswith("2026-11-25")
    # A retry of the second day replaces its own labels only: each label once.
    second = run(small_settings(url, cache_dir, start_date="2026-11-25", days=1))  # type: ignore[arg-type]
    own = {f"lake/{f.path}" for f in second.files if f.path.startswith("labels/")}
    earlier = {key for key in kept if key.startswith("lake/labels/")}
    assert set(s3_server.keys(bucket, "lake/labels/")) == own | earlier


def _generate_command(url: str, cache_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "simulator", "generate", "--seed", "7",
        "--date", "2026-11-24", "--days", "2", "--cardholders", "3000",
        "--set", "population.block_size=500", "--set", "writer.rows_per_file=2500",
        "--set", f"cache_dir={cache_dir}", "--out", url, *extra,
    ]  # fmt: skip


def _during_the_run(
    s3_server: S3Server, bucket: str, seconds: float, before: frozenset[str] = frozenset()
) -> threading.Thread:
    """Stop the server for ``seconds`` once the run's first data object has landed.

    ``before``: the keys already there (an earlier run's), which do not count.
    """

    def outage() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any("/transactions/" in k for k in set(s3_server.keys(bucket, "lake/")) - before):
                break
            time.sleep(0.05)
        with s3_server.outage():
            time.sleep(seconds)

    thread = threading.Thread(target=outage, daemon=True)
    thread.start()
    return thread


def test_an_outage_mid_run_is_ridden_out(
    s3_server: S3Server, bucket: str, cache_dir: Path, local: Path
) -> None:
    env = {**_environment(), **s3_server.env()}
    outage = _during_the_run(s3_server, bucket, seconds=3.0)
    done = subprocess.run(
        _generate_command(f"s3://{bucket}/lake", cache_dir),
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    outage.join(timeout=130)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "destination unavailable; retrying" in done.stderr
    manifest = _only_the_manifests_objects(s3_server, bucket, "lake")
    rows = _dataset(s3_server, bucket, "lake", manifest, "transactions/")
    assert sorted(rows.column("transaction_id").to_pylist()) == sorted(
        read_transactions(local).column("transaction_id").to_pylist()
    )


def test_an_outage_past_the_give_up_time_fails_and_keeps_the_old_run(
    s3_server: S3Server, bucket: str, cache_dir: Path
) -> None:
    env = {**_environment(), **s3_server.env()}
    old = subprocess.run(
        _generate_command(f"s3://{bucket}/lake", cache_dir, "--seed", "8"),
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert old.returncode == 0, old.stderr[-3000:]
    before = _only_the_manifests_objects(s3_server, bucket, "lake")
    # Down from the new run's first object on, for longer than its retries last
    # (give-up after 2 s; the pause before the attempt that gives up is at most 4.8 s).
    old_keys = frozenset(s3_server.keys(bucket, "lake/"))
    outage = _during_the_run(s3_server, bucket, seconds=15.0, before=old_keys)
    done = subprocess.run(
        _generate_command(f"s3://{bucket}/lake", cache_dir, "--set", "retry_give_up_s=2"),
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    outage.join(timeout=130)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "gave up after" in done.stderr
    assert f"s3://{bucket}/lake" in done.stderr
    assert _manifest(s3_server, bucket, "lake") == before  # the old run is still the committed one


def test_a_bucketless_url_is_a_configuration_error(cache_dir: Path) -> None:
    done = subprocess.run(
        _generate_command("s3:///lake", cache_dir),
        capture_output=True, text=True, env=_environment(), timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "out" in done.stderr


def _environment() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("TXNSIM_", "AWS_"))}
