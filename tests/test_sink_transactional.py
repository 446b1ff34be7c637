"""`txnsim-sink` on transactional topics, against a real broker.

Committed and aborted Kafka transactions (markers occupy offsets, aborted records stay
in the log) land exactly the committed records, and the group's commits reach the end
offsets past the final markers, both catching up and running.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from schemas.avro_encode import TableEncoder
from schemas.event import EventSchema, transaction_schema
from schemas.framing import Framing, RawAvro, record_headers
from tests.prometheus import free_port, scrape
from tests.strategies import sample_transaction

SCHEMA = transaction_schema()
_DAY0 = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
_META = b"txnsim.sink."


# --- Records and topics ---------------------------------------------------------------------


def _rows(first: int, count: int) -> pa.Table:
    """``count`` valid transactions with ids ``first...``, over about two UTC days."""
    rows = []
    for n in range(first, first + count):
        fraud = n % 41 == 0
        rows.append(
            sample_transaction(
                transaction_id=f"{n:016x}",
                event_time=_DAY0 + dt.timedelta(seconds=53 * n),
                card_id=f"card-{n % 97}",
                amount=Decimal(n % 5000 + 1) / 100,
                merchant_city=None if n % 7 == 0 else "Lyon",
                previous_transaction_id=f"{n - 1:016x}" if n % 3 else None,
                is_fraud=fraud,
                fraud_scenario="card_testing" if fraud else None,
                fraud_case_id=f"{n:016x}" if fraud else None,
                label_available_at=_DAY0 + dt.timedelta(days=3) if fraud else None,
            )
        )
    return pa.Table.from_pylist(rows, schema=SCHEMA.arrow)


async def _produce(
    bootstrap: str,
    topic: str,
    plan: list[tuple[pa.Table, bool]],
    *,
    partitions: int,
    framing: Framing,
    schema: EventSchema = SCHEMA,
) -> None:
    """Create ``topic`` and write each table in one Kafka transaction, committed or aborted."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    encoder = TableEncoder(schema, framing)
    headers = record_headers(schema)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"tx-{topic}")
    await producer.start()
    try:
        for table, commit in plan:
            await producer.begin_transaction()
            ids = table.column("transaction_id").to_pylist()
            for i, (value, key) in enumerate(zip(encoder.encode(table), ids, strict=True)):
                await producer.send(
                    topic, value=value, key=key.encode(), partition=i % partitions, headers=headers
                )
            await producer.flush()  # the records are in the log, whatever becomes of them
            if commit:
                await producer.commit_transaction()
            else:
                await producer.abort_transaction()
    finally:
        await producer.stop()


def _offsets(bootstrap: str, topic: str, partitions: int, group: str) -> dict[str, dict[int, int]]:
    """Per partition: the read_committed end, the high watermark, and the group's commit."""
    from confluent_kafka import Consumer, TopicPartition

    tps = [TopicPartition(topic, p) for p in range(partitions)]
    committed_reader = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_committed"}
    )
    uncommitted_reader = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_uncommitted"}
    )
    try:
        return {
            "end": {
                tp.partition: committed_reader.get_watermark_offsets(tp, timeout=30)[1]
                for tp in tps
            },
            "high": {
                tp.partition: uncommitted_reader.get_watermark_offsets(tp, timeout=30)[1]
                for tp in tps
            },
            "committed": {
                tp.partition: tp.offset for tp in committed_reader.committed(tps, timeout=30)
            },
        }
    finally:
        committed_reader.close()
        uncommitted_reader.close()


# --- Running the sink ---------------------------------------------------------------------------


def _command(bootstrap: str, topic: str, group: str, dest: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "consumers",
        "--bootstrap-servers",
        bootstrap,
        "--topic",
        topic,
        "--group",
        group,
        "--dest",
        str(dest),
        *extra,
    ]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("TXNSIM_", "AWS_"))}


def _sink(command: list[str], log: Path, timeout: float = 60) -> tuple[int, dict, str, float]:
    """Run the sink to its end: exit code, summary line, stderr and seconds taken."""
    began = time.monotonic()
    with open(log, "ab") as err:
        done = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=err, env=_env(), timeout=timeout, check=False
        )
    seconds = time.monotonic() - began
    lines = done.stdout.decode().strip().splitlines()
    summary = orjson.loads(lines[-1]) if done.returncode == 0 and lines else {}
    return done.returncode, summary, log.read_text(), seconds


def _landed(root: Path) -> pa.Table:
    return ds.dataset(root / "transactions", format="parquet", partitioning="hive").to_table()


