"""``txnsim report``: renders from a small generated day; the aggregates behind it are right."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import html
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from simulator.cli import main
from simulator.report.aggregate import DELAY_EDGES, aggregate
from simulator.report.figures import DPI, FIGURES
from simulator.report.render import render_report
from simulator.report.traces import GENUINE, fraud_traces
from tests.conftest import read_catalog, read_transactions, run, small_settings

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """One simulated day of 3,000 cardholders."""
    out = tmp_path_factory.mktemp("report-lake")
    run(small_settings(out, cache_dir, days=1, start_date="2026-11-24"))
    return out


@pytest.fixture(scope="module")
def rendered(day: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``txnsim report`` run once on the day; returns the HTML path."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", str(day), "--out", str(out)]) == 0
    return out


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (which must come first)."""
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_report_writes_the_html_and_one_png_per_figure(rendered: Path) -> None:
    page = rendered.read_text(encoding="utf-8")
    for name, (caption, (width, height)) in FIGURES.items():
        png = rendered.with_name(f"report-{name}.png")
        data = png.read_bytes()
        assert png_size(data) == (round(width * DPI), round(height * DPI))
        assert f'id="{name}"' in page
        assert f'href="{png.name}"' in page
        assert base64.b64encode(data).decode() in page
        assert html.escape(caption) in page
    assert page.count("data:image/png;base64,") == len(FIGURES)


def test_the_title_carries_the_run_facts(rendered: Path, day: Path) -> None:
    page = rendered.read_text(encoding="utf-8")
    manifest = orjson.loads((day / "manifest.json").read_bytes())
    assert "<th>seed</th><td>7 (configured)</td>" in page
    assert manifest["simulated_start"] in page
    assert f"2026-11-24: {manifest['partitions']['2026-11-24']:,}" in page
    assert f"transactions {manifest['row_counts']['transactions']:,}" in page
    assert manifest["config_hash"][:12] in page


def test_same_folder_same_bytes(rendered: Path, day: Path, tmp_path: Path) -> None:
    again = render_report(day, tmp_path / "report.html")
    for name, path in again.items():
        assert path.read_bytes() == rendered.with_name(f"report-{name}.png").read_bytes()
    assert (tmp_path / "report.html").read_bytes() == rendered.read_bytes()


def test_aggregates_add_up(day: Path) -> None:
    agg = aggregate(day)
    rows = orjson.loads((day / "manifest.json").read_bytes())["row_counts"]["transactions"]
    assert agg.rows == rows > 0
    assert agg.local_time
    assert agg.hour_by_weekday.shape == (7, 24)
    assert agg.hour_by_weekday.sum() == rows
    assert sum(int(h.sum()) for h in agg.amount_hist.values()) + agg.unconverted == rows
    assert agg.unconverted == 0
    freq = agg.rank_frequency()
    assert freq.sum() == rows
    assert np.all(np.diff(freq) <= 0)
    assert 0 < len(freq) <= (agg.merchants_in_catalog or 0)
    fraud = orjson.loads((day / "manifest.json").read_bytes())["fraud"]
    assert agg.fraud_rows == fraud["transactions"] > 0
    assert dict(agg.fraud_by_scenario) == fraud["by_scenario"]
    assert agg.label_delay_hist is not None
    assert agg.labels == fraud["labels"]["rows"]


def test_hours_are_local_where_the_transaction_happens(day: Path) -> None:
    """Card-present: the merchant's zone; otherwise the cardholder's home zone."""
    tx = read_transactions(day).select(["event_time", "merchant_id", "cardholder_id", "channel"])
    merchants = read_catalog(day, "merchants").select(["merchant_id", "timezone"])
    holders = read_catalog(day, "cardholders").select(["cardholder_id", "timezone"])
    tx = tx.join(merchants.rename_columns(["merchant_id", "merchant_tz"]), "merchant_id")
    tx = tx.join(holders.rename_columns(["cardholder_id", "holder_tz"]), "cardholder_id")
    zones = pc.if_else(pc.equal(tx["channel"], "card_present"), tx["merchant_tz"], tx["holder_tz"])
    expected = np.zeros((7, 24), np.int64)
    for zone, time in zip(zones.to_pylist(), tx["event_time"].to_pylist(), strict=True):
        local = time.astimezone(_zone(zone))
        expected[local.weekday(), local.hour] += 1
    assert np.array_equal(aggregate(day).hour_by_weekday, expected)


def _zone(name: str) -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def test_amounts_are_grouped_by_the_runs_mcc_groups(day: Path) -> None:
    agg = aggregate(day)
    config = orjson.loads((day / "manifest.json").read_bytes())["config"]
    tx = read_transactions(day)
    for group, cfg in config["mcc_groups"].items():
        mine = pc.sum(pc.is_in(tx["mcc"], value_set=pa.array(list(cfg["mccs"])))).as_py() or 0
        assert int(agg.amount_hist[group].sum()) == mine
    assert int(agg.amount_hist["other"].sum()) == 0


