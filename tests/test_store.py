"""A folder and an S3 bucket are the same create-only store; Retrying rides out outages."""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage.base import ObjectStore, S3Settings, open_store
from storage.errors import StoreError, StoreUnavailable
from storage.local import PARQUET_METADATA_PREFIX, LocalStore
from storage.retry import Retrying
from storage.s3 import S3Store
from tests.s3_server import REGION, S3Server

_PREFIX = "lake/landing"


@pytest.fixture
def bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A bucket of this test's own, with the server's credentials in the environment."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    return s3_server.bucket(f"b-{uuid.uuid4().hex[:16]}")


def _s3_store(s3_server: S3Server, bucket: str) -> ObjectStore:
    store = open_store(
        f"s3://{bucket}/{_PREFIX}/", s3=S3Settings(endpoint_url=s3_server.endpoint, region=REGION)
    )
    assert isinstance(store, S3Store)
    return store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return open_store(str(tmp_path / "dest"))
    s3_server: S3Server = request.getfixturevalue("s3_server")
    return _s3_store(s3_server, request.getfixturevalue("bucket"))


def _read(store: ObjectStore, key: str) -> bytes:
    if isinstance(store, LocalStore):
        return (store.root / key).read_bytes()
    assert isinstance(store, S3Store)
    response = store._client.get_object(Bucket=store.bucket, Key=f"{store.prefix}/{key}")
    return bytes(response["Body"].read())


def _json_object(metadata: dict[str, str], body: str) -> bytes:
    """A dead letter as the sink writes it: the object carries its own metadata."""
    return orjson.dumps({"metadata": metadata, "value": body})


def _parquet_object(metadata: dict[str, str]) -> bytes:
    footer = {f"{PARQUET_METADATA_PREFIX}{k}": v for k, v in metadata.items()}
    table = pa.table({"x": [1, 2, 3]}).replace_schema_metadata(footer | {"other": "kept out"})
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def test_put_if_absent_creates_once_and_never_overwrites(store: ObjectStore) -> None:
    key = "dead_letters/dt=2026-11-24/t-00001-00000000000000000042.json"
    first_meta = {"first": "42", "last": "42", "topic": "t"}
    first = _json_object(first_meta, "one")
    assert store.head(key) is None
    assert store.put_if_absent(key, first, first_meta) is True
    assert store.head(key) == first_meta
    assert store.put_if_absent(key, _json_object({"first": "0"}, "two"), {"first": "0"}) is False
    assert _read(store, key) == first
    assert store.head(key) == first_meta
    assert store.head(key.replace("42", "43")) is None


def test_parquet_metadata_is_read_back(store: ObjectStore) -> None:
    key = "transactions/dt=2026-11-24/t-00000-00000000000000000007.parquet"
    meta = {"first": "7", "last": "19", "rows": "3"}
    data = _parquet_object(meta)
    assert store.put_if_absent(key, data, meta) is True
    # The local store reads it from the footer's txnsim.sink.* keys, S3 from x-amz-meta-*.
    assert store.head(key) == meta
    assert _read(store, key) == data
    assert pq.read_table(io.BytesIO(_read(store, key))).num_rows == 3


