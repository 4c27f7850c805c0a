"""Emit -> archive latency through an agent and two gateways, against one gateway alone.

``python -m bench.run --only latency``. Real processes on loopback: one VictoriaLogs, two
gateways (``otelcol-audit.yaml`` + ``gateway.yaml``, each with its own archive) and one agent
(``agent.yaml`` + ``agent-lb.yaml``: loadbalancing exporter, fsync'd persistent queue). Three
ways in, measured in the same run:

* ``gateway alone`` (the baseline): one OTLP/HTTP request per audit record straight to
  gateway 1, the one-tier path; latency from the send to the record's line in the archive.
* ``agent -> gateways``: the same requests to the agent, which routes each record by its
  trace id to one of the gateways; a thread tails both archives.
* ``record() -> agent -> gateways``: an app (``tests/apps/audit_emitter.py``) calling
  ``record()`` with the library's ``otlp`` transport, shipping its spool to the agent;
  latency from the record's own timestamp (``time_ns()`` at ``record()``) to its line in an
  archive. The library ships CLOSED spool segments only, and a segment closes after 5 s (or
  16 MiB): at a moderate rate that wait is most of this figure.

The first two alternate for ``rounds`` rounds; percentiles are over every record of a case.
Arrival is when the tail thread (1 ms polls) read the line, so figures carry ~1 ms of slack.

Then the drain: ``batches`` requests of ``batch`` records (each record with its own trace id,
as from separate HTTP requests) posted back to back, to gateway 1 and then to the agent;
records/s from the first send to the last record archived, and the CPU time the gateways and
the agent spent per 1,000 records (``/proc/<pid>/stat``). The v0.145.0 loadbalancing
exporter sends each trace id of a request as its own export: this is what that costs.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from examples.stack import ROOT, Service, Stack

from .audit_payload import audit_record, export_request
from .processes import child_environment

AGENT_CONFIG = ROOT / "collector-config" / "agent.yaml"
AGENT_LB_OVERLAY = ROOT / "collector-config" / "agent-lb.yaml"
GATEWAY_OVERLAY = ROOT / "collector-config" / "gateway.yaml"
_TAIL_POLL_SECONDS = 0.001
_ARRIVAL_TIMEOUT_SECONDS = 60.0
_HEADERS = {"Content-Type": "application/x-protobuf"}
_SENDERS = 4


@dataclass(frozen=True)
class LatencySettings:
    rate: float = 100.0  # records/s, one per request (an fsync'd agent takes ~140 req/s here)
    seconds: float = 10.0  # per round and case
    rounds: int = 3
    app_seconds: float = 20.0  # the record() case, once (several 5 s segments)
    batches: int = 20  # drain case: requests of ``batch`` records, each its own trace id
    batch: int = 500


@dataclass(frozen=True)
class CaseResult:
    label: str
    latencies_ms: list[float]  # sorted
    sent: int
    achieved_rate: float

    def percentile(self, share: float) -> float:
        values = self.latencies_ms
        return values[min(len(values) - 1, round(share * (len(values) - 1)))]


@dataclass(frozen=True)
class Drain:
    records_per_second: float  # archived, from the first send to the last record archived
    gateway_cpu_ms: float  # CPU of both gateways per 1,000 records
    agent_cpu_ms: float  # CPU of the agent per 1,000 records (0 when it was not used)


@dataclass(frozen=True)
class LatencyReport:
    settings: LatencySettings
    baseline: CaseResult
    through_agent: CaseResult
    from_record: CaseResult
    per_gateway: tuple[int, ...]  # records of the agent case archived by each gateway
    drain: tuple[Drain, Drain]  # gateway alone, agent -> gateways


# --- the processes -----------------------------------------------------------------------


class _Tiers:
    """VictoriaLogs, two gateways and one agent in ``workdir``; stopped on exit."""

    def __init__(self, workdir: Path) -> None:
        self.backend = Stack(workdir / "victoria-logs")
        self.gateways = [Stack(workdir / f"gateway-{n}") for n in (1, 2)]
        self.agent_stack = Stack(workdir / "agent")
        self.services: list[Service] = []

    def __enter__(self) -> _Tiers:
        try:
            self._start(self.backend.victoria_logs())
            logs = f"{self.backend.logs_url}/insert/opentelemetry/v1/logs"
            for number, stack in enumerate(self.gateways, 1):
                env = {**stack.collector_env(), "OTEL_AUDIT_LOGS_ENDPOINT": logs}
                self._start(
                    stack.collector(env=env, overlays=[GATEWAY_OVERLAY], name=f"gateway-{number}")
                )
            gateways = ", ".join(f"127.0.0.1:{stack.grpc_port}" for stack in self.gateways)
            agent_env = {
                "OTEL_AUDIT_QUEUE_DIR": str(self.agent_stack.workdir / "queue"),
                "OTEL_AUDIT_GATEWAYS": f"[{gateways}]",
            }
            self._start(
                self.agent_stack.collector(
                    AGENT_CONFIG, agent_env, overlays=[AGENT_LB_OVERLAY], name="agent"
                )
            )
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _start(self, service: Service) -> None:
        self.services.append(service)
        service.start()

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()

    def cpu_seconds(self, prefix: str) -> float:
        """User + system CPU so far of the services whose name starts with ``prefix``."""
        total = 0.0
        for service in self.services:
            if service.name.startswith(prefix) and service.process is not None:
                stat = Path(f"/proc/{service.process.pid}/stat").read_text()
                fields = stat.rsplit(")", 1)[1].split()  # utime, stime: fields 14, 15
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    @property
    def archives(self) -> list[Path]:
        return [stack.archive_dir / "audit.jsonl" for stack in self.gateways]

    @property
    def gateway_url(self) -> str:
        return f"{self.gateways[0].otlp_http_endpoint}/v1/logs"

    @property
    def agent_url(self) -> str:
        return f"{self.agent_stack.otlp_http_endpoint}/v1/logs"


# --- reading the archives as they grow ---------------------------------------------------


@dataclass(frozen=True)
class _Arrival:
    monotonic: float
    wall_ns: int
    record_time_ns: int
    gateway: int


class _ArchivesTail(threading.Thread):
    """Reads the lines appended to each archive; notes when each record shows up, by trace
    id and by ``audit.event.id``."""

    def __init__(self, paths: Sequence[Path]) -> None:
        super().__init__(daemon=True)
        self.paths = list(paths)
        self.by_trace: dict[str, _Arrival] = {}
        self.by_event: dict[str, _Arrival] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        files: list[Any] = [None] * len(self.paths)
        pending = [b""] * len(self.paths)
        try:
            while not self.stopping.is_set():
                read_any = False
                for index, path in enumerate(self.paths):
                    if files[index] is None:
                        if not path.exists():
                            continue
                        files[index] = path.open("rb")
                    chunk = files[index].read()
                    if not chunk:
                        continue
                    read_any = True
                    arrival = (time.monotonic(), time.time_ns())
                    *lines, pending[index] = (pending[index] + chunk).split(b"\n")
                    for line in lines:
                        self._note(json.loads(line), index, arrival)
                if not read_any:
                    time.sleep(_TAIL_POLL_SECONDS)
        finally:
            for file in files:
                if file is not None:
                    file.close()

    def _note(self, export: dict[str, Any], gateway: int, arrival: tuple[float, int]) -> None:
        for trace_id, event_id, record_time in _records(export):
            seen = _Arrival(arrival[0], arrival[1], record_time, gateway)
            self.by_trace.setdefault(trace_id, seen)
            self.by_event.setdefault(event_id, seen)


def _records(export: dict[str, Any]) -> Iterator[tuple[str, str, int]]:
    """(trace id, audit.event.id, timeUnixNano) of each log record in one archive line."""
    for resource in export.get("resourceLogs", []):
        for scope in resource.get("scopeLogs", []):
            for record in scope.get("logRecords", []):
                event_id = next(
                    (
                        str(a["value"].get("stringValue"))
                        for a in record.get("attributes", [])
                        if a["key"] == "audit.event.id"
                    ),
                    "",
                )
                yield str(record.get("traceId", "")), event_id, int(record.get("timeUnixNano", 0))


# --- the cases ---------------------------------------------------------------------------


def _send_records(
    url: str, tail: _ArchivesTail, settings: LatencySettings, *, seed: int, label: str
) -> CaseResult:
    """One record per request at ``rate`` (open loop: ``_SENDERS`` keep-alive connections take
    turns, so a slow answer does not delay the next send); latency from the send to the
    archive line. Records are matched on their trace id (unique per case and round)."""
    rng = random.Random(f"{label}/{seed}")
    rate = settings.rate
    count = max(1, round(rate * settings.seconds))
    bodies: list[tuple[str, bytes]] = []
    for _ in range(count):
        record = audit_record(rng, pii=False, event_id=str(uuid.uuid4()))
        bodies.append((record.trace_id.hex(), export_request([record]).SerializeToString()))
    sent: dict[str, float] = {}
    errors: list[str] = []
    start = time.monotonic() + 0.1

    def send(first: int) -> None:
        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        try:
            for i in range(first, count, _SENDERS):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                trace_id, body = bodies[i]
                sent[trace_id] = time.monotonic()
                connection.request("POST", parts.path, body, _HEADERS)
                response = connection.getresponse()
                answer = response.read()
                if response.status != 200:
                    errors.append(f"HTTP {response.status}: {answer[:300]!r}")
                    return
        except (OSError, http.client.HTTPException) as error:
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(k,)) for k in range(_SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"{label}: {errors[0]}")
    achieved = count / (max(sent.values()) - start) if count > 1 else rate
    arrivals = _wait_for(lambda: [tail.by_trace.get(t) for t in sent], label)
    latencies = sorted(
        1000 * (arrival.monotonic - sent[trace])
        for trace, arrival in zip(sent, arrivals, strict=True)
    )
    return CaseResult(label, latencies, count, achieved)


def _wait_for(found: Any, label: str) -> list[_Arrival]:
    deadline = time.monotonic() + _ARRIVAL_TIMEOUT_SECONDS
    while True:
        arrivals: list[_Arrival | None] = found()
        missing = sum(1 for a in arrivals if a is None)
        if not missing:
            return [a for a in arrivals if a is not None]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{label}: {missing} of {len(arrivals)} records never archived")
        time.sleep(0.05)


def _from_record(tiers: _Tiers, tail: _ArchivesTail, settings: LatencySettings) -> CaseResult:
    """The emitter app through the agent; latency from record()'s timestamp (wall clock)."""
    folder = Path(tempfile.mkdtemp(prefix="app-", dir=tiers.agent_stack.workdir))
    ids = folder / "ids"
    env = child_environment(
        {
            "OTEL_SERVICE_NAME": "otel-audit-bench-app",
            "OTEL_AUDIT_TRANSPORT": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": tiers.agent_stack.otlp_http_endpoint,
            "OTEL_AUDIT_SPOOL_DIR": str(folder / "spool"),
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
        }
    )
    argv = [sys.executable, "-m", "tests.apps.audit_emitter", "--ids", str(ids)]
    argv += ["--rate", str(settings.rate)]
    with (folder / "app.log").open("wb") as log:
        app = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            # Run for app_seconds once it records (imports take seconds on a busy machine).
            while not ids.exists() and app.poll() is None:
                time.sleep(0.05)
            time.sleep(settings.app_seconds)
        finally:
            app.terminate()
            code = app.wait(120)
    if code != 0:
        raise RuntimeError(
            f"the emitter app exited with {code}: {(folder / 'app.log').read_text()[-2000:]}"
        )
    emitted = [line for line in ids.read_text().splitlines() if line]
    arrivals = _wait_for(lambda: [tail.by_event.get(e) for e in emitted], "record() case")
    latencies = sorted((a.wall_ns - a.record_time_ns) / 1e6 for a in arrivals)
    times = [a.record_time_ns for a in arrivals]
    span = (max(times) - min(times)) / 1e9
    return CaseResult(
        "record() -> agent -> gateways", latencies, len(emitted), len(emitted) / max(span, 1e-9)
    )


