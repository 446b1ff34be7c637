"""Benchmark of Avro encoding: Arrow table of transactions to Kafka record values.

Prints one JSON object. Both figures are encode-only rates (records/s) on the same
simulated table (one day of N cardholders, about 50,000 rows with the default), measured
in this run, alternately, best of ``--repeat`` wall-clock runs each:

* ``baseline``: the naive path, ``table.to_pylist()`` then ``fastavro.schemaless_writer``
  into a fresh ``BytesIO`` per record.
* ``table_encoder``: ``schemas.avro_encode.TableEncoder`` with raw Avro framing
  (``table_encoder_confluent``: with the 5-byte Confluent header).

``ratio`` is table_encoder over baseline; ``identical`` says both produced the same bytes.

Usage: python bench/avro_encode.py [--cardholders 42000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import fastavro  # noqa: E402
import pyarrow as pa  # noqa: E402

from schemas.avro_encode import TableEncoder  # noqa: E402
from schemas.event import transaction_schema  # noqa: E402
from schemas.framing import ConfluentWireFormat, RawAvro  # noqa: E402
from simulator.model.engine import SliceSource  # noqa: E402
from simulator.settings.loading import load_settings  # noqa: E402
from simulator.settings.run import RunSeed, RunSpec  # noqa: E402
from simulator.world.build import build_world  # noqa: E402


def simulated_table(cardholders: int, cache: str) -> pa.Table:
    settings = load_settings(
        None,
        {"seed": 3, "cache_dir": cache, "population": {"cardholders": cardholders}},
        environ=False,
    )
    seed = RunSeed.from_settings(settings)
    world = build_world(settings, seed)
    start = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    spec = RunSpec.from_settings(settings)
    slices = SliceSource(world, spec, seed, start, start + dt.timedelta(days=1))
    return pa.concat_tables(s.table for s in slices)


def naive(table: pa.Table) -> list[bytes]:
    schema = transaction_schema().avro
    values = []
    for record in table.to_pylist():
        out = io.BytesIO()
        fastavro.schemaless_writer(out, schema, record)
        values.append(out.getvalue())
    return values


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cardholders", type=int, default=42_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "txnsim-bench-cache"))
    args = parser.parse_args()

    table = simulated_table(args.cardholders, args.cache)
    raw = TableEncoder(transaction_schema(), RawAvro())
    confluent = TableEncoder(transaction_schema(), ConfluentWireFormat(1))
    contenders: dict[str, Callable[[pa.Table], list[bytes]]] = {
        "baseline": naive,
        "table_encoder": raw.encode,
        "table_encoder_confluent": confluent.encode,
    }
    best = dict.fromkeys(contenders, float("inf"))
    outputs: dict[str, list[bytes]] = {}
    for _ in range(args.repeat):
        for name, encode in contenders.items():
            began = time.perf_counter()
            outputs[name] = encode(table)
            best[name] = min(best[name], time.perf_counter() - began)
    rates = {name: round(table.num_rows / seconds) for name, seconds in best.items()}
    report = {
        "benchmark": "avro_encode",
        "rows": table.num_rows,
        "repeat": args.repeat,
        "records_per_s": rates,
        "ratio": round(best["baseline"] / best["table_encoder"], 1),
        "ratio_confluent": round(best["baseline"] / best["table_encoder_confluent"], 1),
        "identical": outputs["baseline"] == outputs["table_encoder"]
        and outputs["table_encoder_confluent"] == [b"\0\0\0\0\1" + v for v in outputs["baseline"]],
        "mean_value_bytes": round(sum(map(len, outputs["baseline"])) / max(table.num_rows, 1), 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
