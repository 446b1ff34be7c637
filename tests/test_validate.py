"""``txnsim validate`` passes a clean day and names each planted defect."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from simulator.batch.generate import RunSummary
from simulator.cli import main
from simulator.validate.checks import validate
from simulator.validate.id_spill import hash_strings
from tests.conftest import run, small_settings

DAY = "2026-11-24"
PART = Path("transactions") / f"dt={DAY}" / "part-00000.parquet"


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """One simulated day of 3,000 cardholders."""
    out = tmp_path_factory.mktemp("clean")
    run(small_settings(out, cache_dir, start_date=DAY, days=1))
    return out


@pytest.fixture
def copy(clean: Path, tmp_path: Path) -> Path:
    target = tmp_path / "lake"
    shutil.copytree(clean, target)
    return target


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main(["validate", *args])
    captured = capsys.readouterr()
    report = orjson.loads(captured.out) if captured.out else {}
    return code, report, captured.err


def _checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


def _edit(root: Path, change: Callable[[pa.Table], pa.Table]) -> None:
    path = root / PART
    pq.write_table(change(pq.read_table(path)), path)


def _set(table: pa.Table, column: str, row: int, value: object) -> pa.Table:
    values = table[column].to_pylist()
    values[row] = value
    index = table.schema.get_field_index(column)
    return table.set_column(index, table.schema.field(index), pa.array(values, pa.string()))


def _ends_of_chains(table: pa.Table) -> list[int]:
    """Rows no other row names as its previous transaction (the last of each card)."""
    named = pc.is_in(table["transaction_id"], value_set=table["previous_transaction_id"])
    return np.flatnonzero(~named.to_numpy(zero_copy_only=False)).tolist()


def _single_transaction_row(table: pa.Table) -> int:
    counts = pc.value_counts(table["card_id"])
    once = [v["values"].as_py() for v in counts if v["counts"].as_py() == 1]
    return table["card_id"].to_pylist().index(once[0])


def _duplicate_id(root: Path) -> None:
    def change(table: pa.Table) -> pa.Table:
        # Two ends of chains: copying an id there breaks no one's previous id.
        a, b = _ends_of_chains(table)[:2]
        return _set(table, "transaction_id", b, table["transaction_id"][a].as_py())

    _edit(root, change)


def _orphan_merchant(root: Path) -> None:
    _edit(root, lambda t: _set(t, "merchant_id", 10, "no-such-merchant"))


def _orphan_card(root: Path) -> None:
    # A card with a single transaction: renaming it leaves every chain intact.
    _edit(root, lambda t: _set(t, "card_id", _single_transaction_row(t), "no-such-card"))


def _wrong_partition(root: Path) -> None:
    path = root / PART
    table = pq.read_table(path)
    pq.write_table(table.slice(1), path)
    other = root / "transactions" / "dt=2026-11-25"
    other.mkdir()
    pq.write_table(table.slice(0, 1), other / "part-00000.parquet")


def _broken_chain(root: Path) -> None:
    def change(table: pa.Table) -> pa.Table:
        row = table["previous_transaction_id"].is_valid().to_pylist().index(True)
        return _set(table, "previous_transaction_id", row, "0123456789abcdef")

    _edit(root, change)


def _chain_to_other_card(root: Path) -> None:
    def change(table: pa.Table) -> pa.Table:
        ends = _ends_of_chains(table)
        cards = table["card_id"].to_pylist()
        linked = table["previous_transaction_id"].is_valid().to_pylist()
        row = next(i for i in range(len(cards)) if linked[i] and i > ends[0])
        target = next(e for e in ends if e < row and cards[e] != cards[row])
        return _set(table, "previous_transaction_id", row, table["transaction_id"][target].as_py())

    _edit(root, change)


def _null_rate(root: Path) -> None:
    def change(table: pa.Table) -> pa.Table:
        blank = pa.array(np.arange(table.num_rows) % 5 == 0)
        city = pc.if_else(blank, pa.scalar(None, pa.string()), table["merchant_city"])
        index = table.schema.get_field_index("merchant_city")
        return table.set_column(index, table.schema.field(index), city)

    _edit(root, change)


def _missing_catalog(root: Path) -> None:
    (root / "catalog" / "merchants.parquet").unlink()


def _wrong_type(root: Path) -> None:
    def change(table: pa.Table) -> pa.Table:
        index = table.schema.get_field_index("amount")
        amount = pc.cast(table["amount"], pa.float64())
        return table.set_column(index, pa.field("amount", pa.float64(), nullable=False), amount)

    _edit(root, change)


def test_a_clean_day_passes(capsys: pytest.CaptureFixture[str], clean: Path) -> None:
    code, report, _ = _cli(capsys, str(clean))
    assert code == 0, report
    assert report["status"] == "ok"
    assert report["complete_run"]
    assert report["rows"] == pq.read_metadata(clean / PART).num_rows
    checks = _checks(report)
    assert set(checks) == {
        "schema",
        "required_fields",
        "unique_transaction_id",
        "foreign_keys",
        "partition_date",
        "previous_transaction_chain",
        "null_rates",
        "fraud_rate",
    }
    assert all(c["status"] == "ok" for n, c in checks.items() if n != "fraud_rate")
    fraud = checks["fraud_rate"]
    assert fraud["status"] == "ok"
    assert fraud["expected"] == 0.002
    assert abs(fraud["observed"] - 0.002) <= 0.0002  # prevalence is held, not drawn


def test_the_two_day_landed_run_passes(landed: tuple[Path, RunSummary]) -> None:
    """Chains cross midnight; null rates configured away from the defaults."""
    out, summary = landed
    report = validate(str(out)).as_json()
    assert report["violations"] == [], report
    assert report["rows"] == summary.rows
    fields = _checks(report)["null_rates"]["fields"]
    assert fields["merchant_city"]["expected"] == 0.05
    assert fields["merchant_city"]["status"] == "ok"


@pytest.mark.parametrize(
    ("plant", "check", "count"),
    [
        (_duplicate_id, "unique_transaction_id", "duplicate_transaction_id"),
        (_orphan_merchant, "foreign_keys", "orphan_merchant_id"),
        (_orphan_card, "foreign_keys", "orphan_card_id"),
        (_wrong_partition, "partition_date", "wrong_partition"),
        (_broken_chain, "previous_transaction_chain", "missing_predecessor"),
        (_chain_to_other_card, "previous_transaction_chain", "predecessor_other_card"),
        (_null_rate, "null_rates", None),
        (_wrong_type, "schema", None),
        (_missing_catalog, "foreign_keys", None),
    ],
)
def test_each_planted_defect_is_named(
    capsys: pytest.CaptureFixture[str],
    copy: Path,
    plant: Callable[[Path], None],
    check: str,
    count: str | None,
) -> None:
    plant(copy)
    code, report, err = _cli(capsys, str(copy))
    assert code == 3
    assert report["violations"] == [check]
    assert check in err
    found = _checks(report)[check]
    if count is not None:
        assert found[count] == 1
        assert len(found["examples"][count]) == 1
    if check == "null_rates":
        fields = found["fields"]
        assert fields["merchant_city"]["status"] == "violation"
        assert fields["merchant_city"]["observed"] > 0.19


def test_the_duplicate_example_is_the_duplicated_id(copy: Path) -> None:
    _duplicate_id(copy)
    table = pq.read_table(copy / PART)
    counts = pc.value_counts(table["transaction_id"])
    dup = counts.filter(pc.greater(counts.field("counts"), 1))
    report = validate(str(copy)).as_json()
    examples = _checks(report)["unique_transaction_id"]["examples"]
    assert examples == {"duplicate_transaction_id": [dup[0]["values"].as_py()]}


@pytest.mark.parametrize("plant", [None, _duplicate_id, _broken_chain])
def test_many_small_buckets_give_the_same_findings(copy: Path, plant: Any) -> None:
    if plant is not None:
        plant(copy)
    one = validate(str(copy)).as_json()
    many = validate(str(copy), bucket_records=256).as_json()
    assert many == one


def test_sink_layout_skips_what_needs_the_manifest(
    capsys: pytest.CaptureFixture[str], clean: Path, tmp_path: Path
) -> None:
    """Transactions only, starting mid-stream: missing predecessors are informational."""
    lake = tmp_path / "sink"
    (lake / PART).parent.mkdir(parents=True)
    table = pq.read_table(clean / PART)
    pq.write_table(table.slice(table.num_rows // 2), lake / PART)
    code, report, _ = _cli(capsys, str(lake))
    assert code == 0, report
    assert not report["complete_run"]
    checks = _checks(report)
    assert checks["foreign_keys"]["status"] == "skipped"
    assert (
        "catalog" in checks["foreign_keys"]["reason"]
        or "manifest" in (checks["foreign_keys"]["reason"])
    )
    assert checks["null_rates"]["status"] == "skipped"
    chain = checks["previous_transaction_chain"]
    assert chain["status"] == "ok"
    assert chain["informational"]["missing_predecessor"] > 0


def test_the_transactions_folder_itself_is_accepted(
    capsys: pytest.CaptureFixture[str], clean: Path
) -> None:
    code, report, _ = _cli(capsys, str(clean / "transactions"))
    assert code == 0, report
    assert report["complete_run"]


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_bad_input_exits_2_naming_the_path(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make: str
) -> None:
    target = tmp_path / "nothing"
    if make == "empty":
        target.mkdir()
    code, report, err = _cli(capsys, str(target))
    assert code == 2
    assert report == {}
    assert str(target) in err
    assert err.count("\n") == 1


def test_hashes_tell_lengths_and_nulls_apart() -> None:
    values = pa.array(["", "\0", "a", "a\0", "0123456789abcdef", "0123456789abcdeg", None])
    hashes = hash_strings(values)
    assert len(set(hashes[:-1].tolist())) == 6
    assert hashes[-1] == hashes[0]  # a null hashes as the empty string
    sliced = hash_strings(values.slice(4, 2))
    assert sliced.tolist() == hashes[4:6].tolist()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A local S3 (moto's server) on a free port, for the module."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_an_s3_prefix_is_validated_like_a_folder(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    clean: Path,
    s3_endpoint: str,
) -> None:
    import boto3

    # Placeholder keys: the local mock server accepts any.
    for name, value in {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket="lake")
    for path in clean.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), "lake", f"runs/one/{path.relative_to(clean)}")
    code, report, _ = _cli(capsys, "s3://lake/runs/one")
    assert code == 0, report
    assert report["complete_run"]
    assert report["rows"] == pq.read_metadata(clean / PART).num_rows
    code, _, err = _cli(capsys, "s3://lake/runs/none")
    assert code == 2
    assert "s3://lake/runs/none" in err
