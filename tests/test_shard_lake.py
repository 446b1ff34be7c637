"""Shards landed side by side in one lake, then merged: the lake is the single run's.

`txnsim generate --shard K/N` writes shard K's files beside the others' and its manifest
under `manifests/`; `txnsim manifest merge` checks the set and commits the run with
`manifest.json`. Compared here: every row, label and catalog entry of the union against
a single run of the same settings, in a folder and on a real S3 server (moto).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from simulator.batch.generate import RunSummary, generate
from simulator.batch.merge import merge_manifests
from simulator.cli import main
from simulator.errors import ConfigError, OutputError
from simulator.settings.models import Settings
from simulator.settings.run import RunSeed, Shard
from tests.conftest import small_settings
from tests.s3_server import S3Server

# 3,000 cardholders in blocks of 500: six blocks, so three shards hold two each.
_CLI: dict[str, Any] = {"days": 2, "start_date": "2026-11-24", "writer": {"rows_per_file": 900}}


def _settings(out: Path | str, cache: Path, **changes: Any) -> Settings:
    return small_settings(out, cache, **{**_CLI, **changes})  # type: ignore[arg-type]


def _land(settings: Settings, shard: Shard) -> RunSummary:
    return generate(settings, RunSeed.from_settings(settings), shard=shard)


def _shards(out: Path | str, cache: Path, n: int, **changes: Any) -> dict[str, Any]:
    settings = _settings(out, cache, **changes)
    for k in range(n):
        _land(settings, Shard(k, n))
    return merge_manifests(str(out), settings)


def _table(root: Path, name: str, key: str) -> pa.Table:
    dataset = ds.dataset(root / name, format="parquet", partitioning="hive")
    return dataset.to_table().sort_by([(key, "ascending"), *_tie(name)])


def _tie(name: str) -> list[tuple[str, str]]:
    return [("label_time", "ascending")] if name == "labels" else []


def _catalog(root: Path, name: str) -> pa.Table:
    path = root / "catalog" / f"{name}.parquet"
    table = pq.read_table(path) if path.exists() else ds.dataset(path.with_suffix("")).to_table()
    key = {"cardholders": "cardholder_id", "cards": "card_id", "merchants": "merchant_id"}[name]
    return table.sort_by(key)


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("single")
    _land(_settings(out, cache_dir), Shard())
    return out


@pytest.mark.parametrize("n", [2, 3])
def test_the_merged_shards_are_the_single_run(
    n: int, single: Path, tmp_path: Path, cache_dir: Path
) -> None:
    merged = _shards(tmp_path, cache_dir, n)
    for name, key in (("transactions", "transaction_id"), ("labels", "transaction_id")):
        assert _table(tmp_path, name, key).equals(_table(single, name, key)), name
    for name in ("cardholders", "cards", "merchants"):
        assert _catalog(tmp_path, name).equals(_catalog(single, name)), name
    whole = orjson.loads((single / "manifest.json").read_bytes())
    assert merged == orjson.loads((tmp_path / "manifest.json").read_bytes())
    for key in ("row_counts", "partitions", "config_hash", "seed", "simulated_start"):
        assert merged[key] == whole[key], key
    for key in ("transactions", "by_scenario", "cases", "cards_blocked", "labels"):
        assert merged["fraud"][key] == whole["fraud"][key], key
    assert merged["fraud"]["value_usd"] == pytest.approx(whole["fraud"]["value_usd"], abs=0.05)
    assert merged["shards"]["count"] == n
    # The manifest lists every data file there is, and nothing else is there.
    listed = {f["path"] for f in merged["files"]}
    present = {
        p.relative_to(tmp_path).as_posix()
        for p in tmp_path.rglob("*.parquet")
        if not p.relative_to(tmp_path).as_posix().startswith("manifests/")
    }
    assert present == listed
    # validate reads a sharded run's catalog folders: every foreign key resolves.
    assert main(["validate", str(tmp_path)]) == 0


def test_a_shards_rerun_writes_the_same_bytes(tmp_path: Path, cache_dir: Path) -> None:
    settings = _settings(tmp_path, cache_dir)
    first = _land(settings, Shard(1, 3))
    again = _land(settings, Shard(1, 3))
    assert [f.as_json() for f in first.files] == [f.as_json() for f in again.files]
    assert all("shard-00001-of-00003" in f.path for f in first.files)
    assert (tmp_path / "manifests" / "shard-00001-of-00003.json").exists()
    assert not (tmp_path / "manifest.json").exists(), "a shard never commits the run"


def test_an_empty_shard_writes_an_empty_manifest(tmp_path: Path, cache_dir: Path) -> None:
    # Six blocks: shard 7 of 8 has none.
    summary = _land(_settings(tmp_path, cache_dir), Shard(7, 8))
    manifest = orjson.loads((tmp_path / "manifests" / "shard-00007-of-00008.json").read_bytes())
    assert summary.rows == manifest["row_counts"]["transactions"] == 0
    assert manifest["shard"]["blocks"] == []
    assert not [f for f in manifest["files"] if f["path"].startswith(("transactions/", "labels/"))]


def test_more_shards_than_blocks_still_add_up(
    single: Path, tmp_path: Path, cache_dir: Path
) -> None:
    merged = _shards(tmp_path, cache_dir, 8)
    assert (
        merged["row_counts"] == orjson.loads((single / "manifest.json").read_bytes())["row_counts"]
    )


def test_shards_replace_an_earlier_run_in_the_same_folder(
    single: Path, tmp_path: Path, cache_dir: Path
) -> None:
    shutil.copytree(single, tmp_path, dirs_exist_ok=True)
    _shards(tmp_path, cache_dir, 2)
    assert not list(tmp_path.glob("transactions/dt=*/part-*.parquet"))
    assert not (tmp_path / "catalog" / "cards.parquet").exists()
    assert _table(tmp_path, "transactions", "transaction_id").equals(
        _table(single, "transactions", "transaction_id")
    )


def test_a_missing_shard_is_named(tmp_path: Path, cache_dir: Path) -> None:
    settings = _settings(tmp_path, cache_dir)
    _land(settings, Shard(0, 3))
    _land(settings, Shard(2, 3))
    with pytest.raises(ConfigError, match=r"shard 1 of 3 is missing"):
        merge_manifests(str(tmp_path), settings)
    assert not (tmp_path / "manifest.json").exists()


def test_a_duplicated_shard_is_named(tmp_path: Path, cache_dir: Path) -> None:
    settings = _settings(tmp_path, cache_dir)
    _land(settings, Shard(0, 2))
    manifests = tmp_path / "manifests"
    shutil.copy(manifests / "shard-00000-of-00002.json", manifests / "shard-00001-of-00002.json")
    with pytest.raises(ConfigError, match=r"shard 0 appears twice"):
        merge_manifests(str(tmp_path), settings)


def test_shards_of_other_settings_are_named(tmp_path: Path, cache_dir: Path) -> None:
    _land(_settings(tmp_path, cache_dir), Shard(0, 2))
    _land(_settings(tmp_path, cache_dir, seed=8), Shard(1, 2))
    with pytest.raises(ConfigError, match=r"shard 1: its config_hash .* different runs"):
        merge_manifests(str(tmp_path), _settings(tmp_path, cache_dir))


def test_a_changed_file_is_named(tmp_path: Path, cache_dir: Path) -> None:
    settings = _settings(tmp_path, cache_dir)
    _land(settings, Shard(0, 2))
    second = _land(settings, Shard(1, 2))
    victim = tmp_path / next(f.path for f in second.files if f.path.startswith("transactions/"))
    victim.write_bytes(victim.read_bytes()[:-10])
    with pytest.raises(OutputError, match=rf"shard 1: {victim.relative_to(tmp_path)} is"):
        merge_manifests(str(tmp_path), settings)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("value", "says"),
    [("3/2", "shard 3 is not in 0..1"), ("-1/2", "shard -1"), ("0/0", "at least one shard")],
)
def test_a_bad_shard_exits_2_naming_the_flag(value: str, says: str, tmp_path: Path) -> None:
    done = _cli("generate", "--out", str(tmp_path), "--seed", "7", f"--shard={value}")
    assert done.returncode == 2
    assert "--shard" in done.stderr
    assert says in done.stderr


def test_a_shard_without_a_seed_exits_2_naming_the_seed(tmp_path: Path) -> None:
    done = _cli("generate", "--out", str(tmp_path), "--shard", "0/2", "--cardholders", "500")
    assert done.returncode == 2
    assert "seed" in done.stderr
    assert not (tmp_path / "manifests").exists()


def test_merge_on_the_command_line(tmp_path: Path, cache_dir: Path) -> None:
    settings = _settings(tmp_path, cache_dir)
    _land(settings, Shard(0, 2))
    done = _cli("manifest", "merge", str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert "shard 1 of 2 is missing" in done.stderr
    _land(settings, Shard(1, 2))
    done = _cli("manifest", "merge", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["shards"] == 2


# On a real S3 server ---------------------------------------------------------------


@pytest.fixture
def bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server.bucket(f"shards-{uuid.uuid4().hex[:12]}")


def _s3_settings(url: str, cache: Path, s3_server: S3Server) -> Settings:
    settings = _settings(Path("unused"), cache)
    s3 = settings.s3.model_copy(update={"endpoint_url": s3_server.endpoint})
    return settings.model_copy(update={"out": url, "s3": s3})


def test_shards_on_s3_are_the_single_run(
    s3_server: S3Server, bucket: str, single: Path, cache_dir: Path
) -> None:
    url = f"s3://{bucket}/lake"
    settings = _s3_settings(url, cache_dir, s3_server)
    first = _land(settings, Shard(0, 2))
    _land(settings, Shard(1, 2))
    # A rerun of shard 0 replaces only its own objects: one set of them.
    again = _land(settings, Shard(0, 2))
    assert {f.path for f in again.files} == {f.path for f in first.files}
    merged = merge_manifests(url, settings)
    client = s3_server.client()
    keys = set(s3_server.keys(bucket, "lake/"))
    listed = {f"lake/{f['path']}" for f in merged["files"]}
    manifests = {f"lake/{m}" for m in merged["shards"]["manifests"]}
    assert keys == listed | manifests | {"lake/manifest.json"}
    parts = []
    for entry in merged["files"]:
        if entry["path"].startswith("transactions/"):
            body = client.get_object(Bucket=bucket, Key=f"lake/{entry['path']}")["Body"].read()
            parts.append(pq.read_table(io.BytesIO(body)))
    rows = pa.concat_tables(parts).sort_by("transaction_id")
    expected = _table(single, "transactions", "transaction_id").drop_columns(["dt"])
    assert rows.equals(expected)