def _synthetic(root: Path) -> None:
    """Four transactions (two fraudulent) and three labels; no catalog, no manifest."""
    t0 = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)
    times = [t0, t0, t0 + dt.timedelta(hours=3), t0 + dt.timedelta(hours=3)]
    tx = pa.table(
        {
            "event_time": pa.array(times, pa.timestamp("us", tz="UTC")),
            "merchant_id": ["m-1", "m-1", "m-1", "m-2"],
            "cardholder_id": ["c-1", "c-2", "c-3", "c-4"],
            "amount": pa.array(
                [decimal.Decimal(v) for v in ("12.50", "99.00", "1.00", "20.00")],
                pa.decimal128(18, 2),
            ),
            "currency": ["USD", "EUR", "USD", "XXX"],
            "mcc": ["5411", "5411", "9999", "5812"],
            "channel": ["card_present"] * 4,
            "is_fraud": [False, True, True, False],
            "fraud_scenario": [None, "card_testing", None, None],
        }
    )
    (root / "transactions" / "dt=2026-11-24").mkdir(parents=True)
    pq.write_table(tx, root / "transactions" / "dt=2026-11-24" / "part-00000.parquet")
    label_times = [times[1], times[2], times[0]]
    delays = [dt.timedelta(days=2, hours=1), dt.timedelta(days=30), dt.timedelta(0)]
    labels = pa.table(
        {
            "event_time": pa.array(label_times, pa.timestamp("us", tz="UTC")),
            "label_time": pa.array(
                [t + d for t, d in zip(label_times, delays, strict=True)],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    (root / "labels").mkdir()
    pq.write_table(labels, root / "labels" / "part-00000.parquet")


def test_fraud_scenarios_label_delays_and_utc_fallback(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    _synthetic(root)
    agg = aggregate(root)
    assert agg.rows == 4
    assert not agg.local_time
    assert agg.hour_by_weekday[1, 9] == 2  # Tuesday, UTC hour
    assert agg.hour_by_weekday[1, 12] == 2
    assert agg.fraud_rows == 2
    assert dict(agg.fraud_by_scenario) == {"card_testing": 1, "(no scenario)": 1}
    assert agg.unconverted == 1  # XXX has no rate
    assert int(agg.amount_hist["grocery"].sum()) == 2
    assert int(agg.amount_hist["other"].sum()) == 1
    assert list(agg.rank_frequency()) == [3, 1]
    assert agg.label_delay_hist is not None
    assert agg.labels == 3
    days = np.repeat(DELAY_EDGES[:-1], agg.label_delay_hist)
    assert list(days) == [0.0, 2.0, 30.0]
    written = render_report(root, tmp_path / "out" / "r.html")
    assert set(written) == set(FIGURES)
    page = (tmp_path / "out" / "r.html").read_text(encoding="utf-8")
    assert "manifest" in page
    assert "none: incomplete run" in page


def test_fraud_traces_of_the_day(day: Path, rendered: Path) -> None:
    agg = aggregate(day)
    traces = agg.fraud_traces
    assert [t.name for t in traces][-1] == GENUINE
    assert {t.name: t.rows for t in traces[:-1]} == dict(agg.fraud_by_scenario)
    table = read_transactions(day)
    fraud_cards = pc.unique(table["card_id"].filter(table["is_fraud"]))
    on_them = int(pc.sum(pc.is_in(table["card_id"], value_set=fraud_cards)).as_py())
    assert sum(t.rows for t in traces) == on_them
    page = rendered.read_text(encoding="utf-8")
    assert 'id="fraud-traces"' in page
    assert html.escape(GENUINE) in page


def test_fraud_traces_measure_each_row_against_its_cards_past() -> None:
    hour = 3_600_000_000
    # One card: two genuine $10 purchases a day apart at A, then, 10 minutes later and
    # 100 km away, a $50 fraud at B; a second card with one genuine purchase only.
    t0 = 1_795_478_400_000_000
    batch = pa.record_batch(
        {
            "event_time": pa.array(
                [t0, t0 + 24 * hour, t0 + 24 * hour + hour // 6, t0], pa.timestamp("us", "UTC")
            ),
            "card_id": ["c1", "c1", "c1", "c2"],
            "merchant_id": ["A", "A", "B", "A"],
            "amount": pa.array([decimal.Decimal(v) for v in ("10", "10", "50", "7")]),
            "currency": ["USD"] * 4,
            "is_fraud": [False, False, True, False],
            "fraud_scenario": [None, None, "lost_stolen", None],
            "merchant_lat": [0.0, 0.0, 0.9, 0.0],
            "merchant_lon": [0.0, 0.0, 0.0, 0.0],
        }
    )

    def read(_folder: str, columns: list[str]) -> Iterator[pa.RecordBatch]:
        yield batch.select([c for c in columns if c in batch.schema.names])

    fraud, genuine = fraud_traces(read, {"USD": 1.0})
    assert (fraud.name, fraud.rows, genuine.name, genuine.rows) == ("lost_stolen", 1, GENUINE, 2)
    assert fraud.amount_vs_usual == pytest.approx(5.0)
    assert fraud.new_merchant == 1.0
    assert fraud.minutes_since_last == pytest.approx(10.0)
    assert fraud.burst == 2.0  # itself and the purchase 10 minutes before
    assert fraud.kmh == pytest.approx(100.0 * 6, rel=0.01)
    assert fraud.jumps == 0.0
    assert genuine.new_merchant == 0.5
    assert genuine.minutes_since_last == pytest.approx(24 * 60)


def test_missing_folder_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-lake"
    assert main(["report", str(missing), "--out", str(tmp_path / "r.html")]) == 2
    assert str(missing) in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_folder_without_transactions_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 2
    assert str(tmp_path / "transactions") in capsys.readouterr().err
