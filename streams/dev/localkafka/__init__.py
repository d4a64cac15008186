"""A single-node Apache Kafka (KRaft) broker on 127.0.0.1 for development, tests and the local run.

The broker jars come from Maven Central through ``mvn`` (resolved once into a cache outside the
repo); the broker runs as a detached JVM whose pid, port and log path are kept in a state dir,
so ``start``, ``stop`` and ``status`` work from any process and are safe to repeat.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from streams.errors import BrokerError, ConfigError

HOST = "127.0.0.1"
DEFAULT_PORT = 9092
STATE_FILE = "broker.json"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


def default_cache_dir() -> Path:
    """Where resolved broker jars live: ``$HCS_CACHE_DIR`` or ``$XDG_CACHE_HOME/hcs``."""
    explicit = os.environ.get("HCS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "hcs"


def _resource(name: str) -> Path:
    return Path(str(resources.files(__name__).joinpath(name)))


def _pom_digest() -> str:
    # The cache is keyed by the pom's content, so a version bump resolves afresh.
    return hashlib.sha256(_resource("pom.xml").read_bytes()).hexdigest()[:12]


def java_executable() -> str:
    """The ``java`` to run: ``$JAVA_HOME/bin/java`` if set, else the one on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise BrokerError(
            "java not found: install a Java 17+ runtime (e.g. `apt-get install "
            "openjdk-17-jre-headless`) or set JAVA_HOME, or set HCS_BOOTSTRAP to an existing cluster"
        )
    return found


