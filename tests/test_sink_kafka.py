"""`txnsim-sink` against a real Kafka broker and a real S3 server: exactly once, end to end.

One topic of more than 200,000 events is streamed once per module with `txnsim stream`;
every test lands it with its own consumer group into its own bucket or folder, and
checks the landing by transaction id against `txnsim generate` for the same seed, and
by the offset ranges the files record (contiguous, disjoint, complete).
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import random
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from schemas.event import LABEL_FIELDS, public_transaction_schema, transaction_schema
from schemas.parquet import COMPRESS_MIN_ROWS
from simulator.settings.run import RunSeed
from simulator.stream.job import run_stream
from tests.conftest import read_transactions, run, small_settings
from tests.kafka_broker import local_kafka_for, restart_local_kafka
from tests.kafka_read import read_topic
from tests.prometheus import free_port, scrape, scrape_while
from tests.s3_server import S3Server
from tests.sink_topics import finish, sink_command, sink_env, wait_until
from tests.test_stream import fraud_overrides

pytestmark = pytest.mark.kafka

PARTITIONS = 6
META = b"txnsim.sink."


@dataclass(frozen=True)
class Streamed:
    """A topic streamed by `txnsim stream`, and the same day from `txnsim generate`."""

    bootstrap: str
    topic: str
    expected: pa.Table  # generate's rows, sorted by transaction_id
    ends: dict[int, int]  # end offset per partition


@pytest.fixture(scope="module")
def streamed(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, cache_dir: Path
) -> Streamed:
    topic = f"sink-{uuid.uuid4().hex[:8]}"
    settings = small_settings(
        tmp_path_factory.mktemp("batch"),
        cache_dir,
        population={"cardholders": 170_000, "block_size": 8192},
        days=1,
        start_date="2026-11-24",
        kafka={
            "bootstrap_servers": kafka_bootstrap,
            "topic": topic,
            "labels_topic": f"{topic}-labels",
            "partitions": PARTITIONS,
        },
        stream={"speed": "max"},  # labels separate: the public schema, as a scorer sees it
    )
    run(settings)
    stats = run_stream(settings, RunSeed.from_settings(settings))
    expected = read_transactions(settings.out).sort_by("transaction_id")
    assert stats.released == expected.num_rows >= 200_000
    return Streamed(kafka_bootstrap, topic, expected, _end_offsets(kafka_bootstrap, topic))


def _end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe"})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in range(PARTITIONS)
        }
    finally:
        consumer.close()


# --- Running the sink ---------------------------------------------------------------------


def _sink_command(
    streamed: Streamed, group: str, dest: str, *extra: str, bootstrap: str | None = None
) -> list[str]:
    return sink_command(bootstrap or streamed.bootstrap, streamed.topic, group, dest, *extra)


def _env(s3: S3Server | None) -> dict[str, str]:
    return {**sink_env(), **(s3.env() if s3 else {})}


def _spawn(command: list[str], s3: S3Server | None, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as err:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, env=_env(s3))


def _reap(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process if it still runs, and release its pipe."""
    if proc.poll() is None:
        proc.kill()
    if proc.stdout is not None:
        proc.stdout.close()
    proc.wait(timeout=60)


def _land(command: list[str], s3: S3Server | None, log: Path, timeout: float = 300) -> dict:
    """Run the sink to completion; its summary line."""
    proc = _spawn(command, s3, log)
    try:
        out = finish(proc, log, timeout)
    finally:
        _reap(proc)
    assert proc.returncode == 0, log.read_text()[-3000:]
    return orjson.loads(out.strip().splitlines()[-1])


# --- Reading what landed --------------------------------------------------------------------


def _download(s3: S3Server, bucket: str, prefix: str, into: Path) -> Path:
    client = s3.client()
    for key in s3.keys(bucket, prefix):
        target = into / key[len(prefix) :].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, key, str(target))
    return into


