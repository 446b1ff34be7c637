"""`txnsim-sink` reading Confluent wire-format values through a real Schema Registry.

The registry is a real Apicurio Registry 3 (``scripts/schema-registry``) and the topics
are on the real broker. Framed values resolve by their schema id, raw ones by their
fingerprint header, in one topic or apart, and land the same rows; ids the registry does
not know, or that name schemas the sink does not know, are dead letters; an unreachable
registry stops the sink with exit 1 and commits nothing, so a later run loses nothing.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from schemas.framing import ConfluentWireFormat, RawAvro
from schemas.registry import SchemaRegistry
from tests.sink_topics import (
    SCHEMA,
    catch_up,
    landed_transactions,
    offsets,
    produce,
    run_sink,
    sample_rows,
    sink_command,
)

pytestmark = pytest.mark.kafka

_PARTITIONS = 2


def _topic(name: str) -> str:
    return f"sr-{name}-{uuid.uuid4().hex[:8]}"


def _registered(registry: str, topic: str) -> ConfluentWireFormat:
    """The wire framing of the full transaction schema, registered for ``topic``."""
    with SchemaRegistry(registry) as client:
        return ConfluentWireFormat(client.register(topic, SCHEMA))


def _plan(first: int, sizes: list[int]) -> list[tuple[pa.Table, bool]]:
    """Committed transactions of ``sizes`` records each, ids from ``first`` on."""
    plan = []
    for size in sizes:
        plan.append((sample_rows(first, size), True))
        first += size
    return plan


def _dead_letters(lake: Path) -> list[dict]:
    return [orjson.loads(path.read_bytes()) for path in sorted(lake.glob("_dlq/**/*.json"))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_framed_raw_and_mixed_topics_land_identically(
    kafka_bootstrap: str, registry: str, tmp_path: Path
) -> None:
    plan = _plan(0, [230, 170, 310, 90])
    raw, framed, mixed = _topic("raw"), _topic("framed"), _topic("mixed")
    wire = _registered(registry, framed)
    assert _registered(registry, mixed).schema_id == wire.schema_id  # same schema, same id
    asyncio.run(produce(kafka_bootstrap, raw, plan, partitions=_PARTITIONS, framing=RawAvro()))
    asyncio.run(produce(kafka_bootstrap, framed, plan, partitions=_PARTITIONS, framing=wire))
    # Raw and framed transactions alternate within one topic.
    asyncio.run(
        produce(kafka_bootstrap, mixed, plan, partitions=_PARTITIONS, framing=[wire, RawAvro()])
    )
    expected = pa.concat_tables([table for table, _ in plan]).sort_by("transaction_id")
    for topic in (raw, framed, mixed):
        lake = tmp_path / topic
        summary, log = catch_up(
            kafka_bootstrap, topic, f"g-{topic}", lake, tmp_path / f"{topic}.log",
            "--schema-registry", registry,
        )  # fmt: skip
        assert summary["dead_letters"] == 0, log[-3000:]
        assert summary["rows_landed"] == summary["consumed"] == expected.num_rows
        landed = landed_transactions(lake).select(SCHEMA.arrow.names).sort_by("transaction_id")
        assert landed.equals(expected), topic
        after = offsets(kafka_bootstrap, topic, _PARTITIONS, f"g-{topic}")
        assert after["committed"] == after["end"]


def test_ids_the_sink_cannot_resolve_are_dead_letters_and_the_rest_lands(
    kafka_bootstrap: str, registry: str, tmp_path: Path
) -> None:
    topic = _topic("unknown")
    wire = _registered(registry, topic)
    # An id of a schema that is not a txnsim schema, and an id nobody registered.
    other = {
        "type": "record",
        "name": "Other",
        "namespace": "elsewhere",
        "fields": [{"name": "transaction_id", "type": "string"}],
    }
    request = urllib.request.Request(
        f"{registry}/subjects/{topic}-other-value/versions",
        data=orjson.dumps({"schema": orjson.dumps(other).decode()}),
        headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        foreign = ConfluentWireFormat(orjson.loads(response.read())["id"])
    missing = ConfluentWireFormat(2**31 - 1)
    plan = _plan(0, [200, 40, 150, 30])
    asyncio.run(
        produce(
            kafka_bootstrap,
            topic,
            plan,
            partitions=_PARTITIONS,
            framing=[wire, foreign, RawAvro(), missing],
        )
    )
    lake = tmp_path / "lake"
    summary, _ = catch_up(
        kafka_bootstrap, topic, "g-unknown", lake, tmp_path / "sink.log",
        "--schema-registry", registry,
    )  # fmt: skip
    good = pa.concat_tables([plan[0][0], plan[2][0]]).sort_by("transaction_id")
    bad = {n: plan[n][0].column("transaction_id").to_pylist() for n in (1, 3)}
    assert summary["rows_landed"] == good.num_rows
    assert summary["dead_letters"] == len(bad[1]) + len(bad[3])
    landed = landed_transactions(lake).select(SCHEMA.arrow.names).sort_by("transaction_id")
    assert landed.equals(good)
    letters = _dead_letters(lake)
    assert len(letters) == summary["dead_letters"]
    reasons = {letter["error"] for letter in letters}
    assert any(f"schema id {foreign.schema_id}" in r and "not a schema" in r for r in reasons)
    assert any(str(missing.schema_id) in r for r in reasons)
    # Each dead letter keeps the record's value whole, framing included.
    prefixes = {base64.b64decode(letter["value_base64"])[:5] for letter in letters}
    assert prefixes == {foreign.prefix, missing.prefix}
    after = offsets(kafka_bootstrap, topic, _PARTITIONS, "g-unknown")
    assert after["committed"] == after["end"]


def test_an_unreachable_registry_stops_the_sink_and_commits_nothing(
    kafka_bootstrap: str, registry: str, tmp_path: Path
) -> None:
    topic = _topic("down")
    wire = _registered(registry, topic)
    plan = _plan(0, [120, 80])
    asyncio.run(produce(kafka_bootstrap, topic, plan, partitions=_PARTITIONS, framing=wire))
    lake = tmp_path / "lake"
    down = f"http://127.0.0.1:{_free_port()}/apis/ccompat/v7"
    command = sink_command(
        kafka_bootstrap, topic, "g-down", lake, "--until-caught-up",
        "--schema-registry", down, "--set", "registry_give_up_s=2",
    )  # fmt: skip
    code, _, log, seconds = run_sink(command, tmp_path / "down.log")
    assert code == 1, log[-3000:]
    assert down in log
    assert "gave up" in log
    assert seconds < 30
    assert not (lake / "transactions").exists()
    committed = offsets(kafka_bootstrap, topic, _PARTITIONS, "g-down")["committed"]
    assert all(offset < 0 for offset in committed.values()), committed
    # The registry back (here: the real one), the same group lands everything.
    command[command.index(down)] = registry
    code, summary, log, _ = run_sink(command, tmp_path / "up.log")
    assert code == 0, log[-3000:]
    assert summary["rows_landed"] == sum(table.num_rows for table, _ in plan)


def test_a_bad_registry_url_is_a_configuration_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable, "-m", "consumers", "--bootstrap-servers", "127.0.0.1:9",
            "--dest", str(tmp_path), "--schema-registry", "ftp://registry:8080",
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "schema_registry.url" in done.stderr
