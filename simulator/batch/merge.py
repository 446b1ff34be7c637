"""``txnsim manifest merge``: the shards of a run become one run, committed by its manifest.

Each shard (``txnsim generate --shard K/N``) lands its files beside the others' and its
own manifest at ``manifests/shard-KKKKK-of-NNNNN.json``. The merge checks the set:

* every shard 0..N-1 present exactly once (a manifest's ``shard`` must be the one its
  name says: a copied or renamed manifest is a duplicate);
* one run: the same configuration hash and seed in every shard;
* every file a shard lists is in the store with the size and SHA-256 it recorded.

Then it writes ``manifest.json``, the run's commit point: the shards' files, their
counts and fraud figures added up, and the shards it was merged from. Last, objects in
the run's partitions, label files of its dates and catalogs that no shard lists (an
earlier run's, another sharding's, a crashed attempt's) are deleted, so the folder or
prefix holds exactly the run it commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections import Counter
from typing import Any

import orjson

from simulator.batch.labels import label_stem
from simulator.errors import ConfigError, OutputError
from simulator.settings.models import Settings
from storage.base import ObjectStore, open_store
from storage.retry import Retrying

__all__ = ["merge_manifests"]

log = logging.getLogger("txnsim.merge")

_NAME = re.compile(r"manifests/shard-(\d{5})-of-(\d{5})\.json")


def merge_manifests(target: str, settings: Settings, count: int | None = None) -> dict[str, Any]:
    """Check the shards' manifests under ``target`` and write the run's ``manifest.json``.

    Args:
        target: The shards' output: a folder or ``s3://bucket/prefix``.
        settings: For the S3 connection and how long to ride out an outage.
        count: How many shards the run has; None takes it from the manifests found
            (they must agree).

    Returns:
        The manifest written.

    Raises:
        ConfigError: For a set of shards that is not one whole run (a missing shard, a
            duplicated one, shards of other settings), naming the shard.
        OutputError: For a file a shard lists that is missing or not what it recorded.
    """
    store = open_store(target, s3=settings.s3, name="target")
    retry = Retrying(give_up_s=settings.retry_give_up_s, service="destination")
    shards = _shard_manifests(store, retry, target, count)
    first = shards[0]
    for k, manifest in enumerate(shards):
        for field in ("config_hash", "seed"):
            if manifest[field] != first[field]:
                raise ConfigError(
                    f"shard {k}: its {field} {manifest[field]!r} is not shard 0's "
                    f"{first[field]!r}: the shards are of different runs"
                )
    for k, manifest in enumerate(shards):
        for entry in manifest["files"]:
            _check_file(store, retry, k, entry)
    merged = _merged(shards)
    body = orjson.dumps(merged, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
    retry(lambda: store.put("manifest.json", body, {}), "put manifest.json")
    _sweep(store, retry, merged)
    log.info(
        "shards merged",
        extra={"shards": len(shards), "files": len(merged["files"]), "target": target},
    )
    return merged


def _shard_manifests(
    store: ObjectStore, retry: Retrying, target: str, count: int | None
) -> list[dict[str, Any]]:
    """The manifests of shards 0..N-1, in order."""
    found: dict[int, list[tuple[int, str]]] = {}
    for key in _list(store, retry, "manifests/"):
        match = _NAME.fullmatch(key)
        if match:
            found.setdefault(int(match.group(2)), []).append((int(match.group(1)), key))
    if count is None:
        if len(found) != 1:
            counts = ", ".join(str(n) for n in sorted(found)) or "none"
            raise ConfigError(
                f"{target}: expected the manifests of one sharding under manifests/, "
                f"found shard counts: {counts} (pass --shards N)"
            )
        count = next(iter(found))
    if count < 1:
        raise ConfigError(f"--shards must be at least 1, got {count}")
    named = dict(found.get(count, []))
    manifests: list[dict[str, Any]] = []
    claimed: dict[int, str] = {}
    for k in range(count):
        if k not in named:
            raise ConfigError(
                f"shard {k} of {count} is missing: no manifests/shard-{k:05d}-of-{count:05d}.json"
            )
        raw = _get(store, retry, named[k])
        key = named[k]
        if raw is None:
            raise ConfigError(f"shard {k} of {count}: {key} vanished while merging")
        manifest = orjson.loads(raw)
        shard = manifest.get("shard") or {}
        index = shard.get("index")
        if index in claimed:
            raise ConfigError(f"shard {index} appears twice: in {claimed[index]} and in {key}")
        if index != k or shard.get("count") != count:
            raise ConfigError(
                f"shard {k} of {count}: {key} holds shard {index} of {shard.get('count')}"
            )
        claimed[index] = key
        manifests.append(manifest)
    return manifests


def _check_file(store: ObjectStore, retry: Retrying, shard: int, entry: dict[str, Any]) -> None:
    path = entry["path"]
    data = _get(store, retry, path)
    if data is None:
        raise OutputError(f"shard {shard}: {path} is listed in its manifest but missing")
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != entry["bytes"] or digest != entry["sha256"]:
        raise OutputError(
            f"shard {shard}: {path} is {len(data)} bytes with SHA-256 {digest[:12]}..., "
            f"its manifest says {entry['bytes']} bytes, {entry['sha256'][:12]}..."
        )


def _merged(shards: list[dict[str, Any]]) -> dict[str, Any]:
    """One manifest for the run: shard 0's description, everything countable added up."""
    first = shards[0]
    files = sorted((f for m in shards for f in m["files"]), key=lambda f: f["path"])
    partitions: Counter[str] = Counter()
    for m in shards:
        partitions.update(m["partitions"])
    rows = sum(m["row_counts"]["transactions"] for m in shards)
    fraud = [m["fraud"] for m in shards]
    value = sum(f["value_usd"] for f in fraud)
    value_all = sum(f["all_value_usd"] for f in fraud)
    frauds = sum(f["transactions"] for f in fraud)
    by_scenario: Counter[str] = Counter()
    by_source: Counter[str] = Counter()
    for f in fraud:
        by_scenario.update(f["by_scenario"])
        by_source.update(f["labels"]["by_source"])
    merged = {
        key: first[key]
        for key in (
            "format_version",
            "package",
            "seed",
            "seed_source",
            "config",
            "config_hash",
            "schema",
            "simulated_start",
            "simulated_end",
        )
    }
    merged |= {
        "row_counts": {
            "transactions": rows,
            "cardholders": sum(m["row_counts"]["cardholders"] for m in shards),
            "cards": sum(m["row_counts"]["cards"] for m in shards),
            "merchants": first["row_counts"]["merchants"],
        },
        "partitions": dict(sorted(partitions.items())),
        "fraud": {
            "target_rate": first["fraud"]["target_rate"],
            "transactions": frauds,
            "rate_by_count": frauds / rows if rows else 0.0,
            "rate_by_value": value / value_all if value_all else 0.0,
            "value_usd": round(value, 2),
            "all_value_usd": round(value_all, 2),
            "by_scenario": dict(sorted(by_scenario.items())),
            "cases": sum(f["cases"] for f in fraud),
            "cards_blocked": sum(f["cards_blocked"] for f in fraud),
            "labels": {
                "rows": sum(f["labels"]["rows"] for f in fraud),
                "by_source": dict(sorted(by_source.items())),
                "wrong_disputes": sum(f["labels"]["wrong_disputes"] for f in fraud),
            },
        },
        "files": files,
        "shards": {
            "count": len(shards),
            "manifests": [f"manifests/{_name(k, len(shards))}.json" for k in range(len(shards))],
        },
    }
    return merged


def _get(store: ObjectStore, retry: Retrying, key: str) -> bytes | None:
    return retry(lambda: store.get(key), f"get {key}")


def _list(store: ObjectStore, retry: Retrying, prefix: str) -> list[str]:
    return retry(lambda: store.list(prefix), f"list {prefix}")


def _name(k: int, n: int) -> str:
    return f"shard-{k:05d}-of-{n:05d}"


def _sweep(store: ObjectStore, retry: Retrying, manifest: dict[str, Any]) -> None:
    """Delete what no shard lists in the run's partitions, its dates' labels and catalogs."""
    listed = {f["path"] for f in manifest["files"]}
    prefixes = [f"transactions/dt={day}/" for day in manifest["partitions"]] + ["catalog/"]
    stale = {key for prefix in prefixes for key in _list(store, retry, prefix)}
    stems = tuple(label_stem(dt.date.fromisoformat(day)) for day in manifest["partitions"])
    stale |= {
        key for key in _list(store, retry, "labels/") if key.rpartition("/")[2].startswith(stems)
    }
    stale -= listed
    if stale:
        keys = sorted(stale)
        retry(lambda: store.delete(keys), f"delete {len(keys)} stale objects")
        log.info("stale objects deleted", extra={"objects": len(keys)})
