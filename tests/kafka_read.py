"""Reading a whole topic back and streaming into one, for tests (no test functions here)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


@dataclass(frozen=True)
class Consumed:
    """One record as read back."""

    partition: int
    offset: int
    key: bytes
    value: bytes
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...]


async def _partitions(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] != 0:
        raise LookupError(f"no topic {topic!r} on {bootstrap} (error {described['error_code']})")
    return sorted(p["partition"] for p in described["partitions"])


async def _read_all(
    bootstrap: str, topic: str, timeout_s: float, isolation: str
) -> dict[int, list[Consumed]]:
    partitions = await _partitions(bootstrap, topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        isolation_level=isolation,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: dict[int, list[Consumed]] = {p: [] for p in partitions}
        remaining = {tp for tp in tps if ends[tp] > 0}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while remaining and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for tp, records in batches.items():
                for r in records:
                    out[tp.partition].append(
                        Consumed(
                            tp.partition, r.offset, r.key, r.value, r.timestamp, tuple(r.headers)
                        )
                    )
            # Transaction markers take offsets: a partition is read when the position,
            # not the last record, reaches the end (the last stable offset, read_committed).
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        if remaining:
            raise TimeoutError(f"could not read {topic} to its end within {timeout_s} s")
        return out
    finally:
        await consumer.stop()


def read_topic(
    bootstrap: str,
    topic: str,
    timeout_s: float = 120.0,
    *,
    isolation: str = "read_committed",
    settled: bool = True,
) -> dict[int, list[Consumed]]:
    """Every record of ``topic`` by partition, up to the end offsets seen at start.

    ``isolation``: ``read_committed`` (what a scorer configured for exactly-once sees) or
    ``read_uncommitted`` (every record written, aborted transactions included).
    ``settled``: read_committed, first wait for the markers of committed transactions
    (:func:`wait_settled`); False to read a topic a producer is still writing.
    """
    if settled and isolation == "read_committed":
        wait_settled(bootstrap, topic, min(timeout_s, 30.0))
    return asyncio.run(_read_all(bootstrap, topic, timeout_s, isolation))


def wait_settled(bootstrap: str, topic: str, timeout_s: float = 30.0) -> None:
    """Wait until every committed transaction of ``topic`` is readable read_committed.

    A commit returns once the coordinator has logged it; the broker writes the markers
    into the partitions just after. Until then a read_committed reader stops short of
    them. For a topic no producer has an open transaction on.
    """
    asyncio.run(_settle(bootstrap, topic, timeout_s))


async def _settle(bootstrap: str, topic: str, timeout_s: float) -> None:
    partitions = await _partitions(bootstrap, topic)
    tps = [TopicPartition(topic, p) for p in partitions]
    readers = [
        AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, isolation_level=level)
        for level in ("read_committed", "read_uncommitted")
    ]
    for reader in readers:
        await reader.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            stable, high = [await r.end_offsets(tps) for r in readers]
            if stable == high:
                return
            if loop.time() >= deadline:
                raise TimeoutError(f"{topic}: transactions still open after {timeout_s} s")
            await asyncio.sleep(0.05)
    finally:
        for reader in readers:
            await reader.stop()


def spawn_stream(
    bootstrap: str, topic: str, cache_dir: Path, *extra: str, log: Path | None = None
) -> subprocess.Popen[str]:
    """``txnsim stream`` of a small population in a subprocess (JSON logs on stderr).

    Labels go to ``<topic>-labels``, so concurrent tests never share a labels topic.
    ``log``: write stderr to this file instead of a pipe. A stream that logs a lot (a
    broker restart makes the client retry loudly) fills an unread pipe and blocks.
    """
    cmd = [
        sys.executable,
        "-m",
        "simulator",
        "--log-format",
        "json",
        "stream",
        "--seed",
        "7",
        "--cardholders",
        "3000",
        "--set",
        "population.block_size=500",
        "--set",
        f"cache_dir={cache_dir}",
        "--bootstrap-servers",
        bootstrap,
        "--topic",
        topic,
        "--labels-topic",
        f"{topic}-labels",
        "--partitions",
        "4",
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TXNSIM_")}
    if log is None:
        return subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
    with log.open("ab") as err:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