def _wait_until(condition: Callable[[], bool], timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise TimeoutError(f"condition not met in {timeout_s} s; sink log:\n{log.read_text()[-3000:]}")


# --- (a) Committed and aborted transactions ---------------------------------------------------

_PARTITIONS = 2


@pytest.fixture(scope="module")
def aborted_ranges(kafka_bootstrap: str) -> tuple[str, pa.Table, pa.Table]:
    """A topic of committed and aborted transactions, ending in an aborted one.

    Returns the topic, the committed rows and the aborted rows.
    """
    topic = f"txn-{uuid.uuid4().hex[:8]}"
    rng = random.Random(20261124)
    # The first transaction is aborted (aborted records at offset 0), two aborts follow
    # each other, and the last is aborted (nothing but an aborted range after the last
    # committed record).
    outcomes = [False, True, True, False, True, False, False, True, True, False, True, False]
    plan, first = [], 0
    for commit in outcomes:
        count = rng.randint(120, 420)
        plan.append((_rows(first, count), commit))
        first += count
    asyncio.run(_produce(kafka_bootstrap, topic, plan, partitions=_PARTITIONS, framing=RawAvro()))
    committed = pa.concat_tables([t for t, commit in plan if commit])
    aborted = pa.concat_tables([t for t, commit in plan if not commit])
    return topic, committed, aborted


@pytest.mark.kafka
def test_until_caught_up_lands_the_committed_records_and_commits_past_the_markers(
    kafka_bootstrap: str, aborted_ranges: tuple[str, pa.Table, pa.Table], tmp_path: Path
) -> None:
    topic, committed, aborted = aborted_ranges
    before = _offsets(kafka_bootstrap, topic, _PARTITIONS, "g-txn")
    assert before["end"] == before["high"]  # no transaction is open
    records = committed.num_rows + aborted.num_rows
    # Markers occupy offsets: the end is past the last record of every partition.
    assert sum(before["end"].values()) > records
    lake = tmp_path / "lake"
    command = _command(
        kafka_bootstrap, topic, "g-txn", lake, "--until-caught-up", "--max-rows-per-file", "300"
    )
    code, summary, log, seconds = _sink(command, tmp_path / "sink.log")
    assert code == 0, log[-3000:]
    assert seconds < 30, f"catching up took {seconds:.1f} s"
    assert summary["rows_landed"] == summary["consumed"] == committed.num_rows
    assert summary["dead_letters"] == 0
    landed = _landed(lake)
    ids = landed.column("transaction_id").to_pylist()
    assert len(ids) == len(set(ids)), "duplicated records"
    assert set(ids) == set(committed.column("transaction_id").to_pylist())
    assert not set(ids) & set(aborted.column("transaction_id").to_pylist())
    assert (
        landed.select(SCHEMA.arrow.names)
        .sort_by("transaction_id")
        .equals(committed.sort_by("transaction_id"))
    )
    after = _offsets(kafka_bootstrap, topic, _PARTITIONS, "g-txn")
    assert after["committed"] == after["end"] == before["end"]
    # A restart finds everything committed: it reads nothing (no markers re-read) and ends.
    code, again, log, seconds = _sink(command, tmp_path / "sink.log")
    assert code == 0, log[-3000:]
    assert again["consumed"] == again["rows_landed"] == 0
    assert seconds < 20


@pytest.mark.kafka
def test_a_running_sink_commits_past_markers_and_its_lag_reaches_zero(
    kafka_bootstrap: str, aborted_ranges: tuple[str, pa.Table, pa.Table], tmp_path: Path
) -> None:
    topic, committed, _ = aborted_ranges
    lake, port, log = tmp_path / "lake", free_port(), tmp_path / "sink.log"
    command = _command(
        kafka_bootstrap,
        topic,
        "g-txn-live",
        lake,
        "--max-file-age",
        "1",
        "--metrics-port",
        str(port),
    )
    ends = _offsets(kafka_bootstrap, topic, _PARTITIONS, "g-txn-live")["end"]

    def settled() -> bool:
        try:
            samples = scrape(port)
        except OSError:
            return False
        rows = sum(v for _, v in samples.get("txnsim_sink_rows_written_total", []))
        lag = {
            labels["partition"]: v
            for labels, v in samples.get("txnsim_sink_commit_lag_records", [])
        }
        return rows == committed.num_rows and lag == {str(p): 0 for p in range(_PARTITIONS)}

    with open(log, "ab") as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=_env())
    try:
        _wait_until(settled, 45, log)
        assert _offsets(kafka_bootstrap, topic, _PARTITIONS, "g-txn-live")["committed"] == ends
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
