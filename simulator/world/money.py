"""Money: each currency's ISO 4217 minor unit, and amounts that respect it.

Amounts travel as integers in hundredths of the currency unit, the scale of
``transaction.avsc``'s ``amount`` (``decimal(18, 2)``). Each currency's amounts are
whole multiples of its smallest unit, its *step* in hundredths:

* 2 decimals (USD, EUR, GBP, ...): step 1, one cent;
* 0 decimals (JPY, KRW, CLP, VND, ...): step 100, whole yen or won;
* 3 decimals (BHD, IQD, JOD, KWD, LYD, OMR, TND): step 1, so 0.01 (ten fils): a valid
  amount of the currency, but the third decimal is always 0, since the schema carries
  two.

The minor units come from the ``iso4217`` package, which ships the ISO 4217 maintenance
agency's (SIX) list one. A code that list does not hold (withdrawn, such as BGN since
Bulgaria's adoption of the euro, or none at all) or whose minor unit is "N.A." (funds,
precious metals, test codes) is refused with :class:`ReferenceDataError`.
"""

from __future__ import annotations

import importlib.metadata
from functools import cache

import numpy as np

from simulator.errors import ReferenceDataError

__all__ = ["AMOUNT_DECIMALS", "minor_unit", "quantise", "step", "to_minor"]

#: Decimals of every amount the simulator writes (``transaction.avsc``: decimal(18, 2)).
AMOUNT_DECIMALS = 2


@cache
def minor_unit(currency: str) -> int:
    """ISO 4217 minor unit (decimal places) of ``currency``: 2 for USD, 0 for JPY, 3 for KWD.

    Raises:
        ReferenceDataError: For a code not in ISO 4217 list one, or one without a minor unit.
    """
    from iso4217 import Currency  # its table is parsed on import: only when a world is built

    source = f"ISO 4217 list one, iso4217 {importlib.metadata.version('iso4217')}"
    try:
        exponent = Currency(currency).exponent
    except ValueError:
        raise ReferenceDataError(f"currency {currency!r} is not in {source}") from None
    if exponent is None:
        raise ReferenceDataError(f"currency {currency} has no minor unit in {source}")
    return int(exponent)


def step(currency: str) -> int:
    """Hundredths in the smallest amount of ``currency`` (100 for JPY, 1 for USD and KWD).

    Raises:
        ReferenceDataError: As :func:`minor_unit`.
    """
    return int(10 ** (AMOUNT_DECIMALS - min(minor_unit(currency), AMOUNT_DECIMALS)))


def quantise(hundredths: np.ndarray, steps: np.ndarray | int) -> np.ndarray:
    """Amounts rounded to whole steps of their currency, and at least one step."""
    units = np.rint(np.asarray(hundredths, dtype=np.float64) / steps)
    return np.maximum(units, 1).astype(np.int64) * np.asarray(steps, dtype=np.int64)


def to_minor(usd: np.ndarray, per_usd: np.ndarray, steps: np.ndarray | int) -> np.ndarray:
    """US-dollar amounts in hundredths of a currency, in whole steps of that currency.

    ``per_usd`` is the currency's units per dollar, ``steps`` its :func:`step`.
    """
    return quantise(usd * per_usd * 10.0**AMOUNT_DECIMALS, steps)
