"""N `txnsim stream --shard K/N` processes on one real-broker topic are the single stream.

Each shard streams its cardholder blocks with exactly-once delivery and a transactional
id of its own (shards never fence each other). Read back committed, the two shards'
records are the single stream's as a multiset of keys and values, and every card's
records come in the single stream's order (a card lives in one shard and one partition).
"""

from __future__ import annotations

import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pytest

from tests.kafka_read import Consumed, read_topic, spawn_stream

pytestmark = pytest.mark.kafka


def _finish(proc: subprocess.Popen[str]) -> dict:
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-3000:]
    summary: dict = orjson.loads(out.strip().splitlines()[-1])
    return summary


def _records(bootstrap: str, topic: str) -> list[Consumed]:
    return [r for records in read_topic(bootstrap, topic).values() for r in records]


def _by_card(records: list[Consumed]) -> dict[bytes, list[bytes]]:
    """Each key's (card's) values in partition order."""
    chains: dict[bytes, list[bytes]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        chains[r.key].append(r.value)
    return chains


def test_two_shard_streams_are_the_single_stream(
    kafka_bootstrap: str, topic: str, cache_dir: Path
) -> None:
    common = ("--speed", "max", "--days", "1")
    single = spawn_stream(kafka_bootstrap, f"{topic}-single", cache_dir, *common)
    whole = _finish(single)
    shards = [
        spawn_stream(kafka_bootstrap, topic, cache_dir, *common, "--shard", f"{k}/2")
        for k in range(2)
    ]
    parts = [_finish(p) for p in shards]
    assert [p["shard"] for p in parts] == ["0/2", "1/2"]
    assert all(p["released"] > 0 for p in parts)
    assert sum(p["released"] for p in parts) == whole["released"]

    expected = _records(kafka_bootstrap, f"{topic}-single")
    got = _records(kafka_bootstrap, topic)
    assert len(got) == len(expected) == whole["released"]
    assert Counter((r.key, r.value) for r in got) == Counter((r.key, r.value) for r in expected)
    assert _by_card(got) == _by_card(expected)
    # The labels too, by key and value.
    labels = _records(kafka_bootstrap, f"{topic}-labels")
    single_labels = _records(kafka_bootstrap, f"{topic}-single-labels")
    assert Counter((r.key, r.value) for r in labels) == Counter(
        (r.key, r.value) for r in single_labels
    )


@pytest.mark.parametrize(("value", "says"), [("3/2", "shard 3"), ("0/0", "at least one shard")])
def test_a_bad_stream_shard_exits_2_naming_the_flag(
    value: str, says: str, kafka_bootstrap: str, topic: str, cache_dir: Path
) -> None:
    proc = spawn_stream(kafka_bootstrap, topic, cache_dir, f"--shard={value}")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "--shard" in err
    assert says in err
