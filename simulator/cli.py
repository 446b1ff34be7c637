"""Command line: ``txnsim`` generate, stream, validate, report and config show.

Exit codes: 0 success (a stream stopped by SIGINT/SIGTERM flushes and exits 0); 2
invalid input (arguments, settings, reference data), with one message naming the
field; 1 a failure while running (output folder not writable, S3 down past
``retry_give_up_s``, Kafka unreachable, delivery failed); 3 ``validate`` found a
violation (the JSON report names it); 4 a stream fell further behind schedule than
``--max-lag``.
Nothing is written before the settings are fully validated. SIGUSR1 writes every
thread's stack to stderr and the run goes on (:mod:`runtime.stacks`).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import importlib
import logging
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import orjson
import yaml

from runtime import errors as runtime_errors
from runtime.layers import explain_lines
from runtime.logs import bind, configure_logging
from runtime.stacks import dump_stacks_on_signal
from runtime.startup import resume_collector
from simulator.cli_parser import build_parser
from simulator.errors import ConfigError, LagExceeded, ReferenceDataError
from simulator.fraud.registry import check_scenarios
from simulator.settings.loading import Origins, load_settings_explained
from simulator.settings.models import Settings
from simulator.settings.run import RunSeed, Shard

__all__ = ["build_settings", "entry", "main"]

log = logging.getLogger("txnsim.cli")


def _serve_metrics(args: argparse.Namespace) -> bool:
    """Serve the metrics if ``--metrics-port`` asks; whether they are served.

    Without it the Prometheus client is not even loaded (21 ms of a run's start).
    """
    if args.metrics_port is None:
        return False
    from runtime import metrics

    try:
        metrics.serve(args.metrics_port, args.metrics_host)
    except OSError as exc:
        raise ConfigError(f"--metrics-port {args.metrics_port}: {exc}") from exc
    return True


def _cli_layer(args: argparse.Namespace) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for flag, key in (
        ("date", "start_date"),
        ("days", "days"),
        ("seed", "seed"),
        ("workers", "workers"),
        ("out", "out"),
    ):
        value = getattr(args, flag)
        if value is not None:
            layer[key] = str(value) if isinstance(value, Path) else value
    if args.cardholders is not None:
        layer["population"] = {"cardholders": args.cardholders}
    kafka = {
        key: getattr(args, flag, None)
        for flag, key in (
            ("bootstrap_servers", "bootstrap_servers"),
            ("topic", "topic"),
            ("labels_topic", "labels_topic"),
            ("partitions", "partitions"),
            ("delivery", "delivery"),
        )
    }
    if getattr(args, "schema_registry", None) is not None:
        kafka["schema_registry"] = {"url": args.schema_registry}
    if any(v is not None for v in kafka.values()):
        layer["kafka"] = {k: v for k, v in kafka.items() if v is not None}
    stream = {
        "speed": getattr(args, "speed", None),
        "max_lag_s": getattr(args, "max_lag", None),
        "labels": getattr(args, "labels", None),
    }
    if any(v is not None for v in stream.values()):
        layer["stream"] = {k: v for k, v in stream.items() if v is not None}
    return layer


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "txnsim"


def build_settings(args: argparse.Namespace) -> Settings:
    """Effective settings from every source, with the cache folder filled in."""
    return _explained_settings(args)[0]


def _explained_settings(args: argparse.Namespace) -> tuple[Settings, Origins]:
    settings, origins = load_settings_explained(args.config, _cli_layer(args), args.overrides)
    check_scenarios(settings.fraud)
    if settings.cache_dir is None:
        settings = settings.model_copy(update={"cache_dir": _default_cache_dir()})
        origins[("cache_dir",)] = "default ($XDG_CACHE_HOME/txnsim)"
    return settings, origins


def _show(settings: Settings, origins: Origins, fmt: str, *, explain: bool) -> None:
    data = settings.model_dump(mode="json")
    if explain:
        lines = list(explain_lines(Settings, data, origins))
        if fmt == "json":
            data = {key: {"value": value, "source": src} for key, value, src in lines}
        else:
            # Each line is itself a valid YAML setting (a dotted key, a JSON value).
            for key, value, src in lines:
                sys.stdout.write(f"{key}: {orjson.dumps(value).decode()}  # {src}\n")
            return
    if fmt == "json":
        sys.stdout.write(
            orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
        )
    else:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, width=120))


def _generate(settings: Settings, shard: Shard, *, metered: bool) -> None:
    from simulator.batch.generate import generate  # heavy imports only when running

    settings, seed = _seeded(settings)
    bind(run_id=uuid.uuid4().hex[:12], seed=seed.entropy, config_hash=settings.config_hash()[:12])
    if not shard.whole:
        bind(shard=str(shard))
    meter = None
    if metered:
        from simulator.metrics import BatchMeter

        meter = BatchMeter()
    summary = generate(settings, seed, shard=shard, meter=meter)
    sys.stdout.write(
        orjson.dumps(
            {
                "out": str(summary.out),
                "rows": summary.rows,
                "files": len(summary.files),
                "seed": seed.entropy,
                "seconds": round(summary.seconds, 3),
            }
        ).decode()
        + "\n"
    )


def _seeded(settings: Settings) -> tuple[Settings, RunSeed]:
    """The run's seed; one drawn from OS entropy becomes part of the effective settings."""
    seed = RunSeed.from_settings(settings)
    # A replay with --seed then has the same config hash and the same bytes.
    return seed.pin(settings), seed


def _stream(settings: Settings, *, live: bool, resume: bool, shard: Shard) -> None:
    from simulator.stream.job import run_stream

    settings, seed = _seeded(settings)
    bind(run_id=uuid.uuid4().hex[:12], seed=seed.entropy, config_hash=settings.config_hash()[:12])
    live_from = dt.datetime.now(tz=dt.UTC) if live else None
    if not shard.whole:
        bind(shard=str(shard))
    stats = run_stream(settings, seed, live_from=live_from, resume=resume, shard=shard)
    summary = {
        "released": stats.released,
        "labels_released": stats.labels_released,
        "skipped": stats.skipped,
        "stopped_early": stats.stopped_early,
        "max_lag_s": round(stats.max_lag_s, 3),
        "delivery": settings.kafka.delivery,
        "topic": settings.kafka.topic,
        "labels_topic": settings.kafka.labels_topic,
        "labels": settings.stream.labels,
        "seed": seed.entropy,
        "shard": str(shard),
    }
    sys.stdout.write(orjson.dumps(summary).decode() + "\n")


def _spark(settings: Settings, master: str, shards: int | None, memory: str) -> None:
    from simulator.batch import spark

    if settings.seed is None:
        raise ConfigError("seed: --engine spark needs --seed (every Spark task draws from it)")
    session = spark.session(master, driver_memory=memory)
    try:
        summary = spark.generate(session, settings, shards=shards)
    finally:
        session.stop()
    sys.stdout.write(orjson.dumps(summary.__dict__).decode() + "\n")


def _merge(target: str, settings: Settings, shards: int | None) -> None:
    from simulator.batch.merge import merge_manifests

    manifest = merge_manifests(target, settings, shards)
    summary = {
        "out": target,
        "shards": manifest["shards"]["count"],
        "rows": manifest["row_counts"]["transactions"],
        "files": len(manifest["files"]),
    }
    sys.stdout.write(orjson.dumps(summary).decode() + "\n")


def _report(root: Path, out: Path) -> None:
    from simulator.report.render import render_report  # matplotlib only when reporting

    figures = render_report(root, out)
    summary = {"out": str(out), "figures": [str(p) for p in figures.values()]}
    sys.stdout.write(orjson.dumps(summary).decode() + "\n")


def _validate(target: str, spill_dir: Path | None) -> int:
    from simulator.validate.checks import validate

    report = validate(target, environ=os.environ, spill_dir=spill_dir)
    sys.stdout.write(orjson.dumps(report.as_json(), option=orjson.OPT_INDENT_2).decode() + "\n")
    if report.violations:
        sys.stderr.write(f"txnsim: {target}: violations: {', '.join(report.violations)}\n")
        return 3
    return 0


class _NoPandas:
    """An import finder that reports pandas as not installed (see :func:`_hide_pandas`)."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"txnsim hides {name} from this process", name=name)


def _hide_pandas() -> None:
    """Keep pyarrow from importing pandas, which no command but ``--engine spark`` uses.

    pyarrow probes for pandas on the first array it builds (``pa.array`` of anything)
    and imports it when installed: 0.2 s, a fifth of the default run. A finder first in
    ``sys.meta_path`` makes that import fail at once, and pyarrow then works without
    its pandas integration. Done only in the console script's own process, never by
    :func:`main` called from a program that may want pandas.
    """
    if "pandas" not in sys.modules:
        sys.meta_path.insert(0, _NoPandas())


def main(argv: Sequence[str] | None = None, *, own_process: bool = False) -> int:
    """Run the command line; returns the process exit code.

    ``own_process``: this process runs only the command (the console script), so
    imports no command needs can be refused (see :func:`_hide_pandas`).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if own_process and getattr(args, "engine", "local") != "spark":
        _hide_pandas()
    if own_process:
        dump_stacks_on_signal()  # kill -USR1: every thread's stack to stderr, and go on
    configure_logging(
        args.log_level, json=None if args.log_format is None else args.log_format == "json"
    )
    _load_command(args.command)
    try:
        if args.command == "validate":
            return _validate(args.target, args.spill_dir)
        if args.command == "report":
            _report(args.dir, args.out)
            return 0
        settings, origins = _explained_settings(args)
        if args.command == "manifest":
            _merge(args.target, settings, args.shards)
            return 0
        if args.command == "config":
            _show(settings, origins, args.format, explain=args.explain)
            return 0
        metered = _serve_metrics(args)
        if args.command == "stream":
            _stream(settings, live=args.start == "now", resume=args.resume, shard=args.shard)
            return 0
        if args.engine == "spark":
            _spark(settings, args.spark_master, args.spark_shards, args.spark_driver_memory)
            return 0
        _generate(settings, args.shard, metered=metered)
    except (runtime_errors.ConfigError, ReferenceDataError) as exc:
        sys.stderr.write(f"txnsim: {exc}\n")
        return 2
    except LagExceeded as exc:
        sys.stderr.write(f"txnsim: {exc}\n")
        return 4
    except runtime_errors.TxnsimError as exc:
        sys.stderr.write(f"txnsim: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(
            "txnsim: interrupted; completed partitions are in place, the manifest was not written\n"
        )
        return 130
    return 0


#: The modules a command runs, loaded before the collector resumes (the others are light).
_COMMAND_MODULES = {"generate": "simulator.batch.generate", "stream": "simulator.stream.job"}


def _load_command(command: str) -> None:
    """Import what ``command`` runs, then resume the collector a console script paused.

    See :mod:`runtime.startup`.
    """
    module = _COMMAND_MODULES.get(command)
    if module is not None:
        importlib.import_module(module)
    resume_collector()


def entry() -> NoReturn:
    """Console-script entry point: the command, then the process ends at once.

    The exit handlers run and the output is flushed, but the interpreter's teardown is
    skipped: clearing every module and collecting numpy's, pyarrow's and pydantic's
    objects took 60-70 ms after a run (7 days x 100k cardholders, 2.3 s in all), and
    nothing in it is the command's to finish. An exception still ends the process the
    usual way, with its traceback.
    """
    code = main(own_process=True)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe loses nothing of ours
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
