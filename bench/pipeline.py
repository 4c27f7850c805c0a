"""Throughput of otelcol-audit's audit pipeline with and without its PII processors.

Each run starts a fresh stack in a temporary folder (examples/stack.py): VictoriaLogs,
pinned to the load core, and otelcol-audit with collector-config/otelcol-audit.yaml,
pinned to core 0. The variant without PII processors is the same file plus one ``--set``
that empties ``logs/audit``'s processor list, so there is no second YAML to drift. The
load generator (``bench/otlp_load.py``, pinned to the load core) POSTs a pre-encoded
OTLP/HTTP export of audit records back to back from a few connections; when the
collector has stopped (flushing its file exporter), the archive is counted. Variants
alternate within the run (AB, BA, AB, ...) so drift of the machine cancels out of the
ratio. Then the emit -> archive latency is measured at a moderate rate with the pipeline
as configured.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from examples.stack import Service, Stack, binary, free_port

from .audit_payload import EVENT_ID_KEY, PII_MARKER, pii_count
from .processes import APP_CORE, LOAD_CORE, child_environment, pinned, python

_GOAL_COST = 0.20
_GOAL_RECORDS_PER_SECOND = 20_000
# One record in the OTLP JSON the file exporter writes: its event id attribute.
_RECORD_TOKEN = b'{"key":"' + EVENT_ID_KEY.encode() + b'"'
_PII_TOKENS = (PII_MARKER.encode(), PII_MARKER.replace("@", "%40").encode())


@dataclass(frozen=True)
class PipelineSettings:
    seconds: float = 10.0
    warmup_seconds: float = 3.0
    rounds: int = 3
    batch: int = 500  # records per export request
    senders: int = 4  # concurrent connections of the load generator
    latency_rate: float = 200.0  # records/s, one per request
    latency_seconds: float = 10.0


@dataclass(frozen=True)
class Variant:
    label: str
    pii_processors: bool
    overrides: tuple[str, ...]  # --set arguments over collector-config/otelcol-audit.yaml


WITHOUT = Variant(
    "without PII processors", False, ("service::pipelines::logs/audit::processors=[]",)
)
WITH = Variant("with PII processors", True, ())
VARIANTS = (WITHOUT, WITH)


@dataclass(frozen=True)
class RunResult:
    variant: Variant
    round: int
    records_per_second: float  # accepted by the collector, measured window
    accepted: int  # every record the collector answered 200 for, warm-up included
    archived: int  # records in the archive after the collector stopped
    pii_in_archive: int  # occurrences of the planted email, raw or percent-encoded
    collector_cpu: float  # share of one core used by the collector while loaded
    load_core_cpu: float  # the same for the load generator and VictoriaLogs together
    request_p50_ms: float


@dataclass(frozen=True)
class LatencyResult:
    records: int
    achieved_rate: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    event_ids_altered: int  # audit.event.id values the PII processors changed
    altered_examples: list[tuple[str, str]]  # (sent, archived)


@dataclass(frozen=True)
class PipelineReport:
    settings: PipelineSettings
    runs: list[RunResult]
    latency: LatencyResult

    def median_rps(self, variant: Variant) -> float:
        return statistics.median(r.records_per_second for r in self.runs if r.variant == variant)


class _PipelineStack:
    """VictoriaLogs on the load core and otelcol-audit on core 0, with ``--set`` overrides."""

    def __init__(self, workdir: Path, overrides: Sequence[str]) -> None:
        self.stack = Stack(workdir)
        self.overrides = list(overrides)

    def __enter__(self) -> _PipelineStack:
        try:
            self._start(self.stack.victoria_logs(), LOAD_CORE)
            collector = self.stack.collector()
            collector.command += [f"--set={override}" for override in self.overrides]
            self._start(collector, APP_CORE)
        except BaseException:
            self.stack.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stack.stop()

    def _start(self, service: Service, core: int) -> None:
        service.command = pinned(core, service.command)
        self.stack.services[service.name] = service
        service.start()

    @property
    def collector(self) -> Service:
        return self.stack.services["otelcol-audit"]

    @property
    def logs_url(self) -> str:
        return f"{self.stack.otlp_http_endpoint}/v1/logs"

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU time so far of the collector and of VictoriaLogs."""
        return (
            _cpu_seconds(self.collector),
            _cpu_seconds(self.stack.services["victoria-logs"]),
        )

    def check_running(self) -> None:
        for service in self.stack.services.values():
            if not service.running:
                raise RuntimeError(f"{service.name} died:\n{_tail(service)}")