def _drain(url: str, tiers: _Tiers, tail: _ArchivesTail, settings: LatencySettings) -> Drain:
    """``batches`` requests of ``batch`` records (as an SDK's batch processor or the library's
    shipper sends them; each record from its own request, so its own trace id) posted back to
    back: records/s from the first send to the last record archived, and the CPU the
    gateways and the agent spent on them."""
    rng = random.Random(f"drain/{url}")
    bodies: list[bytes] = []
    traces: list[str] = []
    for _ in range(settings.batches):
        records = [audit_record(rng, pii=False) for _ in range(settings.batch)]
        traces += [record.trace_id.hex() for record in records]
        bodies.append(export_request(records).SerializeToString())
    gateway_cpu, agent_cpu = tiers.cpu_seconds("gateway"), tiers.cpu_seconds("agent")
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    start = time.monotonic()
    try:
        for body in bodies:
            connection.request("POST", parts.path, body, _HEADERS)
            response = connection.getresponse()
            answer = response.read()
            if response.status != 200:
                raise RuntimeError(f"drain: HTTP {response.status}: {answer[:300]!r}")
    finally:
        connection.close()
    arrivals = _wait_for(lambda: [tail.by_trace.get(t) for t in traces], "drain")
    per_thousand = 1e6 / len(traces)  # seconds for all -> ms per 1,000 records
    return Drain(
        len(traces) / (max(a.monotonic for a in arrivals) - start),
        (tiers.cpu_seconds("gateway") - gateway_cpu) * per_thousand,
        (tiers.cpu_seconds("agent") - agent_cpu) * per_thousand,
    )


