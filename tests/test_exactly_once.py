"""Exactly-once delivery on a real broker: restarts, aborts, crashes and resumes.

A read_committed reader must see exactly the batch day: every transaction once, none
missing, each partition in the batch run's order (so each card's sequence unbroken).
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from simulator.cli import main
from tests.conftest import run, small_settings
from tests.kafka_broker import local_kafka_for, restart_local_kafka
from tests.kafka_read import read_topic, spawn_stream
from tests.test_stream_kafka import _decode, _expected_by_partition, _wait_for_records

pytestmark = pytest.mark.kafka

PARTITIONS = 4


@pytest.fixture(scope="module")
def batch_day(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> dict[int, list[str]]:
    """``txnsim generate``'s day for :func:`spawn_stream`'s settings: ids per partition."""
    out = tmp_path_factory.mktemp("batch")
    run(small_settings(out, cache_dir, days=1, population={"cardholders": 3000, "block_size": 500}))
    expected = _expected_by_partition(out, PARTITIONS)
    return {p: [row["transaction_id"] for row in rows] for p, rows in expected.items()}


def _committed_ids(bootstrap: str, topic: str, isolation: str = "read_committed") -> dict:
    consumed = read_topic(bootstrap, topic, isolation=isolation)
    return {p: [r["transaction_id"] for r in _decode(rs)] for p, rs in consumed.items()}


def _assert_exactly(got: dict[int, list[str]], want: dict[int, list[str]]) -> None:
    for p in range(PARTITIONS):
        ids = got.get(p, [])
        duplicated = len(ids) - len(set(ids))
        missing = len(set(want[p]) - set(ids))
        extra = len(set(ids) - set(want[p]))
        assert (duplicated, missing, extra) == (0, 0, 0), (
            f"partition {p}: {duplicated} duplicated, {missing} lost, {extra} unknown"
        )
        assert ids == want[p], f"partition {p}: out of the batch run's order"


def _reap(proc: subprocess.Popen[str]) -> None:
    """Kill ``proc`` if it still runs, and close its pipes."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=60)


def _finish(proc: subprocess.Popen[str], timeout_s: float) -> tuple[dict, str]:
    out, err = proc.communicate(timeout=timeout_s)
    assert proc.returncode == 0, err[-2000:]
    return orjson.loads(out.strip().splitlines()[-1]), err


