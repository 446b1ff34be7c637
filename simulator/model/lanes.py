"""Lanes: worker processes that each simulate a sub-shard of the blocks, merged here.

Each lane simulates its blocks end to end (genuine rows, fraud, links), as a shard
would. This process merges the lanes' slices by event time and position, so the rows
are the single process's, byte for byte, and every stage but the final merge runs on
every core.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import queue
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np
import pyarrow as pa

from simulator.core.order import merged_order
from simulator.fraud.cards import CardRegistry
from simulator.model import pipes
from simulator.model.rows import SliceRows
from simulator.model.slices import LocalSlices, Slice
from simulator.world.build import World

__all__ = ["INLINE_WEIGHT", "Lanes", "deal"]

#: This process's lane's share of the blocks, against 1 for each worker lane, for the
#: batch job: it also builds every row's strings, merges and lands the files. Timed on
#: both sides (7 days x 100k, 2 workers, three runs each), the waits summed 0.49-0.50 s
#: at 0.8, 0.30-0.46 s at 0.9 and 0.20-0.52 s at 1.0 (where the worker does all the
#: waiting). A caller whose process does more per row passes its own share to
#: :func:`deal` (the stream does).
INLINE_WEIGHT = 0.9
#: Slices queued ahead of the merge (each a slice's rows as numbers); with the one
#: being received and the one the worker computes, enough to keep both sides busy.
_AHEAD = 1


def deal(blocks: Sequence[int], lanes: int, inline: float = INLINE_WEIGHT) -> list[list[int]]:
    """Deal ``blocks`` to ``lanes`` lanes, the first lane ``inline`` times a worker's share.

    A smooth weighted round robin: each block goes to the lane furthest behind its
    share, so every lane's blocks are spread over the whole population, and every
    lane gets at least one block when there are as many blocks as lanes.
    """
    weight = [inline] + [1.0] * (lanes - 1)
    total = sum(weight)
    credit = [0.0] * lanes
    dealt: list[list[int]] = [[] for _ in range(lanes)]
    for block in blocks:
        credit = [c + w for c, w in zip(credit, weight, strict=True)]
        k = max(range(lanes), key=credit.__getitem__)
        credit[k] -= total
        dealt[k].append(block)
    return dealt


@dataclass(frozen=True)
class _Sent:
    """A lane's slice as it crosses to the merging process: its rows as numbers.

    The strings are built once, after the merge, as a single process builds them: a
    lane that sent Arrow tables would build them, pickle them, and the merge would
    copy them again.
    """

    start: dt.datetime
    end: dt.datetime
    numbers: dict[str, np.ndarray]
    key: np.ndarray
    labels: pa.Table
    label_key: np.ndarray
    new_cards: pa.StringArray

    @classmethod
    def of(cls, part: Slice) -> _Sent:
        rows = part.rows
        if not isinstance(rows, SliceRows):
            raise TypeError(f"a lane's slice has numeric rows, not {type(rows).__name__}")
        return cls(
            part.start,
            part.end,
            rows.numbers,
            part.key,
            part.labels,
            part.label_key,
            part.new_cards,
        )


def _lane_main(conn: Connection, make: Callable[[], LocalSlices]) -> None:
    """A lane's process: send each slice, then the card registry's state, or the error."""
    try:
        local = make()
        for part in local:
            pipes.send(conn, ("slice", _Sent.of(part)))
        pipes.send(conn, ("cards", local.assembler.cards.state()))
    except BaseException:
        pipes.send(conn, ("error", traceback.format_exc()))
    finally:
        conn.close()


class _Pump:
    """One worker's messages, received on a thread of this process as they come.

    The worker then computes ahead while this process merges (up to :data:`_AHEAD`
    slices) instead of waiting, mid-send, for the merge to ask for its slice.
    """

    def __init__(self, k: int, conn: Connection, proc: BaseProcess) -> None:
        self._k = k
        self._conn = conn
        self._proc = proc
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(_AHEAD)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"txnsim-lane-{k}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                message = pipes.receive(self._conn)
            except (EOFError, OSError):
                message = ("stopped", None)
            if not self._offer(message) or message[0] != "slice":
                return

    def _offer(self, message: tuple[str, Any]) -> bool:
        """Queue ``message`` when there is room; False once the pump is stopping."""
        while not self._stopping.is_set():
            try:
                self._queue.put(message, timeout=0.1)
            except queue.Full:
                continue
            else:
                return True
        return False

    def get(self) -> tuple[str, Any]:
        """The worker's next message.

        Raises:
            RuntimeError: The worker failed (with its traceback) or stopped.
        """
        kind, value = self._queue.get()
        if kind == "stopped":
            self._proc.join(timeout=5)
            raise RuntimeError(f"worker {self._k} stopped (exit code {self._proc.exitcode})")
        if kind == "error":
            raise RuntimeError(f"worker {self._k} failed:\n{value}")
        return kind, value

    def stop(self) -> None:
        """Stop the worker and the thread; idempotent."""
        self._stopping.set()
        if self._proc.is_alive():
            self._proc.kill()
        self._proc.join()
        self._thread.join()
        self._conn.close()


class Lanes:
    """Lanes, each simulating a sub-shard of the blocks; merged here.

    The first lane runs in this process, the others in worker processes: this process
    would otherwise wait while they simulate, and its own lane's slices need no trip
    through a pipe. It gets fewer blocks (:func:`deal`), as it also merges, builds the
    strings and lands the files; a thread per worker receives the worker's slices as
    they come, so neither side waits on the other's slice by slice.
    """

    def __init__(
        self, world: World, lanes: list[Callable[[], LocalSlices]], registry: CardRegistry
    ) -> None:
        self._world = world
        self._lanes = lanes
        self._registry_base = registry
        self._pumps: list[_Pump] = []
        self._inline: LocalSlices | None = None
        self._inline_slices: Iterator[Slice] = iter(())
        n = len(world.cards)
        #: Per lane, this process's index of each of the lane's replacement cards.
        self._index = [np.zeros(0, dtype=np.int64) for _ in lanes]
        self._issued = n
        #: Ids of the cards as this process numbers them (the world's, then replacements).
        self._card_ids: pa.StringArray = world.cards.ids
        self.cards: CardRegistry | None = None

    def start(self) -> None:
        """Fork the worker lanes, then start their pumps and build this process's lane."""
        context = multiprocessing.get_context("fork")
        forked = []
        for lane in self._lanes[1:]:
            mine, theirs = context.Pipe(duplex=False)
            pipes.widen(theirs)
            proc = context.Process(target=_lane_main, args=(theirs, lane), daemon=True)
            proc.start()
            theirs.close()
            forked.append((mine, proc))
        # Threads only once every worker is forked (a fork copies no other thread).
        self._pumps = [_Pump(k, conn, proc) for k, (conn, proc) in enumerate(forked, 1)]
        # Built after the fork, so the workers do not inherit this lane's state.
        self._inline = self._lanes[0]()
        self._inline_slices = iter(self._inline)

    def stop(self) -> None:
        """Stop the worker processes and their pumps; idempotent."""
        for pump in self._pumps:
            pump.stop()
        self._pumps = []

    def _receive(self, k: int) -> tuple[str, Any]:
        if k == 0:  # this process's lane
            part = next(self._inline_slices, None)
            if part is None:
                assert self._inline is not None
                return "cards", self._inline.assembler.cards.state()
            return "slice", _Sent.of(part)
        return self._pumps[k - 1].get()

    def __iter__(self) -> Iterator[Slice]:
        while True:
            got = [self._receive(k) for k in range(len(self._lanes))]
            kinds = {kind for kind, _ in got}
            if kinds == {"cards"}:
                self.cards = self._registry([state for _, state in got])
                return
            if kinds != {"slice"}:
                raise RuntimeError("workers ended their runs at different slices")
            yield self._merge([part for _, part in got])

    def _cards(self, k: int, part: _Sent) -> np.ndarray:
        """Lane ``k``'s card indices as this process numbers them."""
        issued = len(part.new_cards)
        if issued:
            fresh = np.arange(self._issued, self._issued + issued, dtype=np.int64)
            self._index[k] = np.concatenate([self._index[k], fresh])
            self._issued += issued
            self._card_ids = pa.concat_arrays([self._card_ids, part.new_cards])
        n = len(self._world.cards)
        card = part.numbers["card"].astype(np.int64)
        reissued = card >= n
        card[reissued] = self._index[k][card[reissued] - n]
        return card

    def _merge(self, parts: list[_Sent]) -> Slice:
        """The lanes' slices as one, ordered as a single process orders it.

        Merged as numbers; the strings are built from them a file at a time, as in a
        single process.
        """
        assert self._inline is not None
        card = np.concatenate([self._cards(k, p) for k, p in enumerate(parts)])
        key = np.concatenate([p.key for p in parts])
        time = np.concatenate([p.numbers["time_us"] for p in parts])
        order = merged_order(time, key)  # each lane's rows are in order already
        numbers = {
            name: np.concatenate([p.numbers[name] for p in parts])[order]
            for name in parts[0].numbers
        }
        numbers["card"] = card = card[order]
        labels = pa.concat_tables([p.labels for p in parts])
        label_key = np.concatenate([p.label_key for p in parts])
        by_label = np.lexsort(
            (
                label_key,
                _micros(labels.column("event_time")),
                _micros(labels.column("label_time")),
            )
        )
        first = parts[0]
        return Slice(
            start=first.start,
            end=first.end,
            rows=SliceRows(self._inline.assembler.lookups, self._card_ids, numbers),
            card=card,
            key=key[order],
            labels=labels.take(pa.array(by_label)).combine_chunks(),
            label_key=label_key[by_label],
            new_cards=pa.concat_arrays([p.new_cards for p in parts]),
        )

    def _registry(self, states: list[dict[str, np.ndarray]]) -> CardRegistry:
        """The lanes' card registries as one, indexed as the merged slices are."""
        registry = self._registry_base
        for state, index in zip(states, self._index, strict=True):
            registry.absorb(state, index)
        return registry


def _micros(column: pa.ChunkedArray) -> np.ndarray:
    return column.cast(pa.int64()).to_numpy()
