"""Topics of Avro transactions written by hand, and ``txnsim-sink`` run on them, for tests.

The records come from :func:`tests.strategies.sample_transaction`; the topics are written
with aiokafka's transactional producer (committed or aborted transactions, any framing),
and the sink runs as its own process (``python -m consumers``) like a user runs it.

This module holds no tests.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.dataset as ds

from schemas.avro_encode import TableEncoder
from schemas.event import EventSchema, transaction_schema
from schemas.framing import Framing, record_headers
from tests.strategies import sample_transaction

__all__ = [
    "SCHEMA",
    "catch_up",
    "finish",
    "landed_transactions",
    "offsets",
    "produce",
    "run_sink",
    "sample_rows",
    "sink_command",
    "sink_env",
    "wait_until",
]

SCHEMA = transaction_schema()
_DAY0 = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)


# --- Records and topics ----------------------------------------------------------------


def sample_rows(first: int, count: int) -> pa.Table:
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


async def produce(
    bootstrap: str,
    topic: str,
    plan: list[tuple[pa.Table, bool]],
    *,
    partitions: int,
    framing: Framing | Sequence[Framing],
    schema: EventSchema = SCHEMA,
) -> None:
    """Create ``topic`` and write each table in one Kafka transaction, committed or aborted.

    ``framing``: one for every transaction, or one per transaction, cycled.
    """
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    framings = [framing] if not isinstance(framing, Sequence) else list(framing)
    encoders = [TableEncoder(schema, each) for each in framings]
    headers = record_headers(schema)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"tx-{topic}")
    await producer.start()
    try:
        for number, (table, commit) in enumerate(plan):
            await producer.begin_transaction()
            ids = table.column("transaction_id").to_pylist()
            encoded = encoders[number % len(encoders)].encode(table)
            for i, (value, key) in enumerate(zip(encoded, ids, strict=True)):
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


def offsets(bootstrap: str, topic: str, partitions: int, group: str) -> dict[str, dict[int, int]]:
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


# --- Running the sink ----------------------------------------------------------------------


def sink_command(
    bootstrap: str, topic: str, group: str, dest: Path | str, *extra: str
) -> list[str]:
    """``python -m consumers`` on ``topic`` for ``group`` into ``dest`` (a folder or s3://)."""
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


def sink_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("TXNSIM_", "AWS_"))}


def run_sink(command: list[str], log: Path, timeout: float = 60) -> tuple[int, dict, str, float]:
    """Run the sink to its end: exit code, summary line, stderr and seconds taken."""
    began = time.monotonic()
    with open(log, "ab") as err:
        done = subprocess.run(
            command,
            stdout=subprocess.PIPE,
            stderr=err,
            env=sink_env(),
            timeout=timeout,
            check=False,
        )
    seconds = time.monotonic() - began
    lines = done.stdout.decode().strip().splitlines()
    summary = orjson.loads(lines[-1]) if done.returncode == 0 and lines else {}
    return done.returncode, summary, log.read_text(), seconds


def catch_up(
    bootstrap: str, topic: str, group: str, lake: Path, log: Path, *extra: str
) -> tuple[dict, str]:
    """``txnsim-sink --until-caught-up`` into ``lake``, which must exit 0: summary and log."""
    command = sink_command(bootstrap, topic, group, lake, "--until-caught-up", *extra)
    code, summary, text, _ = run_sink(command, log)
    assert code == 0, text[-3000:]
    return summary, text


def landed_transactions(root: Path) -> pa.Table:
    return ds.dataset(root / "transactions", format="parquet", partitioning="hive").to_table()


def finish(proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> bytes:
    """Wait for the sink ``proc`` to exit; its standard output.

    A sink still running after ``timeout_s`` is asked for its threads' stacks (SIGUSR1)
    and the test fails with the end of its log, stacks included: where it waited.

    Raises:
        AssertionError: If the sink did not exit in time.
    """
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(2)
        tail = log.read_text()[-8000:] if log.exists() else "(no log)"
        raise AssertionError(
            f"the sink did not exit within {timeout_s:g} s; its log ends:\n{tail}"
        ) from None
    return out


def wait_until(condition: Callable[[], bool], timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise TimeoutError(f"condition not met in {timeout_s} s; sink log:\n{log.read_text()[-3000:]}")
