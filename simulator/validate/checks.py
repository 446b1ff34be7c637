"""``txnsim validate``: check a landed dataset in memory that does not grow with its size.

Works on what ``txnsim generate`` lands (``manifest.json``, ``catalog/``, ``transactions/``)
and on what the sink lands (``transactions/`` only): the checks that need the manifest or
the catalogs are then reported as skipped, with the reason. The transactions are read one
record batch at a time, and nothing kept across batches grows with the row count:

* each row's transaction id, previous id, card and time are hashed to 64 bits and spilled
  to bucket files on disk by hash prefix; each bucket is then checked alone with numpy
  sorts, so peak memory is one bucket (the bucket count grows with the rows instead);
* catalog ids (O(population)) are held as sorted 64-bit hashes;
* offending rows are kept as positions (at most a few per kind) and read back as ids at
  the end; a duplicate id is confirmed against the real strings, so a hash collision is not
  reported. Lookups (foreign keys, predecessors) trust the hash: a false match needs a
  64-bit collision with one specific id.

Checks, by report name: ``schema`` (every file's Arrow schema against ``transaction.avsc``
and its fingerprint), ``required_fields`` (no nulls where the schema has no null branch),
``unique_transaction_id``, ``foreign_keys`` (card, cardholder and merchant ids in the
catalogs; the card's owner is the row's cardholder; cards' owners exist),
``partition_date`` (``dt`` equals the UTC date of ``event_time``),
``previous_transaction_chain`` (a previous id names an earlier-or-simultaneous transaction
of the same card, never the row itself, and no transaction precedes two others; in a
complete run, i.e. with a manifest, every previous id exists and a card has one first
transaction, otherwise those two are counted as informational), ``null_rates`` (each
configured rate within ``5`` binomial standard errors plus ``0.001``; coordinates blank
together) and ``fraud_rate`` (the observed rate; against ``fraud.target_rate`` when configured;
labels consistent with ``is_fraud``).

This module owns the row pass, the rate checks and the :func:`validate` entry; the id
hashing and spill are :mod:`simulator.validate.id_spill`, reading the dataset is
:mod:`simulator.validate.dataset` and the report's model is :mod:`simulator.validate.report`.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from runtime.units import US_PER_DAY
from schemas.event import EventSchema
from simulator.errors import SimulatorError
from simulator.settings.models import NULLABLE_FIELDS
from simulator.validate.dataset import (
    Catalogs,
    DataFile,
    Dataset,
    check_schemas,
    load_catalogs,
    locate,
    partition_day,
    resolve_ids,
)
from simulator.validate.id_spill import (
    BUCKET_RECORDS,
    FIRST,
    FLUSH_RECORDS,
    MAX_BUCKET_BITS,
    PREV,
    RECORD,
    TX,
    Spill,
    Tally,
    check_bucket,
    confirm_duplicates,
    hash_strings,
    member,
)
from simulator.validate.report import Check, Findings, Report, rate_check

__all__ = ["validate"]

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def _numpy(column: pa.Array, fill: Any) -> np.ndarray:
    return column.fill_null(fill).to_numpy(zero_copy_only=False)


class _Scanner:
    """One pass over the rows: per-row checks, tallies and spilled chain records."""

    def __init__(self, spill: Spill, catalogs: Catalogs | None, schema: EventSchema) -> None:
        self.spill, self.catalogs = spill, catalogs
        self.schema = schema
        self.tally = Tally()
        self.rows = 0
        self.nulls: Counter[str] = Counter()
        self.card_present = 0
        self.card_present_blank = 0
        self.fraud = 0

    def batch(self, batch: pa.RecordBatch, day: dt.date | None) -> None:
        n = batch.num_rows
        pos = np.arange(self.rows, self.rows + n, dtype=np.uint64)
        self.rows += n
        col = {name: batch.column(i) for i, name in enumerate(batch.schema.names)}
        for name, array in col.items():
            self.nulls[name] += array.null_count
        flag = self.tally.flag
        for f in self.schema.arrow:
            if not f.nullable and col[f.name].null_count:
                flag(f"null:{f.name}", _numpy(col[f.name].is_null(), False), pos)

        time = _numpy(pc.cast(col["event_time"], pa.int64()), 0)
        days = time // US_PER_DAY
        if day is None:
            flag("wrong_partition", np.ones(n, bool), pos)
        else:
            flag("wrong_partition", days != day.toordinal() - _EPOCH_ORDINAL, pos)

        ids, card = hash_strings(col["transaction_id"]), hash_strings(col["card_id"])
        has_prev = _numpy(col["previous_transaction_id"].is_valid(), False)
        prev = hash_strings(col["previous_transaction_id"])
        records = np.empty(2 * n, RECORD)
        records["card"], records["time"], records["pos"] = (
            np.tile(card, 2),
            np.tile(time, 2),
            np.tile(pos, 2),
        )
        records["key"][:n], records["kind"][:n] = ids, TX
        records["key"][n:] = np.where(has_prev, prev, card)
        records["kind"][n:] = np.where(has_prev, PREV, FIRST)
        self.spill.add(records)

        if self.catalogs is not None:
            c = self.catalogs
            holder = hash_strings(col["cardholder_id"])
            known, idx = member(c.cards, card)
            flag("orphan_card_id", ~known, pos)
            flag("card_owner_mismatch", known & (c.owners[idx] != holder), pos)
            flag("orphan_cardholder_id", ~member(c.holders, holder)[0], pos)
            merchant = hash_strings(col["merchant_id"])
            flag("orphan_merchant_id", ~member(c.merchants, merchant)[0], pos)

        present = _numpy(pc.equal(col["channel"], "card_present"), False)
        lat_null = _numpy(col["merchant_lat"].is_null(), False)
        lon_null = _numpy(col["merchant_lon"].is_null(), False)
        self.card_present += int(present.sum())
        self.card_present_blank += int((present & lat_null).sum())
        flag("coordinates_split", lat_null != lon_null, pos)

        if "is_fraud" not in self.schema.arrow.names:
            return
        fraud = _numpy(col["is_fraud"], False)
        self.fraud += int(fraud.sum())
        labelled = _numpy(col["fraud_scenario"].is_valid(), False)
        cased = _numpy(col["fraud_case_id"].is_valid(), False)
        flag("fraud_label_inconsistent", np.where(fraud, ~labelled, labelled | cased), pos)
        if "label_available_at" in col:
            at = col["label_available_at"]
            early = pc.less(at, col["event_time"])
            flag("label_before_event", _numpy(early, False), pos)
            flag("label_without_fraud", ~fraud & _numpy(at.is_valid(), False), pos)


def _scan(
    data: Dataset,
    fragments: list[Any],
    scanner: _Scanner,
    batch_rows: int,
) -> list[DataFile]:
    """Pass 1: every scannable file, batch by batch, in path order."""
    files = []
    for fragment in fragments:
        day = partition_day(fragment)
        with data.fs.open_input_file(fragment.path) as handle:
            parquet = pq.ParquetFile(handle)
            meta = parquet.metadata
            groups = tuple(meta.row_group(g).num_rows for g in range(meta.num_row_groups))
            files.append(DataFile(fragment.path, day, scanner.rows, groups))
            names = data.schema.arrow.names
            # One decoding thread: per-thread allocator heaps cost more peak memory (measured
            # +10 MB) than the second core saves in time on a two-core machine.
            for batch in parquet.iter_batches(
                batch_size=batch_rows, columns=names, use_threads=False
            ):
                scanner.batch(batch, day)
    return files


def _null_rates(scan: _Scanner, findings: Findings, manifest: dict[str, Any] | None) -> Check:
    check = findings.check("null_rates", ["coordinates_split"])
    observed = {
        "merchant_city": (scan.nulls["merchant_city"], scan.rows),
        "merchant_coordinates": (scan.card_present_blank, scan.card_present),
        "pos_entry_mode": (scan.nulls["pos_entry_mode"], scan.rows),
    }
    configured = None if manifest is None else manifest.get("config", {}).get("null_rates", {})
    fields = {
        name: rate_check(
            name,
            *observed[name],
            None if configured is None else float(configured.get(name, 0.0)),
            "no manifest.json",
        )
        for name in NULLABLE_FIELDS
    }
    check.details["fields"] = {k: v.as_json() for k, v in fields.items()}
    if any(c.status == "violation" for c in fields.values()):
        check.status = "violation"
    elif configured is None and check.status == "ok":
        check.status, check.reason = "skipped", "no manifest.json: the configured rates are unknown"
    return check


def _fraud_rate(scan: _Scanner, findings: Findings, manifest: dict[str, Any] | None) -> Check:
    settings = (manifest or {}).get("config", {}).get("fraud")
    expected = settings.get("target_rate") if isinstance(settings, dict) else None
    reason = "the configuration sets no fraud rate" if manifest else "no manifest.json"
    check = rate_check("fraud_rate", scan.fraud, scan.rows, expected, reason)
    labels = findings.check(
        "fraud_rate", ["fraud_label_inconsistent", "label_before_event", "label_without_fraud"]
    )
    check.details |= labels.details
    check.examples = labels.examples
    if labels.status == "violation":
        check.status = "violation"
    return check


def validate(
    target: str,
    *,
    environ: Mapping[str, str] | None = None,
    spill_dir: Path | None = None,
    batch_rows: int = 65_536,
    bucket_records: int = BUCKET_RECORDS,
) -> Report:
    """Check the dataset at ``target`` (a folder or ``s3://bucket/prefix``).

    Args:
        target: The dataset root (holding ``transactions/``) or its ``transactions`` folder.
        environ: Environment for the S3 endpoint and region (not read for folders).
        spill_dir: Where the hashed id buckets are spilled (default: a temporary folder).
        batch_rows: Rows per record batch read.
        bucket_records: Target records per spilled bucket; bounds peak memory.

    Raises:
        ConfigError: ``target`` does not exist, cannot be listed or holds no transactions.
        SimulatorError: A file became unreadable while the rows were read.
    """
    data = locate(target, environ or {})
    catalogs = load_catalogs(data.fs, data.root) if data.manifest else "no manifest.json"
    schema_check, scannable, total = check_schemas(data)
    # About two records per row; enough buckets that each holds at most ``bucket_records``.
    bits = min(MAX_BUCKET_BITS, max(0, math.ceil(math.log2(max(2 * total / bucket_records, 1)))))
    with tempfile.TemporaryDirectory(prefix="txnsim-validate-", dir=spill_dir) as folder:
        spill = Spill(Path(folder), bits, min(bucket_records, FLUSH_RECORDS))
        scan = _Scanner(spill, catalogs if isinstance(catalogs, Catalogs) else None, data.schema)
        try:
            files = _scan(data, scannable, scan, batch_rows)
        except (OSError, pa.ArrowException) as exc:
            raise SimulatorError(f"{target}: reading failed: {exc}") from exc
        pairs: list[tuple[int, int]] = []
        for bucket in spill.buckets():
            check_bucket(bucket, scan.tally, pairs)

    tally = scan.tally
    wanted = {p for kept in tally.examples.values() for p in kept}
    try:
        ids = resolve_ids(data.fs, files, wanted | {p for pair in pairs for p in pair})
    except (OSError, pa.ArrowException) as exc:
        raise SimulatorError(f"{target}: reading failed: {exc}") from exc
    confirm_duplicates(tally, pairs, ids)
    findings = Findings(tally, ids)

    schema = data.schema
    required = [f"null:{f.name}" for f in schema.arrow if not f.nullable]
    checks = [schema_check, findings.check("required_fields", required)]
    checks.append(findings.check("unique_transaction_id", ["duplicate_transaction_id"]))
    if isinstance(catalogs, Catalogs):
        kinds = ["orphan_card_id", "orphan_cardholder_id", "orphan_merchant_id"]
        fk = findings.check("foreign_keys", [*kinds, "card_owner_mismatch"])
        fk.details["catalog_cards_without_cardholder"] = catalogs.orphan_owners
        if catalogs.orphan_owners:
            fk.status = "violation"
        checks.append(fk)
    else:  # a batch run always lands its catalogs: only the sink's output has none
        status = "violation" if data.manifest else "skipped"
        checks.append(Check("foreign_keys", status, reason=catalogs))
    partition = findings.check("partition_date", ["wrong_partition"])
    partition.details["files_outside_partitions"] = sum(f.day is None for f in files)
    checks.append(partition)
    chain = ["forked", "predecessor_other_card", "predecessor_later", "self_reference"]
    # Only a complete run promises every predecessor and one first transaction per card.
    partial = ["missing_predecessor", "repeated_first"]
    if data.manifest is not None:
        chain, partial = chain + partial, []
    checks.append(
        findings.check("previous_transaction_chain", chain, (*partial, "first_transactions"))
    )
    checks.append(_null_rates(scan, findings, data.manifest))
    if "is_fraud" in data.schema.arrow.names:
        checks.append(_fraud_rate(scan, findings, data.manifest))
    else:
        checks.append(
            Check(
                "fraud_rate",
                "skipped",
                {"rows": scan.rows},
                reason="the transactions carry no label fields (streamed with labels separate)",
            )
        )
    return Report(target, scan.rows, len(data.fragments), data.manifest is not None, checks)
