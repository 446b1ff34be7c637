"""Structured logging: one JSON object per line, or readable text on a terminal.

Every record carries the run id and the seed (bound once with :func:`bind`), so lines
from a long run can be joined to its manifest.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import orjson

__all__ = ["JsonFormatter", "RepeatFilter", "bind", "configure_logging"]

_BOUND: dict[str, Any] = {}
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def bind(**fields: Any) -> None:
    """Add fields (e.g. ``run_id``, ``seed``) to every later log line."""
    _BOUND.update(fields)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object with its extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a JSON line."""
        payload: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_BOUND,
            **_extras(record),
        }
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(payload, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class RepeatFilter(logging.Filter):
    """Lets one message through once per window and counts the repeats it holds back.

    A client library that cannot reach its broker says so on every reconnect attempt
    (librdkafka: about 20 lines a second); one line per window says the same. The next
    line let through carries ``repeated``, the number held back since the last one.

    Args:
        window_s: Seconds during which the same message (logger, level, text) is held back.
        monotonic: A monotonic clock.
    """

    _MAX_KEYS = 1024

    def __init__(self, window_s: float = 10.0, monotonic: Callable[[], float] = time.monotonic):
        super().__init__()
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self._window_s = window_s
        self._monotonic = monotonic
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is let through (a repeat within the window is not)."""
        key = (record.name, record.levelno, record.getMessage())
        now = self._monotonic()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self._window_s:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        if last is not None and last[1]:
            record.repeated = last[1]
        if len(self._seen) >= self._MAX_KEYS:
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self._window_s}
        self._seen[key] = (now, 0)
        return True


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        return f"{record.levelname.lower():7s} {record.getMessage()}" + (
            f"  {extras}" if extras else ""
        )


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when each record is emitted (it may be replaced)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        """Emit to the current stderr."""
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(
    level: str = "INFO", stream: TextIO | None = None, json: bool | None = None
) -> None:
    """Send logs to ``stream`` (default: the current stderr), as JSON unless it is a terminal."""
    target = stream if stream is not None else sys.stderr
    use_json = (not target.isatty()) if json is None else json
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    handler.setFormatter(JsonFormatter() if use_json else _TextFormatter())
    root = logging.getLogger("txnsim")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