def _assert_exactly_once(root: Path, streamed: Streamed, dead: int = 0) -> pa.Table:
    """Every record landed once: by id against generate, and by the files' offset ranges."""
    files = sorted((root / "transactions").rglob("*.parquet"))
    ranges: dict[int, list[tuple[int, int, int]]] = {}
    for path in files:
        meta = pq.read_metadata(path)
        kv = {
            k[len(META) :].decode(): v.decode()
            for k, v in meta.metadata.items()
            if k.startswith(META)
        }
        assert kv["topic"] == streamed.topic
        first, last, rows = int(kv["first-offset"]), int(kv["last-offset"]), int(kv["rows"])
        assert rows == meta.num_rows
        assert path.name == f"{streamed.topic}-{int(kv['partition']):05d}-{first:020d}.parquet"
        ranges.setdefault(int(kv["partition"]), []).append((first, last, rows))
    for partition, spans in ranges.items():
        spans.sort()
        for (_, last, _), (first, _, _) in itertools.pairwise(spans):
            assert first > last, f"partition {partition}: overlapping files {spans}"
    landed = ds.dataset(root / "transactions", format="parquet", partitioning="hive").to_table()
    ids = landed.column("transaction_id")
    assert landed.num_rows + dead == streamed.expected.num_rows, "lost or duplicated rows"
    assert len(pa.compute.unique(ids)) == landed.num_rows, "duplicated transaction ids"
    assert not set(LABEL_FIELDS) & set(landed.column_names), "the stream leaked the answer"
    if dead == 0:
        landed = landed.sort_by("transaction_id")
        columns = [c for c in streamed.expected.column_names if c not in LABEL_FIELDS]
        assert landed.select(columns).equals(streamed.expected.select(columns))
    return landed


# --- Tests -------------------------------------------------------------------------------------