@pytest.mark.parametrize("attempt", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_broker_restarts_mid_stream_leave_exactly_the_batch_day(
    attempt: int,
    kafka_bootstrap: str,
    topic: str,
    cache_dir: Path,
    batch_day: dict[int, list[str]],
    tmp_path: Path,
) -> None:
    """Three restarts (clean, SIGKILL, clean) during one stream; twice with ``-m slow``.

    Before transactions the idempotent producer wrote 1-14 records twice at every
    restart, so three restarts (six in CI, which runs the slow tests too) make an
    intermittent duplicate visible.
    """
    if local_kafka_for(kafka_bootstrap) is None:
        pytest.skip("the broker was not started by scripts/kafka-local, so it cannot restart")
    proc = spawn_stream(
        kafka_bootstrap,
        topic,
        cache_dir,
        "--speed",
        "2400",
        "--days",
        "1",
        "--set",
        "kafka.transactions.records=400",
        "--set",
        "kafka.request_timeout_s=20",
        log=tmp_path / "stream.log",
    )
    try:
        total = sum(len(v) for v in batch_day.values())
        for crash, share in ((False, 0.15), (True, 0.4), (False, 0.65)):
            _wait_for_records(kafka_bootstrap, topic, int(total * share), timeout_s=180)
            restart_local_kafka(kafka_bootstrap, crash=crash)
        out, _ = proc.communicate(timeout=300)
    finally:
        _reap(proc)
    assert proc.returncode == 0, (tmp_path / "stream.log").read_text()[-3000:]
    summary = orjson.loads(out.strip().splitlines()[-1])
    assert summary["released"] == total
    _assert_exactly(_committed_ids(kafka_bootstrap, topic), batch_day)


def test_a_forced_abort_is_sent_again_whole(
    kafka_bootstrap: str, topic: str, cache_dir: Path, batch_day: dict[int, list[str]]
) -> None:
    """Faults injected in the publisher path abort transactions; nothing is lost or doubled.

    The aborted records stay in the log (a read_uncommitted reader sees them), which
    proves the abort path ran and the read_committed result is not luck.
    """
    from simulator.settings.run import RunSeed
    from simulator.stream.job import run_stream

    fired: list[tuple[str, int]] = []

    def faults(stage: str, seq: int) -> None:
        if (stage, seq) in {("commit", 2), ("send", 4), ("commit", 5)} and (
            stage,
            seq,
        ) not in fired:
            fired.append((stage, seq))
            raise RuntimeError(f"injected {stage} failure in transaction {seq}")

    settings = small_settings(
        Path("unused"),
        cache_dir,
        days=1,
        kafka={
            "bootstrap_servers": kafka_bootstrap,
            "topic": topic,
            "labels_topic": f"{topic}-labels",
            "partitions": PARTITIONS,
            "transactions": {"records": 500},
        },
        stream={"speed": "max", "chunk_rows": 500},
    )
    stats = run_stream(settings, RunSeed.from_settings(settings), faults=faults)
    assert fired == [("commit", 2), ("send", 4), ("commit", 5)]
    total = sum(len(v) for v in batch_day.values())
    assert stats.released == total
    _assert_exactly(_committed_ids(kafka_bootstrap, topic), batch_day)
    written = _committed_ids(kafka_bootstrap, topic, "read_uncommitted")
    assert sum(len(v) for v in written.values()) > total, "no aborted records in the log"


def test_sigkill_then_resume_several_times_gives_exactly_the_batch_day(
    kafka_bootstrap: str, topic: str, cache_dir: Path, batch_day: dict[int, list[str]]
) -> None:
    rng = random.Random(20261202)
    flags = (
        "--speed",
        "7200",
        "--days",
        "1",
        "--set",
        "kafka.transactions.records=300",
        "--set",
        "kafka.transactions.wall_s=0.3",
    )
    total = sum(len(v) for v in batch_day.values())
    kills = 0
    for cycle in range(4):
        extra = ("--resume",) if cycle else ()
        proc = spawn_stream(kafka_bootstrap, topic, cache_dir, *flags, *extra)
        try:
            _wait_for_records(kafka_bootstrap, topic, int(total * (0.15 + 0.2 * cycle)), 180)
            time.sleep(rng.uniform(0.0, 1.5))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
        finally:
            _reap(proc)
    assert kills >= 3
    proc = spawn_stream(kafka_bootstrap, topic, cache_dir, *flags, "--resume")
    try:
        summary, _ = _finish(proc, timeout_s=300)
    finally:
        _reap(proc)
    assert summary["released"] == total
    assert summary["skipped"] > 0
    _assert_exactly(_committed_ids(kafka_bootstrap, topic), batch_day)

    # Resuming the finished stream sends nothing.
    proc = spawn_stream(kafka_bootstrap, topic, cache_dir, *flags, "--resume")
    try:
        summary, _ = _finish(proc, timeout_s=120)
    finally:
        _reap(proc)
    assert summary["released"] == total
    _assert_exactly(_committed_ids(kafka_bootstrap, topic), batch_day)


def test_resume_with_other_settings_is_refused_naming_them(
    kafka_bootstrap: str, topic: str, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = [
        "stream",
        "--seed",
        "7",
        "--days",
        "1",
        "--speed",
        "max",
        "--bootstrap-servers",
        kafka_bootstrap,
        "--topic",
        topic,
        "--labels-topic",
        f"{topic}-labels",
        "--set",
        f"cache_dir={cache_dir}",
        "--set",
        "population.block_size=500",
    ]
    assert main([*common, "--cardholders", "1000"]) == 0
    capsys.readouterr()
    before = _committed_ids(kafka_bootstrap, topic)
    assert main([*common, "--cardholders", "1200", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err
    assert "population.cardholders" in err
    assert "seed" not in err.split("differ in:")[-1]
    assert _committed_ids(kafka_bootstrap, topic) == before, "a refused resume sent something"
    assert main([*common, "--cardholders", "1000", "--resume", "--delivery", "idempotent"]) == 2
    assert "exactly_once" in capsys.readouterr().err
