"""The scale-out stack of real processes on loopback, and ways to count what reached it.

::

    app 1 ─otlp─► agent 1 ─┐ loadbalancing        ┌─► gateway 1 ─┬─► archive 1
    app 2 ─otlp─► agent 2 ─┴─ (OTLP/gRPC) ────────┴─► gateway 2 ─┼─► archive 2
                                                                 └─► vlinsert ─┬─► vlstorage 1
                                            vlselect ◄── queries ──────────────┴─► vlstorage 2

:class:`ScaleOut` starts them with ``examples/stack.py``'s :class:`Service` (free ports, health
checks, die-with-parent) and the collector configs under ``collector-config/``: agents run
``agent.yaml`` + ``agent-lb.yaml``, gateways ``otelcol-audit.yaml`` + ``gateway.yaml``.
VictoriaLogs runs in cluster mode from the one ``victoria-logs`` binary: a process with
``-storageNode`` is a ``vlinsert`` or ``vlselect``, one without is a ``vlstorage``. Every
factory gives the same ports and folders each time, so a killed process comes back where its
clients and its data are. The apps are ``tests/apps/audit_emitter.py`` (``record()`` through
the library's ``otlp`` transport, one agent each); each run of apps has its own
``service.name``, so the counts of one test ignore the events of another.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from examples.stack import ROOT, Service, Stack, binary, die_with_parent, free_port, http_post
from otel_audit.archive import ArchivedEvent, read_events

from .harness import LIVE_SERVICES, start

COLLECTOR_CONFIGS = ROOT / "collector-config"
AGENT_CONFIG = COLLECTOR_CONFIGS / "agent.yaml"
AGENT_LB_OVERLAY = COLLECTOR_CONFIGS / "agent-lb.yaml"
GATEWAY_OVERLAY = COLLECTOR_CONFIGS / "gateway.yaml"
EMITTER = "tests.apps.audit_emitter"
BUSINESS_ACTION = "order.updated"
"""What the emitter records; every other action of its service is the closing record."""
CLOSED_ACTION = "transport.closed"
_QUERY_LIMIT = 1_000_000


# --- VictoriaLogs in cluster mode --------------------------------------------------------


@dataclass
class VictoriaLogsCluster:
    """Two ``vlstorage`` nodes, one ``vlinsert``, one ``vlselect``: one binary, four roles."""

    workdir: Path
    storage_ports: tuple[int, int] = field(default_factory=lambda: (free_port(), free_port()))
    insert_port: int = field(default_factory=free_port)
    select_port: int = field(default_factory=free_port)

    @property
    def storage_nodes(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.storage_ports)

    @property
    def otlp_logs_url(self) -> str:
        """Where the gateways send: vlinsert's OTLP/HTTP logs endpoint."""
        return f"http://127.0.0.1:{self.insert_port}/insert/opentelemetry/v1/logs"

    def storage(self, index: int) -> Service:
        port = self.storage_ports[index]
        return self._service(
            f"vlstorage-{index + 1}",
            port,
            f"-storageDataPath={self.workdir / f'vlstorage-{index + 1}'}",
            "-retentionPeriod=100y",
        )

    def insert(self) -> Service:
        return self._service(
            "vlinsert", self.insert_port, f"-storageNode={self.storage_nodes}", "-select.disable"
        )

    def select(self) -> Service:
        return self._service(
            "vlselect", self.select_port, f"-storageNode={self.storage_nodes}", "-insert.disable"
        )

    def _service(self, name: str, port: int, *flags: str) -> Service:
        return Service(
            name,
            [str(binary("victoria-logs")), f"-httpListenAddr=127.0.0.1:{port}", *flags],
            f"http://127.0.0.1:{port}/health",
            self.workdir / "logs" / f"{name}.log",
        )

    def flush(self) -> None:
        """Push vlinsert's buffered rows to the storage nodes and make them searchable."""
        http_post(f"http://127.0.0.1:{self.insert_port}/internal/force_flush", timeout=30)

    def event_ids(self, service_name: str, *, storage_node: int | None = None) -> Counter[str]:
        """``audit.event.id`` -> count of the business events of ``service_name``.

        Through vlselect (every node; it answers 502 while a node is down), or straight from
        one storage node (a vlstorage is a single-node VictoriaLogs).
        """
        self.flush()
        port = self.select_port if storage_node is None else self.storage_ports[storage_node]
        logsql = (
            f'service.name:="{service_name}" audit.action:="{BUSINESS_ACTION}"'
            " | fields audit.event.id"
        )
        query = urllib.parse.urlencode({"query": logsql, "limit": str(_QUERY_LIMIT)})
        body = http_post(f"http://127.0.0.1:{port}/select/logsql/query", query.encode(), 30)
        return Counter(
            str(json.loads(line).get("audit.event.id", ""))
            for line in body.decode().splitlines()
            if line.strip()
        )


