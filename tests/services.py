"""The JVM services of the scoring-stack tests: a real Schema Registry and a JVM reader.

Both come from Maven Central through project scripts and are cached outside the repo
(``scripts/schema-registry``, ``scripts/jvm-reader``); no test fakes either.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

REPO_ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def schema_registry() -> Iterator[str]:
    """A real Apicurio Registry on free local ports; yields its ccompat base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "SCHEMA_REGISTRY_PORT": str(port),
        "SCHEMA_REGISTRY_MANAGEMENT_PORT": str(_free_port()),
        "SCHEMA_REGISTRY_STORAGE": "mem",
        "SCHEMA_REGISTRY_STATE_DIR": tempfile.mkdtemp(prefix=f"txnsim-registry-test-{port}-"),
    }
    script = str(REPO_ROOT / "scripts" / "schema-registry")
    started = subprocess.run(
        [script, "start"], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if started.returncode != 0:
        raise RuntimeError(f"schema-registry did not start:\n{started.stderr[-3000:]}")
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, timeout=120, check=False)


def jvm_read(bootstrap: str, topic: str, *extra: str, timeout_s: int = 300) -> dict:
    """Run the Java reader on ``topic`` (read_committed); its JSON summary."""
    done = subprocess.run(
        [
            str(REPO_ROOT / "scripts" / "jvm-reader"),
            "run",
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--timeout-s",
            "120",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"jvm-reader exited {done.returncode}:\n{done.stderr[-3000:]}")
    result: dict = orjson.loads(done.stdout.strip().splitlines()[-1])
    return result
