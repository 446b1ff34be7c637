"""What ``cache_dir`` keeps between runs is what a cold build makes, and runs the same bytes.

It keeps the world and the fraud planner's calibration (:mod:`simulator.world.cache`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from simulator.settings.run import RunSeed
from simulator.world import build as world_build
from simulator.world.build import build_world
from tests.conftest import run, small_settings


def _differences(a: Any, b: Any, where: str = "world") -> list[str]:
    """Where two worlds differ: field by field, arrays by value and dtype."""
    if type(a) is not type(b):
        return [f"{where}: {type(a).__name__} != {type(b).__name__}"]
    if dataclasses.is_dataclass(a):
        return [
            d
            for f in dataclasses.fields(a)
            for d in _differences(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
        ]
    if isinstance(a, np.ndarray):
        same = (
            a.dtype == b.dtype
            and a.shape == b.shape
            and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
        )
        return [] if same else [f"{where}: arrays differ"]
    if isinstance(a, list | tuple):
        if len(a) != len(b):
            return [f"{where}: {len(a)} != {len(b)} items"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _differences(x, y, f"{where}[{i}]")
        ]
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return [f"{where}: keys differ"]
        return [d for k in a for d in _differences(a[k], b[k], f"{where}[{k!r}]")]
    if a == b:
        return []
    if hasattr(a, "__dict__"):  # a plain class without __eq__: its attributes
        return _differences(vars(a), vars(b), where)
    return [f"{where}: {a!r} != {b!r}"]


def test_a_cached_world_equals_a_cold_build(tmp_path: Path, cache_dir: Path) -> None:
    settings = small_settings(tmp_path / "out", cache_dir, seed=31)
    seed = RunSeed.from_settings(settings)
    cold = world_build._build(settings, seed)
    first = build_world(settings, seed)  # builds and stores
    second = build_world(settings, seed)  # reads
    assert list((cache_dir / "world").glob("*.pickle"))
    assert _differences(cold, first) == []
    assert _differences(cold, second) == []
    assert second is not first


def test_the_key_covers_the_settings(tmp_path: Path, cache_dir: Path) -> None:
    one = small_settings(tmp_path / "out", cache_dir, seed=32)
    other = small_settings(tmp_path / "out", cache_dir, "merchants.price_sigma=0.3", seed=32)
    a = build_world(one, RunSeed.from_settings(one))
    b = build_world(other, RunSeed.from_settings(other))
    assert _differences(a, b) != []
    assert _differences(b, world_build._build(other, RunSeed.from_settings(other))) == []


def test_a_damaged_cache_file_is_rebuilt(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    settings = small_settings(tmp_path / "out", cache, seed=33)
    seed = RunSeed.from_settings(settings)
    build_world(settings, seed)
    (stored,) = (cache / "world").glob("*.pickle")
    stored.write_bytes(stored.read_bytes()[: stored.stat().st_size // 2])
    assert _differences(build_world(settings, seed), world_build._build(settings, seed)) == []


def test_a_run_on_a_cached_world_writes_the_same_bytes(tmp_path: Path, cache_dir: Path) -> None:
    """Cold (no world cache), then twice through the cache: the same files, hash for hash."""
    hashes = []
    for n, cache in enumerate([None, cache_dir, cache_dir]):
        out = tmp_path / f"run{n}"
        settings = small_settings(out, cache_dir, seed=34).model_copy(update={"cache_dir": cache})
        run(settings)
        manifest = orjson.loads((out / "manifest.json").read_bytes())
        hashes.append([(f["path"], f["sha256"]) for f in manifest["files"]])
    assert hashes[0] == hashes[1] == hashes[2]
    # The fraud calibration, the blocks' warm-ups and the world's catalog files came from
    # the cache too.
    assert list((cache_dir / "fraud-calibration-seedless").glob("*.pickle"))
    assert list((cache_dir / "fraud-warmup").glob("*.pickle"))
    assert list((cache_dir / "catalog").glob("*.pickle"))


@pytest.mark.parametrize("override", ["writer.compression=snappy", "writer.row_group_size=1000"])
def test_kept_catalog_files_follow_the_writer_settings(
    override: str, tmp_path: Path, cache_dir: Path
) -> None:
    """The world's catalog files are kept encoded: other writer settings encode them anew."""
    run(small_settings(tmp_path / "kept", cache_dir, seed=35))
    cold, warm = (
        small_settings(tmp_path / name, cache_dir, override, seed=35).model_copy(
            update={"cache_dir": cache}
        )
        for name, cache in (("cold", None), ("warm", cache_dir))
    )
    run(cold)
    run(warm)
    for name in ("cardholders", "merchants"):
        kept = (tmp_path / "kept" / "catalog" / f"{name}.parquet").read_bytes()
        made = (tmp_path / "cold" / "catalog" / f"{name}.parquet").read_bytes()
        assert made != kept
        assert (tmp_path / "warm" / "catalog" / f"{name}.parquet").read_bytes() == made