# --- the apps ----------------------------------------------------------------------------


@dataclass
class EmitterApp(Service):
    """``tests/apps/audit_emitter.py``: ready once it recorded its first event."""

    ids_file: Path = field(default_factory=Path)

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                self.command,
                env={**os.environ, **self.env},
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
                preexec_fn=die_with_parent(),  # noqa: PLW1509 (only prctl, getppid, kill)
            )
        deadline = time.monotonic() + 60
        while not self.emitted():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.name} recorded nothing:\n{self.log_tail()}")
            time.sleep(0.1)

    def emitted(self) -> list[str]:
        """Ids of the events recorded so far, in order."""
        if not self.ids_file.exists():
            return []
        return [line for line in self.ids_file.read_text().splitlines() if line]

    def finish(self, timeout: float = 90) -> None:
        """SIGTERM: stop recording, close the trail, ship it; fail unless it exits 0."""
        self.stop(signal.SIGTERM, timeout)
        if self.process is not None and self.process.returncode != 0:
            raise AssertionError(
                f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            )


# --- the whole path ----------------------------------------------------------------------


@dataclass
class ScaleOut:
    """Apps → agents → gateways → archives + VictoriaLogs cluster, in ``workdir``."""

    workdir: Path
    gateways: int = 2
    vl: VictoriaLogsCluster = field(init=False)
    services: dict[str, Service] = field(default_factory=dict)
    _gateway_stacks: list[Stack] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.vl = VictoriaLogsCluster(self.workdir / "victoria-logs")
        self._gateway_stacks = [
            Stack(self.workdir / f"gateway-{n}") for n in range(1, self.gateways + 1)
        ]

    # factories (same ports and folders every time)

    def gateway(self, number: int) -> Service:
        stack = self._gateway_stacks[number - 1]
        env = {**stack.collector_env(), "OTEL_AUDIT_LOGS_ENDPOINT": self.vl.otlp_logs_url}
        return stack.collector(env=env, overlays=[GATEWAY_OVERLAY], name=f"gateway-{number}")

    def archive_dir(self, number: int) -> Path:
        return self._gateway_stacks[number - 1].archive_dir

    @property
    def gateway_addresses(self) -> str:
        """The agents' OTEL_AUDIT_GATEWAYS: a YAML list of the gateways' OTLP/gRPC addresses."""
        return "[" + ", ".join(f"127.0.0.1:{s.grpc_port}" for s in self._gateway_stacks) + "]"

    def agent(self, name: str) -> Service:
        """A fresh agent (its own ports and queue folder) in front of every gateway."""
        stack = Stack(self.workdir / name)
        env = {
            "OTEL_AUDIT_QUEUE_DIR": str(stack.workdir / "queue"),
            "OTEL_AUDIT_GATEWAYS": self.gateway_addresses,
        }
        return stack.collector(AGENT_CONFIG, env, overlays=[AGENT_LB_OVERLAY], name=name)

    def app(self, name: str, service_name: str, agent: Service, rate: float) -> EmitterApp:
        folder = self.workdir / name
        return EmitterApp(
            name,
            [sys.executable, "-m", EMITTER, "--ids", str(folder / "ids"), "--rate", str(rate)],
            "",
            self.workdir / "logs" / f"{name}.log",
            env={
                "OTEL_SERVICE_NAME": service_name,
                "OTEL_AUDIT_TRANSPORT": "otlp",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{agent.env['OTEL_AUDIT_COLLECTOR_HTTP']}",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_AUDIT_SPOOL_DIR": str(folder / "spool"),
                # Nothing but the audit transport leaves the app.
                "OTEL_TRACES_EXPORTER": "none",
                "OTEL_METRICS_EXPORTER": "none",
                "OTEL_LOGS_EXPORTER": "none",
            },
            ids_file=folder / "ids",
        )

    # running

    def start(self, name: str, service: Service) -> Service:
        self.services[name] = service
        return start(service)

    def start_backends(self) -> None:
        """The VictoriaLogs cluster, then the gateways."""
        self.start("vlstorage-1", self.vl.storage(0))
        self.start("vlstorage-2", self.vl.storage(1))
        self.start("vlinsert", self.vl.insert())
        self.start("vlselect", self.vl.select())
        for number in range(1, self.gateways + 1):
            self.start(f"gateway-{number}", self.gateway(number))

    def ensure_backends(self) -> None:
        """Restart any backend or gateway a test left stopped."""
        factories = {
            "vlstorage-1": lambda: self.vl.storage(0),
            "vlstorage-2": lambda: self.vl.storage(1),
            "vlinsert": self.vl.insert,
            "vlselect": self.vl.select,
            **{
                f"gateway-{n}": (lambda n=n: self.gateway(n))  # type: ignore[misc]
                for n in range(1, self.gateways + 1)
            },
        }
        for name, factory in factories.items():
            if not self.services[name].running:
                self.start(name, factory())

    def stop(self, names: Iterable[str] | None = None) -> None:
        """Stop ``names`` (default: all, newest first: apps, agents, gateways, backends)."""
        chosen = list(reversed(self.services)) if names is None else list(names)
        for name in chosen:
            service = self.services[name]
            service.stop()
            LIVE_SERVICES.pop(service.log, None)

    # reading back

    def archived(self, service_name: str) -> list[ArchivedEvent]:
        """Every event of ``service_name`` in the gateways' archives (all of them)."""
        return [
            event
            for number in range(1, self.gateways + 1)
            for event in archive_events(self.archive_dir(number))
            if event.resource.get("service.name") == service_name
        ]

    def archived_by_gateway(self, service_name: str) -> list[Counter[str]]:
        """Per gateway: ``audit.event.id`` -> count of ``service_name``'s business events."""
        return [
            business_ids(
                e
                for e in archive_events(self.archive_dir(number))
                if e.resource.get("service.name") == service_name
            )
            for number in range(1, self.gateways + 1)
        ]


