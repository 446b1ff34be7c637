"""One root seed, independent random streams by name.

Every component asks for a stream by a stable key: a name and a few integers or
names (a population block, a date ordinal, a fraud scenario). The key is hashed into
the ``spawn_key`` of a
``numpy.random.SeedSequence`` built from the root entropy, so a stream depends on
its key alone, never on the order of calls: adding a component, a scenario or a
worker leaves every other stream unchanged. There is no global random state.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

__all__ = ["Streams", "stable_word"]


@lru_cache(maxsize=4096)
def stable_word(name: str) -> int:
    """A 32-bit integer from a name, the same on every platform and Python run.

    Remembered: a run asks for the same few stream and scenario names thousands of times.
    """
    return int.from_bytes(hashlib.blake2s(name.encode("utf-8"), digest_size=4).digest(), "big")


class Streams:
    """A factory of seeded generators keyed by ``(name, *keys)``.

    A run's streams come from its :class:`~simulator.settings.run.RunSeed`; build one
    directly only where no run is involved.

    Args:
        entropy: The root seed (any non-negative integer, up to 128 bits or more).
    """

    __slots__ = ("_entropy",)

    def __init__(self, entropy: int) -> None:
        if entropy < 0:
            raise ValueError(f"entropy must be non-negative, got {entropy}")
        self._entropy = entropy

    @classmethod
    def from_os(cls) -> Streams:
        """Draw a fresh 63-bit root seed from OS entropy (record :attr:`entropy` to replay).

        63 bits keep the seed an exact integer in JSON readers and on the command line.
        """
        return cls(int(np.random.SeedSequence().entropy) % (1 << 63))  # type: ignore[arg-type]

    @property
    def entropy(self) -> int:
        """The root seed."""
        return self._entropy

    def seed_sequence(self, name: str, *keys: int | str) -> np.random.SeedSequence:
        """The seed sequence of the stream ``(name, *keys)``.

        A string key (a scenario's name) counts as its :func:`stable_word`.
        """
        words = [stable_word(k) if isinstance(k, str) else k for k in keys]
        if any(k < 0 for k in words):
            raise ValueError(f"stream keys must be non-negative, got {keys}")
        return np.random.SeedSequence(self._entropy, spawn_key=(stable_word(name), *words))

    def generator(self, name: str, *keys: int | str) -> np.random.Generator:
        """A fresh ``Generator`` (PCG64) for the stream ``(name, *keys)``."""
        return np.random.Generator(np.random.PCG64(self.seed_sequence(name, *keys)))

    def key64(self, name: str) -> int:
        """A 64-bit constant of the stream ``name`` (for keyed hashing, not sampling)."""
        return int(self.seed_sequence(name).generate_state(1, np.uint64)[0])
