"""Time of day, week and season: shapes with tolerances, evaluated in local time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from simulator.batch.generate import RunSummary
from simulator.settings.loading import load_settings
from simulator.world.calendar import Calendar, _minute_curve, black_friday, tz_offsets_minutes
from tests.conftest import read_catalog, read_transactions, run, small_settings

Landed = tuple[Path, RunSummary]


def _local_hours(out: Path) -> tuple[np.ndarray, list[str]]:
    tx = read_transactions(out).select(["event_time", "cardholder_id", "mcc"])
    holders = read_catalog(out, "cardholders").select(["cardholder_id", "timezone"])
    tx = tx.join(holders, "cardholder_id")
    hours = np.empty(tx.num_rows, dtype=np.int64)
    zones = tx["timezone"].to_numpy(zero_copy_only=False)
    times = tx["event_time"]
    for zone in np.unique(zones):
        sel = np.flatnonzero(zones == zone)
        local = pc.local_timestamp(
            pc.assume_timezone(pc.cast(times.take(pa.array(sel)), pa.timestamp("us")), "UTC").cast(
                pa.timestamp("us", tz=zone)
            )
        )
        hours[sel] = pc.hour(local).to_numpy()
    return hours, tx["mcc"].to_pylist()


@pytest.mark.parametrize("group", ["grocery", "restaurants", "online", "retail"])
def test_hour_of_day_follows_the_configured_curve_in_local_time(landed: Landed, group: str) -> None:
    out, _ = landed
    settings = load_settings(environ=False)
    cfg = settings.mcc_groups[group]
    hours, mccs = _local_hours(out)
    mine = np.isin(np.array(mccs), list(cfg.mccs))
    observed = np.bincount(hours[mine], minlength=24) / mine.sum()
    curve = _minute_curve(cfg.hourly).reshape(24, 60).mean(axis=1)
    expected = curve / curve.sum()
    assert np.corrcoef(observed, expected)[0, 1] > 0.93
    assert np.abs(observed - expected).max() < 0.03


def test_night_trough_and_day_peaks(landed: Landed) -> None:
    out, _ = landed
    hours, _ = _local_hours(out)
    share = np.bincount(hours, minlength=24) / len(hours)
    assert share[2:6].sum() < 0.03
    assert share[10:14].sum() > 4 * share[2:6].sum() * 2


def test_intensity_is_continuous_not_a_step_function() -> None:
    settings = load_settings(environ=False)
    for group in settings.mcc_groups.values():
        curve = _minute_curve(group.hourly)
        assert abs(curve.mean() - 1) < 1e-9
        # Adjacent minutes never jump by more than a few percent of the mean level.
        assert np.abs(np.diff(np.append(curve, curve[0]))).max() < 0.03


def test_calendar_effects() -> None:
    settings = load_settings(environ=False)
    cal = Calendar(settings.calendar, settings.mcc_groups, ["US"])
    groups = list(settings.mcc_groups)
    retail, services = groups.index("retail"), groups.index("services")

    def factor(day: str, g: int) -> float:
        return float(cal.day_factors([dt.date.fromisoformat(day)])[0, 0, g])

    assert black_friday(2026) == dt.date(2026, 11, 27)
    assert factor("2026-11-27", retail) > 1.5 * factor("2026-11-20", retail)
    # MasterCard: the two Saturdays before Christmas beat Black Friday.
    assert factor("2026-12-19", retail) > factor("2026-11-27", retail)
    assert factor("2026-12-12", retail) > factor("2026-11-27", retail)
    # Thanksgiving is a public holiday: services close.
    assert factor("2026-11-26", services) < 0.5 * factor("2026-11-19", services)
    # Weekly rhythm: retail Saturday above Monday.
    assert factor("2026-11-14", retail) > 1.3 * factor("2026-11-16", retail)


def test_daylight_saving_change_is_exact_to_the_hour() -> None:
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    offsets = tz_offsets_minutes(["America/New_York", "Europe/Paris"], start, 24)
    assert offsets[0, 5] == -240
    assert offsets[0, 6] == -300  # 2 am EDT = 06:00 UTC
    assert set(offsets[1]) == {60}


def test_a_week_has_a_weekly_rhythm(tmp_path: Path, cache_dir: Path) -> None:
    run(
        small_settings(
            tmp_path,
            cache_dir,
            days=7,
            start_date="2026-11-02",
            population={"cardholders": 6000, "block_size": 1000},
        )
    )
    tx = read_transactions(tmp_path)
    retail = list(load_settings(environ=False).mcc_groups["retail"].mccs)
    rows = tx.filter(pc.is_in(tx["mcc"], pa.array(retail)))
    per_day = {
        str(k): v
        for k, v in zip(
            *np.unique(rows["dt"].to_numpy(zero_copy_only=False).astype(str), return_counts=True),
            strict=True,
        )
    }
    # Mon 2 Nov .. Sun 8 Nov: Saturday is the busiest retail day.
    assert max(per_day, key=per_day.__getitem__) == "2026-11-07"
    assert per_day["2026-11-07"] > 1.25 * per_day["2026-11-02"]
