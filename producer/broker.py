"""A genuine single-node Apache Kafka broker (KRaft), run locally from Maven Central jars.

``fraudstream kafka up|down|status``. The broker jars (``kafka_2.13`` plus a Log4j2 backend, as
pinned in ``deploy/kafka/pom.xml``) are resolved once with Maven into
``${XDG_CACHE_HOME:-~/.cache}/fraudstream/kafka-<version>/libs``. A broker's state lives in its
data directory (default ``$FRAUDSTREAM_HOME/kafka``)::

    server.properties   rendered from deploy/kafka/server.properties
    broker.json         {"port": ..., "controller_port": ...}
    broker.pid          pid of the JVM (its own session / process group)
    broker.log          the JVM's stdout and stderr
    logs/               Kafka's log.dirs (formatted once, with a fresh cluster id)
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from producer.jars import deploy_file, jar_dir, require_tool
from schemas.errors import FraudstreamError

DEFAULT_PORT = 9092
DEFAULT_BOOTSTRAP = f"127.0.0.1:{DEFAULT_PORT}"
HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
HEAP = "512m"


#: The ``--bootstrap-servers`` help of every command that talks to Kafka.
BOOTSTRAP_HELP = ("H:P (default: $KAFKA_BOOTSTRAP_SERVERS, else the local broker `fraudstream "
                  "kafka up` started for $FRAUDSTREAM_HOME, else 127.0.0.1:9092)")


def bootstrap_servers(flag: str | None = None) -> str:
    """The bootstrap address: ``flag`` > env ``KAFKA_BOOTSTRAP_SERVERS`` > the local broker of
    this home (:func:`home_broker`) > ``127.0.0.1:9092``."""
    return flag or os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or home_broker() or DEFAULT_BOOTSTRAP


def home_broker() -> str | None:
    """The address of the local broker ``fraudstream kafka up`` started for this
    ``$FRAUDSTREAM_HOME`` (the port its data directory ``kafka/`` recorded), running or not;
    None if it never started one. Nothing is created by looking."""
    from store.settings import home

    port = LocalBroker(home(create=False) / "kafka").recorded_port
    return f"{HOST}:{port}" if port else None


def _quiet_kafka_logs() -> None:
    import logging

    logger = logging.getLogger("kafka")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.CRITICAL)


def check_ready(bootstrap: str, timeout: float = 3.0) -> bool:
    """One attempt: True if a kafka-python admin client can list topics within ``timeout`` s."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    _quiet_kafka_logs()
    ms = max(int(timeout * 1000), 100)
    admin = None
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=ms,
                                 bootstrap_timeout_ms=ms, client_id="fraudstream-probe")
        admin.list_topics()
        return True
    except (KafkaError, OSError, ValueError):
        return False
    finally:
        if admin is not None:
            admin.close()


