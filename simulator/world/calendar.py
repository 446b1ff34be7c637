"""When people spend: hour-of-day curves, weekdays, holidays, seasons and time zones.

Every factor here is relative: the hour curve of a category averages 1 over a day
and its weekday factors average 1 over a week, so a cardholder's activity rate keeps
its meaning (transactions per ordinary day). Curves are given at the middle of each
local hour and interpolated linearly to the minute, so intensity never jumps.

Each effect belongs to one side of a purchase:

* **Merchant side** (:meth:`Calendar.day_factors`): the weekly opening rhythm, public
  holidays and the retail season (Black Friday, the December ramp, the Saturdays
  before Christmas). They follow the country where the purchase happens, which for a
  traveller is the visited country: shops in France close on 14 July whatever the
  home of the customer, and stay open on US Thanksgiving.
* **Cardholder side** (:meth:`Calendar.holder_factors`): paydays. They follow the
  cardholder's home, read on the home date, wherever the cardholder is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np

from runtime.units import MINUTES_PER_DAY
from simulator.settings.models import CalendarConfig, MccGroupConfig

__all__ = ["Calendar", "black_friday", "public_holidays", "tz_offsets_minutes"]

#: Public holidays by (country, year): what :func:`public_holidays` returns.
Holidays = Mapping[tuple[str, int], frozenset[dt.date]]


def _minute_curve(hourly: list[float]) -> np.ndarray:
    """Linear interpolation of hour-midpoint values to 1,440 minutes (wrapping at midnight)."""
    values = np.asarray(hourly, dtype=np.float64)
    knots = np.arange(24) * 60 + 30
    minutes = np.arange(MINUTES_PER_DAY) + 0.5
    curve = np.interp(minutes, knots, values, period=MINUTES_PER_DAY)
    return curve / curve.mean()


def black_friday(year: int) -> dt.date:
    """The day after the fourth Thursday of November."""
    first = dt.date(year, 11, 1)
    first_thursday = first + dt.timedelta(days=(3 - first.weekday()) % 7)
    return first_thursday + dt.timedelta(days=22)


@cache
def _holidays(country: str, year: int) -> frozenset[dt.date]:
    import holidays  # 0.1 s to import and load a country: only when not given (see Calendar)

    return frozenset(holidays.country_holidays(country, years=year))


def public_holidays(
    countries: list[str], years: list[int]
) -> dict[tuple[str, int], frozenset[dt.date]]:
    """The public holidays of each country in each year (the ``holidays`` package)."""
    return {(c, y): _holidays(c, y) for c in countries for y in years}


class Calendar:
    """Per-category time factors, evaluated in a place's local time.

    Args:
        calendar: Calendar effects (Black Friday, December, paydays).
        mcc_groups: The merchant-category groups, in index order (their time factors).
        countries: Country codes whose public holidays apply, in index order.
        known: Holidays already looked up (:func:`public_holidays`, kept in the cache
            between runs); other years are looked up when first needed.
    """

    def __init__(
        self,
        calendar: CalendarConfig,
        mcc_groups: Mapping[str, MccGroupConfig],
        countries: list[str],
        known: Holidays | None = None,
    ) -> None:
        groups = list(mcc_groups.values())
        self._calendar = calendar
        self._known = dict(known or {})
        self.countries = countries
        self.minute_curve = np.stack([_minute_curve(g.hourly) for g in groups])
        weekday = np.array([g.weekday for g in groups], dtype=np.float64)
        self.weekday = weekday / weekday.mean(axis=1, keepdims=True)
        self.holiday_factor = np.array([g.holiday_factor for g in groups])
        self.seasonal_weight = np.array([g.seasonal_weight for g in groups])
        self.curve_max = self.minute_curve.max(axis=1)

    def retail_season(self, day: dt.date) -> float:
        """The merchant-side seasonal factor of a date, before per-category weighting."""
        cal = self._calendar
        factor = 1.0
        if day == black_friday(day.year):
            factor *= cal.black_friday
        if day.month == 12 and day.day <= 24:
            factor *= 1.0 + (cal.december_peak - 1.0) * min(day.day - 1, 22) / 22
            christmas = dt.date(day.year, 12, 25)
            last_saturday = christmas - dt.timedelta(days=(christmas.weekday() - 5) % 7 or 7)
            if day in (last_saturday, last_saturday - dt.timedelta(days=7)):
                factor *= cal.super_saturdays
        return factor

    def payday(self, day: dt.date) -> float:
        """The cardholder-side factor of a home date, before per-category weighting."""
        cal = self._calendar
        return cal.payday_factor if day.day in cal.payday_days else 1.0

    def day_factors(self, days: list[dt.date]) -> np.ndarray:
        """Merchant-side factors (countries x days x categories) of local dates.

        Weekday, the country's public holidays and the retail season: index the
        country where the purchase happens (the visited one for a traveller).
        """
        out = np.empty((len(self.countries), len(days), len(self.holiday_factor)))
        for j, day in enumerate(days):
            season = 1.0 + self.seasonal_weight * (self.retail_season(day) - 1.0)
            base = self.weekday[:, day.weekday()] * season
            for i, country in enumerate(self.countries):
                holiday = day in self._holidays(country, day.year)
                out[i, j] = base * (self.holiday_factor if holiday else 1.0)
        return out

    def _holidays(self, country: str, year: int) -> frozenset[dt.date]:
        found = self._known.get((country, year))
        return _holidays(country, year) if found is None else found

    def holder_factors(self, days: list[dt.date]) -> np.ndarray:
        """Cardholder-side factors (days x categories) of home dates: paydays."""
        pay = np.array([self.payday(day) for day in days])
        return 1.0 + self.seasonal_weight[None, :] * (pay[:, None] - 1.0)


def tz_offsets_minutes(zones: list[str], start: dt.datetime, hours: int) -> np.ndarray:
    """UTC offsets in minutes (zones x hours), read at the start of each UTC hour of a slice.

    Daylight-saving changes that fall on a whole UTC hour (all of them in practice)
    are therefore exact.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    out = np.empty((len(zones), hours), dtype=np.int64)
    instants = [start + dt.timedelta(hours=h) for h in range(hours)]
    for i, name in enumerate(zones):
        zone = ZoneInfo(name)
        for h, instant in enumerate(instants):
            offset = instant.astimezone(zone).utcoffset()
            out[i, h] = int(offset.total_seconds() // 60) if offset is not None else 0
    return out
