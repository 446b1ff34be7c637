"""A third-party fraud scenario, published to the registry through an entry point in tests."""

from __future__ import annotations

import numpy as np
from pydantic import Field
from typing_extensions import override

from simulator.fraud import Campaign, Scenario, ScenarioParams
from simulator.fraud.context import CampaignContext


class GiftCardDrainParams(ScenarioParams):
    """Gift cards bought online in quick succession."""

    purchases: int = Field(ge=1, le=50)
    amount_usd: float = Field(gt=0)


class GiftCardDrain(Scenario[GiftCardDrainParams]):
    """Drains a card into gift cards: same amount, a few minutes apart."""

    name = "gift_card_drain"
    Params = GiftCardDrainParams

    @override
    def plan(self, ctx: CampaignContext, rng: np.random.Generator, start_us: int) -> Campaign:
        p = self.params
        holder = int(ctx.victims(rng, 1)[0])
        card = ctx.card_of(holder, start_us)
        k = p.purchases
        t = start_us + np.cumsum(rng.integers(60, 600, k)) * 1_000_000
        merchant = ctx.online_merchants(rng, k, ["5947"])
        amount = ctx.to_minor(np.full(k, p.amount_usd), merchant)
        return Campaign(
            time_us=t.astype(np.int64),
            card=np.full(k, card, dtype=np.int64),
            merchant=merchant.astype(np.int64),
            amount_minor=amount,
            entry_mode=np.full(k, ctx.ecommerce_mode, dtype=np.int8),
            fraud=np.ones(k, dtype=bool),
        )


class NotAScenario:
    """Published by mistake: the registry must refuse it."""