def measure(settings: LatencySettings) -> LatencyReport:
    samples: dict[str, list[CaseResult]] = {"gateway alone": [], "agent -> gateways": []}
    workdir = Path(tempfile.mkdtemp(prefix="otel-audit-bench-scaleout-"))
    try:
        with _Tiers(workdir) as tiers:
            urls = {"gateway alone": tiers.gateway_url, "agent -> gateways": tiers.agent_url}
            tail = _ArchivesTail(tiers.archives)
            tail.start()
            try:
                for round_number in range(1, settings.rounds + 1):
                    order = list(urls) if round_number % 2 else list(reversed(urls))
                    for label in order:
                        result = _send_records(
                            urls[label], tail, settings, seed=round_number, label=label
                        )
                        samples[label].append(result)
                        print(
                            f"  round {round_number}  {label:<20}"
                            f" p50 {result.percentile(0.5):7.1f} ms"
                            f"  p99 {result.percentile(0.99):7.1f} ms",
                            flush=True,
                        )
                from_record = _from_record(tiers, tail, settings)
                drain = (
                    _drain(tiers.gateway_url, tiers, tail, settings),
                    _drain(tiers.agent_url, tiers, tail, settings),
                )
                per_gateway = tuple(
                    sum(1 for a in tail.by_trace.values() if a.gateway == g) for g in range(2)
                )
            finally:
                tail.stopping.set()
                tail.join()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    baseline, through = (_merged(label, samples[label]) for label in urls)
    return LatencyReport(settings, baseline, through, from_record, per_gateway, drain)


