"""Properties of a landed run: layout, integrity, chains, nulls, time and money."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from schemas.event import transaction_schema
from simulator.batch.generate import RunSummary
from tests.conftest import read_catalog, read_transactions

Landed = tuple[Path, RunSummary]


def test_layout_and_manifest(landed: Landed) -> None:
    out, summary = landed
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["seed"] == 7
    assert manifest["schema"]["fingerprint"] == transaction_schema().fingerprint
    assert manifest["simulated_start"] == "2026-11-24T00:00:00+00:00"
    assert manifest["simulated_end"] == "2026-11-26T00:00:00+00:00"
    assert sorted(manifest["partitions"]) == ["2026-11-24", "2026-11-25"]
    assert (
        manifest["row_counts"]["transactions"]
        == summary.rows
        == sum(manifest["partitions"].values())
    )
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet"))
    assert on_disk == sorted(f["path"] for f in manifest["files"])
    for entry in manifest["files"]:
        data = (out / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data) == entry["bytes"]
        assert pq.ParquetFile(out / entry["path"]).metadata.num_rows == entry["rows"]


def test_files_have_the_schema_derived_from_avro(landed: Landed) -> None:
    out, _ = landed
    expected = transaction_schema().arrow
    for path in (out / "transactions").rglob("*.parquet"):
        schema = pq.read_schema(path)
        assert schema.remove_metadata().equals(expected.remove_metadata())
        assert (
            schema.metadata[b"avro.schema.fingerprint"] == transaction_schema().fingerprint.encode()
        )


def test_volume_is_calibrated(landed: Landed) -> None:
    # 20,000 cardholders at 1.3 card payments a day (Atlanta Fed / DCPC), on an ordinary Tue-Wed.
    _, summary = landed
    per_day = summary.rows / 2 / 20000
    assert 1.0 < per_day < 1.6


def test_partition_is_the_utc_event_date_and_rows_are_time_sorted(landed: Landed) -> None:
    out, _ = landed
    for path in sorted((out / "transactions").rglob("*.parquet")):
        day = dt.date.fromisoformat(path.parent.name.removeprefix("dt="))
        times = pq.read_table(path, columns=["event_time"]).column("event_time").to_numpy()
        assert len(times) > 0
        dates = times.astype("datetime64[D]")
        assert (dates == np.datetime64(day)).all()
        assert (np.diff(times.astype(np.int64)) >= 0).all()


def test_ids_unique_and_foreign_keys_resolve(landed: Landed) -> None:
    out, _ = landed
    tx = read_transactions(out)
    assert pc.count_distinct(tx["transaction_id"]).as_py() == tx.num_rows
    cards = read_catalog(out, "cards")
    holders = read_catalog(out, "cardholders")
    merchants = read_catalog(out, "merchants")
    assert pc.all(pc.is_in(tx["card_id"], cards["card_id"])).as_py()
    assert pc.all(pc.is_in(tx["merchant_id"], merchants["merchant_id"])).as_py()
    assert pc.all(pc.is_in(cards["cardholder_id"], holders["cardholder_id"])).as_py()
    # The cardholder on the row is the card's owner.
    joined = tx.select(["card_id", "cardholder_id"]).join(
        cards.select(["card_id", "cardholder_id"]).rename_columns(["card_id", "owner"]), "card_id"
    )
    assert pc.all(pc.equal(joined["cardholder_id"], joined["owner"])).as_py()
    # Merchant attributes on the row are the catalog's (a merchant never moves).
    m = tx.filter(pc.is_valid(tx["merchant_lat"])).select(
        ["merchant_id", "mcc", "merchant_lat", "merchant_lon"]
    )
    j = m.join(
        merchants.select(["merchant_id", "mcc", "lat", "lon"]).rename_columns(
            ["merchant_id", "cmcc", "clat", "clon"]
        ),
        "merchant_id",
    )
    assert pc.all(pc.equal(j["mcc"], j["cmcc"])).as_py()
    assert np.allclose(j["merchant_lat"].to_numpy(), j["clat"].to_numpy())
    assert np.allclose(j["merchant_lon"].to_numpy(), j["clon"].to_numpy())


def test_previous_transaction_chains_are_per_card_and_time_ordered(landed: Landed) -> None:
    out, _ = landed
    tx = read_transactions(out).select(
        ["transaction_id", "event_time", "card_id", "previous_transaction_id"]
    )
    tx = tx.sort_by([("card_id", "ascending"), ("event_time", "ascending")])
    card = tx["card_id"].to_pylist()
    ids = tx["transaction_id"].to_pylist()
    prev = tx["previous_transaction_id"].to_pylist()
    firsts = 0
    for i in range(len(ids)):
        if i == 0 or card[i] != card[i - 1]:
            assert prev[i] is None, f"first transaction of {card[i]} links to {prev[i]}"
            firsts += 1
        else:
            assert prev[i] == ids[i - 1]
    assert firsts == len(set(card))
    # Chains cross the day boundary: most cards' first row of day two links back.
    assert sum(p is None for p in prev) == firsts


def test_null_rates_match_the_configuration(landed: Landed) -> None:
    out, _ = landed
    tx = read_transactions(out)
    n = tx.num_rows
    for column, rate in (("merchant_city", 0.05), ("pos_entry_mode", 0.02)):
        achieved = tx[column].null_count / n
        tolerance = 4 * np.sqrt(rate * (1 - rate) / n)
        assert abs(achieved - rate) < tolerance, (column, achieved)
    cp = tx.filter(pc.equal(tx["channel"], "card_present"))
    achieved = cp["merchant_lat"].null_count / cp.num_rows
    assert abs(achieved - 0.002) < 4 * np.sqrt(0.002 / cp.num_rows) + 1e-4
    assert cp["merchant_lat"].null_count == cp["merchant_lon"].null_count
    online = tx.filter(pc.equal(tx["channel"], "ecommerce"))
    assert online["merchant_lat"].null_count == online.num_rows
    modes = set(online["pos_entry_mode"].drop_null().to_pylist())
    assert modes == {"ecommerce"}


def test_amounts_are_two_decimal_heavy_tailed_and_in_local_currency(landed: Landed) -> None:
    out, _ = landed
    tx = read_transactions(out)
    assert tx.schema.field("amount").type == pa.decimal128(18, 2)
    usd = tx.filter(pc.equal(tx["currency"], "USD"))
    amounts = usd["amount"].cast(pa.float64()).to_numpy()
    assert (amounts > 0).all()
    median, mean = np.median(amounts), amounts.mean()
    # Portfolio medians: BankSim 26.90, ULB 22.00; genuine mean above median (heavy right tail).
    assert 15 < median < 45
    assert mean > 1.3 * median
    assert np.quantile(amounts, 0.99) > 8 * median
    # Each MCC group's log-amounts spread like a log-normal with its configured sigma (or wider).
    countries = set(tx["merchant_country"].to_pylist())
    assert countries >= {"US"}
    currencies = dict(
        zip(tx["merchant_country"].to_pylist(), tx["currency"].to_pylist(), strict=True)
    )
    assert currencies["US"] == "USD"
    for country, currency in currencies.items():
        assert (country == "US") == (currency == "USD")


def test_fuel_has_round_price_points_and_online_has_charm_prices(landed: Landed) -> None:
    out, _ = landed
    tx = read_transactions(out)
    usd = tx.filter(pc.equal(tx["currency"], "USD"))
    fuel = (
        usd.filter(pc.is_in(usd["mcc"], pa.array(["5541", "5542"])))["amount"]
        .cast(pa.float64())
        .to_numpy()
    )
    round_share = np.isin(fuel, [20, 25, 30, 40, 50, 60, 75]).mean()
    assert (
        0.22 < round_share < 0.40
    )  # configured 0.30, plus log-normal draws that happen to be round
    online = usd.filter(
        pc.is_in(usd["mcc"], pa.array(["5815", "5816", "5817", "5818", "5964", "5969"]))
    )
    cents = np.round(online["amount"].cast(pa.float64()).to_numpy() * 100).astype(np.int64) % 100
    assert (cents == 99).mean() > 0.25


def test_card_present_spend_happens_near_where_the_cardholder_is(landed: Landed) -> None:
    out, _ = landed
    tx = read_transactions(out)
    holders = read_catalog(out, "cardholders").select(["cardholder_id", "home_lat", "home_lon"])
    cp = tx.filter(pc.is_valid(tx["merchant_lat"])).select(
        ["cardholder_id", "merchant_lat", "merchant_lon"]
    )
    j = cp.join(holders, "cardholder_id")
    from simulator.core.geo import haversine_km

    d = haversine_km(
        j["home_lat"].to_numpy(),
        j["home_lon"].to_numpy(),
        j["merchant_lat"].to_numpy(),
        j["merchant_lon"].to_numpy(),
    )
    assert np.median(d) < 15
    assert (d < 50).mean() > 0.75
    # About 4 trips a year of 3.5 days: roughly 4% of days away, with spending there.
    assert 0.01 < (d > 300).mean() < 0.08, "some spending happens on trips, most at home"


@pytest.mark.parametrize(("column", "floor"), [("card_id", 0.3), ("merchant_id", 0.45)])
def test_no_uniform_popularity(landed: Landed, column: str, floor: float) -> None:
    out, _ = landed
    counts = np.sort(pc.value_counts(read_transactions(out)[column]).field("counts").to_numpy())
    lorenz = np.cumsum(counts) / counts.sum()
    gini = 1 - 2 * lorenz.mean() + 1 / len(counts)
    # Earlier simulators' uniform merchants had a Gini of 0.12-0.16; cards differ by personal rate.
    assert gini > floor
