"""A `spark-submit` entry point: one run of txnsim as Spark tasks, the lake written by Spark.

    spark-submit --master yarn --py-files dist/txnsim-0.2.0-py3-none-any.whl \
      examples/spark_job.py --seed 7 --days 30 --cardholders 10000000 \
      --out s3a://bucket/lakes/txnsim --shards 256

The executors need the wheel's dependencies (numpy, pyarrow, pydantic, ...): install them
on the cluster's Python, or ship a packed environment (``--archives``).
"""

from __future__ import annotations

import argparse

from pyspark.sql import SparkSession

from simulator.batch.spark import generate
from simulator.settings.loading import load_settings


def main() -> None:
    """Parse the arguments, run the simulation on the cluster, print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--cardholders", type=int, default=20_000)
    parser.add_argument("--out", required=True, help="s3a://..., hdfs://..., dbfs:/...")
    parser.add_argument("--shards", type=int, help="Spark tasks (default: the parallelism)")
    args = parser.parse_args()
    settings = load_settings(
        overrides=[
            f"seed={args.seed}",
            f"days={args.days}",
            f"population.cardholders={args.cardholders}",
        ]
    )
    spark = (
        SparkSession.builder.appName("txnsim")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    summary = generate(spark, settings, out=args.out, shards=args.shards)
    print(summary)  # noqa: T201 - the job's result in the driver log
    spark.stop()


if __name__ == "__main__":
    main()
