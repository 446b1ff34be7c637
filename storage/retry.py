"""Capped exponential backoff with jitter, for the stores and the Schema Registry."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from storage.errors import StoreUnavailable

__all__ = ["Retrying"]

log = logging.getLogger("txnsim.store")

T = TypeVar("T")


@dataclass
class Retrying:
    """Retries transient failures with capped exponential backoff and jitter.

    Attributes:
        base_s: The first pause.
        cap_s: The longest pause.
        give_up_s: Give up (raise the failure's own type, with the attempts and time
            spent) after this long; None retries until ``should_stop`` says so.
        should_stop: Polled between attempts; True ends the retries (e.g. on SIGTERM).
        on_retry: Called with the failure before each pause (metrics, logs).
        sleep: The pause function (injected in tests).
        monotonic: The clock for ``give_up_s`` (injected in tests).
        jitter: Draws in [0, 1) that scale each pause by 0.5-1.5 (injected in tests).
        transient: The failures that are retried (the destination's by default).
        service: What is retried, for the logs.
    """

    base_s: float = 0.2
    cap_s: float = 10.0
    give_up_s: float | None = None
    should_stop: Callable[[], bool] = lambda: False
    on_retry: Callable[[Exception], None] = lambda exc: None
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    #: A draw in [0, 1) that spreads pauses over 0.5-1.5x (clients do not retry in step).
    jitter: Callable[[], float] = field(default_factory=lambda: random.Random().random)
    transient: tuple[type[Exception], ...] = (StoreUnavailable,)
    service: str = "destination"

    def __call__(self, operation: Callable[[], T], what: str) -> T:
        """Run ``operation`` until it succeeds, a permanent error, a stop or the deadline."""
        began = self.monotonic()
        pause = self.base_s
        attempt = 1
        while True:
            try:
                return operation()
            except self.transient as exc:
                waited = self.monotonic() - began
                if self.should_stop() or (self.give_up_s is not None and waited > self.give_up_s):
                    raise type(exc)(
                        f"{what}: gave up after {attempt} attempts in {waited:.1f} s: {exc}"
                    ) from exc
                self.on_retry(exc)
                log.warning(
                    f"{self.service} unavailable; retrying",
                    extra={
                        "what": what,
                        "attempt": attempt,
                        "pause_s": round(pause, 2),
                        "error": str(exc),
                    },
                )
                self.sleep(pause * (0.5 + self.jitter()))
                pause = min(self.cap_s, pause * 2)
                attempt += 1
