"""One run, resolved from its settings: the seed it draws from and what the engine reads.

:class:`RunSeed` is the only way a seed enters a run. It is built once from the
settings (the configured seed, or one drawn from OS entropy and then recorded), and
every entry point refuses settings that name another seed, so the seed in a manifest
and the one the events were drawn from cannot differ.

:class:`RunSpec` holds what the engine reads while it runs, beyond the world it was
given: the slice length, how purchases are made, trips and fraud. The world's builders
read their own settings sections; nothing downstream holds the whole settings object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from runtime.units import US_PER_HOUR
from simulator.core.seeding import Streams
from simulator.settings.fraud import FraudConfig
from simulator.settings.models import Settings, TravelConfig

__all__ = ["CALIBRATION_SEED", "WHOLE", "RunSeed", "RunSpec", "SeedSource", "Shard"]

#: The seed of the world the fraud calibration samples campaigns in, whatever the run's.
CALIBRATION_SEED = 0

#: Where a run's seed came from: the settings, or OS entropy (then recorded in them).
SeedSource = Literal["configured", "os-entropy"]


@dataclass(frozen=True)
class RunSeed:
    """The root seed of one run and where it came from; build it with :meth:`from_settings`.

    Attributes:
        entropy: The root seed.
        source: ``"configured"`` or ``"os-entropy"`` (recorded in the manifest).
        streams: The run's random streams, keyed by name (see :mod:`simulator.core.seeding`).
    """

    entropy: int
    source: SeedSource
    streams: Streams = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "streams", Streams(self.entropy))

    @classmethod
    def from_settings(cls, settings: Settings) -> RunSeed:
        """The configured seed, or a fresh one from OS entropy when ``settings.seed`` is None."""
        if settings.seed is None:
            return cls(Streams.from_os().entropy, "os-entropy")
        return cls(settings.seed, "configured")

    def pin(self, settings: Settings) -> Settings:
        """``settings`` with this seed recorded (so a replay with ``--seed`` hashes the same).

        Raises:
            ValueError: If the settings name another seed, or this seed was drawn from OS
                entropy but the settings configure one (it was built from other settings).
        """
        if settings.seed is None and self.source == "os-entropy":
            return settings.model_copy(update={"seed": self.entropy})
        if settings.seed != self.entropy:
            raise ValueError(
                f"the run's seed {self.entropy} ({self.source}) is not the settings' seed "
                f"{settings.seed}: build it with RunSeed.from_settings(settings)"
            )
        return settings


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``: the cardholder blocks ``index, index + count, ...``.

    A block of cardholders is the unit of simulation, fraud planning included, so a
    shard's rows depend on its blocks alone and the shards of a run add up to the run.
    Blocks are dealt round-robin, so shards differ by at most one block; a shard with
    no block (``index`` at least the number of blocks) is valid and empty.
    """

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"a run has at least one shard, got {self.count}")
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} is not in 0..{self.count - 1}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"``: shard K (0-based) of N.

        Raises:
            ValueError: For text that is not two integers ``K/N`` with ``0 <= K < N``.
        """
        k, sep, n = text.partition("/")
        wrong = ValueError(f"expected K/N (shard K of N, K in 0..N-1), got {text!r}")
        try:
            index, count = int(k), int(n)
        except ValueError:
            raise wrong from None
        if not sep:
            raise wrong
        return cls(index, count)

    @property
    def whole(self) -> bool:
        """Whether this is the single shard of an unsharded run."""
        return self.count == 1

    @property
    def name(self) -> str:
        """``shard-KKKKK-of-NNNNN``: names this shard's files and manifest."""
        return f"shard-{self.index:05d}-of-{self.count:05d}"

    def blocks(self, n_blocks: int) -> range:
        """The shard's block numbers among ``n_blocks``, in order."""
        return range(self.index, n_blocks, self.count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


#: The single shard of an unsharded run.
WHOLE = Shard()


@dataclass(frozen=True)
class RunSpec:
    """What the engine reads while it runs, beyond the world.

    Attributes:
        slice_hours: Length of a time slice.
        entry_modes: Card-present entry modes, in index order.
        entry_mode_weights: Their relative weights.
        null_rates: Share of rows whose field is blanked, by nullable field.
        local_share: Card-present spend in the city where the cardholder is.
        ecommerce_foreign_share: Online purchases from merchants anywhere.
        travel: Trips away from home.
        fraud: The fraud model.
        cache_dir: Where what depends only on the settings is kept between runs (None:
            nowhere); ``config_hash`` keys it.
        calibration: The settings of the world the fraud calibration samples campaigns
            in: one block of these settings with :data:`CALIBRATION_SEED`, so the
            calibration does not depend on the run's seed (None: the run's own world).
        calibration_hash: Keys the calibration in ``cache_dir``: their hash.
    """

    slice_hours: int
    entry_modes: tuple[str, ...]
    entry_mode_weights: tuple[float, ...]
    null_rates: Mapping[str, float]
    local_share: float
    ecommerce_foreign_share: float
    travel: TravelConfig
    fraud: FraudConfig
    cache_dir: Path | None = None
    config_hash: str = ""
    calibration: Settings | None = field(default=None, compare=False, repr=False)
    calibration_hash: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> RunSpec:
        """The engine's part of ``settings``."""
        population = settings.population
        probe = settings.model_copy(
            update={
                "seed": CALIBRATION_SEED,
                "population": population.model_copy(
                    update={"cardholders": min(population.block_size, population.cardholders)}
                ),
            }
        )

        return cls(
            slice_hours=settings.slice_hours,
            entry_modes=tuple(settings.pos_entry_modes),
            entry_mode_weights=tuple(settings.pos_entry_modes.values()),
            null_rates=dict(settings.null_rates),
            local_share=settings.geography.local_share,
            ecommerce_foreign_share=settings.merchants.ecommerce_foreign_share,
            travel=settings.travel,
            fraud=settings.fraud,
            cache_dir=settings.cache_dir,
            config_hash=settings.config_hash(),
            calibration=probe,
            calibration_hash=probe.config_hash(),
        )

    @property
    def slice_us(self) -> int:
        """Slice length in microseconds."""
        return self.slice_hours * US_PER_HOUR
