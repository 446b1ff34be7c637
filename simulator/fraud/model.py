"""What every block's fraud planner shares: the scenarios, their calibration, the cards.

The calibration plans sample campaigns in the first block (victims come from one block,
as in a run) to learn, per scenario, the mean fraud rows of a campaign, the share of
them within a day of its start, and how far its rows reach; it depends only on the
settings and the seed, so it is cached between runs (``memo``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from runtime.units import US_PER_DAY
from simulator.core.seeding import Streams
from simulator.fraud.cards import CardRegistry
from simulator.fraud.cases import case_key, detect
from simulator.fraud.context import CampaignContext
from simulator.fraud.contract import Scenario
from simulator.fraud.registry import build_scenario
from simulator.settings.fraud import FraudConfig
from simulator.settings.models import Settings
from simulator.settings.run import CALIBRATION_SEED, RunSeed
from simulator.world.build import World, build_world

__all__ = ["FraudModel", "Memo", "card_registry"]

_CALIBRATION_CAMPAIGNS = 96

T = TypeVar("T")
#: ``memo(kind, build)``: ``build()``, or its result kept from an earlier run.
Memo = Callable[[str, Callable[[], Any]], Any]


def _no_memo(kind: str, build: Callable[[], T]) -> T:
    del kind
    return build()


def card_registry(world: World, config: FraudConfig, streams: Streams) -> CardRegistry:
    """A run's card registry before any block or reissue."""
    return CardRegistry(
        world.cards, config.replacement.delivery_days, streams.key64("card-delivery")
    )


class FraudModel:
    """What every block's planner shares: scenarios, their calibration, the card registry.

    Args:
        world: The built world.
        config: The fraud settings.
        streams: The run's random streams.
        slice_us: Slice length in microseconds.
        entry_modes: The card-present entry modes, in index order.
        memo: Keeps what depends only on the settings (the calibration) between runs:
            ``memo(kind, build)`` returns ``build()``, or what it returned before.
        calibration: The settings of the world to sample the calibration's campaigns in
            (its first block, built with :data:`CALIBRATION_SEED`); by default the run's
            own world and streams.

    Raises:
        ValueError: If two scenario names share a case-number prefix (vanishingly rare).
    """

    def __init__(
        self,
        world: World,
        config: FraudConfig,
        streams: Streams,
        slice_us: int,
        entry_modes: Sequence[str],
        memo: Memo = _no_memo,
        calibration: Settings | None = None,
    ) -> None:
        self.world = world
        self._calibration = calibration
        self.config = config
        self.streams = streams
        self.slice_us = slice_us
        mix = [(n, c) for n, c in sorted(config.scenarios.items()) if c.share > 0]
        self.names = [n for n, _ in mix]
        prefixes = {case_key(n, 0, 0, 0): n for n in self.names}
        if len(prefixes) < len(self.names):
            raise ValueError(f"scenario names {self.names} collide in their case numbers")
        self.scenarios: list[Scenario[Any]] = [build_scenario(n, c.params) for n, c in mix]
        total = sum(c.share for _, c in mix) or 1.0
        self.share = np.array([c.share / total for _, c in mix])
        #: Per scenario, whether its labels come from chargebacks (else issuer confirmation).
        self.label_sources = np.array(
            [sc.params.label_source == "chargeback" for sc in self.scenarios], dtype=bool
        )
        self.cards = card_registry(world, config, streams)
        self.quota_secret = streams.key64("fraud-quota")
        self._entry_modes = entry_modes
        self.ctx = CampaignContext(world, config.hotspots, self.cards.resolve, entry_modes)
        # Calibration plans sample campaigns: only worth it when fraud is wanted.
        n = len(self.scenarios)
        figures: tuple[np.ndarray, np.ndarray, np.ndarray] = (
            memo("fraud-calibration-seedless", self._calibrate)
            if self.rate > 0 and n
            else (np.ones(n), np.zeros(n), np.zeros(n, dtype=np.int64))
        )
        self.mean, self.fast, self.reach = figures

    @property
    def rate(self) -> float:
        """The target fraud rate by count."""
        return self.config.target_rate

    def _calibrate(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per scenario: mean fraud rows per campaign, share within a day, reach.

        The mean counts fraud rows that survive detection; the share is of those rows
        within a day of the campaign's start; the reach is how far after its start a
        campaign's last row can fall.

        Planned in the first block of the calibration world (victims come from one
        block, as in a run), on a scratch card registry with its own streams, so it
        changes nothing.
        """
        world, streams = self.world, self.streams
        if self._calibration is not None:
            seed = RunSeed(CALIBRATION_SEED, "configured")
            world, streams = build_world(self._calibration, seed), seed.streams
        lo, hi = world.block_range(0)
        scratch = CampaignContext(
            world, self.config.hotspots, lambda c, _t: c, self._entry_modes
        ).among(range(lo, hi))
        mean = np.ones(len(self.scenarios))
        fast = np.zeros(len(self.scenarios))
        reach = np.zeros(len(self.scenarios), dtype=np.int64)
        for i, (name, sc) in enumerate(zip(self.names, self.scenarios, strict=True)):
            counts, quick = 0, 0
            for k in range(_CALIBRATION_CAMPAIGNS):
                rng = streams.generator("fraud-calibration", name, k)
                rows = sc.plan(scratch, rng, 0)
                keep, _ = detect(sc, rows, rng)
                mask = keep & rows.fraud
                counts += int(mask.sum())
                quick += int((mask & (rows.time_us < US_PER_DAY)).sum())
                if len(rows):
                    reach[i] = max(reach[i], int(rows.time_us.max()))
            mean[i] = max(counts / _CALIBRATION_CAMPAIGNS, 1e-3)
            fast[i] = quick / max(counts, 1)
        return mean, fast, reach