def test_sink_lands_exactly_what_generate_writes_on_s3(
    streamed: Streamed, s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.bucket(f"lake-{uuid.uuid4().hex[:8]}")
    summary = _land(
        _sink_command(streamed, "g-equal", f"s3://{bucket}/landing", "--until-caught-up"),
        s3_server,
        tmp_path / "sink.log",
    )
    assert summary["rows_landed"] == streamed.expected.num_rows
    assert summary["dead_letters"] == 0
    root = _download(s3_server, bucket, "landing", tmp_path / "lake")
    _assert_exactly_once(root, streamed)
    # Parquet as the lake expects: zstd (small files stored plain), the Avro-derived
    # schema and its fingerprint.
    files = sorted((root / "transactions").rglob("*.parquet"))
    codecs = {
        (
            pq.read_metadata(f).num_rows >= COMPRESS_MIN_ROWS,
            pq.read_metadata(f).row_group(0).column(0).compression,
        )
        for f in files
    }
    assert codecs <= {(True, "ZSTD"), (False, "UNCOMPRESSED")}
    meta = pq.read_metadata(files[0])
    assert (
        meta.metadata[b"txnsim.sink.schema-fingerprint"]
        == meta.metadata[b"avro.schema.fingerprint"]
        == public_transaction_schema().fingerprint.encode()
    )
    # Landing again with the same group is a no-op: everything is committed.
    again = _land(
        _sink_command(streamed, "g-equal", f"s3://{bucket}/landing", "--until-caught-up"),
        s3_server,
        tmp_path / "sink.log",
    )
    assert again["rows_landed"] == 0


@pytest.mark.slow
def test_kill_9_at_random_points_loses_and_duplicates_nothing(
    streamed: Streamed, s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.bucket(f"lake-{uuid.uuid4().hex[:8]}")
    command = _sink_command(
        streamed,
        "g-crash",
        f"s3://{bucket}/lake",
        # Small files, an age cut and a small memory budget: many commits, and cuts that
        # differ on replay (the landed file must win).
        "--max-rows-per-file",
        "4000",
        "--max-file-age",
        "1.5",
        "--set",
        "memory_budget_bytes=4194304",
    )
    rng = random.Random(20261125)
    log = tmp_path / "sink.log"

    def landed() -> int:
        return len(s3_server.keys(bucket, "lake/transactions"))

    for _ in range(3):
        before = landed()
        proc = _spawn(command, s3_server, log)
        try:
            wait_until(lambda n=before: landed() > n, 180, log)  # landing is under way...
            time.sleep(rng.uniform(0.0, 2.5))  # ...and it dies at a random point of it
            assert proc.poll() is None, log.read_text()[-3000:]
        finally:
            _reap(proc)  # SIGKILL
    _land([*command, "--until-caught-up"], s3_server, log)
    root = _download(s3_server, bucket, "lake", tmp_path / "lake")
    _assert_exactly_once(root, streamed)


def test_s3_outage_pauses_landing_and_it_resumes(
    streamed: Streamed, s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.bucket(f"lake-{uuid.uuid4().hex[:8]}")
    command = _sink_command(
        streamed,
        "g-outage",
        f"s3://{bucket}/lake",
        "--until-caught-up",
        "--max-rows-per-file",
        "5000",
        "--set",
        "retry_cap_s=1",
    )
    log = tmp_path / "sink.log"
    proc = _spawn(command, s3_server, log)
    try:
        wait_until(lambda: len(s3_server.keys(bucket, "lake/transactions")) >= 3, 120, log)
        with s3_server.outage():
            time.sleep(10)
        out = finish(proc, log, 300)
    finally:
        _reap(proc)
    assert proc.returncode == 0, log.read_text()[-3000:]
    summary = orjson.loads(out.strip().splitlines()[-1])
    assert summary["store_retries"] > 0, "the outage was not noticed"
    assert "destination unavailable; retrying" in log.read_text()
    root = _download(s3_server, bucket, "lake", tmp_path / "lake")
    _assert_exactly_once(root, streamed)


def test_broker_restart_mid_landing(streamed: Streamed, tmp_path: Path) -> None:
    if local_kafka_for(streamed.bootstrap) is None:
        pytest.skip("the broker was not started by scripts/kafka-local, so it cannot be restarted")
    command = _sink_command(
        streamed,
        "g-restart",
        (tmp_path / "lake").as_uri(),
        "--until-caught-up",
        "--max-rows-per-file",
        "5000",
    )
    log = tmp_path / "sink.log"
    proc = _spawn(command, None, log)
    try:
        wait_until(lambda: len(list((tmp_path / "lake").rglob("*.parquet"))) >= 3, 120, log)
        restart_local_kafka(streamed.bootstrap)
        finish(proc, log, 300)
    finally:
        _reap(proc)
    assert proc.returncode == 0, log.read_text()[-3000:]
    _assert_exactly_once(tmp_path / "lake", streamed)


def test_a_stop_during_a_broker_outage_is_heard_and_loses_nothing(
    streamed: Streamed, tmp_path: Path
) -> None:
    # Commits wait for the group coordinator; the loop must not. A sink asked to stop
    # while the broker is down hears it at once, lands what it holds and exits (its last
    # commit unconfirmed, its close abandoned); the next run re-reads from the last
    # confirmed commit and adopts what landed. (A commit that blocked the loop held the
    # signal until the session timed out; librdkafka's close can wait for the broker.)
    broker = local_kafka_for(streamed.bootstrap)
    if broker is None:
        pytest.skip("the broker was not started by scripts/kafka-local, so it cannot be stopped")
    lake = tmp_path / "lake"
    command = _sink_command(
        streamed,
        "g-outage-stop",
        lake.as_uri(),
        "--max-rows-per-file",
        "5000",
        "--set",
        "kafka.connect_timeout_s=5",
        "--set",
        "kafka.session_timeout_s=15",
    )
    log = tmp_path / "sink.log"
    proc = _spawn(command, None, log)
    try:
        wait_until(lambda: len(list(lake.rglob("*.parquet"))) >= 3, 120, log)
        broker.stop(keep_data=True)
        try:
            time.sleep(3)  # what it holds lands; its commit waits for the coordinator
            # Where it waits, on demand: every thread's stack in its log, and it goes on.
            proc.send_signal(signal.SIGUSR1)
            wait_until(lambda: "most recent call first" in log.read_text(), 5, log)
            assert proc.poll() is None, log.read_text()[-3000:]
            proc.send_signal(signal.SIGTERM)
            wait_until(lambda: "signal received" in log.read_text(), 5, log)
            # Its last commit and the close wait for a coordinator that is not there:
            # each for connect_timeout_s (5 s), not until the broker is back.
            finish(proc, log, 30)
        finally:
            broker.start()
    finally:
        _reap(proc)
    assert proc.returncode == 0, log.read_text()[-3000:]
    _land(_sink_command(streamed, "g-outage-stop", lake.as_uri(), "--until-caught-up"), None, log)
    _assert_exactly_once(lake, streamed)


def test_members_joining_and_leaving_the_group(streamed: Streamed, tmp_path: Path) -> None:
    dest = (tmp_path / "lake").as_uri()
    small = ("--max-rows-per-file", "3000", "--max-file-age", "2")
    log = tmp_path / "sink.log"

    def assignments() -> int:
        return log.read_text().count('"partitions assigned"') if log.exists() else 0

    first = _spawn(_sink_command(streamed, "g-members", dest, *small), None, log)
    try:
        wait_until(lambda: len(list((tmp_path / "lake").rglob("*.parquet"))) >= 2, 120, log)
        second = _spawn(_sink_command(streamed, "g-members", dest, *small), None, log)
        try:
            # The second member joins: both are assigned a share (two more assignments).
            wait_until(lambda: assignments() >= 3, 120, log)
            time.sleep(3)  # both landing
            first.send_signal(signal.SIGTERM)  # the first leaves: another rebalance
            first.communicate(timeout=120)
            assert first.returncode == 0, log.read_text()[-3000:]
            wait_until(lambda: assignments() >= 4, 120, log)
            time.sleep(3)
            second.send_signal(signal.SIGTERM)
            second.communicate(timeout=120)
            assert second.returncode == 0, log.read_text()[-3000:]
        finally:
            _reap(second)
    finally:
        _reap(first)
    _land(_sink_command(streamed, "g-members", dest, "--until-caught-up"), None, log)
    _assert_exactly_once(tmp_path / "lake", streamed)


def test_poison_message_is_dead_lettered_and_the_rest_lands(
    kafka_bootstrap: str, tmp_path: Path, cache_dir: Path
) -> None:
    from confluent_kafka import Producer

    topic = f"poison-{uuid.uuid4().hex[:8]}"
    settings = small_settings(
        tmp_path / "batch",
        cache_dir,
        population={"cardholders": 2000, "block_size": 500},
        kafka={
            "bootstrap_servers": kafka_bootstrap,
            "topic": topic,
            "labels_topic": f"{topic}-labels",
            "partitions": 1,
        },
        stream={"speed": "max"},
    )
    half = run_stream(settings, RunSeed.from_settings(settings)).released
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    poison = b"\x02\xff not avro at all"
    delivered: list[int] = []  # transaction markers take offsets: ask where it landed
    producer.produce(
        topic,
        value=poison,
        key=b"k",
        headers=[("h", b"v")],
        on_delivery=lambda err, msg: delivered.append(msg.offset()),
    )
    producer.flush(30)
    assert len(delivered) == 1
    # Past the first stream's records. Its commit marker may come before or after: the
    # broker writes markers after the commit returns (one transaction here, one marker).
    assert delivered[0] >= half
    other = settings.model_copy(update={"seed": 8})
    run_stream(other, RunSeed.from_settings(other))  # another seed: new ids after the poison
    dest = tmp_path / "lake"
    summary = _land(
        [
            sys.executable,
            "-m",
            "consumers",
            "--bootstrap-servers",
            kafka_bootstrap,
            "--topic",
            topic,
            "--group",
            "g-poison",
            "--dest",
            str(dest),
            "--until-caught-up",
        ],
        None,
        tmp_path / "sink.log",
    )
    assert summary["dead_letters"] == 1
    letters = list((dest / "_dlq").rglob("*.json"))
    assert len(letters) == 1
    letter = orjson.loads(letters[0].read_bytes())
    assert base64.b64decode(letter["value_base64"]) == poison
    assert letter["metadata"] == {"topic": topic, "partition": "0", "offset": str(delivered[0])}
    assert letter["headers"] == [["h", base64.b64encode(b"v").decode()]]
    assert "does not decode" in letter["error"] or "bytes left" in letter["error"]
    landed = ds.dataset(dest / "transactions", format="parquet", partitioning="hive").to_table()
    assert landed.num_rows == summary["rows_landed"] == summary["consumed"] - 1


def test_each_writer_schema_lands_in_its_own_files(
    kafka_bootstrap: str, tmp_path: Path, cache_dir: Path
) -> None:
    """Full (inline), public (separate) and header-less records: one schema per file."""
    from confluent_kafka import Producer

    topic = f"schemas-{uuid.uuid4().hex[:8]}"
    settings = small_settings(
        tmp_path / "batch",
        cache_dir,
        population={"cardholders": 1000, "block_size": 500},
        kafka={
            "bootstrap_servers": kafka_bootstrap,
            "topic": topic,
            "labels_topic": f"{topic}-labels",
            "partitions": 1,
        },
        stream={"speed": "max", "labels": "inline"},
    )
    inline = run_stream(settings, RunSeed.from_settings(settings)).released
    public_settings = settings.model_copy(
        update={"stream": settings.stream.model_copy(update={"labels": "separate"})}
    )
    public_settings = public_settings.model_copy(update={"seed": 8})
    public = run_stream(public_settings, RunSeed.from_settings(public_settings)).released
    # A full-schema value without any header (an older producer): decoded with the full schema.
    first = read_topic(kafka_bootstrap, topic)[0][0]
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(topic, value=first.value, key=first.key, timestamp=first.timestamp_ms)
    producer.flush(30)
    dest = tmp_path / "lake"
    summary = _land(
        [
            sys.executable,
            "-m",
            "consumers",
            "--bootstrap-servers",
            kafka_bootstrap,
            "--topic",
            topic,
            "--group",
            "g-schemas",
            "--dest",
            str(dest),
            "--until-caught-up",
        ],
        None,
        tmp_path / "sink.log",
    )
    assert summary["dead_letters"] == 0
    assert summary["rows_landed"] == inline + public + 1
    full, stripped = transaction_schema(), public_transaction_schema()
    spans: dict[str, list[tuple[int, int]]] = {full.fingerprint: [], stripped.fingerprint: []}
    for path in sorted((dest / "transactions").rglob("*.parquet")):
        table = pq.read_table(path)
        meta = table.schema.metadata
        fingerprint = meta[META + b"schema-fingerprint"].decode()
        assert meta[b"avro.schema.fingerprint"].decode() == fingerprint
        schema = full if fingerprint == full.fingerprint else stripped
        assert table.schema.remove_metadata().equals(schema.arrow.remove_metadata())
        first_offset, last = int(meta[META + b"first-offset"]), int(meta[META + b"last-offset"])
        spans[fingerprint].append((first_offset, last))
    # The records are full, then public, then the one header-less (full) record; their
    # offsets have gaps where transaction markers sit.
    offsets = [r.offset for r in read_topic(kafka_bootstrap, topic)[0]]
    assert len(offsets) == inline + public + 1

    def covered(fingerprint: str) -> list[int]:
        return [o for o in offsets if any(a <= o <= b for a, b in spans[fingerprint])]

    assert covered(full.fingerprint) == [*offsets[:inline], offsets[-1]]
    assert covered(stripped.fingerprint) == offsets[inline : inline + public]


def test_the_labels_topic_lands_like_generate_writes_labels(
    kafka_bootstrap: str, tmp_path: Path, cache_dir: Path
) -> None:
    """Labels land in labels/dt=<label date>, equal to generate's labels due within the day."""
    topic = f"labelled-{uuid.uuid4().hex[:8]}"
    settings = small_settings(
        tmp_path / "batch",
        cache_dir,
        *fraud_overrides(),
        population={"cardholders": 3000, "block_size": 500},
        kafka={
            "bootstrap_servers": kafka_bootstrap,
            "topic": topic,
            "labels_topic": f"{topic}-labels",
            "partitions": 2,
        },
        stream={"speed": "max"},
    )
    run(settings)
    stats = run_stream(settings, RunSeed.from_settings(settings))
    end = pa.scalar(dt.datetime(2026, 11, 25, tzinfo=dt.UTC), pa.timestamp("us", tz="UTC"))
    batch = ds.dataset(settings.out / "labels", format="parquet", partitioning="hive").to_table()
    due = batch.filter(pa.compute.less(batch.column("label_time"), end))
    assert stats.labels_released == due.num_rows > 20
    dest = tmp_path / "lake"
    summary = _land(
        [
            sys.executable,
            "-m",
            "consumers",
            "--bootstrap-servers",
            kafka_bootstrap,
            "--topic",
            f"{topic}-labels",
            "--group",
            "g-labels",
            "--dest",
            str(dest),
            "--until-caught-up",
        ],
        None,
        tmp_path / "sink.log",
    )
    assert summary["dead_letters"] == 0
    assert summary["rows_landed"] == due.num_rows
    assert not (dest / "transactions").exists()
    landed = ds.dataset(dest / "labels", format="parquet", partitioning="hive").to_table()
    label_day = pa.compute.strftime(landed.column("label_time"), "%Y-%m-%d")
    assert pa.compute.all(
        pa.compute.equal(landed.column("dt").cast(pa.string()), label_day)
    ).as_py()
    columns = transaction_schema("fraud_label").arrow.names
    assert (
        landed.select(columns)
        .sort_by("transaction_id")
        .equals(due.select(columns).sort_by("transaction_id"))
    )


def test_idle_partitions_flush_by_age_while_running(streamed: Streamed, tmp_path: Path) -> None:
    # A huge row limit: only the age cut can land anything while the sink runs.
    lake = tmp_path / "lake"
    port = free_port()
    command = _sink_command(
        streamed,
        "g-idle",
        lake.as_uri(),
        "--max-rows-per-file",
        "10000000",
        "--max-file-age",
        "2",
        "--metrics-port",
        str(port),
    )
    log = tmp_path / "sink.log"
    proc = _spawn(command, None, log)
    try:
        wait_until(lambda: len(list(lake.rglob("*.parquet"))) >= PARTITIONS, 180, log)
        # Files are counted when the loop settles them, a moment after they appear.
        samples = scrape_while(proc, port, "txnsim_sink_files_written_total", at_least=PARTITIONS)
        time.sleep(1)  # the commit that follows the files, and its gauges
        samples = scrape(port)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    finally:
        _reap(proc)
    assert proc.returncode == 0, log.read_text()[-3000:]
    # The metrics a scrape saw while it ran.
    assert samples["txnsim_sink_records_consumed_total"][0][1] > 0
    assert samples["txnsim_sink_files_written_total"][0][1] >= PARTITIONS
    assert samples["txnsim_sink_written_bytes_total"][0][1] > 0
    assert samples["txnsim_sink_dead_letters_total"][0][1] == 0
    fresh = {
        labels["partition"]: v
        for labels, v in samples["txnsim_sink_last_committed_event_time_seconds"]
    }
    assert set(fresh) == {str(p) for p in range(PARTITIONS)}
    assert all(1_795_478_400 <= v < 1_795_564_800 for v in fresh.values())  # 2026-11-24 UTC
    assert {labels["partition"] for labels, _ in samples["txnsim_sink_commit_lag_records"]}
    _land(_sink_command(streamed, "g-idle", lake.as_uri(), "--until-caught-up"), None, log)
    _assert_exactly_once(lake, streamed)


def test_unreachable_broker_fails_within_the_timeout(tmp_path: Path) -> None:
    began = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "consumers",
            "--bootstrap-servers",
            "127.0.0.1:1",
            "--topic",
            "t",
            "--group",
            "g",
            "--dest",
            str(tmp_path),
            "--set",
            "kafka.connect_timeout_s=3",
        ],
        capture_output=True,
        text=True,
        env=_env(None),
        timeout=120,
    )
    assert proc.returncode == 1
    assert "cannot reach Kafka at 127.0.0.1:1" in proc.stderr
    assert time.monotonic() - began < 60
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--set", "max_rows_per_file=0"], {}, "max_rows_per_file"),
        (["--set", "retry_base_s=-1"], {}, "retry_base_s"),
        (["--set", "nonsense=1"], {}, "nonsense"),
        (["--set", "kafka.poll_records=0"], {}, "kafka.poll_records"),
        (["--set", "kafka.nonsense=1"], {}, "kafka.nonsense"),
        (["--set", "s3.nonsense=1"], {}, "s3.nonsense"),
        (["--set", "connect_timeout_s=3"], {}, "moved to kafka.connect_timeout_s"),
        ([], {"TXNSIM_SINK_KAFKA__POLL_RECORDS": "0"}, "kafka.poll_records"),
        ([], {"TXNSIM_SINK_GROUP": "g"}, "moved to TXNSIM_SINK_KAFKA__GROUP"),
        (["--dest", "ftp://host/x"], {}, "ftp"),
    ],
)
def test_bad_settings_exit_2_naming_the_field(
    args: list[str], env: dict[str, str], named: str, tmp_path: Path
) -> None:
    base = ["--bootstrap-servers", "127.0.0.1:1", "--dest", str(tmp_path)]
    proc = subprocess.run(
        [sys.executable, "-m", "consumers", *base, *args],
        capture_output=True,
        text=True,
        env={**_env(None), **env},
        timeout=60,
    )
    assert proc.returncode == 2
    assert named in proc.stderr


