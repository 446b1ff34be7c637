"""Settings of the fraud model: prevalence, scenario mix, hotspots, labels, replacements.

Scenario parameters are kept here as plain mappings: each scenario's own pydantic
model (see :mod:`simulator.fraud.contract`) validates them when the settings are
built, so an error names ``fraud.scenarios.<name>.params.<field>``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from simulator.settings.types import Mcc, Model, NonNegative, Positive, Probability

__all__ = ["Delay", "FraudConfig", "Hotspot", "ReplacementConfig", "ScenarioConfig"]


class Delay(Model):
    """A log-normal delay in hours, capped."""

    median_hours: Positive
    sigma: NonNegative
    max_hours: Positive

    @model_validator(mode="after")
    def _cap(self) -> Delay:
        if self.max_hours < self.median_hours:
            raise ValueError("max_hours must be at least median_hours")
        return self


class Hotspot(Model):
    """Where fraudsters cash out: merchant categories and an amount band (US dollars)."""

    mccs: list[Mcc] = Field(min_length=1)
    amount_usd: tuple[Positive, Positive]
    weight: NonNegative

    @model_validator(mode="after")
    def _band(self) -> Hotspot:
        if self.amount_usd[0] >= self.amount_usd[1]:
            raise ValueError("amount_usd must be [low, high] with low < high")
        return self


class ReplacementConfig(Model):
    """A blocked card's replacement: when it reaches the holder, and the spend meanwhile."""

    delivery_days: tuple[NonNegative, NonNegative] = Field(
        description="[low, high]: days from the block until the replacement can be used, "
        "drawn uniformly."
    )
    moved_share: Probability = Field(
        description="Share of the spend the holder would have made on the blocked card, while "
        "waiting, that goes on another of their cards (when they have one); the rest is not made."
    )

    @model_validator(mode="after")
    def _range(self) -> ReplacementConfig:
        low, high = self.delivery_days
        if low > high or high > 60:
            raise ValueError("delivery_days must be [low, high] with low <= high <= 60")
        return self


class ScenarioConfig(Model):
    """One scenario in the mix."""

    share: NonNegative = Field(description="Relative share of fraudulent transactions by count.")
    params: dict[str, Any] = Field(default_factory=dict)


class FraudConfig(Model):
    """How much fraud, of which kinds, and how it is found out."""

    target_rate: Annotated[float, Field(ge=0.0, le=0.2)] = Field(
        description="Fraudulent share of all transactions, by count."
    )
    scenarios: dict[str, ScenarioConfig]
    hotspots: dict[str, Hotspot]
    unlabelled_share: Probability = Field(description="Fraudulent transactions never labelled.")
    false_dispute_rate: Probability = Field(
        description="Genuine transactions wrongly disputed (labelled fraud by a chargeback)."
    )
    false_dispute_delay: Delay
    replacement: ReplacementConfig
    warmup_days: int = Field(
        ge=0,
        le=120,
        description="Days of campaigns planned before the run, so cases already under way "
        "when it starts reach into it.",
    )

    @model_validator(mode="after")
    def _mix(self) -> FraudConfig:
        if self.target_rate > 0 and not any(s.share > 0 for s in self.scenarios.values()):
            raise ValueError("target_rate > 0 needs at least one scenario with a positive share")
        if not self.hotspots or not any(h.weight > 0 for h in self.hotspots.values()):
            raise ValueError("hotspots must name at least one hotspot with a positive weight")
        return self
