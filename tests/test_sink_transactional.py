"""`txnsim-sink` on transactional topics, against a real broker.

Committed and aborted Kafka transactions (markers occupy offsets, aborted records stay
in the log) land exactly the committed records, and the group's commits reach the end
offsets past the final markers, both catching up and running.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from schemas.framing import RawAvro
from tests.prometheus import free_port, scrape
from tests.sink_topics import (
    SCHEMA,
    landed_transactions,
    offsets,
    produce,
    run_sink,
    sample_rows,
    sink_command,
    sink_env,
    wait_until,
)

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
        plan.append((sample_rows(first, count), commit))
        first += count
    asyncio.run(produce(kafka_bootstrap, topic, plan, partitions=_PARTITIONS, framing=RawAvro()))
    committed = pa.concat_tables([t for t, commit in plan if commit])
    aborted = pa.concat_tables([t for t, commit in plan if not commit])
    return topic, committed, aborted


@pytest.mark.kafka
def test_until_caught_up_lands_the_committed_records_and_commits_past_the_markers(
    kafka_bootstrap: str, aborted_ranges: tuple[str, pa.Table, pa.Table], tmp_path: Path
) -> None:
    topic, committed, aborted = aborted_ranges
    before = offsets(kafka_bootstrap, topic, _PARTITIONS, "g-txn")
    assert before["end"] == before["high"]  # no transaction is open
    records = committed.num_rows + aborted.num_rows
    # Markers occupy offsets: the end is past the last record of every partition.
    assert sum(before["end"].values()) > records
    lake = tmp_path / "lake"
    command = sink_command(
        kafka_bootstrap, topic, "g-txn", lake, "--until-caught-up", "--max-rows-per-file", "300"
    )
    code, summary, log, seconds = run_sink(command, tmp_path / "sink.log")
    assert code == 0, log[-3000:]
    assert seconds < 30, f"catching up took {seconds:.1f} s"
    assert summary["rows_landed"] == summary["consumed"] == committed.num_rows
    assert summary["dead_letters"] == 0
    landed = landed_transactions(lake)
    ids = landed.column("transaction_id").to_pylist()
    assert len(ids) == len(set(ids)), "duplicated records"
    assert set(ids) == set(committed.column("transaction_id").to_pylist())
    assert not set(ids) & set(aborted.column("transaction_id").to_pylist())
    assert (
        landed.select(SCHEMA.arrow.names)
        .sort_by("transaction_id")
        .equals(committed.sort_by("transaction_id"))
    )
    after = offsets(kafka_bootstrap, topic, _PARTITIONS, "g-txn")
    assert after["committed"] == after["end"] == before["end"]
    # A restart finds everything committed: it reads nothing (no markers re-read) and ends.
    code, again, log, seconds = run_sink(command, tmp_path / "sink.log")
    assert code == 0, log[-3000:]
    assert again["consumed"] == again["rows_landed"] == 0
    assert seconds < 20


@pytest.mark.kafka
def test_a_running_sink_commits_past_markers_and_its_lag_reaches_zero(
    kafka_bootstrap: str, aborted_ranges: tuple[str, pa.Table, pa.Table], tmp_path: Path
) -> None:
    topic, committed, _ = aborted_ranges
    lake, port, log = tmp_path / "lake", free_port(), tmp_path / "sink.log"
    command = sink_command(
        kafka_bootstrap,
        topic,
        "g-txn-live",
        lake,
        "--max-file-age",
        "1",
        "--metrics-port",
        str(port),
    )
    ends = offsets(kafka_bootstrap, topic, _PARTITIONS, "g-txn-live")["end"]

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
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=sink_env())
    try:
        wait_until(settled, 45, log)
        assert offsets(kafka_bootstrap, topic, _PARTITIONS, "g-txn-live")["committed"] == ends
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
