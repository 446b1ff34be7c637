"""Soak test of the sink's crash safety: kill -9 it at random points, many times.

Fills a topic with a day of `txnsim generate` output (as `txnsim stream` would key and
partition it), then repeats ``--cycles`` times: start `txnsim-sink` into a local S3
server with small files and an age cut, wait until it lands something new, SIGKILL it at
a random point. A final `--until-caught-up` run lands the rest. Prints JSON with the
lost and duplicated transaction ids (both must be 0) and exits 1 otherwise.

Usage: python bench/sink_soak.py [--cycles 20] [--cardholders 200000] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--cardholders", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1, help="seeds the kill points")
    args = parser.parse_args()

    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from bench.sink_topic import fill_topic, generate_day
    from tests.kafka_broker import ensure_kafka
    from tests.s3_server import start_s3_server
    from tests.sink_topics import sink_command, sink_env

    work = Path(tempfile.mkdtemp(prefix="soak-sink-"))
    day = generate_day(args.cardholders, work)
    expected = set(day.table.column("transaction_id").to_pylist())

    bootstrap, stop_kafka = ensure_kafka()
    s3 = start_s3_server()
    rng = random.Random(args.seed)
    log = work / "sink.log"
    try:
        topic = fill_topic(bootstrap, day, "soak")

        bucket = s3.bucket(f"soak-{uuid.uuid4().hex[:8]}")
        env = {**sink_env(), **s3.env()}
        command = sink_command(
            bootstrap, topic, "soak", f"s3://{bucket}/lake",
            "--max-rows-per-file", "3000", "--max-file-age", "1",
        )  # fmt: skip

        def landed() -> int:
            return len(s3.keys(bucket, "lake/transactions"))

        kills = 0
        began = time.monotonic()
        for _ in range(args.cycles):
            before = landed()
            with open(log, "ab") as err:
                proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env)
            deadline = time.monotonic() + 180
            while landed() <= before and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(rng.uniform(0.0, 2.0))
            if proc.poll() is None:
                proc.kill()
                kills += 1
            proc.wait()
        with open(log, "ab") as err:
            subprocess.run(
                [*command, "--until-caught-up"],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
                check=True,
                timeout=900,
            )

        into = work / "landed"
        client = s3.client()
        for key in s3.keys(bucket, "lake/transactions"):
            target = into / key
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, key, str(target))
        landed_ids = ds.dataset(
            into / "lake" / "transactions", format="parquet", partitioning="hive"
        ).to_table(columns=["transaction_id"])
        ids = landed_ids.column("transaction_id")
        unique = set(pc.unique(ids).to_pylist())
        report = {
            "benchmark": "sink_soak",
            "events": len(day.values),
            "cycles": args.cycles,
            "kills": kills,
            "files": len(s3.keys(bucket, "lake/transactions")),
            "landed_rows": len(ids),
            "lost": len(expected - unique),
            "duplicated": len(ids) - len(unique),
            "unexpected": len(unique - expected),
            "seconds": round(time.monotonic() - began, 1),
        }
    finally:
        s3.stop()
        stop_kafka()
    print(json.dumps(report, indent=2))
    ok = report["lost"] == report["duplicated"] == report["unexpected"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
