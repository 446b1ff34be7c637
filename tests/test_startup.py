"""What ``txnsim generate`` imports: only what the command uses (start-up is most of a small run).

The console script's entry point runs in a process of its own, as users run it, and
writes the names in its ``sys.modules`` (and the collector's state) as it exits.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.startup import (
    keep_freed_memory,
    one_blas_thread,
    pause_collector,
    resume_collector,
)

#: Modules a local ``generate`` to a folder never uses: Kafka, S3, Avro registries, plots,
#: and pandas (pyarrow would import it on its first array; see ``simulator.cli._hide_pandas``).
UNUSED = ("aiokafka", "boto3", "botocore", "matplotlib", "pandas", "pyspark", "httpx")


def _run(tmp_path: Path, cache: Path, out: str) -> dict:
    listing = tmp_path / f"{out}.json"
    state = (
        "{'modules': list(sys.modules), 'collecting': gc.isenabled(),"
        " 'frozen': gc.get_freeze_count(), 'blas': os.environ.get('OPENBLAS_NUM_THREADS'),"
        " 'purge': os.environ.get('MIMALLOC_PURGE_DELAY')}"
    )
    code = (
        "import atexit, gc, json, os, pathlib, sys\n"
        f"listing = pathlib.Path({str(listing)!r})\n"
        f"atexit.register(lambda: listing.write_text(json.dumps({state})))\n"
        "from simulator.console import txnsim\n"
        "txnsim()\n"
    )
    args = ["generate", "--out", str(tmp_path / out), "--seed", "5", "--cardholders", "1500"]
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENBLAS_NUM_THREADS", "MIMALLOC_PURGE_DELAY")
    }
    env["TXNSIM_CACHE_DIR"] = str(cache)
    proc = subprocess.run(
        [sys.executable, "-c", code, "--log-level", "WARNING", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(listing.read_text())


def _imported(tmp_path: Path, cache: Path, out: str) -> set[str]:
    return {name.split(".")[0] for name in _run(tmp_path, cache, out)["modules"]}


def test_generate_imports_only_what_it_uses(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _imported(tmp_path, cache, "cold")
    assert not first & set(UNUSED), sorted(first & set(UNUSED))
    assert "holidays" in first  # a cold cache looks the holidays up ...
    again = _imported(tmp_path, cache, "warm")
    assert "holidays" not in again  # ... and keeps them for the next run
    assert not again & set(UNUSED), sorted(again & set(UNUSED))


def test_the_command_runs_with_the_collector_on_and_start_up_frozen(tmp_path: Path) -> None:
    # The console script pauses the collector while its modules load; the command line
    # resumes it before the command runs, with what start-up made frozen.
    state = _run(tmp_path, tmp_path / "cache", "lake")
    assert state["collecting"]
    assert state["frozen"] > 20_000  # numpy's, pyarrow's and pydantic's objects, at least
    # numpy's BLAS was told to start no threads of its own (they spin for nothing).
    assert state["blas"] == "1"
    # pyarrow's allocator keeps freed pages for the next slice, not 10 ms.
    assert state["purge"] == "1000"


def test_a_blas_thread_count_the_user_set_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    one_blas_thread()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "3"


def test_an_allocator_setting_the_user_made_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIMALLOC_PURGE_DELAY", "250")
    keep_freed_memory()
    assert os.environ["MIMALLOC_PURGE_DELAY"] == "250"


def test_without_glibc_only_the_environment_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    # musl, macOS and Windows know no CS_GNU_LIBC_VERSION: asking would raise.
    monkeypatch.delenv("MIMALLOC_ALLOW_THP", raising=False)
    monkeypatch.setattr(os, "confstr_names", {}, raising=False)
    monkeypatch.setattr(os, "confstr", _no_confstr, raising=False)
    keep_freed_memory()
    assert os.environ["MIMALLOC_ALLOW_THP"] == "0"


def _no_confstr(name: str) -> str:
    raise ValueError("unrecognized configuration name")


def test_the_collector_stays_as_an_embedding_program_left_it() -> None:
    # Only a pause of its own is resumed: a program that turned the collector off keeps it off.
    gc.disable()
    try:
        pause_collector()
        resume_collector()
        assert not gc.isenabled()
    finally:
        gc.enable()
    frozen = gc.get_freeze_count()
    resume_collector()  # nothing paused: nothing frozen
    assert gc.get_freeze_count() == frozen


def test_the_console_script_ends_with_its_output_whole(tmp_path: Path) -> None:
    # The process ends without the interpreter's teardown: its summary, its last log
    # line and its exit code must still all be there, from buffered streams too.
    out = tmp_path / "lake"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["TXNSIM_CACHE_DIR"] = str(tmp_path / "cache")
    args = ["generate", "--out", str(out), "--seed", "5", "--cardholders", "1500"]
    proc = subprocess.run(
        [sys.executable, "-m", "simulator", "--log-format", "json", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    manifest = json.loads((out / "manifest.json").read_text())
    assert summary["rows"] == manifest["row_counts"]["transactions"] > 0
    assert json.loads(proc.stderr.strip().splitlines()[-1])["msg"] == "run complete"
    failed = subprocess.run(
        [sys.executable, "-m", "simulator", "generate", "--out", str(out), "--date", "2026-02-30"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert failed.returncode == 2
    assert "--date" in failed.stderr
