"""`txnsim stream` against a real Kafka broker: identical events, order, keys, failures, signals."""

from __future__ import annotations

import io
import signal
import time
from pathlib import Path

import fastavro
import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from schemas import load_schema
from schemas.event import LABEL_FIELDS, public_transaction_schema, transaction_schema
from schemas.partitioner import partitions_for
from simulator.cli import main
from simulator.model.engine import SliceSource
from simulator.settings.models import Settings
from simulator.settings.run import RunSeed, RunSpec
from simulator.stream.job import plan_stream, run_stream
from simulator.world.build import build_world
from tests.conftest import read_transactions, run, small_settings
from tests.kafka_read import Consumed, read_topic, spawn_stream
from tests.test_stream import fraud_overrides

pytestmark = pytest.mark.kafka

AVRO = fastavro.parse_schema(load_schema("transaction"))  # straight from the .avsc
LABEL_AVRO = fastavro.parse_schema(load_schema("fraud_label"))
# The default (stream.labels=separate): the .avsc without the label fields.
PUBLIC_AVRO = fastavro.parse_schema(
    {
        **load_schema("transaction"),
        "fields": [
            f for f in load_schema("transaction")["fields"] if f["name"] not in LABEL_FIELDS
        ],
    }
)


def _decode(records: list[Consumed], schema: dict = PUBLIC_AVRO) -> list[dict]:
    return [fastavro.schemaless_reader(io.BytesIO(r.value), schema) for r in records]


def _expected_by_partition(
    out: Path, partitions: int, *, inline: bool = False
) -> dict[int, list[dict]]:
    batch = read_transactions(out).drop_columns(["dt"])
    if not inline:
        batch = batch.drop_columns(list(LABEL_FIELDS))
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
        "kafka": {
            "bootstrap_servers": kafka_bootstrap,
            "topic": topic,
            "labels_topic": f"{topic}-labels",
            "partitions": 6,
        },
        "stream": {"speed": "max"},
    }
    settings = small_settings(tmp_path / "batch", cache_dir, **common)
    run(settings)
    stats = run_stream(settings, RunSeed.from_settings(settings))
    consumed = read_topic(kafka_bootstrap, topic)
    expected = _expected_by_partition(tmp_path / "batch", 6)
    assert stats.released == sum(len(v) for v in expected.values())
    assert sorted(consumed) == list(range(6))
    fingerprint = public_transaction_schema().fingerprint.encode()
    assert fingerprint != transaction_schema().fingerprint.encode()
    for p, records in consumed.items():
        assert _decode(records) == expected[p], f"partition {p}"
        assert [r.key for r in records] == [row["card_id"].encode() for row in expected[p]]
        assert [r.timestamp_ms for r in records] == [
            int(row["event_time"].timestamp() * 1000) for row in expected[p]
        ]
        assert all(("txnsim.schema.fingerprint", fingerprint) in r.headers for r in records)
        assert [r.offset for r in records] == list(range(len(records)))


def _label_order(row: dict) -> tuple:
    return (row["label_time"], row["transaction_id"], row["source"])


def _batch_labels(settings: Settings) -> list[dict]:
    """Labels of ``txnsim generate`` due before the stream's end, in label-time order."""
    out, end = settings.out, plan_stream(settings, None).end
    if (out / "labels").is_dir():
        table = ds.dataset(out / "labels", format="parquet", partitioning="hive").to_table()
        rows = table.drop_columns(["dt"]).to_pylist()
    else:  # pragma: no cover - before generate landed labels: the slices' labels directly
        seed = RunSeed.from_settings(settings)
        world = build_world(settings, seed)
        start = plan_stream(settings, None).slice_start
        source = SliceSource(world, RunSpec.from_settings(settings), seed, start, end)
        rows = pa.concat_tables([s.labels for s in source]).to_pylist()
    return sorted((r for r in rows if r["label_time"] < end), key=_label_order)


def test_labels_topic_equals_batch_labels_and_inline_carries_the_answer(
    kafka_bootstrap: str, topic: str, tmp_path: Path, cache_dir: Path
) -> None:
    labels_topic = f"{topic}-labels"
    settings = small_settings(
        tmp_path / "batch",
        cache_dir,
        *fraud_overrides(rate=0.02),
        days=1,
        kafka={
            "bootstrap_servers": kafka_bootstrap,
            "topic": topic,
            "labels_topic": labels_topic,
            "partitions": 3,
        },
        stream={"speed": "max", "labels": "inline"},
    )
    run(settings)
    stats = run_stream(settings, RunSeed.from_settings(settings))
    expected = _batch_labels(settings)
    assert len(expected) >= 20, "too few labels for a meaningful test"
    consumed = read_topic(kafka_bootstrap, labels_topic)
    label_print = transaction_schema("fraud_label").fingerprint.encode()
    released = []
    for p, records in consumed.items():
        rows = _decode(records, LABEL_AVRO)
        times = [r["label_time"] for r in rows]
        assert times == sorted(times), f"labels partition {p} out of label-time order"
        assert [r.key for r in records] == [row["card_id"].encode() for row in rows]
        assert [r.timestamp_ms for r in records] == [
            int(row["label_time"].timestamp() * 1000) for row in rows
        ]
        assert all(("txnsim.schema.fingerprint", label_print) in r.headers for r in records)
        released += rows
    assert stats.labels_released == len(released)
    assert sorted(released, key=_label_order) == expected
    # Inline: the transactions carry the label fields, exactly as generate wrote them.
    transactions = read_topic(kafka_bootstrap, topic)
    want = _expected_by_partition(tmp_path / "batch", 3, inline=True)
    full_print = transaction_schema().fingerprint.encode()
    for p, records in transactions.items():
        assert _decode(records, AVRO) == want[p], f"partition {p}"
        assert all(("txnsim.schema.fingerprint", full_print) in r.headers for r in records)
    assert any(r["is_fraud"] for rows in want.values() for r in rows)


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
            got = read_topic(bootstrap, topic, timeout_s=20, settled=False)
            if sum(len(v) for v in got.values()) >= at_least:
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
