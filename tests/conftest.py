from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, settings

from simulator.batch.generate import RunSummary, generate
from simulator.settings.loading import load_settings
from simulator.settings.models import Settings
from simulator.settings.run import RunSeed
from tests.s3_server import S3Server

# The CI machine is small and shared: no per-example deadline, few but meaningful examples.
settings.register_profile(
    "ci", deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TXNSIM_* variable of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("TXNSIM_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A gazetteer cache shared by the session (parsing the package JSON once)."""
    return tmp_path_factory.mktemp("cache")


def small_settings(out: Path, cache: Path, *overrides: str, **cli: object) -> Settings:
    """Settings for a small, fast run."""
    base = {
        "out": str(out),
        "cache_dir": str(cache),
        "seed": 7,
        "population": {"cardholders": 3000, "block_size": 500},
    }
    base.update(cli)
    return load_settings(None, base, overrides, environ=False)


def run(settings: Settings) -> RunSummary:
    return generate(settings, RunSeed.from_settings(settings))


def read_transactions(root: Path) -> pa.Table:
    """Every transaction of a landed folder, with ``dt`` from the partition path."""
    dataset = ds.dataset(root / "transactions", format="parquet", partitioning="hive")
    return dataset.to_table()


def read_catalog(root: Path, name: str) -> pa.Table:
    return pq.read_table(root / "catalog" / f"{name}.parquet")


@pytest.fixture(scope="session")
def landed(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> tuple[Path, RunSummary]:
    """Two simulated days (Tue 24 - Wed 25 Nov 2026) of 20,000 cardholders, landed once."""
    out = tmp_path_factory.mktemp("lake")
    settings = small_settings(
        out,
        cache_dir,
        "null_rates.merchant_city=0.05",
        "null_rates.pos_entry_mode=0.02",
        population={"cardholders": 20000, "block_size": 2048},
        days=2,
        start_date="2026-11-24",
    )
    return out, run(settings)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A real Kafka broker: KAFKA_BOOTSTRAP_SERVERS, a container, or scripts/kafka-local."""
    from tests.kafka_broker import ensure_kafka

    bootstrap, stop = ensure_kafka()
    try:
        yield bootstrap
    finally:
        stop()


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    """A topic name unique to the test."""
    import uuid

    return f"t-{request.node.name[:40].replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3-compatible server (moto) on 127.0.0.1, for the whole session."""
    from tests.s3_server import start_s3_server

    server = start_s3_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def registry() -> Iterator[str]:
    """A real Apicurio Registry 3 (scripts/schema-registry) on 127.0.0.1; its ccompat base URL."""
    from tests.services import schema_registry

    with schema_registry() as url:
        yield url