def _cpu_seconds(service: Service) -> float:
    """User + system CPU time of a service so far (taskset execs it: same pid)."""
    if service.process is None:
        raise RuntimeError(f"{service.name} is not running")
    stat = Path(f"/proc/{service.process.pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)"; utime, stime are 14, 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tail(service: Service, lines: int = 30) -> str:
    try:
        return "\n".join(service.log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def load_argv(mode: str, url: str, *options: str) -> list[str]:
    return pinned(LOAD_CORE, [python(), "-m", "bench.otlp_load", mode, "--url", url, *options])


def _run_load(argv: list[str], stack: _PipelineStack) -> dict[str, Any]:
    done = subprocess.run(
        argv, env=child_environment(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"load generator failed ({done.returncode}): {done.stderr.strip()}\n"
            f"collector log:\n{_tail(stack.collector)}"
        )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _children_cpu_seconds() -> float:
    """CPU time of the harness's finished children (the load generator, once waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def archive_counts(directory: Path) -> tuple[int, int]:
    """Records and planted-PII occurrences in the archive folder (rotated files included).

    Counted on the bytes, not parsed: a run archives hundreds of megabytes. The first line
    is parsed as well, to check that the byte count agrees with the JSON.
    """
    records = pii = 0
    files = sorted(directory.glob("audit*.jsonl"))
    for file in files:
        data = file.read_bytes()
        records += data.count(_RECORD_TOKEN)
        pii += sum(data.count(token) for token in _PII_TOKENS)
    if files:
        with files[0].open("rb") as archive:
            first = archive.readline()
        parsed = sum(
            len(scope.get("logRecords", []))
            for resource in json.loads(first).get("resourceLogs", [])
            for scope in resource.get("scopeLogs", [])
        )
        if parsed != first.count(_RECORD_TOKEN):
            raise RuntimeError(f"archive line has {parsed} records, byte count disagrees")
    return records, pii


def _run_once(variant: Variant, round_number: int, settings: PipelineSettings) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="otel-audit-bench-pipeline-") as workdir:
        with _PipelineStack(Path(workdir), variant.overrides) as stack:
            argv = load_argv(
                "throughput", stack.logs_url,
                "--batch", str(settings.batch), "--senders", str(settings.senders),
                "--warmup", str(settings.warmup_seconds), "--seconds", str(settings.seconds),
            )  # fmt: skip
            cpu_before, load_before = stack.cpu_seconds(), _children_cpu_seconds()
            started = time.monotonic()
            load = _run_load(argv, stack)
            wall = time.monotonic() - started
            cpu_after, load_after = stack.cpu_seconds(), _children_cpu_seconds()
            stack.check_running()
            archive_dir = stack.stack.archive_dir
        # The collector has stopped: its file exporter closed (flushed) the archive.
        archived, pii = archive_counts(archive_dir)
    result = RunResult(
        variant=variant,
        round=round_number,
        records_per_second=load["measured_records"] / load["seconds"],
        accepted=load["accepted_records"],
        archived=archived,
        pii_in_archive=pii,
        collector_cpu=(cpu_after[0] - cpu_before[0]) / wall,
        load_core_cpu=(cpu_after[1] - cpu_before[1] + load_after - load_before) / wall,
        request_p50_ms=load["request_p50_ms"],
    )
    _check(result, settings)
    return result


def _check(result: RunResult, settings: PipelineSettings) -> None:
    """Fail loudly when a run did not do what its variant promises."""
    name = f"{result.variant.label} (round {result.round})"
    if result.archived == 0:
        raise RuntimeError(f"{name}: the archive is empty")
    if result.variant.pii_processors and result.pii_in_archive:
        raise RuntimeError(f"{name}: {result.pii_in_archive} planted PII values in the archive")
    if not result.variant.pii_processors and result.pii_in_archive < pii_count(settings.batch):
        raise RuntimeError(f"{name}: planted PII missing: the processors were not switched off")


def _schedule(rounds: int) -> Iterator[tuple[int, Variant]]:
    for round_number in range(1, rounds + 1):
        order = VARIANTS if round_number % 2 else tuple(reversed(VARIANTS))
        for variant in order:
            yield round_number, variant


def measure_latency(settings: PipelineSettings) -> LatencyResult:
    """Emit -> archive latency, one record per request, the configuration unchanged."""
    with (
        tempfile.TemporaryDirectory(prefix="otel-audit-bench-latency-") as workdir,
        _PipelineStack(Path(workdir), WITH.overrides) as stack,
    ):
        argv = load_argv(
            "latency", stack.logs_url,
            "--archive", str(stack.stack.archive_dir / "audit.jsonl"),
            "--rate", str(settings.latency_rate), "--seconds", str(settings.latency_seconds),
        )  # fmt: skip
        load = _run_load(argv, stack)
        stack.check_running()
    return LatencyResult(
        records=load["records"],
        achieved_rate=load["achieved_rate"],
        p50_ms=load["p50_ms"],
        p99_ms=load["p99_ms"],
        max_ms=load["max_ms"],
        event_ids_altered=load["event_ids_altered"],
        altered_examples=[(sent, archived) for sent, archived in load["altered_examples"]],
    )


def measure(settings: PipelineSettings) -> PipelineReport:
    runs: list[RunResult] = []
    for round_number, variant in _schedule(settings.rounds):
        run = _run_once(variant, round_number, settings)
        print("  " + _run_line(run), flush=True)
        runs.append(run)
    latency = measure_latency(settings)
    return PipelineReport(settings, runs, latency)


def _run_line(run: RunResult) -> str:
    line = (
        f"round {run.round}  {run.variant.label:<24} {run.records_per_second:>9,.0f} records/s"
        f"  request p50 {run.request_p50_ms:.1f} ms  CPU collector {100 * run.collector_cpu:.0f}%"
        f" load core {100 * run.load_core_cpu:.0f}%"
        f"  archived {run.archived:,} of {run.accepted:,} accepted"
    )
    if run.archived != run.accepted:
        line += "  WARNING: archive and accepted disagree"
    return line


def format_report(report: PipelineReport) -> list[str]:
    s = report.settings
    lines = [
        f"audit pipeline (otelcol-audit, {s.batch}-record requests from {s.senders} connections,"
        f" {s.rounds} rounds x {s.seconds:g} s after a {s.warmup_seconds:g} s warm-up)"
    ]
    without, with_pii = report.median_rps(WITHOUT), report.median_rps(WITH)
    cost = 1 - with_pii / without
    lines.append(f"  {WITHOUT.label:<28} {without:>9,.0f} records/s")
    lines.append(
        f"  {WITH.label:<28} {with_pii:>9,.0f} records/s   cost {100 * cost:.1f}%"
        f"  (goal <= {100 * _GOAL_COST:.0f}%; >= {_GOAL_RECORDS_PER_SECOND:,} records/s)"
    )
    accepted = sum(r.accepted for r in report.runs)
    archived = sum(r.archived for r in report.runs)
    lines.append(f"  {'archive received':<28} {100 * archived / accepted:>8.1f}% of accepted")
    lat = report.latency
    lines.append(
        f"emit -> archive latency ({s.latency_rate:g} records/s x {s.latency_seconds:g} s,"
        f" one record per request, {WITH.label})"
    )
    lines.append(
        f"  p50 {lat.p50_ms:,.1f} ms   p99 {lat.p99_ms:,.1f} ms   max {lat.max_ms:,.1f} ms"
        f"   ({lat.records:,} records at {lat.achieved_rate:,.0f}/s)"
    )
    if lat.event_ids_altered:
        sent_id, archived_id = lat.altered_examples[0]
        lines.append(
            f"  WARNING: the PII processors altered audit.event.id in {lat.event_ids_altered:,}"
            f" of {lat.records:,} records, e.g. {sent_id} -> {archived_id}"
        )
    return lines


def profile(settings: PipelineSettings, top: int = 25) -> list[str]:
    """A CPU profile (pprof) of the collector with its PII processors, under load."""
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if go is None:
        return ["go not found: `go tool pprof` reads the collector's CPU profile"]
    pprof_port = free_port()
    overrides = (
        f"extensions::pprof::endpoint=127.0.0.1:{pprof_port}",
        "service::extensions=[health_check, file_storage/queue, pprof]",
    )
    with tempfile.TemporaryDirectory(prefix="otel-audit-bench-pprof-") as workdir:
        with _PipelineStack(Path(workdir), overrides) as stack:
            argv = load_argv(
                "throughput", stack.logs_url,
                "--batch", str(settings.batch), "--senders", str(settings.senders),
                "--warmup", str(settings.warmup_seconds), "--seconds", str(settings.seconds + 2),
            )  # fmt: skip
            load = subprocess.Popen(argv, env=child_environment(), stdout=subprocess.DEVNULL)
            try:
                time.sleep(settings.warmup_seconds + 1)
                url = f"http://127.0.0.1:{pprof_port}/debug/pprof/profile?seconds={settings.seconds:g}"
                with urllib.request.urlopen(url, timeout=settings.seconds + 30) as response:
                    cpu_profile = Path(workdir) / "cpu.pprof"
                    cpu_profile.write_bytes(response.read())
            finally:
                if load.wait() != 0:
                    raise RuntimeError("the load generator failed during the profile")
        lines = [f"pprof of otelcol-audit ({WITH.label}) under load, {settings.seconds:g} s:"]
        for order in ((), ("-cum",)):
            top_output = subprocess.run(
                [go, "tool", "pprof", "-top", *order, f"-nodecount={top}",
                 str(binary("otelcol-audit")), str(cpu_profile)],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            lines += ["  " + line for line in top_output.splitlines()]
    return lines
