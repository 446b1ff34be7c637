"""Command line: ``txnsim generate`` and ``txnsim config show``.

Exit codes: 0 success; 2 invalid input (arguments, settings, reference data), with
one message naming the field; 1 a failure while running (e.g. the output folder is
not writable). Nothing is written before the settings are fully validated.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import yaml

from simulator.config import Settings
from simulator.errors import ConfigError, ReferenceDataError, SimulatorError
from simulator.logs import bind, configure_logging
from simulator.seeding import Streams
from simulator.settings import load_settings

__all__ = ["main"]

log = logging.getLogger("txnsim.cli")


def _iso_date(text: str) -> str:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a calendar date in YYYY-MM-DD form"
        ) from None
    return text


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
    parser.add_argument("--out", type=Path, help="output folder (out)")


def _parser() -> argparse.ArgumentParser:
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
    config = commands.add_parser("config", help="inspect settings")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    show = config_commands.add_parser("show", help="print the effective settings")
    _settings_arguments(show)
    show.add_argument("--format", choices=["yaml", "json"], default="yaml")
    return parser


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
    return layer


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "txnsim"


def build_settings(args: argparse.Namespace) -> Settings:
    """Effective settings from every source, with the cache folder filled in."""
    settings = load_settings(args.config, _cli_layer(args), args.overrides)
    if settings.cache_dir is None:
        settings = settings.model_copy(update={"cache_dir": _default_cache_dir()})
    return settings


def _show(settings: Settings, fmt: str) -> None:
    data = settings.model_dump(mode="json")
    if fmt == "json":
        sys.stdout.write(
            orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
        )
    else:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, width=120))


def _generate(settings: Settings) -> None:
    from simulator.generate import generate  # heavy imports only when running

    if settings.seed is None:
        streams, source = Streams.from_os(), "os-entropy"
        # The drawn seed becomes part of the effective settings, so a replay with
        # --seed produces the same config hash and the same bytes.
        settings = settings.model_copy(update={"seed": streams.entropy})
    else:
        streams, source = Streams(settings.seed), "configured"
    bind(seed=streams.entropy, config_hash=settings.config_hash()[:12])
    summary = generate(settings, streams, seed_source=source)
    sys.stdout.write(
        orjson.dumps(
            {
                "out": str(summary.out),
                "rows": summary.rows,
                "files": len(summary.files),
                "seed": streams.entropy,
                "seconds": round(summary.seconds, 3),
            }
        ).decode()
        + "\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    configure_logging(
        args.log_level, json=None if args.log_format is None else args.log_format == "json"
    )
    try:
        settings = build_settings(args)
        if args.command == "config":
            _show(settings, args.format)
            return 0
        _generate(settings)
    except (ConfigError, ReferenceDataError) as exc:
        sys.stderr.write(f"txnsim: {exc}\n")
        return 2
    except SimulatorError as exc:
        sys.stderr.write(f"txnsim: {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(
            "txnsim: interrupted; completed partitions are in place, the manifest was not written\n"
        )
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
