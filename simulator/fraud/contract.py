"""The scenario plugin contract: a name, a parameter model, and a planning method.

A scenario plans one *campaign* at a time: given the world (through a
:class:`~simulator.fraud.context.CampaignContext`), its own seeded generator and a
start time, it returns the campaign's transactions as arrays. The planner decides how
many campaigns start and when, detects them (blocking and reissuing cards), and labels
them; a scenario only describes what the fraud looks like.

Third-party scenarios subclass :class:`Scenario` and are published under the
entry-point group ``txnsim.fraud_scenarios`` (``name = "package.module:Class"``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Generic, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from simulator.settings.fraud import Delay

if TYPE_CHECKING:
    from simulator.fraud.context import CampaignContext

__all__ = ["Campaign", "Scenario", "ScenarioParams"]


class ScenarioParams(BaseModel):
    """Parameters every scenario has; subclasses add their own fields.

    Attributes:
        detection_delay: From a card's first fraudulent transaction to its block.
        blocks_card: Whether detection blocks the card (and a replacement is issued).
        label_delay: From detection (or the transaction, if later) to the label.
        label_source: How the issuer learns of it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    detection_delay: Delay
    blocks_card: bool = True
    label_delay: Delay
    label_source: Literal["issuer_confirmed", "chargeback"] = "issuer_confirmed"
    hour_weights: list[float] | None = Field(
        default=None,
        min_length=24,
        max_length=24,
        description="Relative weight of each local hour for the campaign's start; None: uniform.",
    )


@dataclass(frozen=True)
class Campaign:
    """One campaign's transactions, as parallel arrays (any order).

    Attributes:
        time_us: Event times, microseconds since the epoch (UTC).
        card: Card index of each transaction.
        merchant: Merchant index.
        amount_minor: Amount in hundredths of the merchant's currency; the planner rounds
            it to whole steps of the currency's ISO 4217 minor unit (whole yen), so use
            :meth:`CampaignContext.to_minor` or :meth:`CampaignContext.quantise`.
        entry_mode: Index into ``pos_entry_modes`` (card present), the e-commerce code
            (:attr:`CampaignContext.ecommerce_mode`) or -1 for none.
        fraud: False for the genuine cardholder's own transactions that set the stage
            (a purchase at a breached merchant, the last purchase at home before a
            cloned card is used abroad).
    """

    time_us: np.ndarray
    card: np.ndarray
    merchant: np.ndarray
    amount_minor: np.ndarray
    entry_mode: np.ndarray
    fraud: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.time_us)
        for name in ("card", "merchant", "amount_minor", "entry_mode", "fraud"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Campaign.{name} has {len(getattr(self, name))} rows, not {n}")

    def __len__(self) -> int:
        return len(self.time_us)

    @property
    def fraud_count(self) -> int:
        """Number of fraudulent transactions."""
        return int(np.count_nonzero(self.fraud))

    def take(self, index: np.ndarray) -> Campaign:
        """The rows ``index`` selects (positions or a boolean mask), in that order."""
        return Campaign(
            time_us=self.time_us[index],
            card=self.card[index],
            merchant=self.merchant[index],
            amount_minor=self.amount_minor[index],
            entry_mode=self.entry_mode[index],
            fraud=self.fraud[index],
        )


P = TypeVar("P", bound=ScenarioParams)


class Scenario(ABC, Generic[P]):
    """A kind of fraud. Subclasses set :attr:`name` and :attr:`Params` and plan campaigns.

    Args:
        params: Validated parameters (an instance of :attr:`Params`).
    """

    name: ClassVar[str]
    Params: ClassVar[type[ScenarioParams]] = ScenarioParams

    def __init__(self, params: P) -> None:
        if not isinstance(params, self.Params):
            raise TypeError(f"{self.name}: params must be {self.Params.__name__}")
        self.params: P = params

    @abstractmethod
    def plan(self, ctx: CampaignContext, rng: np.random.Generator, start_us: int) -> Campaign:
        """Plan one campaign starting at ``start_us``.

        Must draw only from ``rng`` (the campaign's own stream) and read only ``ctx``,
        so a campaign depends on the seed and its place in the plan, nothing else.
        """
