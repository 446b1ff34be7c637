"""`txnsim stream` against a real Kafka broker: identical events, order, keys, failures, signals."""

from __future__ import annotations

import io
import signal
import time
from pathlib import Path

import fastavro
import orjson
import pytest

from schemas import load_schema
from simulator.cli import main
from simulator.partitioner import partitions_for
from simulator.schema import transaction_schema
from simulator.seeding import Streams
from simulator.stream_job import run_stream
from tests.conftest import read_transactions, run, small_settings
from tests.kafka_broker import local_kafka_for, restart_local_kafka
from tests.kafka_read import Consumed, read_topic, spawn_stream

pytestmark = pytest.mark.kafka

AVRO = fastavro.parse_schema(load_schema("transaction"))  # straight from the .avsc


def _decode(records: list[Consumed]) -> list[dict]:
    return [fastavro.schemaless_reader(io.BytesIO(r.value), AVRO) for r in records]


def _expected_by_partition(out: Path, partitions: int) -> dict[int, list[dict]]:
    batch = read_transactions(out).drop_columns(["dt"])
    where = partitions_for(batch.column("card_id").combine_chunks(), partitions).tolist()
    expected: dict[int, list[dict]] = {p: [] for p in range(partitions)}
    for row, p in zip(batch.to_pylist(), where, strict=True):
        expected[p].append(row)
    return expected


def test_stream_equals_generate_on_a_real_broker(
    kafka_bootstrap: str, topic: str, tmp_path: Path, cache_dir: Path
) -> None:
    common = {
        "days": 1,
        "kafka": {"bootstrap_servers": kafka_bootstrap, "topic": topic, "partitions": 6},
        "stream": {"speed": "max"},
    }
    settings = small_settings(tmp_path / "batch", cache_dir, **common)
    run(settings)
    stats = run_stream(settings, Streams(7))
    consumed = read_topic(kafka_bootstrap, topic)
    expected = _expected_by_partition(tmp_path / "batch", 6)
    assert stats.released == sum(len(v) for v in expected.values())
    assert sorted(consumed) == list(range(6))
    fingerprint = transaction_schema().fingerprint.encode()
    for p, records in consumed.items():
        assert _decode(records) == expected[p], f"partition {p}"
        assert [r.key for r in records] == [row["card_id"].encode() for row in expected[p]]
        assert [r.timestamp_ms for r in records] == [
            int(row["event_time"].timestamp() * 1000) for row in expected[p]
        ]
        assert all(("txnsim.schema.fingerprint", fingerprint) in r.headers for r in records)
        assert [r.offset for r in records] == list(range(len(records)))


def test_unreachable_broker_is_a_clear_error_within_the_timeout(
    tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    began = time.monotonic()
    code = main(
        [
            "stream",
            "--bootstrap-servers",
            "127.0.0.1:1",
            "--cardholders",
            "500",
            "--seed",
            "1",
            "--set",
            "kafka.connect_timeout_s=3",
            "--set",
            f"cache_dir={cache_dir}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "127.0.0.1:1" in err
    assert "kafka.bootstrap_servers" in err
    assert time.monotonic() - began < 60


def _wait_for_records(bootstrap: str, topic: str, at_least: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if sum(len(v) for v in read_topic(bootstrap, topic, timeout_s=20).values()) >= at_least:
                return
        except Exception:
            pass
        time.sleep(1)
    raise TimeoutError(f"fewer than {at_least} records on {topic} after {timeout_s} s")


def test_sigterm_stops_releasing_flushes_and_exits_0(
    kafka_bootstrap: str, topic: str, cache_dir: Path
) -> None:
    proc = spawn_stream(kafka_bootstrap, topic, cache_dir, "--speed", "600", "--days", "1")
    try:
        _wait_for_records(kafka_bootstrap, topic, 50, timeout_s=120)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    summary = orjson.loads(out.strip().splitlines()[-1])
    assert summary["stopped_early"] is True
    consumed = read_topic(kafka_bootstrap, topic)
    ids = [r["transaction_id"] for records in consumed.values() for r in _decode(records)]
    assert len(ids) == summary["released"] > 0
    assert len(set(ids)) == len(ids)


@pytest.mark.xfail(
    strict=False,
    reason="known defect: across a broker restart aiokafka's idempotent producer was measured "
    "to write 1-4 duplicate records (no loss, no reorder); exactly-once needs transactions",
)
def test_broker_restart_mid_stream_loses_and_duplicates_nothing(
    kafka_bootstrap: str, topic: str, tmp_path: Path, cache_dir: Path
) -> None:
    if local_kafka_for(kafka_bootstrap) is None:
        pytest.skip(
            "the broker was not started by scripts/kafka-local, so it cannot be restarted here"
        )
    proc = spawn_stream(
        kafka_bootstrap,
        topic,
        cache_dir,
        "--speed",
        "3600",
        "--days",
        "1",
        "--set",
        "kafka.request_timeout_s=120",
    )
    try:
        _wait_for_records(kafka_bootstrap, topic, 100, timeout_s=120)
        restart_local_kafka(kafka_bootstrap, crash=False)
        _out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    if proc.returncode != 0:
        # Allowed by the contract only as a loud failure: a clear message, never silence.
        assert "txnsim:" in err, err
        pytest.fail(f"stream exited {proc.returncode} after the restart: {err[-500:]}")
    run(
        small_settings(
            tmp_path, cache_dir, days=1, population={"cardholders": 3000, "block_size": 500}
        )
    )
    expected = _expected_by_partition(tmp_path, 4)
    consumed = read_topic(kafka_bootstrap, topic)
    for p, records in consumed.items():
        got = [r["transaction_id"] for r in _decode(records)]
        want = [r["transaction_id"] for r in expected[p]]
        duplicates = len(got) - len(set(got))
        missing = len(set(want) - set(got))
        assert (duplicates, missing) == (0, 0), (
            f"partition {p}: {duplicates} duplicated, {missing} lost"
        )
        assert got == want, f"partition {p}: reordered"
