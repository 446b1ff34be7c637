"""Fraud prevalence, scenario mix, labels and determinism of simulated output."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from runtime.units import US_PER_DAY
from simulator.batch.catalog_tables import catalog_tables
from tests import fraud_runs as fr
from tests.fraud_runs import Run


def fraud_rate(run: Run) -> float:
    return float(run.column("is_fraud").mean())


def within_10_percent(run: Run) -> None:
    target = run.settings.fraud.target_rate
    rate = fraud_rate(run)
    assert abs(rate / target - 1) <= 0.10, f"{rate:.5f} vs target {target}"


@pytest.fixture(scope="module")
def month(cache_dir: Path) -> Run:
    return fr.default_run(cache_dir, 10_000, 30)


@pytest.mark.parametrize(("cardholders", "days"), [(10_000, 1), (10_000, 30), (200_000, 1)])
def test_fraud_rate_is_the_target(cache_dir: Path, cardholders: int, days: int) -> None:
    # 1M cardholders x 1 day took 150 s here (the 45-day warm-up plans at full scale): too slow.
    t0 = time.perf_counter()
    run = fr.default_run(cache_dir, cardholders, days)
    within_10_percent(run)
    print(  # noqa: T201 - pytest -s shows the figures
        f"\n{cardholders} x {days} d: {run.table.num_rows} rows, "
        f"fraud rate {fraud_rate(run):.5f}, {time.perf_counter() - t0:.1f} s"
    )


@settings(max_examples=4)
@given(
    cardholders=st.sampled_from([4_000, 10_000]),
    rate=st.floats(0.001, 0.05),
    warmup=st.integers(0, 3),
)
def test_fraud_rate_follows_any_target(
    cache_dir: Path, cardholders: int, rate: float, warmup: int
) -> None:
    # About 1.2 genuine rows per cardholder a day: below ~40 fraud rows, the rounding of a
    # whole number of frauds alone is more than 2.5%.
    assume(cardholders * 1.2 * rate >= 40)
    w = fr.with_fraud(fr.built(cardholders, cache_dir), target_rate=rate, warmup_days=warmup)
    within_10_percent(fr.simulate(w, 1))


def test_scenario_mix_follows_the_shares(month: Run) -> None:
    cfg = month.settings.fraud.scenarios
    total = sum(c.share for c in cfg.values())
    names = month.column("fraud_scenario")[month.column("is_fraud")]
    for name, c in cfg.items():
        share = float(np.mean(names == name))
        want = c.share / total
        assert abs(share - want) <= max(0.05, 0.4 * want), f"{name}: {share:.3f} vs {want:.3f}"


# Labels --------------------------------------------------------------------------------


def test_labels_come_after_the_event(month: Run) -> None:
    event, fraud = month.column("event_time"), month.column("is_fraud")
    label = month.table.column("label_available_at")
    labelled = np.flatnonzero(label.is_valid().to_numpy())
    assert fraud[labelled].all(), "only fraud rows carry label_available_at"
    at = label.cast("int64").fill_null(0).to_numpy()
    assert (at[labelled] >= event[labelled]).all()
    lab = month.labels
    assert pc.all(pc.greater_equal(lab.column("label_time"), lab.column("event_time"))).as_py()


def _delays_days(run: Run, name: str) -> np.ndarray:
    scen = run.column("fraud_scenario")
    label = run.table.column("label_available_at")
    rows = np.flatnonzero((scen == name) & run.column("is_fraud") & label.is_valid().to_numpy())
    lab = label.cast("int64").fill_null(0).to_numpy()
    return (lab[rows] - run.column("event_time")[rows]) / US_PER_DAY


def test_issuer_labels_take_days_chargebacks_weeks(month: Run) -> None:
    for name, c in month.settings.fraud.scenarios.items():
        days = _delays_days(month, name)
        assert len(days) >= 20, name
        if c.params.get("label_source") == "chargeback":
            assert np.median(days) >= 21, f"{name}: median {np.median(days):.1f} d"
            assert days.min() >= 7, f"{name}: {days.min():.1f} d"
        else:
            assert 1 <= np.median(days) <= 14, f"{name}: median {np.median(days):.1f} d"
            assert days.max() <= 90


def test_unlabelled_share(month: Run) -> None:
    fraud = month.column("is_fraud")
    labelled = month.table.column("label_available_at").is_valid().to_numpy()
    n = int(fraud.sum())
    share = float(np.mean(~labelled[fraud]))
    p = month.settings.fraud.unlabelled_share
    assert abs(share - p) <= 4 * np.sqrt(p * (1 - p) / n), f"{share:.3f} of {n} vs {p}"


def test_labels_match_the_labelled_rows_and_false_disputes(month: Run) -> None:
    lab = month.labels
    scen = lab.column("fraud_scenario")
    real = lab.filter(scen.is_valid())
    t = month.table
    labelled = t.filter(t.column("label_available_at").is_valid())
    assert sorted(real.column("transaction_id").to_pylist()) == sorted(
        labelled.column("transaction_id").to_pylist()
    )
    false = lab.filter(scen.is_null())
    genuine_ids = set(
        t.filter(pc.invert(t.column("is_fraud"))).column("transaction_id").to_pylist()
    )
    assert set(false.column("transaction_id").to_pylist()) <= genuine_ids
    assert set(false.column("source").to_pylist()) <= {"chargeback"}
    genuine = t.num_rows - int(month.column("is_fraud").sum())
    rate = month.settings.fraud.false_dispute_rate
    expected = genuine * rate
    assert abs(false.num_rows - expected) <= 4 * np.sqrt(expected), (false.num_rows, expected)


# Determinism -----------------------------------------------------------------------------


def test_same_seed_same_rows_and_labels_with_two_workers(cache_dir: Path) -> None:
    w = fr.built(10_000, cache_dir)
    one = fr.simulate(w, 2, workers=1)
    two = fr.simulate(w, 2, workers=2)
    assert int(one.column("is_fraud").sum()) > 0
    assert one.table.equals(two.table)
    assert one.labels.equals(two.labels)
    # Card indices are the process's own (replacements are numbered as planned); each
    # names the row's card in either case, and the same cards were issued.
    for run in (one, two):
        ids = run.cards.card_ids().take(pa.array(run.card))
        assert ids.equals(run.table.column("card_id").combine_chunks())
    assert sorted(one.new_cards.to_pylist()) == sorted(two.new_cards.to_pylist())
    catalog = [catalog_tables(r.world, r.cards, r.end_us)["cards"] for r in (one, two)]
    assert catalog[0].equals(catalog[1])
