"""The command line's grammar: ``txnsim``'s commands, flags and their value types.

:mod:`simulator.cli` runs what this parses.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from simulator.settings.run import WHOLE, Shard

__all__ = ["build_parser"]


def _iso_date(text: str) -> str:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a calendar date in YYYY-MM-DD form"
        ) from None
    return text


def _speed(text: str) -> str | float:
    if text == "max":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor 'max'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"speed must be positive, got {text}")
    return value


def _settings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML or JSON settings file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting by dotted path, e.g. population.cardholders=5000 (repeatable)",
    )
    parser.add_argument(
        "--date", type=_iso_date, help="first simulated UTC date, YYYY-MM-DD (start_date)"
    )
    parser.add_argument("--days", type=int, help="number of simulated days (days)")
    parser.add_argument("--seed", type=int, help="root seed; omitted: drawn from OS entropy (seed)")
    parser.add_argument("--cardholders", type=int, help="population size (population.cardholders)")
    parser.add_argument(
        "--workers", type=int, help="worker processes; output is identical for any value"
    )
    parser.add_argument(
        "--out",
        metavar="PATH|s3://BUCKET/PREFIX",
        help="output folder, or an S3 bucket and prefix (out; s3.endpoint_url for MinIO)",
    )


def _metrics_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port", type=int, help="serve Prometheus metrics on this port (/metrics)"
    )
    parser.add_argument("--metrics-host", default="127.0.0.1", help="address to serve metrics on")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``txnsim``'s command line."""
    parser = argparse.ArgumentParser(
        prog="txnsim", description="Seeded card-transaction simulator."
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    parser.add_argument(
        "--log-format", choices=["json", "text"], help="default: text on a terminal, else JSON"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="simulate days and land them as Parquet in a folder")
    _settings_arguments(gen)
    _metrics_arguments(gen)
    gen.add_argument(
        "--shard",
        type=_shard,
        default=WHOLE,
        metavar="K/N",
        help="land shard K (0..N-1) of the run: its cardholder blocks and their fraud; "
        "needs --seed; `txnsim manifest merge` then writes the run's manifest",
    )
    gen.add_argument(
        "--engine",
        choices=["local", "spark"],
        default="local",
        help="local: this process (and --workers); spark: the shards as Spark tasks, "
        "the lake written by Spark (pip install 'txnsim[spark]')",
    )
    gen.add_argument(
        "--spark-master",
        default="local[2]",
        help="Spark master URL for --engine spark (local[2], spark://host:7077, yarn)",
    )
    gen.add_argument("--spark-shards", type=int, help="Spark tasks (shards) for --engine spark")
    gen.add_argument(
        "--spark-driver-memory",
        default="4g",
        help="the Spark driver's memory (in local mode the tasks' too) for --engine spark",
    )
    manifest = commands.add_parser("manifest", help="work with a landed run's manifests")
    manifest_commands = manifest.add_subparsers(dest="manifest_command", required=True)
    merge = manifest_commands.add_parser(
        "merge", help="check the shards' manifests and write the run's manifest.json"
    )
    merge.add_argument("target", help="the shards' output (a folder or s3://bucket/prefix)")
    merge.add_argument("--shards", type=int, help="how many shards the run has (default: found)")
    _settings_arguments(merge)
    stream = commands.add_parser(
        "stream", help="stream the simulation onto Kafka as Avro, in simulated time"
    )
    _settings_arguments(stream)
    _metrics_arguments(stream)
    stream.add_argument(
        "--shard",
        type=_shard,
        default=WHOLE,
        metavar="K/N",
        help="stream shard K (0..N-1) of the run: its cardholder blocks and their fraud, "
        "with a transactional id of its own; needs --seed",
    )
    stream.add_argument(
        "--speed",
        type=_speed,
        help="simulated seconds per wall second (1 = live, 60, 3600) or 'max'",
    )
    stream.add_argument(
        "--bootstrap-servers", help="Kafka bootstrap servers (kafka.bootstrap_servers)"
    )
    stream.add_argument("--topic", help="topic, created if missing (kafka.topic)")
    stream.add_argument(
        "--labels-topic",
        help="topic of the fraud labels, created if missing (kafka.labels_topic)",
    )
    stream.add_argument(
        "--labels",
        choices=["separate", "inline"],
        help="separate: transactions without label fields (default); inline: with them "
        "(stream.labels)",
    )
    stream.add_argument(
        "--partitions", type=int, help="partitions when creating the topic (kafka.partitions)"
    )
    stream.add_argument(
        "--start", choices=["now"], help="run live from the current time instead of --date"
    )
    stream.add_argument(
        "--max-lag",
        type=float,
        help="fail when this many simulated seconds behind (stream.max_lag_s)",
    )
    stream.add_argument(
        "--delivery",
        choices=["exactly_once", "idempotent"],
        help="exactly_once: Kafka transactions, each record once for read_committed readers "
        "(default); idempotent: no transactions (kafka.delivery)",
    )
    stream.add_argument(
        "--schema-registry",
        metavar="URL",
        help="register the schemas there and frame values in the Confluent wire format "
        "(kafka.schema_registry.url)",
    )
    stream.add_argument(
        "--resume",
        action="store_true",
        help="continue a stream of the same settings (and --seed) from its last committed "
        "transaction instead of from the start",
    )
    report = commands.add_parser(
        "report", help="an HTML page of figures (plus PNG files) about a landed folder"
    )
    report.add_argument("dir", type=Path, help="a folder landed by txnsim generate")
    report.add_argument(
        "--out", type=Path, default=Path("report.html"), help="HTML file; PNGs go next to it"
    )
    config = commands.add_parser("config", help="inspect settings")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    show = config_commands.add_parser("show", help="print the effective settings")
    _settings_arguments(show)
    show.add_argument("--format", choices=["yaml", "json"], default="yaml")
    show.add_argument(
        "--explain",
        action="store_true",
        help="one line per value with where it came from (default, file, env, flag, --set)",
    )
    check = commands.add_parser(
        "validate", help="check a landed dataset (a folder or s3://bucket/prefix); JSON report"
    )
    check.add_argument("target", help="dataset root holding transactions/, or s3://bucket/prefix")
    check.add_argument(
        "--spill-dir", type=Path, help="where hashed ids are spilled (default: a temp folder)"
    )
    return parser


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
