"""examples/airflow: the commands built for a logical date; re-running a date is idempotent.

Airflow is not a test dependency: the module builds its commands with pure functions and
defines the DAGs only when Airflow imports.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shlex
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType

import pyarrow.dataset as pads
import pytest

from tests.s3_server import S3Server

DAG_FILE = Path(__file__).resolve().parents[1] / "examples" / "airflow" / "txnsim_dag.py"


@pytest.fixture(scope="module")
def dag_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("txnsim_dag", DAG_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_module_imports_without_airflow(dag_module: ModuleType) -> None:
    if importlib.util.find_spec("airflow") is None:
        assert dag_module.DAG is None
        assert not hasattr(dag_module, "txnsim_generate")


def test_generate_command_for_a_logical_date(dag_module: ModuleType) -> None:
    argv = dag_module.generate_command("2026-11-24", "/lake", 7, cardholders=2000)
    assert argv == [
        "txnsim",
        "generate",
        "--date",
        "2026-11-24",
        "--days",
        "1",
        "--seed",
        "7",
        "--cardholders",
        "2000",
        "--out",
        "/lake",
    ]


def test_the_seed_does_not_depend_on_the_date(dag_module: ModuleType) -> None:
    """One seed for every date: the population (catalog/) stays the same across partitions."""
    one = dag_module.generate_command("2026-11-24")
    two = dag_module.generate_command("2026-11-25")
    assert one[one.index("--seed") + 1] == two[two.index("--seed") + 1] == str(dag_module.SEED)
    assert one[one.index("--date") + 1] == "2026-11-24"
    assert one[one.index("--out") + 1] == dag_module.LAKE


def test_the_templated_command_renders_to_the_dated_one(dag_module: ModuleType) -> None:
    line = dag_module.bash(dag_module.generate_command(dag_module.DS_TEMPLATE))
    assert "'{{ ds }}'" in line
    # What Airflow's Jinja rendering does to the line, for one logical date.
    rendered = line.replace("{{ ds }}", "2026-11-24")
    assert shlex.split(rendered) == dag_module.generate_command("2026-11-24")


@pytest.mark.parametrize("bad", ["24/11/2026", "2026-13-01", "20261124", ""])
def test_a_bad_logical_date_is_refused(dag_module: ModuleType, bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        dag_module.generate_command(bad)


def test_sink_command(dag_module: ModuleType) -> None:
    argv = dag_module.sink_command("broker:9092", "s3://lake/txnsim")
    assert argv == [
        "txnsim-sink",
        "--bootstrap-servers",
        "broker:9092",
        "--topic",
        "transactions",
        "--group",
        "lake-writer",
        "--dest",
        "s3://lake/txnsim",
        "--until-caught-up",
    ]


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_rerunning_a_date_gives_the_same_partition(
    dag_module: ModuleType, tmp_path: Path, cache_dir: Path
) -> None:
    lake = tmp_path / "lake"
    argv = dag_module.generate_command(
        "2026-11-24",
        str(lake),
        11,
        cardholders=2000,
        extra=["--set", f"cache_dir={cache_dir}"],
        executable=[sys.executable, "-m", "simulator"],
    )
    partition = lake / "transactions" / "dt=2026-11-24"
    runs = []
    for _ in range(2):
        subprocess.run(argv, check=True, capture_output=True, timeout=300)
        assert partition.is_dir()
        runs.append(_hashes(partition))
    assert runs[0] == runs[1]
    assert runs[0]
    assert [p.name for p in (lake / "transactions").iterdir()] == ["dt=2026-11-24"]


class _FakeDAG:
    """Stands in for ``airflow.DAG``: records its arguments and the tasks made inside it."""

    current: _FakeDAG | None = None

    def __init__(self, **kwargs: object) -> None:
        self.kwargs = kwargs
        self.tasks: list[dict[str, object]] = []

    def __enter__(self) -> _FakeDAG:
        _FakeDAG.current = self
        return self

    def __exit__(self, *exc: object) -> None:
        _FakeDAG.current = None


class _FakeBashOperator:
    def __init__(self, **kwargs: object) -> None:
        assert _FakeDAG.current is not None, "task made outside a DAG context"
        _FakeDAG.current.tasks.append(kwargs)


def test_with_airflow_the_dags_are_defined(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guarded DAG definitions, run against a stand-in for Airflow's API."""
    airflow = ModuleType("airflow")
    airflow.DAG = _FakeDAG  # type: ignore[attr-defined]
    bash_module = ModuleType("airflow.operators.bash")
    bash_module.BashOperator = _FakeBashOperator  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "airflow", airflow)
    monkeypatch.setitem(sys.modules, "airflow.operators", ModuleType("airflow.operators"))
    monkeypatch.setitem(sys.modules, "airflow.operators.bash", bash_module)
    spec = importlib.util.spec_from_file_location("txnsim_dag_with_airflow", DAG_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    generate = module.txnsim_generate
    assert generate.kwargs["dag_id"] == "txnsim_generate"
    assert generate.kwargs["schedule"] == "@daily"
    assert generate.kwargs["catchup"] is True
    assert generate.kwargs["max_active_runs"] == 1
    assert generate.kwargs["default_args"]["retries"] >= 1
    [task] = generate.tasks
    rendered = str(task["bash_command"]).replace("{{ ds }}", "2026-11-24")
    assert shlex.split(rendered) == module.generate_command("2026-11-24")

    sink = module.txnsim_sink
    [land] = sink.tasks
    assert shlex.split(str(land["bash_command"])) == module.sink_command()
    assert "--until-caught-up" in str(land["bash_command"])


def test_the_generate_command_lands_two_days_on_s3(
    dag_module: ModuleType, s3_server: S3Server, cache_dir: Path
) -> None:
    """The DAG's command with an s3:// lake, two logical dates and a retry of the second."""
    bucket = s3_server.bucket(f"airflow-{uuid.uuid4().hex[:8]}")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TXNSIM_", "AWS_"))},
        **s3_server.env(),
    }
    for ds in ("2026-11-24", "2026-11-25", "2026-11-25"):
        argv = dag_module.generate_command(
            ds,
            f"s3://{bucket}/lake",
            11,
            cardholders=2000,
            extra=["--set", f"cache_dir={cache_dir}"],
            executable=[sys.executable, "-m", "simulator"],
        )
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    days = {key.split("/")[2] for key in s3_server.keys(bucket, "lake/transactions/")}
    assert days == {"dt=2026-11-24", "dt=2026-11-25"}
    # The retry replaced the second day's objects with the same ones: one file set per day.
    parts = s3_server.keys(bucket, "lake/transactions/dt=2026-11-25/")
    assert len(parts) == len({key.rsplit("-", 1)[0] for key in parts})


def test_daily_runs_keep_each_days_labels(tmp_path: Path, cache_dir: Path) -> None:
    """Days share label-date partitions: a day's run, and its retry, keep the others' labels."""
    from tests.conftest import run, small_settings

    lake = tmp_path / "lake"

    def labels() -> list[str]:
        table = pads.dataset(lake / "labels", format="parquet").to_table()
        ids: list[str] = table.column("transaction_id").to_pylist()
        return ids

    run(small_settings(lake, cache_dir, start_date="2026-11-24", days=1, seed=11))
    first = labels()
    assert first
    for _ in range(2):  # the second day, then its retry
        run(small_settings(lake, cache_dir, start_date="2026-11-25", days=1, seed=11))
    after = labels()
    assert set(first) <= set(after)
    assert len(after) == len(set(after)), "a label landed twice"
    assert len(after) > len(first)