def test_a_kept_warm_up_runs_the_same_bytes_in_any_lanes(tmp_path: Path) -> None:
    """A kept warm-up replays its card blocks: 1 and 2 workers, cold and kept, agree."""
    cache = tmp_path / "cache"
    hashes = {}
    for name, workers, cache_dir in [
        ("cold", 1, None),
        ("keep-1", 1, cache),
        ("kept-1", 1, cache),
        ("keep-2", 2, cache),
        ("kept-2", 2, cache),
    ]:
        out = tmp_path / name
        settings = small_settings(out, cache, "fraud.target_rate=0.02", seed=36)
        run(settings.model_copy(update={"cache_dir": cache_dir, "workers": workers}))
        manifest = orjson.loads((out / "manifest.json").read_bytes())
        hashes[name] = [(f["path"], f["sha256"]) for f in manifest["files"]]
        assert manifest["fraud"]["cards_blocked"] > 0  # the replay has blocks to make
    assert len({str(h) for h in hashes.values()}) == 1
    # One warm-up kept per lane layout: a lane for 1 worker, two for 2.
    assert len(list((cache / "fraud-warmup").glob("*.pickle"))) == 3


def test_a_world_over_the_size_cap_is_built_but_not_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from simulator.world import cache

    monkeypatch.setattr(cache, "MAX_BYTES", 100_000)
    settings = small_settings(tmp_path / "out", tmp_path / "cache", seed=35)
    seed = RunSeed.from_settings(settings)
    world = build_world(settings, seed)
    assert _differences(world, world_build._build(settings, seed)) == []
    assert list((tmp_path / "cache" / "world").iterdir()) == []  # no file, no leftover


def test_the_fraud_calibration_does_not_depend_on_the_seed(tmp_path: Path) -> None:
    """Two seeds, one calibration: it is drawn in a seed-0 block of the same settings."""
    from simulator.fraud.model import FraudModel
    from simulator.settings.run import RunSeed, RunSpec
    from simulator.world.build import build_world

    figures = []
    for seed in (3, 4):
        settings = small_settings(tmp_path / "out", tmp_path / "cache", seed=seed)
        run_seed = RunSeed.from_settings(settings)
        spec = RunSpec.from_settings(settings)
        world = build_world(settings, run_seed)
        model = FraudModel(
            world,
            spec.fraud,
            run_seed.streams,
            spec.slice_us,
            spec.entry_modes,
            calibration=spec.calibration,
        )
        figures.append((model.mean.tolist(), model.fast.tolist(), model.reach.tolist()))
    assert figures[0] == figures[1]
    assert min(figures[0][0]) > 0


def test_pruning_tolerates_a_world_pruned_by_another_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from simulator.world import cache

    for n in range(cache.KEEP + 3):
        (tmp_path / f"{n:02d}.pickle").write_bytes(b"x")
    gone = tmp_path / "00.pickle"
    real_stat = Path.stat

    def stat(self: Path, **kwargs: Any) -> Any:
        if self == gone:  # another process pruned it between the listing and the stat
            self.unlink(missing_ok=True)
        return real_stat(self, **kwargs)

    monkeypatch.setattr(Path, "stat", stat)
    cache._prune(tmp_path)
    assert len(list(tmp_path.glob("*.pickle"))) == cache.KEEP
