"""``txnsim-sink``: land a transactions topic as date-partitioned Parquet, exactly once.

Exit codes: 0 stopped cleanly (SIGINT/SIGTERM: what is held is landed and committed;
or ``--until-caught-up`` finished); 2 invalid settings, naming the field; 1 a failure
while running (Kafka unreachable or topic missing, the destination down past
``retry_give_up_s``, a permanent destination error, a name conflict, the Schema
Registry unreachable past ``registry_give_up_s``). A second signal
stops retrying an unavailable destination: nothing uncommitted is lost, it is re-read.
SIGUSR1 writes every thread's stack to stderr and lets the sink go on
(:mod:`runtime.stacks`).

Each flag sets one setting (``--group`` is ``kafka.group``, ``--s3-region`` is
``s3.region``); ``--set KEY=VALUE`` sets any, dotted in its section
(``--set kafka.connect_timeout_s=5``), and wins over the flags. The environment gives
the rest: ``TXNSIM_SINK_<KEY>``, sections joined by ``__`` (``TXNSIM_SINK_KAFKA__GROUP``).
See :mod:`consumers.settings`.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from consumers.settings import load_sink_settings
from consumers.sink import Sink
from runtime import metrics
from runtime.errors import ConfigError, TxnsimError
from runtime.logs import bind, configure_logging
from runtime.overrides import deep_merge, parse_overrides
from runtime.stacks import dump_stacks_on_signal
from storage.base import open_store

__all__ = ["entry", "main"]

log = logging.getLogger("txnsim.sink.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="txnsim-sink",
        description="Land a Kafka topic of Avro transactions as dt= partitioned Parquet.",
    )
    parser.add_argument(
        "--bootstrap-servers",
        dest="kafka.bootstrap_servers",
        metavar="HOST:PORT,...",
        help="Kafka bootstrap servers (kafka.bootstrap_servers)",
    )
    parser.add_argument(
        "--topic",
        dest="kafka.topic",
        metavar="TOPIC",
        help="topic to land (kafka.topic; default transactions)",
    )
    parser.add_argument(
        "--group",
        dest="kafka.group",
        metavar="GROUP",
        help="consumer group id (kafka.group; default lake-writer)",
    )
    parser.add_argument("--dest", help="file:///path, a path, or s3://bucket/prefix (dest)")
    parser.add_argument(
        "--s3-endpoint-url",
        dest="s3.endpoint_url",
        metavar="URL",
        help="S3 endpoint override, e.g. MinIO (s3.endpoint_url)",
    )
    parser.add_argument(
        "--s3-region", dest="s3.region", metavar="REGION", help="S3 region (s3.region)"
    )
    parser.add_argument(
        "--schema-registry",
        dest="schema_registry.url",
        metavar="URL",
        help="Schema Registry API base, to read Confluent wire-format values "
        "(schema_registry.url; e.g. http://host:8080/apis/ccompat/v7)",
    )
    parser.add_argument(
        "--until-caught-up",
        action="store_const",
        const=True,
        help="land up to the end offsets seen at start, commit and exit 0",
    )
    parser.add_argument("--max-rows-per-file", type=int, help="rows per file at most")
    parser.add_argument("--max-file-age", type=float, dest="max_file_age_s", help="seconds")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other setting, dotted in its section, e.g. memory_budget_bytes=268435456 "
        "or kafka.poll_records=5000 (repeatable; wins over the flags above)",
    )
    parser.add_argument(
        "--metrics-port", type=int, help="serve Prometheus metrics on this port (/metrics)"
    )
    parser.add_argument("--metrics-host", default="127.0.0.1", help="address to serve metrics on")
    parser.add_argument("--log-level", default="INFO")
    return parser


def _nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"kafka.group": "x"}`` as ``{"kafka": {"group": "x"}}``."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *sections, name = key.split(".")
        node = nested
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = value
    return nested


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sink; returns the process exit code."""
    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    # A flag's dest is its setting's dotted key; --set overrides merge over the flags.
    flags = {
        key: value
        for key, value in vars(args).items()
        if key not in ("overrides", "log_level", "metrics_port", "metrics_host")
        and value is not None
    }
    try:
        cli = deep_merge(_nested(flags), parse_overrides(args.overrides))
        settings = load_sink_settings(cli)
        store = open_store(settings.dest, s3=settings.s3)
    except (ConfigError, TxnsimError) as exc:
        print(f"txnsim-sink: {exc}", file=sys.stderr)
        return 2
    bind(run_id=uuid.uuid4().hex[:12], group=settings.kafka.group, topic=settings.kafka.topic)
    try:
        metrics.serve(args.metrics_port, args.metrics_host)
    except OSError as exc:
        print(f"txnsim-sink: --metrics-port {args.metrics_port}: {exc}", file=sys.stderr)
        return 2
    sink = Sink(settings, store)

    def _on_signal(signum: int, _: Any) -> None:
        log.info("signal received; landing what is held", extra={"signal": signum})
        sink.stop()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    dump_stacks_on_signal()  # SIGUSR1, answered even while librdkafka holds this thread
    try:
        stats = sink.run()
    except TxnsimError as exc:
        log.error("sink failed", extra={"error": str(exc)})  # noqa: TRY400 - expected failure
        print(f"txnsim-sink: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(orjson.dumps({**stats.as_json(), "dest": store.url}).decode() + "\n")
    return 0


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