def _merged(label: str, results: Sequence[CaseResult]) -> CaseResult:
    return CaseResult(
        label,
        sorted(ms for result in results for ms in result.latencies_ms),
        sum(result.sent for result in results),
        statistics.mean(result.achieved_rate for result in results),
    )


def format_report(report: LatencyReport) -> list[str]:
    s = report.settings
    lines = [
        f"emit -> archive latency, scale-out path ({s.rate:g} records/s, one record per request,"
        f" {s.rounds} rounds x {s.seconds:g} s per case, alternating)"
    ]
    for case in (report.baseline, report.through_agent, report.from_record):
        lines.append(
            f"  {case.label:<32} p50 {case.percentile(0.5):8.1f} ms"
            f"   p99 {case.percentile(0.99):8.1f} ms"
            f"   min {case.latencies_ms[0]:7.1f} ms   max {case.latencies_ms[-1]:8.1f} ms"
            f"   ({case.sent:,} records at {case.achieved_rate:,.0f}/s)"
        )
    base, through = report.baseline, report.through_agent
    lines.append(
        f"  the agent tier adds {through.percentile(0.5) - base.percentile(0.5):+.1f} ms at p50,"
        f" {through.percentile(0.99) - base.percentile(0.99):+.1f} ms at p99"
        f" (x{through.percentile(0.5) / base.percentile(0.5):.2f} at p50);"
        f" records per gateway (all cases) {list(report.per_gateway)}"
    )
    lines.append(
        "  record(): the library ships closed spool segments (closed after 5 s or 16 MiB),"
        " which is most of that figure"
    )
    alone, agent = report.drain
    lines.append(
        f"drain ({s.batches} requests x {s.batch} records back to back, one trace id each):"
        f" gateway alone {alone.records_per_second:,.0f} records/s, agent -> gateways"
        f" {agent.records_per_second:,.0f} records/s"
        f" (x{agent.records_per_second / alone.records_per_second:.2f})"
    )
    lines.append(
        f"  CPU per 1,000 records: gateways {alone.gateway_cpu_ms:,.0f} ms alone,"
        f" {agent.gateway_cpu_ms:,.0f} ms behind the agent (x"
        f"{agent.gateway_cpu_ms / max(alone.gateway_cpu_ms, 1e-9):.1f}); agent"
        f" {agent.agent_cpu_ms:,.0f} ms"
    )
    return lines
