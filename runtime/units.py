"""Time units of the event formats: timestamps are microseconds since the Unix epoch, UTC.

One exact conversion for the whole code base (no float rounding, no naive datetimes),
and the unit constants every side counts in.
"""

from __future__ import annotations

import datetime as dt

__all__ = [
    "EPOCH",
    "MINUTES_PER_DAY",
    "US_PER_DAY",
    "US_PER_HOUR",
    "US_PER_MINUTE",
    "US_PER_SECOND",
    "from_us",
    "to_us",
]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
US_PER_SECOND = 1_000_000
US_PER_MINUTE = 60 * US_PER_SECOND
US_PER_HOUR = 60 * US_PER_MINUTE
US_PER_DAY = 24 * US_PER_HOUR
MINUTES_PER_DAY = 24 * 60


def to_us(moment: dt.datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime, exactly (no float rounding).

    Raises:
        ValueError: For a naive datetime.
    """
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are not accepted; attach a time zone")
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_SECOND + delta.microseconds


def from_us(us: int) -> dt.datetime:
    """The aware UTC datetime of microseconds since the Unix epoch."""
    return EPOCH + dt.timedelta(microseconds=us)
