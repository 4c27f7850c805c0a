"""The local otel-audit stack: VictoriaLogs, Jaeger and otelcol-audit, on loopback.

Used by ``make demo`` and the end-to-end tests: real processes on free ports, started and
stopped by the caller. The binaries are built by ``make tools`` into ``.cache/bin``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".cache" / "bin"
COLLECTOR_CONFIG = ROOT / "collector-config" / "otelcol-audit.yaml"
JAEGER_CONFIG = ROOT / "collector-config" / "jaeger.yaml"
# Jaeger's readiness path (its healthcheckv2 extension): 503 while starting, 200 once up.
JAEGER_HEALTH_PATH = "/status"
# Feature gates every otelcol-audit process is started (and validated) with: the spool
# receiver's delete_after_read is behind an alpha gate at v0.145.0 (collector-config/README.md).
COLLECTOR_FEATURE_GATES = "filelog.allowFileDeletion"
COLLECTOR_FLAGS = (f"--feature-gates={COLLECTOR_FEATURE_GATES}",)


_LOWEST_PORT = 15000
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, for a server to bind.

    Chosen below the kernel's ephemeral range: a port from bind(0) comes from that range,
    where any outgoing connection may take it before the server starts (seen in CI as
    "address already in use"). Never the same port twice in one process either.
    """
    low, _ = _ephemeral_range()
    for _ in range(500):
        port = random.randrange(_LOWEST_PORT, max(low, _LOWEST_PORT + 1000))
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port between {_LOWEST_PORT} and {low}")


def binary(name: str) -> Path:
    """A binary from ``.cache/bin``, or a clear error naming the make target that builds it."""
    path = BIN / name
    if not os.access(path, os.X_OK):
        target = "collector" if name.startswith("otelcol") else "backends"
        raise FileNotFoundError(f"{path} is missing: run `make {target}` (or `make tools`)")
    return path


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _load_prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, loaded now: a preexec function must not load libraries after fork."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()


