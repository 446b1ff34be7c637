"""Group membership: the librdkafka consumer, its partitions and their offsets.

:class:`Membership` joins the sink's consumer group and keeps, per assigned partition, a
:class:`~consumers.landing.PartitionLog` opened at the group's committed offset (the
earliest retained one where nothing is committed) and the offset last committed. On a
revoke it first lets the caller wait for the files in flight, then drops what is held
uncommitted: the partitions' next owner re-reads it. With ``until_caught_up`` it reads
the end offsets once at start, pauses each partition committed up to its end, and says
when the whole group is there.

Offsets are committed asynchronously: a commit waits for the group coordinator, and while
one moves or restarts the loop goes on reading and landing (and hears a signal) instead
of blocking in librdkafka. A commit counts once the coordinator confirms it (the commit
callback, served by the next poll); one unanswered for ``connect_timeout_s`` is sent
again. What is committed is only ever what landed, so sending late changes nothing.

Broker requests ride out a coordinator or leader that moves or restarts; librdkafka's
``KafkaException`` becomes :class:`~consumers.errors.KafkaUnavailable` when they do not.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from consumers.errors import KafkaUnavailable, SinkError
from consumers.landing import Limits, PartitionLog
from consumers.settings import SinkSettings
from consumers.stats import SinkStats
from runtime.logs import RepeatFilter

__all__ = ["Membership", "confluent_consumer"]

log = logging.getLogger("txnsim.sink")

T = TypeVar("T")


def confluent_consumer(options: dict[str, Any]) -> Any:
    """The librdkafka consumer for ``options``, logging through ``txnsim.sink.librdkafka``.

    A broker that is down is reported once per ten seconds, not on every reconnect.
    """
    from confluent_kafka import Consumer

    client_log = logging.getLogger("txnsim.sink.librdkafka")
    if not any(isinstance(f, RepeatFilter) for f in client_log.filters):
        client_log.addFilter(RepeatFilter(window_s=10.0))
    return Consumer({**options, "logger": client_log})


class Membership:
    """One member's share of the topic.

    Args:
        settings: Validated settings.
        stats: The run's counters.
        consumer_factory: Builds the librdkafka consumer from its properties.
        before_revoke: Called with the partitions about to be revoked, before what is
            held for them is dropped (to wait for their files in flight).
        monotonic: A monotonic clock (for commits left unanswered).
    """

    def __init__(
        self,
        settings: SinkSettings,
        stats: SinkStats,
        consumer_factory: Callable[[dict[str, Any]], Any],
        before_revoke: Callable[[list[int]], None],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._kafka = settings.kafka
        self._stats = stats
        self._factory = consumer_factory
        self._before_revoke = before_revoke
        self._limits = Limits(settings.max_rows_per_file, settings.max_bytes_per_file)
        self._consumer: Any = None
        self._partitions: list[int] = []
        self._paused: set[int] = set()
        self._monotonic = monotonic
        #: How long a commit, the last commits' answers and the close are waited for.
        self.patience_s = settings.kafka.connect_timeout_s
        #: Commits sent and not yet answered: the offset per partition, and when it was sent.
        self._in_flight: dict[int, tuple[int, float]] = {}
        #: The assigned partitions' logs.
        self.logs: dict[int, PartitionLog] = {}
        #: The offset last confirmed committed (or started from), per assigned partition.
        self.committed: dict[int, int] = {}
        #: With ``until_caught_up``, the end offsets seen at start; None otherwise.
        self.ends: dict[int, int] | None = None

    # --- Lifecycle -------------------------------------------------------------------------

    def connect(self) -> None:
        """Build the consumer (it reaches the cluster lazily, in :meth:`join`)."""
        self._consumer = self._factory(
            {**self._settings.kafka_options(), "on_commit": self._on_commit}
        )

    def join(self) -> None:
        """Check the topic, read the end offsets if asked to, and subscribe.

        Raises:
            KafkaUnavailable: If the cluster does not answer within ``connect_timeout_s``
                or the topic does not exist.
        """
        self._partitions = self._check_topic()
        if self._settings.until_caught_up:
            self.ends = {p: self._watermarks(p, self._consumer)[1] for p in self._partitions}
            log.info("landing up to the end offsets seen at start", extra={"ends": self.ends})
        self._consumer.subscribe(
            [self._kafka.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )

    def consume(self) -> list[Any]:
        """One poll: up to ``poll_records`` messages, waiting half a second at most."""
        messages: list[Any] = self._consumer.consume(
            num_messages=self._kafka.poll_records, timeout=0.5
        )
        return messages

    def settle(self) -> bool:
        """Stop fetching and wait up to :attr:`patience_s` for the commits in flight.

        Returns:
            Whether every commit sent was answered (confirmed or refused) in time.
        """
        if not self._in_flight:
            return True
        self._consumer.pause(self._consumer.assignment())  # no more records: only callbacks
        deadline = self._monotonic() + self.patience_s
        while self._in_flight and self._monotonic() < deadline:
            # Serves the commit callback; a record fetched before the pause is not landed
            # (nothing past the last commit is lost: it is re-read).
            self._consumer.poll(0.1)
        return not self._in_flight

    def close(self) -> bool:
        """Leave the group and close the consumer (nothing more is committed).

        librdkafka's close waits for the group coordinator (to leave the group, for the
        commits in flight), and with the broker down it can wait until the broker is
        back. So it runs on a thread and is abandoned after :attr:`patience_s`: the
        group then drops this member at its session timeout, and nothing is lost (what
        was not confirmed committed is re-read).

        Returns:
            Whether the consumer closed in time.
        """
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return True

        def close() -> None:
            try:
                consumer.close()
            except Exception as exc:  # on its own thread: said, not raised
                log.warning("closing the consumer failed", extra={"error": str(exc)})

        closer = threading.Thread(target=close, name="txnsim-sink-close", daemon=True)
        closer.start()
        closer.join(self.patience_s)
        return not closer.is_alive()

    # --- Rebalances --------------------------------------------------------------------------

    def _check_topic(self) -> list[int]:
        from confluent_kafka import KafkaException

        kafka = self._kafka
        try:
            metadata = self._consumer.list_topics(kafka.topic, timeout=kafka.connect_timeout_s)
        except KafkaException as exc:
            raise KafkaUnavailable(
                f"cannot reach Kafka at {kafka.bootstrap_servers} within "
                f"{kafka.connect_timeout_s:g} s "
                f"(kafka.bootstrap_servers, kafka.connect_timeout_s): {exc}"
            ) from exc
        topic = metadata.topics.get(kafka.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            why = topic.error if topic is not None else "not in the cluster metadata"
            raise KafkaUnavailable(f"topic {kafka.topic!r} is not available: {why}")
        return sorted(topic.partitions)

    def _on_assign(self, consumer: Any, assigned: list[Any]) -> None:
        self._stats.count_rebalance()
        committed = self._committed_offsets([tp.partition for tp in assigned], consumer)
        for tp in committed:
            start = tp.offset
            if start < 0:  # nothing committed: the earliest retained offset
                start, _ = self._watermarks(tp.partition, consumer)
            self.logs[tp.partition] = PartitionLog(self._limits, start)
            self.committed[tp.partition] = start
            self._in_flight.pop(tp.partition, None)
        log.info(
            "partitions assigned",
            extra={"partitions": sorted(tp.partition for tp in assigned)},
        )

    def _on_revoke(self, _: Any, revoked: list[Any]) -> None:
        # A file in flight for these partitions is waited for (landed but uncommitted, the
        # next owner adopts it); what is held is dropped uncommitted and re-read from the
        # committed offsets by the partitions' next owner.
        self._stats.count_rebalance()
        self._before_revoke([tp.partition for tp in revoked])
        for tp in revoked:
            self.logs.pop(tp.partition, None)
            self.committed.pop(tp.partition, None)
            self._in_flight.pop(tp.partition, None)
            self._paused.discard(tp.partition)
        log.info("partitions revoked", extra={"partitions": sorted(tp.partition for tp in revoked)})

    # --- Offsets -----------------------------------------------------------------------------

    def commit(self) -> None:
        """Send a commit for every partition whose landed position moved past its commits.

        Asynchronous: :attr:`committed` moves when the coordinator confirms. A refused
        commit (e.g. a rebalance took the partitions) is logged and sent again next round;
        the files stay, and a next owner adopts them.
        """
        from confluent_kafka import KafkaException, TopicPartition

        self._advance_past_gaps()
        now = self._monotonic()
        due: dict[int, int] = {}
        for partition, partition_log in self.logs.items():
            position = partition_log.commit_position()
            sent, at = self._in_flight.get(partition, (-1, now))
            if now - at >= self.patience_s:
                sent = -1  # unanswered for too long: send it again
            if position > max(self.committed.get(partition, -1), sent):
                due[partition] = position
        if not due:
            return
        topic = self._kafka.topic
        try:
            self._consumer.commit(
                offsets=[TopicPartition(topic, p, pos) for p, pos in due.items()],
                asynchronous=True,
            )
        except KafkaException as exc:
            log.warning("commit failed; will retry", extra={"error": str(exc)})
            return
        self._in_flight.update((p, (pos, now)) for p, pos in due.items())

    def _on_commit(self, error: Any, partitions: list[Any]) -> None:
        """The coordinator's answer to a commit (served by a poll of this thread)."""
        if error is not None:
            log.warning("commit failed; will retry", extra={"error": str(error)})
        confirmed: dict[int, int] = {}
        for tp in partitions:
            sent = self._in_flight.get(tp.partition)
            if sent is not None and sent[0] == tp.offset:
                del self._in_flight[tp.partition]  # answered; a refusal is sent again
            if error is None and tp.error is None and tp.partition in self.logs:
                confirmed[tp.partition] = max(tp.offset, self.committed.get(tp.partition, -1))
            elif error is None and tp.error is not None:
                log.warning(
                    "commit failed; will retry",
                    extra={"partition": tp.partition, "error": str(tp.error)},
                )
        if confirmed:
            self._confirmed(confirmed)

    def _confirmed(self, positions: dict[int, int]) -> None:
        """Record commits the coordinator confirmed; pause partitions at their end."""
        from confluent_kafka import TopicPartition

        topic = self._kafka.topic
        self.committed.update(positions)
        self._stats.count_commit()
        for partition, position in positions.items():
            _, high = self._consumer.get_watermark_offsets(
                TopicPartition(topic, partition), cached=True
            )
            self._stats.committed(partition, position, high)
        if self.ends is not None:
            for partition, position in positions.items():
                if position >= self.ends.get(partition, 0) and partition not in self._paused:
                    self._consumer.pause([TopicPartition(topic, partition)])
                    self._paused.add(partition)

    def positions(self) -> dict[int, int]:
        """The consumer's position per assigned partition: the next offset it will return.

        Under read_committed it moves past transaction markers and aborted records, which
        take offsets but never reach the sink.
        """
        from confluent_kafka import TopicPartition

        if not self.logs:
            return {}
        wanted = [TopicPartition(self._kafka.topic, p) for p in self.logs]
        return {tp.partition: tp.offset for tp in self._consumer.position(wanted) if tp.offset >= 0}

    def _advance_past_gaps(self) -> None:
        """Let each idle partition's log follow the consumer past markers and aborted records."""
        for partition, position in self.positions().items():
            partition_log = self.logs.get(partition)
            if partition_log is not None:
                partition_log.passed(position)

    def caught_up(self) -> bool:
        """Whether the group committed every partition up to the end offsets seen at start.

        Raises:
            SinkError: If the end offsets were not read (``until_caught_up`` is off).
        """
        ends = self.ends
        if ends is None:
            raise SinkError("caught_up() needs the end offsets: until_caught_up is off")
        if any(self.committed.get(p, -1) < ends[p] for p in self.logs):
            return False
        others = [p for p in self._partitions if p not in self.logs]
        if not others:
            return bool(self.logs) or all(end == 0 for end in ends.values())
        try:
            committed = self._committed_offsets(others, self._consumer, attempts=1)
        except KafkaUnavailable:
            return False  # e.g. the coordinator moved: ask again next round
        return all(tp.offset >= ends[tp.partition] or ends[tp.partition] == 0 for tp in committed)

    def _committed_offsets(
        self, partitions: list[int], consumer: Any, attempts: int = 10
    ) -> list[Any]:
        """The group's committed offsets (``OFFSET_INVALID`` where none is committed)."""
        from confluent_kafka import TopicPartition

        wanted = [TopicPartition(self._kafka.topic, p) for p in partitions]
        timeout = self._kafka.connect_timeout_s
        return list(
            _ask_kafka(
                lambda: consumer.committed(wanted, timeout=timeout),
                f"the committed offsets of group {self._kafka.group!r}",
                attempts,
            )
        )

    def _watermarks(self, partition: int, consumer: Any) -> tuple[int, int]:
        """The partition's low and high watermarks."""
        from confluent_kafka import TopicPartition

        tp = TopicPartition(self._kafka.topic, partition)
        timeout = self._kafka.connect_timeout_s
        low, high = _ask_kafka(
            lambda: consumer.get_watermark_offsets(tp, timeout=timeout),
            f"the offsets of partition {partition}",
        )
        return int(low), int(high)


def _ask_kafka(request: Callable[[], T], what: str, attempts: int = 10) -> T:
    """Run a broker request, riding out a coordinator or leader that moves or restarts.

    Raises:
        ValueError: If ``attempts`` is below 1.
        KafkaUnavailable: If it still fails after ``attempts`` tries.
    """
    from confluent_kafka import KafkaException

    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    pause = 0.5
    for attempt in range(1, attempts):
        try:
            return request()
        except KafkaException as exc:
            log.warning(
                "Kafka request failed; retrying",
                extra={"what": what, "error": str(exc), "attempt": attempt},
            )
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
    try:
        return request()
    except KafkaException as exc:
        raise KafkaUnavailable(f"cannot read {what}: {exc}") from exc
