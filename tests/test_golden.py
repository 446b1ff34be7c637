"""The golden run: a small fixed run whose output is pinned in the repository.

Determinism tests compare runs inside one test session; this one compares against a
hash recorded when the output last changed on purpose. A change to what the simulator
produces for a seed (any byte of any file) fails here until the hash is updated, with
the reason, in ``CHANGELOG.md``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from tests.conftest import run, small_settings

#: SHA-256 of :func:`_fingerprint` for :func:`_golden_settings`. Update only together with
#: a CHANGELOG entry saying why the output changed.
GOLDEN = "d0f1ae0c9ad88448b93de278244b0fd860e999579fcc7d18e3876d59ed179568"


def _golden_settings(out: Path, cache_dir: Path) -> object:
    return small_settings(
        out,
        cache_dir,
        "fraud.target_rate=0.01",
        seed=20261202,
        start_date="2026-11-27",  # Black Friday, then a Saturday: the calendar's busiest pair
        days=2,
        slice_hours=6,
        population={"cardholders": 2500, "block_size": 1000},
    )


def _fingerprint(out: Path) -> str:
    """What the run produced, without where it ran: every file's hash and the figures."""
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    pinned = {
        "config_hash": manifest["config_hash"],
        "files": sorted((f["path"], f["rows"], f["sha256"]) for f in manifest["files"]),
        "fraud": manifest["fraud"],
        "partitions": manifest["partitions"],
        "row_counts": manifest["row_counts"],
        "schema": manifest["schema"],
    }
    return hashlib.sha256(orjson.dumps(pinned, option=orjson.OPT_SORT_KEYS)).hexdigest()


@pytest.mark.parametrize("workers", [1, 2])
def test_the_golden_run_is_unchanged(workers: int, tmp_path: Path, cache_dir: Path) -> None:
    settings = _golden_settings(tmp_path, cache_dir)
    run(settings.model_copy(update={"workers": workers}))  # type: ignore[attr-defined]
    assert _fingerprint(tmp_path) == GOLDEN, (
        "the golden run's output changed: if on purpose, pin the new hash and say why in "
        "CHANGELOG.md"
    )
