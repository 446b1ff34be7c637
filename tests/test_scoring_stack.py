"""The stream inside a JVM scoring stack: Schema Registry framing and a Java consumer.

The registry is a real Apicurio Registry 3 (``scripts/schema-registry``), the consumer a
real Java program on Apache kafka-clients and avro (``scripts/jvm-reader``). Both read
what ``txnsim stream`` wrote and must agree with ``txnsim generate``.
"""

from __future__ import annotations

import hashlib
import subprocess
import urllib.request
from pathlib import Path

import orjson
import pytest

from schemas.event import public_transaction_schema, transaction_schema
from schemas.registry import SchemaRegistry
from tests.conftest import read_transactions, run, small_settings
from tests.kafka_read import read_topic, spawn_stream
from tests.services import jvm_read
from tests.sink_topics import catch_up, landed_transactions

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def batch_checksum(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> tuple[int, str]:
    """Count and checksum of ``txnsim generate``'s transaction ids for spawn_stream's day."""
    out = tmp_path_factory.mktemp("batch")
    run(small_settings(out, cache_dir, days=1, population={"cardholders": 3000, "block_size": 500}))
    ids = read_transactions(out).column("transaction_id").to_pylist()
    return len(ids), hashlib.sha256("".join(i + "\n" for i in sorted(ids)).encode()).hexdigest()


def _http(method: str, url: str, body: object | None = None) -> tuple[int, object]:
    """A plain HTTP call to the registry (the test talks to it as any client would)."""
    data = None if body is None else orjson.dumps(body)
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, orjson.loads(response.read())


def _stream(bootstrap: str, topic: str, cache_dir: Path, *extra: str) -> dict:
    proc = spawn_stream(bootstrap, topic, cache_dir, "--speed", "max", "--days", "1", *extra)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    summary: dict = orjson.loads(out.strip().splitlines()[-1])
    return summary


def test_the_java_consumer_reads_the_raw_topic_as_generate_wrote_it(
    kafka_bootstrap: str, topic: str, cache_dir: Path, batch_checksum: tuple[int, str]
) -> None:
    _stream(kafka_bootstrap, topic, cache_dir)
    got = jvm_read(kafka_bootstrap, topic)
    assert (got["transactions"], got["checksum"]) == batch_checksum
    assert got["per_card_ordered"] is True
    assert got["framings"] == {"raw": batch_checksum[0], "wire": 0}


def test_wire_format_ids_resolve_to_the_registered_schemas(
    kafka_bootstrap: str,
    topic: str,
    cache_dir: Path,
    registry: str,
    batch_checksum: tuple[int, str],
) -> None:
    _stream(kafka_bootstrap, topic, cache_dir, "--schema-registry", registry)
    consumed = [r for records in read_topic(kafka_bootstrap, topic).values() for r in records]
    assert len(consumed) == batch_checksum[0]
    ids = {int.from_bytes(r.value[1:5], "big") for r in consumed}
    assert {r.value[0] for r in consumed} == {0}
    assert len(ids) == 1
    with SchemaRegistry(registry) as client:
        resolved = client.fingerprint(ids.pop())
    assert resolved == public_transaction_schema().fingerprint
    _, subjects = _http("GET", f"{registry}/subjects")
    assert isinstance(subjects, list)
    assert {f"{topic}-value", f"{topic}-labels-value"} <= set(subjects)
    got = jvm_read(kafka_bootstrap, topic, "--registry", registry)
    assert (got["transactions"], got["checksum"]) == batch_checksum
    assert got["framings"] == {"raw": 0, "wire": batch_checksum[0]}
    assert got["per_card_ordered"] is True


def test_the_sink_lands_the_framed_stream_as_generate_wrote_it(
    kafka_bootstrap: str,
    topic: str,
    cache_dir: Path,
    registry: str,
    batch_checksum: tuple[int, str],
    tmp_path: Path,
) -> None:
    _stream(kafka_bootstrap, topic, cache_dir, "--schema-registry", registry)
    lake = tmp_path / "lake"
    summary, _ = catch_up(
        kafka_bootstrap, topic, "g-framed", lake, tmp_path / "sink.log",
        "--schema-registry", registry,
    )  # fmt: skip
    assert summary["dead_letters"] == 0
    ids = landed_transactions(lake).column("transaction_id").to_pylist()
    checksum = hashlib.sha256("".join(i + "\n" for i in sorted(ids)).encode()).hexdigest()
    assert (len(ids), checksum) == batch_checksum


def test_an_unreachable_registry_fails_before_anything_is_sent(
    kafka_bootstrap: str, topic: str, cache_dir: Path
) -> None:
    proc = spawn_stream(
        kafka_bootstrap,
        topic,
        cache_dir,
        "--speed",
        "max",
        "--days",
        "1",
        "--schema-registry",
        "http://127.0.0.1:9/apis/ccompat/v7",
        "--set",
        "kafka.schema_registry.timeout_s=3",
    )
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "127.0.0.1:9" in err
    assert "registering" in err
    with pytest.raises(LookupError):
        read_topic(kafka_bootstrap, topic, timeout_s=10)


def test_an_incompatible_schema_fails_before_anything_is_sent(
    kafka_bootstrap: str, topic: str, cache_dir: Path, registry: str
) -> None:
    """The subject holds a schema ours cannot evolve from under BACKWARD compatibility."""
    subject = f"{topic}-value"
    old = transaction_schema()  # the full schema: the public one drops its label fields
    reduced = orjson.loads(old.text)
    reduced["fields"] = [f for f in reduced["fields"] if f["name"] != "merchant_id"]
    status, _ = _http("PUT", f"{registry}/config/{subject}", {"compatibility": "BACKWARD"})
    assert status == 200
    status, _ = _http(
        "POST",
        f"{registry}/subjects/{subject}/versions",
        {"schema": orjson.dumps(reduced).decode()},
    )
    assert status == 200
    proc = spawn_stream(
        kafka_bootstrap,
        topic,
        cache_dir,
        "--speed",
        "max",
        "--days",
        "1",
        "--schema-registry",
        registry,
    )
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert subject in err
    assert "409" in err
    with pytest.raises(LookupError):
        read_topic(kafka_bootstrap, topic, timeout_s=10)


def test_the_java_reader_is_a_real_build() -> None:
    """The reader's jar is built from jvm/reader with Maven, not a stand-in script."""
    built = subprocess.run(
        [str(Path(__file__).resolve().parent.parent / "scripts" / "jvm-reader"), "build"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert built.stdout.strip().splitlines()[-1].endswith("reader.jar")
