"""A real S3-compatible HTTP server on 127.0.0.1 for the tests: moto's server.

Why moto: it speaks the S3 REST API over HTTP (boto3 talks to it as to AWS or MinIO),
implements conditional writes (``PutObject`` with ``If-None-Match: *`` answers 412 when
the key exists), which the sink's exactly-once landing rests on, installs from PyPI
with no binary download, and keeps its buckets in the test process, so the server can
be stopped for an outage and started again on the same port with its objects intact.
MinIO plays the same part in docker-compose.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["S3Server", "start_s3_server"]

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"
REGION = "us-east-1"


@dataclass
class S3Server:
    """A running server: its endpoint, a client, and outage control."""

    endpoint: str
    port: int
    _server: Any
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def env(self) -> dict[str, str]:
        """Environment for a subprocess (boto3 reads these)."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def client(self) -> Any:
        """A boto3 S3 client for this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def bucket(self, name: str) -> str:
        """Create bucket ``name`` and return it."""
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key under ``prefix``, sorted."""
        paginator = self.client().get_paginator("list_objects_v2")
        found = []
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            found += [item["Key"] for item in page.get("Contents", [])]
        return sorted(found)

    def stop(self) -> None:
        """Stop answering (connections are refused); the objects are kept."""
        with self._lock:
            self._server.stop()

    def start(self) -> None:
        """Answer again on the same port."""
        from moto.server import ThreadedMotoServer

        with self._lock:
            # werkzeug's server sets SO_REUSEADDR: the port rebinds at once.
            self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
            self._server.start()

    @contextmanager
    def outage(self) -> Iterator[None]:
        """The server is down inside the block."""
        self.stop()
        try:
            yield
        finally:
            self.start()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_s3_server() -> S3Server:
    """Start a server on a free loopback port."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return S3Server(endpoint=f"http://127.0.0.1:{port}", port=port, _server=server)