def wait_ready(bootstrap: str, timeout: float = READY_TIMEOUT_S) -> None:
    """Block until ``bootstrap`` answers list-topics; FraudstreamError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if check_ready(bootstrap, timeout=max(0.5, min(5.0, remaining))):
            return
        if time.monotonic() >= deadline:
            raise FraudstreamError(f"Kafka at {bootstrap} did not answer within {timeout:.0f} s")
        time.sleep(0.5)


def port_in_use(port: int, host: str = HOST) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def tcp_reachable(bootstrap: str, timeout: float = 3.0) -> str | None:
    """None if some ``host:port`` of a comma-separated bootstrap list accepts a TCP connection
    within ``timeout`` s, else the last connection error as text (a fast fail before a Kafka
    client's own, much longer, bootstrap retries)."""
    error = "no address given"
    for address in filter(None, (a.strip() for a in bootstrap.split(","))):
        host, _, port = address.rpartition(":")
        if not host:
            host, port = address, str(DEFAULT_PORT)
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return None
        except (OSError, ValueError) as exc:
            error = f"{address}: {exc}"
    return error


def free_port(host: str = HOST) -> int:
    """An ephemeral TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _random_cluster_id() -> str:
    """Same format as ``StorageTool random-uuid``: 16 random bytes, URL-safe base64, no padding."""
    while True:
        cid = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class LocalBroker:
    """A single-node KRaft broker+controller on 127.0.0.1, state in ``data_dir``.

    ``port`` defaults to the one recorded in ``data_dir/broker.json``, else 9092. The controller
    listens on ``port + 1`` when that is free, else on any free port (recorded in broker.json).
    """

    def __init__(self, data_dir: str | Path | None = None, port: int | None = None,
                 heap: str = HEAP) -> None:
        if data_dir is None:
            from store.settings import home

            data_dir = home() / "kafka"
        self.data_dir = Path(data_dir).resolve()
        recorded = self._recorded()
        self.port = int(port or recorded.get("port") or DEFAULT_PORT)
        self.heap = heap
        self._proc: subprocess.Popen[bytes] | None = None

    # -- paths and recorded state -------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def _state_file(self) -> Path:
        return self.data_dir / "broker.json"

    @property
    def _props_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def recorded_port(self) -> int | None:
        """The client port recorded when this data directory's broker was last started."""
        port = self._recorded().get("port")
        return int(port) if port else None

    def _recorded(self) -> dict[str, int]:
        try:
            return dict(json.loads(self._state_file.read_text()))
        except (OSError, ValueError):
            return {}

    def pid(self) -> int | None:
        """Pid of this data dir's broker JVM if it is alive, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if self._proc is not None and self._proc.pid == pid:
            return pid if self._proc.poll() is None else None
        return pid if _is_our_jvm(pid, self._props_file) else None

    # -- public API ---------------------------------------------------------------------------
    def is_ready(self, timeout: float = 3.0) -> bool:
        """True if a Kafka client can list topics on this broker's port."""
        if not port_in_use(self.port):
            return False
        return check_ready(self.bootstrap, timeout=timeout)

    def up(self, timeout: float = READY_TIMEOUT_S) -> str:
        """Start the broker unless it is already running; return the bootstrap address."""
        if self.pid() is not None:
            running = int(self._recorded().get("port") or self.port)
            if running != self.port:
                raise FraudstreamError(f"the broker of {self.data_dir} already runs on port "
                                       f"{running}; stop it first (fraudstream kafka down)")
            wait_ready(self.bootstrap, timeout)
            return self.bootstrap
        java = require_tool("java", "install a Java 17+ runtime to run the local Kafka broker")
        if port_in_use(self.port):
            raise FraudstreamError(
                f"port {self.port} is already in use by another process; pick another --port "
                f"(or, if it is a Kafka broker, point --bootstrap-servers at {self.bootstrap})")
        libs = jar_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        controller_port = self._controller_port()
        self._write_config(controller_port)
        self._format_once(java, libs)
        self._start(java, libs)
        self._wait_started(timeout)
        return self.bootstrap

    def down(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout`` s); idempotent."""
        pid = self.pid()
        if pid is not None:
            _signal_group(pid, signal.SIGTERM)
            if not self._wait_exit(pid, timeout):
                _signal_group(pid, signal.SIGKILL)
                self._wait_exit(pid, 10.0)
        if self._proc is not None:
            self._proc.poll()
            self._proc = None
        self.pid_file.unlink(missing_ok=True)

    # -- internals ----------------------------------------------------------------------------
    def _controller_port(self) -> int:
        recorded = self._recorded()
        candidates = [recorded.get("controller_port"), self.port + 1]
        for candidate in candidates:
            if candidate and candidate != self.port and not port_in_use(int(candidate)):
                return int(candidate)
        return free_port()

    def _write_config(self, controller_port: int) -> None:
        template = deploy_file("server.properties").read_text()
        rendered = template.format(port=self.port, controller_port=controller_port,
                                   log_dirs=(self.data_dir / "logs").as_posix())
        self._props_file.write_text(rendered)
        self._state_file.write_text(json.dumps({"port": self.port,
                                                "controller_port": controller_port}) + "\n")

    def _format_once(self, java: str, libs: Path) -> None:
        if (self.data_dir / "logs" / "meta.properties").is_file():
            return
        log_config = deploy_file("log4j2.properties")
        cmd = [java, "-cp", f"{libs}/*", f"-Dlog4j2.configurationFile={log_config}",
               "kafka.tools.StorageTool", "format", "-t", _random_cluster_id(),
               "-c", str(self._props_file)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
            raise FraudstreamError("formatting Kafka storage failed: " + " | ".join(tail))

    def _start(self, java: str, libs: Path) -> None:
        cmd = [java, f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
               "-Djava.awt.headless=true",
               f"-Dlog4j2.configurationFile={deploy_file('log4j2.properties')}",
               "-cp", f"{libs}/*", "kafka.Kafka", str(self._props_file)]
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True,
                                          cwd=self.data_dir)
        self.pid_file.write_text(f"{self._proc.pid}\n")

    def _wait_started(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise FraudstreamError(f"the Kafka broker exited with code {self._proc.returncode}"
                                       f"; last lines of {self.log_file}:\n{self._log_tail()}")
            if port_in_use(self.port) and check_ready(self.bootstrap, timeout=2.0):
                return
            time.sleep(0.5)
        self.down()
        raise FraudstreamError(f"the Kafka broker did not become ready within {timeout:.0f} s; "
                               f"last lines of {self.log_file}:\n{self._log_tail()}")

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.pid == pid:
                if self._proc.poll() is not None:
                    return True
            elif not _alive(pid):
                return True
            time.sleep(0.1)
        return False

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _is_our_jvm(pid: int, props_file: Path) -> bool:
    """True if ``pid`` is alive and (where procfs can tell) runs kafka.Kafka on our config."""
    if not _alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True
    return b"kafka.Kafka" in cmdline and str(props_file).encode() in cmdline


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # the broker leads its own session, so pgid == pid
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


if __name__ == "__main__":  # `python -m producer.broker ensure-jars` (used by `make`)
    if sys.argv[1:] != ["ensure-jars"]:
        sys.exit("usage: python -m producer.broker ensure-jars")
    try:
        print(jar_dir())
    except FraudstreamError as exc:
        sys.exit(f"fraudstream: error: {exc}")
