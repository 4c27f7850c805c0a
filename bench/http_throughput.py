"""HTTP throughput of the audited app relative to the unaudited baseline, under uvicorn.

Each run starts a fresh uvicorn process (one worker, pinned to core 0), warms it up with
wrk, measures with wrk (pinned to core 1, next to the sink), stops the app (which flushes
its telemetry into the sink) and checks what arrived. Variants alternate within a run
(ABC, CBA, ABC, ...) so slow drift of the machine cancels out of the ratios.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import signal
import statistics
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from examples.stack import free_port

from .apps import SINK_URL_ENV
from .processes import (
    APP_CORE,
    LOAD_CORE,
    child_environment,
    pinned,
    python,
    running,
    wait_http_ok,
)
from .wrk import WrkResult, run_wrk

# Below this share of requests delivered, a variant's throughput is suspect: dropping
# records is cheaper than exporting them.
_DELIVERY_WARNING = 0.999
_GOAL = 0.95
_AUDITED = "audited_otlp_app"
_FLOOR = "contract_floor_app"


@dataclass(frozen=True)
class HttpSettings:
    seconds: float = 10.0
    warmup_seconds: float = 3.0
    connections: int = 32
    rounds: int = 3


@dataclass(frozen=True)
class Variant:
    label: str
    factory: str
    audit: str | None  # None, "otlp" or "archive": where audit records must show up


VARIANTS = (
    Variant("baseline (otel-instrumentation-fastapi)", "baseline_app", None),
    Variant("audited (OTLP/HTTP)", "audited_otlp_app", "otlp"),
    Variant("contract floor (OTLP/HTTP)", "contract_floor_app", "otlp"),
    Variant("contract floor, span event only", "span_event_floor_app", None),
    Variant("audited (local archive)", "audited_archive_app", "archive"),
    Variant("audited (OTLP/HTTP, minimal span events)", "audited_otlp_minimal_span_app", "otlp"),
)


@dataclass(frozen=True)
class RunResult:
    variant: Variant
    round: int
    measured: WrkResult
    served: int  # every request the app answered: probes, warm-up and measured
    spans: int
    audit_records: int


@dataclass(frozen=True)
class HttpReport:
    settings: HttpSettings
    server_args: list[str]
    runs: list[RunResult]

    def median_rps(self, variant: Variant) -> float:
        return statistics.median(
            r.measured.requests_per_second for r in self.runs if r.variant == variant
        )

    def round_ratios(self, variant: Variant, reference: Variant) -> list[float]:
        """``variant`` / ``reference`` within each round: runs minutes apart, not a run apart."""
        rps = {(r.variant.factory, r.round): r.measured.requests_per_second for r in self.runs}
        rounds = sorted({r.round for r in self.runs})
        return [rps[variant.factory, n] / rps[reference.factory, n] for n in rounds]


def server_args() -> list[str]:
    """uvicorn's fast loop and parser when installed (``uvicorn[standard]``), as deployed."""
    args = ["--workers", "1", "--no-access-log", "--log-level", "warning"]
    if importlib.util.find_spec("uvloop") is not None:
        args += ["--loop", "uvloop"]
    if importlib.util.find_spec("httptools") is not None:
        args += ["--http", "httptools"]
    return args


def uvicorn_argv(factory: str, port: int) -> list[str]:
    """The app process: ``bench.apps:<factory>`` under uvicorn, pinned to the app core."""
    return pinned(
        APP_CORE,
        [python(), "-m", "uvicorn", f"bench.apps:{factory}", "--factory",
         "--host", "127.0.0.1", "--port", str(port), *server_args()],
    )  # fmt: skip


def _sink_request(sink_url: str, path: str, method: str = "GET") -> bytes:
    request = urllib.request.Request(
        f"{sink_url}{path}", method=method, data=b"" if method == "POST" else None
    )
    with urllib.request.urlopen(request, timeout=30.0) as response:
        return bytes(response.read())


def _archived_records(directory: Path) -> int:
    """Log records in an OTLP-JSON-lines archive folder, counted without otel_audit's reader."""
    total = 0
    for file in sorted(directory.iterdir()):
        if file.name.endswith(".jsonl.gz"):
            text = gzip.decompress(file.read_bytes()).decode()
        elif file.name.endswith(".jsonl"):
            text = file.read_text()
        else:
            continue
        for line in text.splitlines():
            request = json.loads(line)
            total += sum(
                len(scope.get("logRecords", []))
                for resource in request.get("resourceLogs", [])
                for scope in resource.get("scopeLogs", [])
            )
    return total