def die_with_parent(how: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send ``how`` to the child when this process dies.

    The second line of defence behind a graceful stop: a parent killed with SIGKILL, or one
    that crashes, leaves no orphaned backend or collector holding ports and files. Linux only
    (``PR_SET_PDEATHSIG``); elsewhere ``None``, and children must be stopped explicitly. The
    signal follows the *thread* that started the child, so start services from a thread that
    outlives them (the main thread).
    """
    prctl = _PRCTL
    if prctl is None:
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(how), 0, 0, 0)
        # The parent may have died between fork and prctl: then no signal would ever come.
        if os.getppid() != parent:
            os.kill(os.getpid(), how)

    return preexec


def stop_process(
    process: subprocess.Popen[bytes], how: signal.Signals = signal.SIGTERM, timeout: float = 20
) -> int:
    """Send ``how`` and wait for the exit (graceful: it may flush); kill it if it hangs."""
    if process.poll() is None:
        process.send_signal(how)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def http_get(url: str, timeout: float = 5.0) -> bytes:
    """GET ``url`` and return the body (raises on HTTP errors)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def http_post(url: str, data: bytes = b"", timeout: float = 5.0) -> bytes:
    """POST ``data`` to ``url`` and return the body."""
    request = urllib.request.Request(url, data=data, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def wait_until_healthy(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60
) -> None:
    """Poll ``url`` until it answers 200; fail with the process log if it dies or hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}:\n{_tail(log)}")
        with contextlib.suppress(OSError, urllib.error.URLError):
            http_get(url, timeout=1)
            return
        time.sleep(0.1)
    raise TimeoutError(f"{url} not healthy within {timeout}s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Service:
    """One running process of the stack."""

    name: str
    command: list[str]
    health_url: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process and wait until its health endpoint answers."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                self.command,
                env={**os.environ, **self.env},
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,  # Ctrl-C in a terminal reaches only us; we stop it
                # Safe with threads: it only calls prctl, getppid and kill (no locks, imports).
                preexec_fn=die_with_parent(),  # noqa: PLW1509
            )
        wait_until_healthy(self.health_url, self.process, self.log)

    def stop(self, how: signal.Signals = signal.SIGTERM, timeout: float = 20) -> None:
        """Stop gracefully (flushing), or kill after ``timeout`` seconds."""
        if self.process is not None:
            stop_process(self.process, how, timeout)

    def kill(self) -> None:
        """Stop abruptly, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def base_url(self) -> str:
        """``scheme://host:port`` of the service, taken from its health URL."""
        parts = urllib.parse.urlsplit(self.health_url)
        return f"{parts.scheme}://{parts.netloc}"

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the process log (for failure reports)."""
        return _tail(self.log, lines)


@dataclass
class Stack:
    """Ports, folders and processes of one local stack."""

    workdir: Path
    logs_port: int = field(default_factory=free_port)
    # Jaeger: OTLP in (the collector sends OTLP/HTTP), query API out, health.
    jaeger_otlp_grpc_port: int = field(default_factory=free_port)
    jaeger_otlp_http_port: int = field(default_factory=free_port)
    jaeger_query_port: int = field(default_factory=free_port)
    jaeger_query_grpc_port: int = field(default_factory=free_port)
    jaeger_health_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    config: Path = COLLECTOR_CONFIG
    services: dict[str, Service] = field(default_factory=dict)

    @property
    def archive_dir(self) -> Path:
        return self.workdir / "archive"

    @property
    def spool_dir(self) -> Path:
        """The spool root (OTEL_AUDIT_SPOOL_DIR) shared by this stack's apps and collector."""
        return self.workdir / "spool"

    @property
    def logs_url(self) -> str:
        return f"http://127.0.0.1:{self.logs_port}"

    @property
    def jaeger_url(self) -> str:
        """Jaeger's query API (``/api/...``) and, in the official image, its web UI."""
        return f"http://127.0.0.1:{self.jaeger_query_port}"

    @property
    def otlp_http_endpoint(self) -> str:
        """What an app sets as OTEL_EXPORTER_OTLP_ENDPOINT."""
        return f"http://127.0.0.1:{self.http_port}"

    def collector_env(self) -> dict[str, str]:
        """The collector's environment (the contract names in otelcol-audit.yaml)."""
        return {
            "OTEL_AUDIT_COLLECTOR_GRPC": f"127.0.0.1:{self.grpc_port}",
            "OTEL_AUDIT_COLLECTOR_HTTP": f"127.0.0.1:{self.http_port}",
            "OTEL_AUDIT_COLLECTOR_ARCHIVE_DIR": str(self.archive_dir),
            "OTEL_AUDIT_QUEUE_DIR": str(self.workdir / "queue"),
            # The spool the collector reads (an app with transport=spool writes there).
            "OTEL_AUDIT_SPOOL_DIR": str(self.spool_dir),
            "OTEL_AUDIT_LOGS_ENDPOINT": f"{self.logs_url}/insert/opentelemetry/v1/logs",
            "OTEL_AUDIT_TRACES_ENDPOINT": f"http://127.0.0.1:{self.jaeger_otlp_http_port}/v1/traces",
            "OTEL_AUDIT_COLLECTOR_HEALTH": f"127.0.0.1:{self.health_port}",
            "OTEL_AUDIT_COLLECTOR_METRICS_PORT": str(self.metrics_port),
        }

    def app_env(self, service_name: str) -> dict[str, str]:
        """Environment for an app exporting logs and traces to this stack's collector."""
        return {
            "OTEL_SERVICE_NAME": service_name,
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_http_endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            # Short export delays so events reach the backends within a test's patience.
            "OTEL_BLRP_SCHEDULE_DELAY": "200",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }

    def victoria_logs(self) -> Service:
        return Service(
            "victoria-logs",
            [
                str(binary("victoria-logs")),
                f"-httpListenAddr=127.0.0.1:{self.logs_port}",
                f"-storageDataPath={self.workdir / 'victoria-logs'}",
                "-retentionPeriod=100y",  # the demo's and tests' timestamps are "now"
            ],
            f"{self.logs_url}/health",
            self.workdir / "logs" / "victoria-logs.log",
        )

    def jaeger(self) -> Service:
        """Jaeger v2 with its memory store (collector-config/jaeger.yaml), on this stack's ports."""
        return Service(
            "jaeger",
            [str(binary("jaeger")), "--config", str(JAEGER_CONFIG)],
            f"http://127.0.0.1:{self.jaeger_health_port}{JAEGER_HEALTH_PATH}",
            self.workdir / "logs" / "jaeger.log",
            env={
                "OTEL_AUDIT_JAEGER_OTLP_GRPC": f"127.0.0.1:{self.jaeger_otlp_grpc_port}",
                "OTEL_AUDIT_JAEGER_OTLP_HTTP": f"127.0.0.1:{self.jaeger_otlp_http_port}",
                "OTEL_AUDIT_JAEGER_QUERY_HTTP": f"127.0.0.1:{self.jaeger_query_port}",
                "OTEL_AUDIT_JAEGER_QUERY_GRPC": f"127.0.0.1:{self.jaeger_query_grpc_port}",
                "OTEL_AUDIT_JAEGER_HEALTH": f"127.0.0.1:{self.jaeger_health_port}",
            },
        )

    def collector(
        self,
        config: Path | None = None,
        env: Mapping[str, str] | None = None,
        *,
        overlays: Sequence[Path] = (),
        name: str = "otelcol-audit",
    ) -> Service:
        """An otelcol-audit process; ``env`` overrides :meth:`collector_env`.

        ``overlays`` are further ``--config`` files merged over ``config`` (gateway.yaml).
        ``name`` tells several collectors of one stack apart (an agent and a gateway): it
        names the log file, and the health URL follows ``OTEL_AUDIT_COLLECTOR_HEALTH``.
        """
        merged = {**self.collector_env(), **(env or {})}
        command = [str(binary("otelcol-audit")), *COLLECTOR_FLAGS]
        for path in (config or self.config, *overlays):
            command += ["--config", str(path)]
        return Service(
            name,
            command,
            f"http://{merged['OTEL_AUDIT_COLLECTOR_HEALTH']}/",
            self.workdir / "logs" / f"{name}.log",
            env=merged,
        )

    def zero_code_app(
        self, target: str, service_name: str, env: Mapping[str, str] | None = None
    ) -> Service:
        """``opentelemetry-instrument uvicorn <target>`` exporting to this stack's collector.

        The app must answer ``GET /health``; ``env`` overrides :meth:`app_env`. Its URL is
        :attr:`Service.base_url`.
        """
        port = free_port()
        scripts = Path(sys.executable).parent
        return Service(
            service_name,
            [
                str(scripts / "opentelemetry-instrument"),
                str(scripts / "uvicorn"),
                target,
                "--host=127.0.0.1",
                f"--port={port}",
                "--no-access-log",
            ],
            f"http://127.0.0.1:{port}/health",
            self.workdir / "logs" / f"{service_name}.log",
            env={**self.app_env(service_name), **(env or {})},
        )

    def start(self, names: Sequence[str] = ("victoria-logs", "jaeger", "otelcol-audit")) -> None:
        """Start the named services in order (backends before the collector)."""
        factories = {
            "victoria-logs": self.victoria_logs,
            "jaeger": self.jaeger,
            "otelcol-audit": self.collector,
        }
        for name in names:
            service = factories[name]()
            self.services[name] = service
            service.start()

    def stop(self) -> None:
        """Stop everything, collector first so it can flush to the backends."""
        for name in ("otelcol-audit", "jaeger", "victoria-logs"):
            if name in self.services:
                self.services[name].stop()

    # --- reading back ------------------------------------------------------------------

    def flush_logs(self) -> None:
        """Make everything VictoriaLogs ingested searchable now."""
        http_post(f"{self.logs_url}/internal/force_flush")

    def query_logs(self, logsql: str, limit: int = 10_000) -> list[dict[str, Any]]:
        """Run a LogsQL query; one dict per matching log entry."""
        body = self.query_logs_raw(logsql, limit)
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    def query_logs_raw(self, logsql: str, limit: int = 10_000) -> str:
        """Run a LogsQL query; the response text as sent (JSON lines)."""
        self.flush_logs()
        query = urllib.parse.urlencode({"query": logsql, "limit": str(limit)})
        return http_post(f"{self.logs_url}/select/logsql/query", query.encode()).decode()

    def jaeger_trace_url(self, trace_id: str) -> str:
        """Jaeger's answer for one trace (JSON, the API its UI reads)."""
        return f"{self.jaeger_url}/api/traces/{trace_id}"

    def jaeger_trace_raw(self, trace_id: str, api: Literal["v1", "v3"] = "v3") -> bytes | None:
        """One trace as Jaeger answers it, or None while it has none with that id.

        ``v3`` (``/api/v3/traces/{id}``) is OTLP JSON (``resourceSpans``, span events with
        their names and typed attributes); ``v1`` (``/api/traces/{id}``) is the Jaeger
        model the web UI reads (span events as ``logs`` with ``fields``).
        """
        path = f"/api/v3/traces/{trace_id}" if api == "v3" else f"/api/traces/{trace_id}"
        try:
            return http_get(f"{self.jaeger_url}{path}")
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def jaeger_search_raw(self, service_name: str, limit: int = 1000) -> bytes:
        """Jaeger's v1 search answer for ``service_name`` (what its UI lists), as sent."""
        query = urllib.parse.urlencode({"service": service_name, "limit": str(limit)})
        return http_get(f"{self.jaeger_url}/api/traces?{query}")


@contextlib.contextmanager
def running_stack(workdir: Path, names: Sequence[str] | None = None) -> Iterator[Stack]:
    """A started stack in ``workdir`` (wiped first), stopped when the block ends."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    stack = Stack(workdir)
    try:
        stack.start(*(() if names is None else (names,)))
        yield stack
    finally:
        stack.stop()