def test_concurrent_local_writers_of_one_key_make_one_object(tmp_path: Path) -> None:
    # Local only: moto checks If-None-Match and then puts, without a lock (s3/responses.py),
    # so racing it would test moto's atomicity, not ours.
    store = LocalStore(tmp_path)
    key = "transactions/dt=2026-11-25/t-00002-00000000000000000000.json"
    bodies = [_json_object({"writer": str(i)}, "x" * 2000) for i in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        won = list(
            pool.map(lambda i: store.put_if_absent(key, bodies[i], {"writer": str(i)}), range(6))
        )
    assert won.count(True) == 1
    winner = won.index(True)
    assert _read(store, key) == bodies[winner]
    assert store.head(key) == {"writer": str(winner)}


def test_local_store_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    assert store.put_if_absent("a/b.json", _json_object({}, "1"), {}) is True
    assert store.put_if_absent("a/b.json", _json_object({}, "2"), {}) is False
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.json"]


@pytest.mark.parametrize(
    ("name", "data"),
    [("x.json", b"not json"), ("x.json", b'{"no": "metadata"}'), ("x.parquet", b"PAR1junk")],
)
def test_local_store_unreadable_metadata_is_a_store_error(
    tmp_path: Path, name: str, data: bytes
) -> None:
    store = LocalStore(tmp_path)
    assert store.put_if_absent(name, data, {}) is True
    with pytest.raises(StoreError, match="metadata is unreadable"):
        store.head(name)


def test_s3_keys_live_under_the_prefix(s3_server: S3Server, bucket: str) -> None:
    store = _s3_store(s3_server, bucket)
    assert store.url == f"s3://{bucket}/{_PREFIX}"
    assert store.put_if_absent("a/b.json", b"{}", {}) is True
    assert s3_server.keys(bucket) == [f"{_PREFIX}/a/b.json"]


def test_s3_missing_bucket_is_a_store_error(s3_server: S3Server, bucket: str) -> None:
    store = _s3_store(s3_server, f"{bucket}-missing")
    with pytest.raises(StoreError):
        store.put_if_absent("a.json", b"{}", {})


def test_s3_outage_is_unavailable_not_an_error(s3_server: S3Server, bucket: str) -> None:
    store = _s3_store(s3_server, bucket)
    assert store.put_if_absent("before.json", b"{}", {"n": "1"}) is True  # a pooled connection
    began = time.monotonic()
    with s3_server.outage():
        for operation in (
            lambda: store.put_if_absent("during.json", b"{}", {}),
            lambda: store.head("before.json"),
        ):
            with pytest.raises(StoreUnavailable) as info:
                operation()
            assert not isinstance(info.value, StoreError)
    assert time.monotonic() - began < 5  # refused at once, not a connect timeout
    assert store.head("before.json") == {"n": "1"}
    assert store.head("during.json") is None


# --- Retrying ------------------------------------------------------------------------------


class _Clock:
    """A fake monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.pauses: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def _failing(times: int, result: str = "done") -> tuple[Callable[[], str], list[int]]:
    calls: list[int] = []

    def operation() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise StoreUnavailable(f"down #{len(calls)}")
        return result

    return operation, calls


def _nominal(base: float, cap: float, count: int) -> list[float]:
    return [min(cap, base * 2**i) for i in range(count)]


class _Jitter:
    """Stands in for ``random.Random``: the draws in turn, cycling."""

    def __init__(self, *draws: float) -> None:
        self.draws = draws
        self.count = 0

    def random(self) -> float:
        self.count += 1
        return self.draws[(self.count - 1) % len(self.draws)]


def test_retrying_backs_off_exponentially_up_to_the_cap() -> None:
    clock = _Clock()
    seen: list[str] = []
    retrying = Retrying(
        base_s=0.5,
        cap_s=4.0,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        on_retry=lambda exc: seen.append(str(exc)),
        jitter=_Jitter(0.5, 0.0, 0.99).random,
    )
    operation, calls = _failing(8)
    assert retrying(operation, "put") == "done"
    assert len(calls) == 9
    assert seen == [f"down #{i}" for i in range(1, 9)]
    nominal = _nominal(0.5, 4.0, 8)
    assert nominal == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    factors = [1.0, 0.5, 1.49] * 3
    assert clock.pauses == pytest.approx([n * f for n, f in zip(nominal, factors, strict=False)])


def test_retrying_jitter_stays_within_half_of_the_pause() -> None:
    clock = _Clock()
    retrying = Retrying(base_s=0.5, cap_s=4.0, sleep=clock.sleep, monotonic=clock.monotonic)
    operation, _ = _failing(30)
    assert retrying(operation, "put") == "done"
    for pause, expected in zip(clock.pauses, _nominal(0.5, 4.0, 30), strict=True):
        assert 0.5 * expected <= pause < 1.5 * expected
    assert len(set(clock.pauses)) > 1  # jittered, so clients do not retry in step


def test_retrying_gives_up_after_give_up_s() -> None:
    clock = _Clock()
    retrying = Retrying(
        base_s=1.0, cap_s=2.0, give_up_s=10.0, sleep=clock.sleep, monotonic=clock.monotonic
    )
    operation, calls = _failing(10**6)
    with pytest.raises(StoreUnavailable, match=r"put x: gave up after \d+ attempts") as info:
        retrying(operation, "put x")
    assert isinstance(info.value.__cause__, StoreUnavailable)
    slept = sum(clock.pauses)
    assert slept > 10.0
    assert slept - clock.pauses[-1] <= 10.0  # it stopped at the first failure past the deadline
    assert len(calls) == len(clock.pauses) + 1


def test_retrying_never_retries_a_permanent_error() -> None:
    clock = _Clock()
    calls: list[int] = []

    def refused() -> None:
        calls.append(1)
        raise StoreError("403 AccessDenied")

    retrying = Retrying(sleep=clock.sleep, monotonic=clock.monotonic)
    with pytest.raises(StoreError, match="AccessDenied"):
        retrying(refused, "put")
    assert calls == [1]
    assert clock.pauses == []


def test_retrying_stops_when_asked() -> None:
    clock = _Clock()
    polls: list[int] = []

    def should_stop() -> bool:
        polls.append(1)
        return len(polls) >= 3

    retrying = Retrying(sleep=clock.sleep, monotonic=clock.monotonic, should_stop=should_stop)
    operation, calls = _failing(10**6)
    with pytest.raises(StoreUnavailable, match="gave up after 3 attempts"):
        retrying(operation, "put")
    assert len(calls) == 3
    assert len(clock.pauses) == 2


@pytest.fixture
def restarted(s3_server: S3Server) -> Iterator[Callable[[float], None]]:
    """Stops the server now and starts it again after a delay, from a timer thread."""
    timers: list[threading.Timer] = []

    def outage(seconds: float) -> None:
        s3_server.stop()
        timer = threading.Timer(seconds, s3_server.start)
        timers.append(timer)
        timer.start()

    yield outage
    for timer in timers:  # the server is back before the next test
        timer.join()


def test_real_outage_is_ridden_out(
    s3_server: S3Server, bucket: str, restarted: Callable[[float], None]
) -> None:
    store = _s3_store(s3_server, bucket)
    failures: list[StoreUnavailable] = []
    retrying = Retrying(base_s=0.05, cap_s=0.4, give_up_s=30.0, on_retry=failures.append)
    began = time.monotonic()
    restarted(1.5)
    meta = {"first": "1"}
    assert retrying(lambda: store.put_if_absent("k.json", b"{}", meta), "put k") is True
    assert time.monotonic() - began >= 1.4
    assert failures
    assert retrying(lambda: store.head("k.json"), "head k") == meta


@pytest.mark.parametrize("url", ["ftp://x", "s3://", "s3:///prefix", "gs://bucket/p"])
def test_open_store_rejects_what_it_cannot_write(url: str) -> None:
    with pytest.raises(StoreError, match="dest"):
        open_store(url)


def test_open_store_reads_file_urls_and_paths(tmp_path: Path) -> None:
    by_url = open_store((tmp_path / "a b").as_uri())
    by_path = open_store(str(tmp_path / "a b"))
    assert isinstance(by_url, LocalStore)
    assert isinstance(by_path, LocalStore)
    assert by_url.root == by_path.root == (tmp_path / "a b").resolve()


def test_put_replaces_list_and_delete(store: ObjectStore) -> None:
    """What the batch job needs: replace, read back, list a prefix, delete what is stale."""
    assert store.list("run/") == []
    store.put("run/dt=1/a.parquet", b"one", {"k": "v"})
    store.put("run/dt=1/a.parquet", b"two", {"k": "v"})
    store.put("run/dt=2/b.parquet", b"three", {})
    store.put("other/c.json", b"{}", {})
    assert _read(store, "run/dt=1/a.parquet") == b"two"
    assert store.get("run/dt=1/a.parquet") == b"two"
    assert store.get("run/dt=1/missing.parquet") is None
    assert store.list("run/") == ["run/dt=1/a.parquet", "run/dt=2/b.parquet"]
    assert store.list("nothing/") == []
    store.delete(["run/dt=1/a.parquet", "run/missing.parquet"])
    assert store.list("run/") == ["run/dt=2/b.parquet"]
    assert _read(store, "other/c.json") == b"{}"
