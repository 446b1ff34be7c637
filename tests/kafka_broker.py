"""Provide a real Kafka broker to the test suite.

`ensure_kafka` picks, in order:

1. an existing broker named by the ``KAFKA_BOOTSTRAP_SERVERS`` environment
   variable (nothing is started or stopped);
2. a throwaway ``apache/kafka`` container (KRaft) through testcontainers, when
   a Docker engine answers;
3. otherwise a local broker run by ``scripts/kafka-local`` (plain Java, no
   Docker) on free ports of 127.0.0.1 with its own state directory.

Brokers of the third kind can also be stopped, killed and started again on the
same ports with the same data (see `LocalKafka`, `local_kafka_for` and
`restart_local_kafka`), for tests that restart the broker mid-stream.

The ``kafka_bootstrap`` session fixture in ``tests/conftest.py`` is its one user.

This module holds no tests.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import subprocess
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_DOCKER_IMAGE",
    "KAFKA_LOCAL",
    "LocalKafka",
    "ensure_kafka",
    "local_kafka_for",
    "restart_local_kafka",
    "start_local_kafka",
]

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
"""Root of the repository (the parent of ``tests/``)."""

KAFKA_LOCAL = REPO_ROOT / "scripts" / "kafka-local"
"""The script that runs a broker without Docker."""

DEFAULT_DOCKER_IMAGE = f"apache/kafka:{os.environ.get('KAFKA_VERSION', '4.4.0')}"
"""Image used when a Docker engine answers (override: KAFKA_DOCKER_IMAGE).

