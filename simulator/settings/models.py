"""The simulator's settings: one frozen pydantic-settings model per process.

Every number the simulation uses is a field here. The defaults are not in this
module: they live in ``simulator/data/defaults.yaml`` next to the public figure each
one comes from, and are the lowest-priority settings source. Precedence, lowest to
highest: shipped defaults < ``--config`` file < ``TXNSIM_*`` environment variables
(nested with ``__``) < command-line flags and ``--set`` overrides.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from simulator.settings.delivery import KafkaConfig
from simulator.settings.fraud import FraudConfig
from simulator.settings.types import (
    CountryCode,
    CountryWeights,
    CurrencyCode,
    Mcc,
    MccWeights,
    Model,
    NonNegative,
    Positive,
    Probability,
    SliceHours,
    WeightList,
    Weights,
)
from storage.base import S3Settings

__all__ = [
    "AmountModel",
    "CalendarConfig",
    "CardsConfig",
    "GeographyConfig",
    "MccGroupConfig",
    "MerchantsConfig",
    "PopulationConfig",
    "Settings",
    "StreamConfig",
    "TravelConfig",
    "WriterConfig",
]

#: Fields of ``transaction.avsc`` whose values may be blanked by null injection.
#: ``merchant_coordinates`` blanks ``merchant_lat`` and ``merchant_lon`` together.
NULLABLE_FIELDS = ("merchant_city", "merchant_coordinates", "pos_entry_mode")


#: An ``s3://bucket/prefix`` output location (a plain path is a folder).
S3Url = Annotated[str, StringConstraints(pattern=r"^s3://[^/]+(/.*)?$")]


class CardsConfig(Model):
    """How many cards a cardholder holds and of what kind."""

    count_weights: WeightList = Field(
        min_length=1, max_length=3, description="Weight of holding 1, 2 or 3 cards."
    )
    primary_share: Probability = Field(
        description="Share of a cardholder's spend on the first card."
    )
    types: Weights
    networks: Weights
    credit_limit_median: Positive
    credit_limit_sigma: NonNegative


class PopulationConfig(Model):
    """Who transacts and how often."""

    cardholders: int = Field(gt=0, le=50_000_000)
    block_size: int = Field(
        gt=0,
        le=1_000_000,
        description="Cardholders per block: the unit of seeding and parallel work.",
    )
    activity_mean: Positive = Field(description="Mean card transactions per cardholder per day.")
    activity_shape: Positive = Field(description="Gamma shape of the personal activity rate.")
    spend_sigma: NonNegative = Field(
        description="Log-sd of a cardholder's personal spend multiplier."
    )
    cards: CardsConfig


class GeographyConfig(Model):
    """Where cardholders live and how far they go to shop."""

    home_countries: CountryWeights
    min_city_population: int = Field(ge=0)
    city_radius_min_km: Positive
    city_radius_km_per_sqrt_thousand: NonNegative
    local_share: Probability = Field(
        description="Card-present spend in the city where the cardholder is."
    )
    neighbour_radius_km: Positive
    distance_decay_km: Positive


class TravelConfig(Model):
    """Trips away from home: card-present spending moves to another city."""

    trips_per_year: NonNegative
    mean_days: Annotated[float, Field(ge=1.0)]
    max_days: int = Field(ge=1, le=60)
    international_share: Probability
    destinations: CountryWeights
    price_levels: dict[CountryCode, Positive] = Field(
        default_factory=dict,
        description="Price level per country (United States = 1), over the shipped World Bank "
        "table: card-present amounts abroad scale by visited / home level.",
    )


class MerchantsConfig(Model):
    """The merchant population."""

    per_cardholder: Positive
    per_home_city: NonNegative = Field(
        description="Floor of merchants per town where cardholders live."
    )
    minimum: int = Field(ge=1)
    popularity_exponent: NonNegative = Field(description="Zipf exponent of popularity by rank.")
    price_sigma: NonNegative = Field(description="Log-sd of a merchant's price level.")
    abroad_share: Probability = Field(
        description="Card-present merchants placed in destination countries."
    )
    ecommerce_merchant_ratio: Positive
    ecommerce_foreign_share: Probability


class AmountModel(Model):
    """A log-normal in the reference currency, mixed with price points."""

    median: Positive
    sigma: NonNegative
    minimum: Positive
    maximum: Positive
    price_points: list[Positive] = Field(default_factory=list)
    price_point_share: Probability = 0.0

    @model_validator(mode="after")
    def _consistent(self) -> AmountModel:
        if self.minimum >= self.maximum:
            raise ValueError("minimum must be below maximum")
        if self.price_point_share > 0 and not self.price_points:
            raise ValueError("price_point_share > 0 needs price_points")
        return self


class MccGroupConfig(Model):
    """A family of merchant categories that share timing, channel and spend."""

    share: NonNegative = Field(description="Relative share of transactions by count.")
    merchant_share: NonNegative = Field(description="Relative share of merchants.")
    mccs: MccWeights
    ecommerce_share: Probability
    hourly: WeightList = Field(min_length=24, max_length=24)
    weekday: WeightList = Field(min_length=7, max_length=7)
    holiday_factor: NonNegative
    seasonal_weight: Probability
    travel_boost: NonNegative
    amount: AmountModel
    amount_by_mcc: dict[Mcc, AmountModel] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _overrides_known(self) -> MccGroupConfig:
        unknown = sorted(set(self.amount_by_mcc) - set(self.mccs))
        if unknown:
            raise ValueError(f"amount_by_mcc names MCCs not in this group: {', '.join(unknown)}")
        return self


class CalendarConfig(Model):
    """Calendar effects on top of the weekly rhythm."""

    black_friday: NonNegative
    december_peak: NonNegative = Field(
        description="Factor reached on 23 December, ramping from 1 Dec."
    )
    super_saturdays: NonNegative = Field(
        description="Extra factor on the two Saturdays before Christmas."
    )
    payday_days: list[Annotated[int, Field(ge=1, le=31)]]
    payday_factor: NonNegative


class WriterConfig(Model):
    """How Parquet files are cut and compressed."""

    rows_per_file: int = Field(gt=0)
    row_group_size: int = Field(gt=0)
    compression: Literal["zstd", "snappy", "gzip", "lz4", "none"]
    compression_level: int | None = None


class StreamConfig(Model):
    """Pacing of ``txnsim stream``."""

    speed: Positive | Literal["max"] = Field(
        description="Simulated seconds per wall second (1 = live), or 'max' for no pacing."
    )
    max_lag_s: Positive | None = Field(
        default=None, description="Fail when releases fall this far behind schedule."
    )
    chunk_rows: int = Field(ge=1, le=1_000_000, description="Rows encoded and queued together.")
    queue_chunks: int = Field(ge=1, le=1000, description="Encoded chunks waiting for release.")
    progress_every_s: Positive
    labels: Literal["separate", "inline"] = Field(
        default="separate",
        description="separate: transactions carry no label fields (a scorer under test must "
        "not see the answer), labels go to kafka.labels_topic only; inline: transactions "
        "carry them too (the labels topic is still written).",
    )


class Settings(BaseModel):
    """Everything one run needs. Build it with :func:`simulator.settings.loading.load_settings`.

    A plain model, not pydantic-settings': :mod:`simulator.settings.loading` layers the
    sources (``TXNSIM_*`` included) by the rules of :mod:`runtime.layers`, and
    pydantic-settings' own environment source would merge a mapping setting into the
    default (and read the environment when the caller asked it not to).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    seed: int | None = Field(ge=0, description="Root seed; drawn from OS entropy when absent.")
    start_date: dt.date
    days: int = Field(gt=0, le=3660)
    slice_hours: SliceHours
    out: S3Url | Path
    # Where to reach S3 for an s3:// out (credentials from the standard AWS sources), and
    # how long to ride out its outages before failing (exit 1; the old run stays the
    # committed one).
    s3: S3Settings = Field(default_factory=S3Settings)
    retry_give_up_s: float = Field(default=300.0, gt=0)
    workers: int = Field(ge=1, le=256)
    cache_dir: Path | None = Field(
        description="Where derived reference data is cached; None: no cache."
    )
    population: PopulationConfig
    geography: GeographyConfig
    travel: TravelConfig
    merchants: MerchantsConfig
    mcc_groups: dict[str, MccGroupConfig]
    pos_entry_modes: Weights
    calendar: CalendarConfig
    currency_per_usd: dict[CurrencyCode, Positive]
    null_rates: dict[str, Probability]
    fraud: FraudConfig
    writer: WriterConfig
    kafka: KafkaConfig
    stream: StreamConfig

    @field_validator("out", mode="before")
    @classmethod
    def _location(cls, value: Any) -> Any:
        if isinstance(value, str) and "://" in value and not re.match(r"^s3://[^/]+", value):
            raise ValueError(f"{value!r}: expected a folder path or s3://bucket/prefix")
        return value

    @field_validator("start_date", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a calendar date in YYYY-MM-DD form") from None
        return value

    @field_validator("null_rates")
    @classmethod
    def _nullable(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(NULLABLE_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(unknown)}; "
                f"nullable fields are {', '.join(NULLABLE_FIELDS)}"
            )
        return value

    @field_validator("mcc_groups")
    @classmethod
    def _groups(cls, value: dict[str, MccGroupConfig]) -> dict[str, MccGroupConfig]:
        if not any(g.share > 0 for g in value.values()):
            raise ValueError("at least one MCC group needs a positive share")
        seen: dict[str, str] = {}
        for name, group in value.items():
            for mcc in group.mccs:
                if mcc in seen:
                    raise ValueError(f"MCC {mcc} is in both {seen[mcc]!r} and {name!r}")
                seen[mcc] = name
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> Settings:
        # Transaction ids pack the date and the block (simulator.core.ids): check their range here,
        # so a bad span or population exits 2 before anything is written.
        from simulator.core.ids import FIRST_DAY, LAST_DAY, MAX_BLOCKS

        last = self.start_date + dt.timedelta(days=self.days - 1)
        if self.start_date < FIRST_DAY or last > LAST_DAY:
            raise ValueError(
                f"start_date + days must stay within {FIRST_DAY}..{LAST_DAY} "
                f"(got {self.start_date}..{last})"
            )
        blocks = -(-self.population.cardholders // self.population.block_size)
        if blocks > MAX_BLOCKS:
            raise ValueError(
                f"population.cardholders / population.block_size gives {blocks} blocks; "
                f"at most {MAX_BLOCKS} (raise block_size)"
            )
        return self

    def simulation_dict(self) -> dict[str, Any]:
        """The settings that decide the events (not where they go, nor how fast)."""
        return self.model_dump(
            mode="json",
            exclude={"out", "s3", "retry_give_up_s", "workers", "cache_dir", "kafka", "stream"},
        )

    def config_hash(self) -> str:
        """SHA-256 of :meth:`simulation_dict` in canonical JSON."""
        canonical = orjson.dumps(self.simulation_dict(), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(canonical).hexdigest()
