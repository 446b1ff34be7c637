"""The report of ``txnsim validate``: checks, their findings and the rate test.

A :class:`Check` is one named outcome (``ok``, ``violation`` or ``skipped``), a
:class:`Report` is every check of one dataset as JSON. :class:`Findings` turns a
:class:`~simulator.validate.id_spill.Tally` of row positions into checks with example ids, and
:func:`rate_check` tests an observed null or fraud rate against the configured one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from simulator.validate.id_spill import Tally

__all__ = ["RATE_FLOOR", "SIGMAS", "Check", "Findings", "Report", "rate_check"]

#: Binomial standard errors, plus an absolute floor, a null or fraud rate may stray.
SIGMAS = 5.0
RATE_FLOOR = 0.001


@dataclass
class Check:
    """One check's outcome: ``ok``, ``violation`` or ``skipped`` (with the reason)."""

    name: str
    status: str = "ok"
    details: dict[str, Any] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The check as it appears in the report."""
        out: dict[str, Any] = {"name": self.name, "status": self.status, **self.details}
        if self.reason is not None:
            out["reason"] = self.reason
        if self.examples:
            out["examples"] = self.examples
        return out


@dataclass(frozen=True)
class Report:
    """Every check of one dataset."""

    target: str
    rows: int
    files: int
    complete_run: bool
    checks: list[Check]

    @property
    def violations(self) -> list[str]:
        """Names of the checks that found a violation."""
        return [c.name for c in self.checks if c.status == "violation"]

    def as_json(self) -> dict[str, Any]:
        """The JSON report."""
        return {
            "target": self.target,
            "status": "violation" if self.violations else "ok",
            "violations": self.violations,
            "complete_run": self.complete_run,
            "rows": self.rows,
            "files": self.files,
            "checks": [c.as_json() for c in self.checks],
        }


def rate_check(name: str, observed: int, rows: int, expected: float | None, reason: str) -> Check:
    """``observed`` of ``rows`` against ``expected`` (skipped, with ``reason``, if None)."""
    rate = observed / rows if rows else 0.0
    details: dict[str, Any] = {"rows": rows, "observed": round(rate, 6)}
    if expected is None or not rows:
        return Check(name, "skipped", details, reason=reason if rows else "no rows")
    tolerance = SIGMAS * math.sqrt(expected * (1 - expected) / rows) + RATE_FLOOR
    details |= {"expected": expected, "tolerance": round(tolerance, 6)}
    return Check(name, "violation" if abs(rate - expected) > tolerance else "ok", details)


class Findings:
    """Tallies with their example positions read back as transaction ids."""

    def __init__(self, tally: Tally, ids: dict[int, str | None]) -> None:
        self.tally, self.ids = tally, ids

    def check(self, name: str, kinds: list[str], info: tuple[str, ...] = ()) -> Check:
        """A check that is a violation when any of ``kinds`` was counted."""
        counts = {k: self.tally.counts[k] for k in kinds}
        result = Check(name, "violation" if any(counts.values()) else "ok", counts)
        if info:
            result.details["informational"] = {k: self.tally.counts[k] for k in info}
        result.examples = {
            k: [str(self.ids.get(p)) for p in self.tally.examples[k]]
            for k in kinds
            if self.tally.examples.get(k)
        }
        return result