def resolve_jars(cache_dir: Path | None = None) -> Path:
    """Return the directory of broker jars, resolving them with Maven on first use."""
    libs = (cache_dir or default_cache_dir()) / f"kafka-{_pom_digest()}" / "libs"
    done_marker = libs / ".complete"
    if done_marker.is_file():
        return libs
    mvn = shutil.which("mvn")
    if not mvn:
        raise BrokerError(
            "mvn not found: install Apache Maven (e.g. `apt-get install maven`) so the Kafka "
            "broker jars can be resolved from Maven Central, or set HCS_BOOTSTRAP to an existing cluster"
        )
    tmp = libs.with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cmd = [
        mvn, "-B", "-q", "-f", str(_resource("pom.xml")),
        "dependency:copy-dependencies", f"-DoutputDirectory={tmp}", "-DincludeScope=runtime",
    ]
    # The first start waits a minute or so for Maven: say what for (it was silent for ~47 s).
    print(f"hcs: fetching the Apache Kafka broker jars with Maven into {libs.parent} (first use only; "
          "about a minute)", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        raise BrokerError("Maven could not resolve the Kafka broker jars: " + " | ".join(tail))
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    done_marker.touch()
    return libs


def require_free_port(setting: str, host: str, port: int) -> None:
    """Raise :class:`ConfigError` in one line, naming ``setting``, when ``host:port`` is taken (the
    web server would fail on it with a traceback)."""
    if not port_is_free(port, host):
        raise ConfigError(f"{setting}={port} is taken on {host}: another hcs worker, bridge or `make run` of this "
                          f"machine may hold it; stop it or set {setting} to a free port")


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST, avoid: Collection[int] = ()) -> int:
    """An ephemeral port that was free a moment ago, and none of ``avoid`` (ports chosen a moment
    ago for something else, free until it binds them: the kernel may hand one out again)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in avoid:
            return port


def _stderr_message(stderr: str, limit: int = 600) -> str:
    """A Java tool's error without its stack frames (the message is what a reader needs; the
    frames alone filled the last 400 characters once, and hid it)."""
    lines = [line for line in stderr.strip().splitlines() if not line.lstrip().startswith(("at ", "..."))]
    return " ".join(line.strip() for line in lines)[-limit:]


def die_with_parent() -> None:
    """``preexec_fn`` for a child that must stop when the process that started it dies, however
    it dies (Linux: the kernel sends SIGTERM). Elsewhere it does nothing."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); treat it as dead.
    with contextlib.suppress(FileNotFoundError, OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def cluster_id() -> str:
    """A KRaft cluster id: a random UUID in URL-safe base64. Like Kafka's ``Uuid.randomUuid()``,
    never one starting with "-", which the storage tool's command line would take for an option."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def serves_clients(bootstrap: str, timeout_s: float = 5.0) -> bool:
    """True when a Kafka broker at ``bootstrap`` answers metadata requests and can coordinate
    consumer groups (on a new broker the first group request creates ``__consumer_offsets``, and
    until it exists every consumer logs "Group Coordinator Request failed")."""
    import logging

    from aiokafka.admin import AIOKafkaAdminClient

    # "connection refused" is the expected answer while the broker boots; keep it off the console.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    async def probe() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
        try:
            await asyncio.wait_for(admin.start(), timeout_s)
            cluster = await asyncio.wait_for(admin.describe_cluster(), timeout_s)
            await asyncio.wait_for(admin.find_coordinator("hcs-broker-ready"), timeout_s)
            return bool(cluster.get("brokers"))
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            return False
        finally:
            with contextlib.suppress(Exception):
                await admin.close()

    return asyncio.run(probe())


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    port: int | None
    bootstrap: str | None
    log_path: Path | None

    def describe(self) -> str:
        if not self.running:
            return "broker: not running"
        return f"broker: running at {self.bootstrap} (pid {self.pid}, log {self.log_path})"


@dataclass(frozen=True)
class SecureListener:
    """A SASL_SSL listener beside the PLAINTEXT one (to test clients of a secured cluster).

    ``keystore``: the broker's PKCS#12 key and certificate (for 127.0.0.1); ``users``: SCRAM
    users and passwords, made when the data dir is formatted.
    """

    port: int
    keystore: Path
    keystore_password: str
    users: tuple[tuple[str, str], ...]
    mechanism: str = "SCRAM-SHA-512"
    # With ACLs: KRaft's StandardAuthorizer, these users super users. The broker's own
    # PLAINTEXT and controller listeners (loopback) are ANONYMOUS, a super user too.
    super_users: tuple[str, ...] | None = None

    def properties(self) -> dict[str, str]:
        name = "sasl_ssl"
        acls = {} if self.super_users is None else {
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": ";".join(f"User:{user}" for user in (*self.super_users, "ANONYMOUS")),
            "allow.everyone.if.no.acl.found": "false",
        }
        return {
            **acls,
            "sasl.enabled.mechanisms": self.mechanism,
            f"listener.name.{name}.{self.mechanism.lower()}.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            f"listener.name.{name}.ssl.keystore.type": "PKCS12",
            f"listener.name.{name}.ssl.keystore.location": str(self.keystore),
            f"listener.name.{name}.ssl.keystore.password": self.keystore_password,
        }

    def format_args(self) -> list[str]:
        return [arg for user, password in self.users
                for arg in ("--add-scram", f"{self.mechanism}=[name={user},password={password}]")]


class LocalKafka:
    """One local broker, identified by its state dir."""

    def __init__(self, state_dir: Path, cache_dir: Path | None = None, heap: str = "512m",
                 owned: bool = False, secure: SecureListener | None = None) -> None:
        """``owned``: the broker belongs to this process (tests, ``hcs run``, ``hcs bench``) and
        stops when it dies; otherwise (``hcs broker start``) it outlives the command.
        ``secure``: also listen with SASL_SSL (tests of secured clients)."""
        self.state_dir = Path(state_dir)
        self.cache_dir = cache_dir
        self.heap = heap
        self.owned = owned
        self.secure = secure

    @property
    def _state_path(self) -> Path:
        return self.state_dir / STATE_FILE

    @property
    def log_path(self) -> Path:
        return self.state_dir / "logs" / "broker.log"

    def _read_state(self) -> dict[str, object] | None:
        try:
            data = json.loads(self._state_path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def status(self) -> BrokerStatus:
        state = self._read_state()
        if not state:
            return BrokerStatus(False, None, None, None, None)
        pid, port = int(state["pid"]), int(state["port"])  # type: ignore[call-overload]
        if not _pid_alive(pid):
            return BrokerStatus(False, None, port, None, self.log_path)
        return BrokerStatus(True, pid, port, f"{HOST}:{port}", self.log_path)

    def _write_config(self, port: int) -> Path:
        """Write server.properties; the controller port is chosen once and kept with the data."""
        ports_path = self.state_dir / "ports.json"
        controller_port: int
        try:
            controller_port = int(json.loads(ports_path.read_text())["controller"])
        except (FileNotFoundError, ValueError, KeyError):
            controller_port = free_port(avoid={port, *((self.secure.port,) if self.secure else ())})
            ports_path.write_text(json.dumps({"controller": controller_port}))
        if not port_is_free(controller_port):
            raise BrokerError(
                f"controller port {controller_port} on {HOST} is taken; free it or remove {self.state_dir}"
            )
        data_dir = self.state_dir / "data"
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{HOST}:{controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL",
            "log.dirs": str(data_dir),
            "num.partitions": "1",
            # Topics are declared by the worker with their partition counts; a typo'd topic
            # name should fail loudly rather than appear with the wrong layout.
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.retention.hours": "24",
        }
        if self.secure is not None:
            props["listeners"] += f",SASL_SSL://{HOST}:{self.secure.port}"
            props["advertised.listeners"] += f",SASL_SSL://{HOST}:{self.secure.port}"
            props.update(self.secure.properties())
        path = self.state_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def _java_cmd(self, java: str, libs: Path, main: str, *args: str) -> list[str]:
        return [
            java, f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={_resource('log4j2.properties')}",
            f"-Dkafka.logs.dir={self.log_path.parent}",
            "-cp", f"{libs}/*", main, *args,
        ]

    def start(self, port: int = DEFAULT_PORT, timeout_s: float = START_TIMEOUT_S) -> BrokerStatus:
        """Start the broker unless it already runs; return once it answers metadata and group requests."""
        current = self.status()
        if current.running:
            return current
        java = java_executable()
        if not port_is_free(port):
            raise BrokerError(
                f"port {port} on {HOST} is already in use: stop what holds it or choose another "
                "with --port (or set HCS_BOOTSTRAP to use that broker)"
            )
        libs = resolve_jars(self.cache_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        config = self._write_config(port)
        if not (self.state_dir / "data" / "meta.properties").is_file():
            fmt = subprocess.run(
                self._java_cmd(java, libs, "kafka.tools.StorageTool", "format",
                               "-t", cluster_id(), "-c", str(config),
                               *(self.secure.format_args() if self.secure else [])),
                capture_output=True, text=True, check=False,
            )
            if fmt.returncode != 0:
                raise BrokerError(f"formatting the KRaft data dir failed: {_stderr_message(fmt.stderr)}")
        console = open(self.state_dir / "logs" / "broker.out", "ab")  # noqa: SIM115 - owned by the JVM
        proc = subprocess.Popen(
            self._java_cmd(java, libs, "kafka.Kafka", str(config)),
            stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # no terminal signals (Ctrl-C) from the command that started it
            preexec_fn=die_with_parent if self.owned else None,
        )
        console.close()
        self._state_path.write_text(json.dumps({"pid": proc.pid, "port": port, "log": str(self.log_path)}))
        bootstrap = f"{HOST}:{port}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._state_path.unlink(missing_ok=True)
                raise BrokerError(f"the broker exited with code {proc.returncode} at start; see {self.log_path}")
            if serves_clients(bootstrap, timeout_s=3.0):
                return self.status()
            time.sleep(0.5)
        self.stop()
        raise BrokerError(f"the broker did not answer on {bootstrap} within {timeout_s:.0f}s; see {self.log_path}")

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Stop the broker; return False if it was not running. Safe to call repeatedly."""
        current = self.status()
        if not current.running or current.pid is None:
            self._state_path.unlink(missing_ok=True)  # a stale record of a dead broker
            return False
        pid = current.pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _pid_alive(pid):
            _reap(pid)
            time.sleep(0.2)
        if _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
        _reap(pid)
        self._state_path.unlink(missing_ok=True)
        return True


def _reap(pid: int) -> None:
    # When this process started the broker, collect its exit status so it is not left a zombie.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
