"""What every settings model shares: the frozen base model and the constrained field types.

A weight table (``Weights``, ``WeightList``) is checked once here, so every table of
relative weights in the settings refuses the same mistakes with the same message; the
error names the field through its location.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = [
    "CountryCode",
    "CountryWeights",
    "CurrencyCode",
    "Mcc",
    "MccWeights",
    "Model",
    "NonNegative",
    "Positive",
    "Probability",
    "SliceHours",
    "WeightList",
    "Weights",
]

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Positive = Annotated[float, Field(gt=0.0)]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Mcc = Annotated[str, Field(pattern=r"^[0-9]{4}$")]

#: Slice lengths that tile a UTC day (a slice never straddles two ``dt=`` partitions).
SLICE_HOURS = (1, 2, 3, 4, 6, 8, 12, 24)


def _tiles_a_day(hours: int) -> int:
    if hours not in SLICE_HOURS:
        raise ValueError(f"must divide a day: one of {', '.join(map(str, SLICE_HOURS))}")
    return hours


#: Hours per slice. An integer, not a ``Literal`` of integers: a literal refuses the
#: string ``"6"`` that a ``TXNSIM_SLICE_HOURS`` variable gives.
SliceHours = Annotated[int, AfterValidator(_tiles_a_day)]


class Model(BaseModel):
    """A settings section: unknown keys are refused and values never change once built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _named_weights(weights: dict[str, float]) -> dict[str, float]:
    if not weights:
        raise ValueError("must name at least one entry")
    if sum(weights.values()) <= 0:
        raise ValueError("must have a positive total weight")
    return weights


def _positive_total(weights: list[float]) -> list[float]:
    if sum(weights) <= 0:
        raise ValueError("must have a positive total")
    return weights


#: Relative weights by name: at least one entry, a positive total.
Weights = Annotated[dict[str, NonNegative], AfterValidator(_named_weights)]
#: Relative weights by ISO 3166-1 alpha-2 country code.
CountryWeights = Annotated[dict[CountryCode, NonNegative], AfterValidator(_named_weights)]
#: Relative weights by merchant category code.
MccWeights = Annotated[dict[Mcc, NonNegative], AfterValidator(_named_weights)]
#: Relative weights by position: a positive total (lengths are set by each field).
WeightList = Annotated[list[NonNegative], AfterValidator(_positive_total)]
