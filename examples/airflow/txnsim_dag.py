"""Airflow DAGs that land txnsim data by logical date: ``txnsim generate`` or ``txnsim-sink``.

The commands are built by pure functions (:func:`generate_command`, :func:`sink_command`)
so they can be checked without Airflow; the DAGs themselves are defined only when Airflow
is importable. Copy this file into the deployment's ``dags/`` folder and edit the
constants below (see ``README.md`` beside it).

* ``txnsim_generate`` (daily, catchup): ``txnsim generate --date {{ ds }} --days 1`` into
  :data:`LAKE`, a folder or ``s3://bucket/prefix``. In a folder the ``dt={{ ds }}``
  partition is written to a staging folder and swapped in whole; on S3 the manifest is
  the commit point and the replaced objects are deleted after it. Either way re-running
  a date (a retry, a clear, a backfill) replaces that partition and never adds duplicates.
* ``txnsim_sink`` (daily): ``txnsim-sink ... --until-caught-up`` lands what the topic holds
  up to its end offsets at start, commits and exits; a re-run lands only what is new.

The seed is :data:`SEED`, the same for every logical date, on purpose. The simulator keys
its random streams by date, so ``--date D --seed S`` gives the same bytes however often it
runs; a seed derived from the date would buy nothing more and would cost consistency: the
seed also draws the population, and ``catalog/`` (rewritten by every run) must be the same
for every day's partition, or older partitions' cardholder and merchant ids would stop
resolving.
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Sequence

__all__ = [
    "CARDHOLDERS",
    "DS_TEMPLATE",
    "LAKE",
    "SEED",
    "generate_command",
    "generate_dag",
    "sink_command",
    "sink_dag",
]

#: Where ``txnsim generate`` lands (a local or mounted folder on the workers).
LAKE = "/data/txnsim/lake"
#: Root seed of every run; change it and you get another, equally consistent world.
SEED = 20261124
#: Population size of every run (the same for every date, like the seed).
CARDHOLDERS = 20_000
#: Kafka and lake settings of the sink DAG.
BOOTSTRAP_SERVERS = "kafka:9092"
TOPIC = "transactions"
GROUP = "lake-writer"
SINK_DEST = "s3://lake/txnsim"
#: Airflow's template for the logical date, rendered by the BashOperator.
DS_TEMPLATE = "{{ ds }}"
START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _check_ds(ds: str) -> None:
    if ds == DS_TEMPLATE:
        return
    try:
        dt.date.fromisoformat(ds)
    except ValueError:
        raise ValueError(f"ds must be a YYYY-MM-DD date or {DS_TEMPLATE!r}, got {ds!r}") from None
    if len(ds) != 10:
        raise ValueError(f"ds must be a YYYY-MM-DD date, got {ds!r}")


def generate_command(
    ds: str,
    out: str = LAKE,
    seed: int = SEED,
    *,
    cardholders: int | None = CARDHOLDERS,
    extra: Sequence[str] = (),
    executable: Sequence[str] = ("txnsim",),
) -> list[str]:
    """Argv simulating the logical date ``ds`` (one UTC day) into ``out``.

    Args:
        ds: The logical date, ``YYYY-MM-DD``, or :data:`DS_TEMPLATE` for Airflow to render.
        out: The lake folder; the run writes ``transactions/dt=<ds>/``, ``catalog/`` and
            ``manifest.json`` there.
        seed: Root seed; keep it the same for every date (see the module docstring).
        cardholders: Population size; None leaves the configured one.
        extra: More arguments for ``txnsim generate``, e.g. ``("--config", "lake.yaml")``.
        executable: How to call txnsim on the worker.

    Raises:
        ValueError: ``ds`` is not a date, or ``seed`` is negative.
    """
    _check_ds(ds)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    argv = [*executable, "generate", "--date", ds, "--days", "1", "--seed", str(seed)]
    if cardholders is not None:
        argv += ["--cardholders", str(cardholders)]
    return [*argv, "--out", out, *extra]


def sink_command(
    bootstrap_servers: str = BOOTSTRAP_SERVERS,
    dest: str = SINK_DEST,
    *,
    topic: str = TOPIC,
    group: str = GROUP,
    extra: Sequence[str] = (),
    executable: Sequence[str] = ("txnsim-sink",),
) -> list[str]:
    """Argv landing ``topic`` into ``dest`` up to the end offsets seen at start, then exiting.

    The sink partitions by event time (``dt=`` of each record's UTC date), not by the run's
    logical date; offsets are committed only after files are durable, so a re-run (retry or
    clear) picks up where the last commit left off and lands nothing twice.
    """
    return [
        *executable,
        "--bootstrap-servers",
        bootstrap_servers,
        "--topic",
        topic,
        "--group",
        group,
        "--dest",
        dest,
        "--until-caught-up",
        *extra,
    ]


def bash(argv: Sequence[str]) -> str:
    """A shell command line for BashOperator; ``{{ ds }}`` stays renderable inside quotes."""
    return shlex.join(argv)


try:  # Airflow is optional: the module imports (and its commands are tested) without it.
    from airflow import DAG
except ImportError:
    DAG = None

_DEFAULT_ARGS = {
    "owner": "txnsim",
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=5),
    "execution_timeout": dt.timedelta(hours=2),
}


def generate_dag() -> object:
    """The daily ``txnsim_generate`` DAG (Airflow required)."""
    operator = _bash_operator()
    with DAG(
        dag_id="txnsim_generate",
        description="Simulate the logical date and swap in its dt= partition",
        schedule="@daily",
        start_date=START,
        catchup=True,
        # Every run rewrites catalog/ and manifest.json at the lake root: one at a time.
        max_active_runs=1,
        default_args=_DEFAULT_ARGS,
        tags=["txnsim"],
    ) as dag:
        operator(task_id="generate", bash_command=bash(generate_command(DS_TEMPLATE)))
    return dag


def sink_dag() -> object:
    """The daily ``txnsim_sink`` DAG: land the topic until caught up (Airflow required)."""
    operator = _bash_operator()
    with DAG(
        dag_id="txnsim_sink",
        description="Land the transactions topic as dt= partitioned Parquet, then exit",
        schedule="@daily",
        start_date=START,
        # The sink lands whatever is new; replaying past dates would only find nothing.
        catchup=False,
        max_active_runs=1,
        default_args=_DEFAULT_ARGS,
        tags=["txnsim"],
    ) as dag:
        operator(task_id="land", bash_command=bash(sink_command()))
    return dag


def _bash_operator() -> type:
    try:  # Airflow 3 moved BashOperator into the standard provider.
        from airflow.providers.standard.operators.bash import BashOperator
    except ImportError:
        from airflow.operators.bash import BashOperator
    return BashOperator


if DAG is not None:
    txnsim_generate = generate_dag()
    txnsim_sink = sink_dag()