Same Kafka version as the default of ``scripts/kafka-local``.
"""

# Generous defaults: the first start downloads the broker with Maven, and a
# loaded 2-core machine can take well over a minute to boot a JVM broker.
_START_TIMEOUT_S = int(os.environ.get("KAFKA_START_TIMEOUT", "180"))
_SCRIPT_TIMEOUT_S = 900.0

Stopper = Callable[[], None]

_LOCAL_BROKERS: dict[str, LocalKafka] = {}


def ensure_kafka() -> tuple[str, Stopper]:
    """Returns the bootstrap address of a usable Kafka broker and its stopper.

    Returns:
        A ``(bootstrap_servers, stop)`` pair. ``stop()`` releases whatever was
        started (a no-op when the broker came from ``KAFKA_BOOTSTRAP_SERVERS``)
        and may be called more than once.

    Raises:
        RuntimeError: If no broker could be started.
    """
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if configured:
        logger.info("using Kafka from KAFKA_BOOTSTRAP_SERVERS=%s", configured)
        return configured, _noop
    if _docker_available():
        try:
            return _start_container()
        except Exception:  # Any Docker failure: fall back to Java.
            logger.warning(
                "Kafka container failed to start; falling back to scripts/kafka-local",
                exc_info=True,
            )
    broker = start_local_kafka()
    return broker.bootstrap, broker.stop


def start_local_kafka() -> LocalKafka:
    """Starts a broker with ``scripts/kafka-local`` on free local ports.

    Returns:
        The running broker, also registered for `local_kafka_for`.

    Raises:
        RuntimeError: If the script fails or prints no address.
    """
    port, controller_port = _free_ports(2)
    state_dir = Path(tempfile.mkdtemp(prefix=f"txnsim-kafka-test-{port}-"))
    broker = LocalKafka(port=port, controller_port=controller_port, state_dir=state_dir)
    try:
        broker.start()
    except BaseException:
        broker.stop()
        raise
    return broker


def local_kafka_for(bootstrap: str) -> LocalKafka | None:
    """Finds the `LocalKafka` that serves ``bootstrap``.

    Args:
        bootstrap: An address returned by `ensure_kafka`.

    Returns:
        The broker, or None when ``bootstrap`` was not started by
        ``scripts/kafka-local`` (external broker or container), in which case
        a restart test should be skipped.
    """
    return _LOCAL_BROKERS.get(bootstrap)


def restart_local_kafka(bootstrap: str, *, crash: bool = False) -> None:
    """Stops the local broker serving ``bootstrap`` and starts it again.

    The broker comes back on the same ports with the same data, so clients
    can reconnect and earlier records are still there.

    Args:
        bootstrap: An address returned by `ensure_kafka`.
        crash: If True, SIGKILL the broker instead of a clean shutdown.

    Raises:
        LookupError: If ``bootstrap`` is not a ``scripts/kafka-local`` broker.
        RuntimeError: If the script fails.
    """
    broker = local_kafka_for(bootstrap)
    if broker is None:
        raise LookupError(f"{bootstrap} was not started by scripts/kafka-local")
    if crash:
        broker.kill()
    else:
        broker.stop(keep_data=True)
    broker.start()


@dataclass
class LocalKafka:
    """A broker run by ``scripts/kafka-local`` on 127.0.0.1.

    Attributes:
        port: Client (PLAINTEXT) port.
        controller_port: KRaft controller port.
        state_dir: Data, config, pid file and ``broker.log`` of this broker.
    """

    port: int
    controller_port: int
    state_dir: Path

    @property
    def bootstrap(self) -> str:
        """The ``host:port`` bootstrap address."""
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        """The broker's log file (useful in failure messages)."""
        return self.state_dir / "broker.log"

    def start(self) -> str:
        """Starts the broker (reusing its data if it ran before) and waits for it.

        Returns:
            The bootstrap address printed by the script.

        Raises:
            RuntimeError: If the script fails or prints an unexpected address.
        """
        result = self._run("start")
        lines = result.stdout.strip().splitlines()
        address = lines[-1].strip() if lines else ""
        if address != self.bootstrap:
            raise RuntimeError(
                f"scripts/kafka-local start printed {address!r}, expected {self.bootstrap!r}"
            )
        _LOCAL_BROKERS[self.bootstrap] = self
        return address

    def stop(self, *, keep_data: bool = False) -> None:
        """Stops the broker (SIGTERM, then SIGKILL after a grace period).

        Args:
            keep_data: Keep the state dir so that `start` resumes with the same
                topics and records. Without it the state dir is deleted and the
                broker is forgotten.

        Raises:
            RuntimeError: If the script fails.
        """
        if keep_data:
            self._run("stop", "--keep-data")
        else:
            self._run("stop")
            _LOCAL_BROKERS.pop(self.bootstrap, None)

    def kill(self) -> None:
        """SIGKILLs the broker (a crash); its data is kept for `start`.

        Raises:
            RuntimeError: If the script fails.
        """
        self._run("kill")

    def is_running(self) -> bool:
        """Asks the script whether the broker answers on its port.

        Returns:
            True if ``scripts/kafka-local status`` reports it running.
        """
        return self._run("status", check=False).returncode == 0

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            KAFKA_PORT=str(self.port),
            KAFKA_CONTROLLER_PORT=str(self.controller_port),
            KAFKA_STATE_DIR=str(self.state_dir),
            KAFKA_START_TIMEOUT=str(_START_TIMEOUT_S),
        )
        # C1-only JIT: about 40% less CPU to boot (measured on 2 cores), and
        # test traffic is too small to need C2's peak throughput.
        env.setdefault("KAFKA_JVM_OPTS", "-XX:TieredStopAtLevel=1")
        return env

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(
                [str(KAFKA_LOCAL), *args],
                env=self._env(),
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_SCRIPT_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(
                f"scripts/kafka-local {' '.join(args)} timed out after {exc.timeout}s"
            ) from exc
        if result.stderr:
            logger.debug("kafka-local %s: %s", " ".join(args), result.stderr.strip())
        if check and result.returncode != 0:
            raise RuntimeError(
                f"scripts/kafka-local {' '.join(args)} exited {result.returncode} "
                f"(KAFKA_PORT={self.port}, KAFKA_STATE_DIR={self.state_dir}):\n"
                f"{result.stderr.strip()}"
            )
        return result


def _noop() -> None:
    """Stops nothing."""


def _free_ports(count: int) -> list[int]:
    """Picks distinct TCP ports that are free on 127.0.0.1 right now.

    Args:
        count: How many ports.

    Returns:
        The port numbers.
    """
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def _docker_available() -> bool:
    """Tells whether a Docker engine answers a ping.

    Returns:
        True if ``docker.from_env().ping()`` succeeds.
    """
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://"):
        # Probe the socket ourselves first: the docker client leaks its socket (a
        # ResourceWarning, an error under pytest) when nothing listens there.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(2)
            try:
                probe.connect(host.removeprefix("unix://"))
            except OSError:
                return False
    try:
        # Optional dependency, imported lazily (and untyped).
        docker = importlib.import_module("docker")
        client = docker.from_env(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # No engine, socket or package.
        return False


def _start_container() -> tuple[str, Stopper]:
    """Starts a single-node KRaft ``apache/kafka`` container.

    testcontainers' ``KafkaContainer`` only drives Confluent images, so this
    uses a plain ``DockerContainer``. The host port is chosen up front and
    mapped to the same container port so that the advertised listener is
    right without a second configuration pass.

    Returns:
        The bootstrap address and a stopper that removes the container.
    """
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    image = os.environ.get("KAFKA_DOCKER_IMAGE", DEFAULT_DOCKER_IMAGE)
    (port,) = _free_ports(1)
    container = DockerContainer(image)
    host = container.get_docker_client().host()
    container.with_bind_ports(port, port).with_envs(
        KAFKA_NODE_ID="1",
        KAFKA_PROCESS_ROLES="broker,controller",
        KAFKA_LISTENERS=f"PLAINTEXT://0.0.0.0:{port},CONTROLLER://localhost:9093",
        KAFKA_ADVERTISED_LISTENERS=f"PLAINTEXT://{host}:{port}",
        KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
        KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
        KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
        KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS="1",
        KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
        KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
        KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
        KAFKA_NUM_PARTITIONS="1",
        KAFKA_AUTO_CREATE_TOPICS_ENABLE="false",
    ).waiting_for(
        LogMessageWaitStrategy("Kafka Server started").with_startup_timeout(_START_TIMEOUT_S)
    )
    logger.info("starting Kafka container %s on %s:%d", image, host, port)
    try:
        container.start()
    except BaseException:
        container.stop()
        raise
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            container.stop()

    return f"{host}:{port}", stop