def archive_events(folder: Path) -> Iterator[ArchivedEvent]:
    """The events of one archive folder; a torn last line is a write in progress, skipped."""
    if not folder.exists():
        return
    errors: list[Any] = []
    yield from read_events(folder, errors=errors)
    torn = [e for e in errors if "incomplete last line" not in e.message]
    if torn:
        raise AssertionError(f"unreadable archive data in {folder}: {torn}")


def business_ids(events: Iterable[ArchivedEvent]) -> Counter[str]:
    """``audit.event.id`` -> count, over the emitter's business events only."""
    return Counter(
        str(e.attributes.get("audit.event.id"))
        for e in events
        if e.attributes.get("audit.action") == BUSINESS_ACTION
    )


def closing_records(events: Iterable[ArchivedEvent]) -> set[str]:
    """The instances whose closing record is among ``events``."""
    return {
        str(e.resource.get("service.instance.id"))
        for e in events
        if e.attributes.get("audit.action") == CLOSED_ACTION
    }


def run_name(prefix: str) -> str:
    """A service.name of its own for one test's apps."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def emitted_ids(apps: Sequence[EmitterApp]) -> list[str]:
    return list(chain.from_iterable(app.emitted() for app in apps))


__all__ = [
    "AGENT_CONFIG",
    "AGENT_LB_OVERLAY",
    "BUSINESS_ACTION",
    "CLOSED_ACTION",
    "GATEWAY_OVERLAY",
    "EmitterApp",
    "ScaleOut",
    "VictoriaLogsCluster",
    "archive_events",
    "business_ids",
    "closing_records",
    "emitted_ids",
    "run_name",
]