def test_settings_sections_layer_flags_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flags, --set and TXNSIM_SINK_<SECTION>__<KEY> fill the kafka and s3 sections."""
    from consumers.cli import _nested
    from consumers.settings import load_sink_settings
    from runtime.overrides import deep_merge, parse_overrides

    monkeypatch.setenv("TXNSIM_SINK_KAFKA__BOOTSTRAP_SERVERS", "env:9092")
    monkeypatch.setenv("TXNSIM_SINK_KAFKA__GROUP", "env-group")
    monkeypatch.setenv("TXNSIM_SINK_KAFKA__POLL_RECORDS", "500")
    monkeypatch.setenv("TXNSIM_SINK_S3__REGION", "eu-west-1")
    flags = _nested({"kafka.group": "flag-group", "s3.endpoint_url": "http://s3", "dest": "/x"})
    settings = load_sink_settings(deep_merge(flags, parse_overrides(["kafka.poll_records=7"])))
    assert settings.kafka.bootstrap_servers == "env:9092"
    assert settings.kafka.group == "flag-group"
    assert settings.kafka.poll_records == 7
    assert (settings.s3.endpoint_url, settings.s3.region) == ("http://s3", "eu-west-1")
    options = settings.kafka_options()
    assert options["group.id"] == "flag-group"
    assert options["bootstrap.servers"] == "env:9092"