def _run_once(
    variant: Variant,
    round_number: int,
    sink_url: str,
    settings: HttpSettings,
) -> RunResult:
    _sink_request(sink_url, "/reset", "POST")
    with tempfile.TemporaryDirectory(prefix="otel-audit-bench-") as archive:
        extra = {SINK_URL_ENV: sink_url}
        if variant.audit == "archive":
            extra["OTEL_AUDIT_ARCHIVE_DIR"] = archive
        port = free_port()
        url = f"http://127.0.0.1:{port}/items/42"
        argv = uvicorn_argv(variant.factory, port)
        # SIGINT, not SIGTERM: uvicorn re-raises the signal it stopped on once it has shut
        # down, and a re-raised SIGTERM kills the process before atexit runs, so the OTel
        # providers would never flush what they still queue. SIGINT becomes
        # KeyboardInterrupt, and atexit runs.
        stop = signal.SIGINT
        with running(variant.factory, argv, child_environment(extra), stop) as app:
            probes = wait_http_ok(app, url)
            warm = run_wrk(url, seconds=settings.warmup_seconds, connections=settings.connections)
            measured = run_wrk(url, seconds=settings.seconds, connections=settings.connections)
            app.check_alive()
        # The app has exited: its providers flushed everything they still held.
        stats = json.loads(_sink_request(sink_url, "/stats"))
        archived = _archived_records(Path(archive))
    exported_logs = stats.get("/v1/logs", {}).get("items", 0)
    result = RunResult(
        variant=variant,
        round=round_number,
        measured=measured,
        served=probes + warm.requests + measured.requests,
        spans=stats.get("/v1/traces", {}).get("items", 0),
        audit_records=archived if variant.audit == "archive" else exported_logs,
    )
    _check(result, exported_logs)
    return result


def _check(result: RunResult, exported_logs: int) -> None:
    """Fail loudly when a run did not produce the telemetry its variant promises."""
    name = result.variant.label
    if result.spans == 0:
        raise RuntimeError(f"{name}: the sink received no spans")
    if result.variant.audit is None and (exported_logs or result.audit_records):
        raise RuntimeError(f"{name}: produced audit records, but audits nothing")
    if result.variant.audit is not None and result.audit_records == 0:
        raise RuntimeError(f"{name}: no audit record arrived ({result.variant.audit})")
    if result.variant.audit == "archive" and exported_logs:
        raise RuntimeError(f"{name}: audit records went over OTLP instead of the archive")


def _schedule(rounds: int) -> Iterator[tuple[int, Variant]]:
    for round_number in range(1, rounds + 1):
        order = VARIANTS if round_number % 2 else tuple(reversed(VARIANTS))
        for variant in order:
            yield round_number, variant


def measure(settings: HttpSettings) -> HttpReport:
    sink_port = free_port()
    sink_url = f"http://127.0.0.1:{sink_port}"
    sink_argv = pinned(LOAD_CORE, [python(), "-m", "bench.sink", "--port", str(sink_port)])
    runs: list[RunResult] = []
    with running("sink", sink_argv, child_environment()) as sink:
        wait_http_ok(sink, f"{sink_url}/stats")
        for round_number, variant in _schedule(settings.rounds):
            run = _run_once(variant, round_number, sink_url, settings)
            print("  " + _run_line(run), flush=True)
            runs.append(run)
    return HttpReport(settings, server_args(), runs)


def _run_line(run: RunResult) -> str:
    m = run.measured
    line = (
        f"round {run.round}  {run.variant.label:<40} {m.requests_per_second:>9,.0f} req/s"
        f"  p50 {m.latency_p50_ms:.2f} ms  p99 {m.latency_p99_ms:.2f} ms  spans {run.spans:,}"
    )
    if run.variant.audit is not None:
        # wrk does not count requests still in flight when it stops; the app audits them.
        line += f"  audit records {run.audit_records:,} (requests >= {run.served:,})"
        if run.audit_records < run.served * _DELIVERY_WARNING:
            line += "  WARNING: records lost"
    return line


def format_report(report: HttpReport) -> list[str]:
    s = report.settings
    # The loop/parser flags, e.g. "--loop uvloop --http httptools", after the fixed ones.
    server = " ".join(report.server_args[5:])
    lines = [
        f"http throughput (wrk -t1 -c{s.connections} -d{s.seconds:g}s after a"
        f" {s.warmup_seconds:g}s warm-up, {s.rounds} rounds, uvicorn 1 worker {server})"
    ]
    baseline = report.median_rps(VARIANTS[0])
    for variant in VARIANTS:
        rps = report.median_rps(variant)
        line = f"  {variant.label:<44} {rps:>7,.0f} req/s"
        if variant is not VARIANTS[0]:
            line += f"   ratio {rps / baseline:.3f}" + _spread(report, variant, VARIANTS[0])
            if variant.audit == "otlp" and variant.factory != _FLOOR:
                line += f"  (goal >= {_GOAL})"
        lines.append(line)
    by_factory = {variant.factory: variant for variant in VARIANTS}
    audited = report.median_rps(by_factory[_AUDITED])
    floor = report.median_rps(by_factory[_FLOOR])
    spread = _spread(report, by_factory[_AUDITED], by_factory[_FLOOR])
    lines.append(
        f"  audited / contract floor: {audited / floor:.3f}{spread}  (1.0 = otel_audit costs"
        " nothing beyond one SDK log record and one span event)"
    )
    return lines


def _spread(report: HttpReport, variant: Variant, reference: Variant) -> str:
    """The per-round ratios' range: how much of a difference is noise on this machine."""
    ratios = report.round_ratios(variant, reference)
    if len(ratios) < 2:
        return ""
    return f" (rounds {min(ratios):.2f}-{max(ratios):.2f})"
