"""Settings of how the stream reaches a scoring stack: its Kafka transactions.

The Schema Registry section is :class:`schemas.registry.RegistrySettings`, shared with the
sink.
"""

from __future__ import annotations

from pydantic import Field

from simulator.settings.types import Model
from simulator.settings.types import Positive as _Positive

__all__ = ["TransactionsConfig"]


class TransactionsConfig(Model):
    """How ``kafka.delivery: exactly_once`` cuts the stream into Kafka transactions.

    A transaction closes when any bound is reached. A read_committed reader sees records
    only once their transaction commits, so ``wall_s`` is also the added latency.
    Kafka Streams commits every 100 ms under exactly-once by default
    (``commit.interval.ms``, Apache Kafka documentation); a transaction costs about one
    marker write per partition it touched, so at replay speed the record bound decides.
    """

    records: int = Field(default=100_000, ge=1, le=10_000_000)
    wall_s: _Positive = 1.0
    # One simulated day, not an hour: at replay speed (--speed max) an hour of simulated time
    # is a few thousand records (5,500 for 100k cardholders), and each commit drains the
    # producer first; the hour bound made 168 transactions of a 7-day run and exactly-once
    # 0.63-0.69x of the in-memory stream (bench/stream.py). A day lets the record bound
    # decide at replay speed, as intended; live, wall_s does.
    simulated_s: _Positive = Field(
        default=86_400.0, description="At most this much simulated time in one transaction."
    )
    timeout_s: _Positive = Field(
        default=60.0, description="transaction.timeout.ms: the broker aborts one left open longer."
    )
    retry_give_up_s: _Positive = Field(
        default=300.0, description="Give up re-sending an aborted transaction after this long."
    )
