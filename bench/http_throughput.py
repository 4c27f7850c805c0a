"""HTTP throughput of the audited app relative to the unaudited baseline, under uvicorn.

Each run starts a fresh uvicorn process (one worker, pinned to core 0), warms it up with
wrk, measures with wrk (pinned to core 1, next to the sink), stops the app (which flushes
its telemetry into the sink) and checks what arrived. Variants alternate within a run
(ABC, CBA, ABC, ...) so slow drift of the machine cancels out of the ratios.

Each variant loads one request for the whole run: ``GET /items/42`` (the original variants)
or ``POST /items`` with a JSON body (``bench/endpoints.py``; wrk sends it through a Lua
script). Each request has its own baseline in the same schedule, and a variant's ratio is
against the baseline of its own request. ``--compare-with REV`` adds the audited app with
``otel_audit`` from an earlier commit (``bench/worktree.py``, ``bench/rev_app.py``).
"""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import json
import signal
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from examples.stack import Service, Stack, free_port
from otel_audit.archive import ArchiveReadError, read_events

from .apps import SINK_URL_ENV
from .endpoints import (
    CREATE_PATH,
    DB_ITEM_PATH,
    DB_PATH_ENV,
    ITEM_PATH,
    NEW_ITEM_BODY,
    PLANTED,
    create_database,
)
from .processes import (
    APP_CORE,
    LOAD_CORE,
    child_environment,
    pinned,
    python,
    running,
    wait_http_ok,
)
from .transport_floor import FLOOR_DIR_ENV
from .worktree import rev_argv, rev_environment, worktree
from .wrk import WrkResult, post_script, run_wrk

# Below this share of requests delivered, a variant's throughput is suspect: dropping
# records is cheaper than exporting them.
_DELIVERY_WARNING = 0.999
_COLLECTOR_DRAIN_SECONDS = 60.0


@dataclass(frozen=True)
class HttpSettings:
    seconds: float = 10.0
    warmup_seconds: float = 3.0
    connections: int = 32
    rounds: int = 3
    variants: tuple[str, ...] = ()  # keys of VARIANTS (+ REV_VARIANTS); empty: all
    compare_with: str | None = None  # a commit whose otel_audit is measured too


@dataclass(frozen=True)
class Variant:
    key: str  # what --variants names
    label: str
    factory: str
    # Where audit records must show up: None (nowhere), "sink" (OTLP /v1/logs at the sink:
    # the sdk and otlp transports), "spool" (the app's spool folder, read_events), "collector"
    # (the archive of an otelcol-audit reading the spool), "floor" (the transport floor's file).
    audit: AuditSink | None
    request: Literal["get", "post", "db"] = "get"
    # "request": every POST's record carries its body; "metadata": no record carries one.
    level: Literal["metadata", "request"] | None = None
    rev: str | None = None  # otel_audit (and bench.apps) from this commit's worktree
    endpoint: bool = False  # OTEL_EXPORTER_OTLP_ENDPOINT = the sink (the otlp transport)
    goal: float | None = None  # printed beside the ratio to its baseline


AuditSink = Literal["sink", "spool", "collector", "floor"]
_DEFAULT = "audited_default_app"
VARIANTS = (
    Variant("baseline", "baseline (otel-instrumentation-fastapi)", "baseline_app", None),
    Variant("otlp", "audited, otlp transport (endpoint set)", _DEFAULT, "sink", endpoint=True,
            goal=0.90),
    Variant("spool-collector", "audited, spool transport, same-host collector", _DEFAULT,
            "collector", goal=0.90),
    Variant("spool", "audited, spool transport, nothing reading", _DEFAULT, "spool"),
    Variant("audited", "audited, sdk transport (OTLP/HTTP)", "audited_otlp_app", "sink"),
    Variant("full", "audited, otlp transport, span_event_detail=full", "audited_full_span_app",
            "sink", endpoint=True),
    Variant("floor", "contract floor (OTLP/HTTP)", "contract_floor_app", "sink"),
    Variant("span-floor", "contract floor, span event only", "span_event_floor_app", None),
    Variant("line-floor", "transport floor (span event + JSON line)", "transport_floor_app",
            "floor"),
    Variant("post-baseline", "baseline, POST", "baseline_app", None, "post"),
    Variant("post-metadata", "audited, metadata level, POST (sdk)", "audited_metadata_app",
            "sink", "post", "metadata"),
    Variant("post-request", "audited, request level, POST (sdk)", "audited_request_app", "sink",
            "post", "request"),
    Variant("db-baseline", "baseline, DB endpoint", "baseline_app", None, "db"),
    Variant("db-otlp", "audited, otlp transport, DB endpoint", _DEFAULT, "sink", "db",
            endpoint=True, goal=0.98),
    Variant("db-spool-collector", "audited, spool + collector, DB endpoint", _DEFAULT,
            "collector", "db", goal=0.98),
)  # fmt: skip
# With --compare-with REV: REV's audited (OTLP/HTTP) app, which knows only one level
# (metadata), on each request; "@REV" in the label is replaced by the commit.
REV_VARIANTS = (
    Variant("rev", "audited (OTLP/HTTP) @REV", "audited_otlp_app", "sink", level="metadata"),
    Variant("post-rev", "audited (OTLP/HTTP) @REV, POST", "audited_otlp_app", "sink", "post",
            "metadata"),
)  # fmt: skip
_BASELINES = {"get": "baseline", "post": "post-baseline", "db": "db-baseline"}


def select_variants(settings: HttpSettings) -> tuple[Variant, ...]:
    """The variants a run measures: the chosen ones and the baseline of each request."""
    known = list(VARIANTS)
    if settings.compare_with is not None:
        rev = settings.compare_with
        known += [replace(v, label=v.label.replace("REV", rev), rev=rev) for v in REV_VARIANTS]
    keys = {v.key for v in known}
    unknown = [key for key in settings.variants if key not in keys]
    if unknown:
        hint = "" if settings.compare_with else " (rev variants need --compare-with)"
        raise ValueError(f"unknown --variants {unknown}; choose from {sorted(keys)}{hint}")
    wanted = set(settings.variants or keys)
    wanted |= {_BASELINES[v.request] for v in known if v.key in wanted}
    return tuple(v for v in known if v.key in wanted)


@dataclass(frozen=True)
class RunResult:
    variant: Variant
    round: int
    measured: WrkResult
    served: int  # every request the app answered: probes, warm-up and measured
    spans: int
    audit_records: int
    request_bodies: int  # audit records carrying a request body


@dataclass(frozen=True)
class HttpReport:
    settings: HttpSettings
    server_args: list[str]
    variants: tuple[Variant, ...]
    runs: list[RunResult]

    def median_rps(self, variant: Variant) -> float:
        return statistics.median(
            r.measured.requests_per_second for r in self.runs if r.variant == variant
        )

    def baseline(self, variant: Variant) -> Variant:
        """The baseline measured on the same request as ``variant``."""
        key = _BASELINES[variant.request]
        return next(v for v in self.variants if v.key == key)

    def round_ratios(self, variant: Variant, reference: Variant) -> list[float]:
        """``variant`` / ``reference`` within each round: runs minutes apart, not a run apart."""
        rps = {(r.variant.key, r.round): r.measured.requests_per_second for r in self.runs}
        rounds = sorted({r.round for r in self.runs})
        return [rps[variant.key, n] / rps[reference.key, n] for n in rounds]


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


def _rev_uvicorn_argv(factory: str, port: int, tree: Path) -> list[str]:
    """The same under ``bench/rev_app.py``: REV's ``bench.apps`` and ``otel_audit``."""
    return rev_argv(
        "serve",
        [f"__main__:{factory}", "--factory", "--app-dir", str(tree),
         "--host", "127.0.0.1", "--port", str(port), *server_args()],
    )  # fmt: skip


def _sink_request(sink_url: str, path: str, method: str = "GET") -> bytes:
    request = urllib.request.Request(
        f"{sink_url}{path}", method=method, data=b"" if method == "POST" else None
    )
    with urllib.request.urlopen(request, timeout=30.0) as response:
        return bytes(response.read())


def _archived_records(directory: Path, prefix: str = "") -> int:
    """Log records in an OTLP-JSON-lines archive folder, counted without otel_audit's reader."""
    total = 0
    if not directory.is_dir():
        return 0
    for file in sorted(directory.iterdir()):
        if not file.name.startswith(prefix):
            continue
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


def _spool_records(directory: Path) -> int:
    """Audit records in a spool folder (closed and open segments), read by otel_audit."""
    errors: list[ArchiveReadError] = []
    count = sum(1 for _ in read_events(directory, errors=errors))
    if errors:
        raise RuntimeError(f"spool {directory}: {len(errors)} unreadable lines: {errors[0]}")
    return count


def _closed_segments(spool: Path) -> list[Path]:
    return list(spool.glob("*/seg-*.jsonl"))


@contextlib.contextmanager
def _collector(workdir: Path, sink_url: str) -> Iterator[Service]:
    """The real otelcol-audit reading ``<workdir>/spool``, pinned to the load core.

    Its network exporters point at paths of the sink it does not count (the records are
    counted in the collector's archive): it does the work of a same-host collector, and the
    sink stands in for the backend.
    """
    stack = Stack(workdir)
    stack.spool_dir.mkdir(parents=True, exist_ok=True)
    service = stack.collector(
        env={
            "OTEL_AUDIT_LOGS_ENDPOINT": f"{sink_url}/collector/v1/logs",
            "OTEL_AUDIT_TRACES_ENDPOINT": f"{sink_url}/collector/v1/traces",
        }
    )
    service.command = pinned(LOAD_CORE, service.command)
    try:
        service.start()
        yield service
    finally:
        service.stop()


def _drain(collector: Service, spool: Path, archive: Path) -> None:
    """Wait until the collector has read every closed segment and its archive stops growing."""
    deadline = time.monotonic() + _COLLECTOR_DRAIN_SECONDS
    last, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        if not collector.running:
            raise RuntimeError(f"otelcol-audit died:\n{collector.log_tail()}")
        size = sum(f.stat().st_size for f in archive.glob("audit*.jsonl"))
        if size != last:
            last, stable_since = size, time.monotonic()
        elif not _closed_segments(spool) and time.monotonic() - stable_since > 1.0:
            return
        time.sleep(0.2)
    print(f"  warning: the collector left {len(_closed_segments(spool))} segments unread")


def _run_once(
    variant: Variant,
    round_number: int,
    sink_url: str,
    settings: HttpSettings,
    *,
    post: Path,
    database: Path,
) -> RunResult:
    _sink_request(sink_url, "/reset", "POST")
    with (
        tempfile.TemporaryDirectory(prefix="otel-audit-bench-") as workdir,
        contextlib.ExitStack() as stack,
    ):
        work = Path(workdir)
        spool, floor = work / "spool", work / "floor"
        floor.mkdir()
        extra = {
            SINK_URL_ENV: sink_url,
            DB_PATH_ENV: str(database),
            FLOOR_DIR_ENV: str(floor),
            # Never the working directory's ./otel-audit-archive (the library's default).
            "OTEL_AUDIT_SPOOL_DIR": str(spool),
            "OTEL_AUDIT_ARCHIVE_DIR": str(spool),
        }
        if variant.endpoint:
            extra["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink_url
        collector = (
            stack.enter_context(_collector(work, sink_url))
            if variant.audit == "collector"
            else None
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        path = {"get": ITEM_PATH, "post": CREATE_PATH, "db": DB_ITEM_PATH}[variant.request]
        script = post if variant.request == "post" else None
        url = base + path
        tree = worktree(variant.rev) if variant.rev is not None else None
        if tree is None:
            argv, env = uvicorn_argv(variant.factory, port), child_environment(extra)
        else:
            argv, env = _rev_uvicorn_argv(variant.factory, port, tree), rev_environment(tree, extra)
        # SIGINT, not SIGTERM: uvicorn re-raises the signal it stopped on once it has shut
        # down, and a re-raised SIGTERM kills the process before atexit runs, so the OTel
        # providers would never flush what they still queue. SIGINT becomes
        # KeyboardInterrupt, and atexit runs.
        stop = signal.SIGINT
        with running(variant.key, argv, env, stop, cwd=tree) as app:
            probes = wait_http_ok(app, base + ITEM_PATH)  # a GET: every app serves it
            connections = settings.connections
            warm = run_wrk(
                url, seconds=settings.warmup_seconds, connections=connections, script=script
            )
            measured = run_wrk(
                url, seconds=settings.seconds, connections=connections, script=script
            )
            app.check_alive()
        # The app has exited: its providers flushed everything they still held, and its
        # spool closed its last segment (and, with otlp, shipped it).
        archive = work / "archive"
        if collector is not None:
            _drain(collector, spool, archive)
            collector.stop()  # SIGTERM: the file exporter closes (flushes) the archive
        stats = json.loads(_sink_request(sink_url, "/stats"))
        counted = {
            "spool": lambda: _spool_records(spool),
            "collector": lambda: _archived_records(archive, "audit"),
            "floor": lambda: _archived_records(floor),
        }
        logs = stats.get("/v1/logs", {})
        audit = variant.audit
        records = counted[audit]() if audit in counted else logs.get("items", 0)
    result = RunResult(
        variant=variant,
        round=round_number,
        measured=measured,
        served=probes + warm.requests + measured.requests,
        spans=stats.get("/v1/traces", {}).get("items", 0),
        audit_records=records,
        request_bodies=logs.get("request_bodies", 0),
    )
    _check(result, logs.get("items", 0), warm.requests + measured.requests)
    leaks = {path: s["needle_bodies"] for path, s in stats.items() if s.get("needle_bodies")}
    if leaks:
        raise RuntimeError(f"{variant.label}: planted secrets reached the sink in clear: {leaks}")
    return result


def _check(result: RunResult, exported_logs: int, loaded: int) -> None:
    """Fail loudly when a run did not produce the telemetry its variant promises."""
    name = result.variant.label
    if result.spans == 0:
        raise RuntimeError(f"{name}: the sink received no spans")
    if result.variant.audit is None and (exported_logs or result.audit_records):
        raise RuntimeError(f"{name}: produced audit records, but audits nothing")
    if result.variant.audit is not None and result.audit_records == 0:
        raise RuntimeError(f"{name}: no audit record arrived ({result.variant.audit})")
    if result.variant.audit not in (None, "sink") and exported_logs:
        raise RuntimeError(
            f"{name}: audit records reached the sink, expected {result.variant.audit}"
        )
    if result.variant.level == "metadata" and result.request_bodies:
        raise RuntimeError(f"{name}: {result.request_bodies} records carry a request body")
    # wrk's counts (warm-up + measured) miss requests in flight when it stops: never more.
    if result.variant.level == "request" and result.request_bodies < loaded * _DELIVERY_WARNING:
        raise RuntimeError(
            f"{name}: {result.request_bodies:,} records with a request body for at least"
            f" {loaded:,} POSTs"
        )


def _schedule(rounds: int, variants: Sequence[Variant]) -> Iterator[tuple[int, Variant]]:
    for round_number in range(1, rounds + 1):
        order = variants if round_number % 2 else tuple(reversed(variants))
        for variant in order:
            yield round_number, variant


def sink_argv(port: int) -> list[str]:
    """The sink on the load core, told which planted values must never reach it."""
    needles = [arg for value in PLANTED for arg in ("--needle", value)]
    return pinned(LOAD_CORE, [python(), "-m", "bench.sink", "--port", str(port), *needles])


def measure(settings: HttpSettings) -> HttpReport:
    variants = select_variants(settings)
    for rev in {v.rev for v in variants if v.rev is not None}:
        worktree(rev)  # made (or checked) before the first run, not in the middle
    sink_port = free_port()
    sink_url = f"http://127.0.0.1:{sink_port}"
    runs: list[RunResult] = []
    with (
        running("sink", sink_argv(sink_port), child_environment()) as sink,
        tempfile.TemporaryDirectory(prefix="otel-audit-wrk-") as scripts,
    ):
        post = post_script(Path(scripts), NEW_ITEM_BODY)
        database = Path(scripts) / "items.sqlite3"
        create_database(database)
        wait_http_ok(sink, f"{sink_url}/stats")
        for round_number, variant in _schedule(settings.rounds, variants):
            run = _run_once(variant, round_number, sink_url, settings, post=post, database=database)
            print("  " + _run_line(run), flush=True)
            runs.append(run)
    return HttpReport(settings, server_args(), variants, runs)


def _run_line(run: RunResult) -> str:
    m = run.measured
    line = (
        f"round {run.round}  {run.variant.label:<48} {m.requests_per_second:>9,.0f} req/s"
        f"  p50 {m.latency_p50_ms:.2f} ms  p99 {m.latency_p99_ms:.2f} ms  spans {run.spans:,}"
    )
    if run.variant.audit is not None:
        # wrk does not count requests still in flight when it stops; the app audits them.
        line += f"  audit records {run.audit_records:,} (requests >= {run.served:,})"
        if run.audit_records < run.served * _DELIVERY_WARNING:
            line += "  WARNING: records lost"
        if run.variant.level == "request":
            line += f"  with request body {run.request_bodies:,}"
    return line


def format_report(report: HttpReport) -> list[str]:
    s = report.settings
    # The loop/parser flags, e.g. "--loop uvloop --http httptools", after the fixed ones.
    server = " ".join(report.server_args[5:])
    lines = [
        f"http throughput (wrk -t1 -c{s.connections} -d{s.seconds:g}s after a"
        f" {s.warmup_seconds:g}s warm-up, {s.rounds} rounds, uvicorn 1 worker {server};"
        f" GET {ITEM_PATH}, POST {CREATE_PATH} with a {len(NEW_ITEM_BODY)}-byte JSON body,"
        f" GET {DB_ITEM_PATH} with one indexed sqlite3 SELECT)"
    ]
    for variant in report.variants:
        rps = report.median_rps(variant)
        line = f"  {variant.label:<50} {rps:>7,.0f} req/s"
        baseline = report.baseline(variant)
        if variant is not baseline:
            ratio = rps / report.median_rps(baseline)
            line += f"   ratio {ratio:.3f}" + _spread(report, variant, baseline)
            if variant.goal is not None:
                line += f"  (goal >= {variant.goal:.2f})"
        lines.append(line)
    by_key = {variant.key: variant for variant in report.variants}
    pairs = [
        ("audited", "floor", "audited / contract floor", " (1.0 = otel_audit costs nothing"
         " beyond one SDK log record and one span event)"),
        ("otlp", "line-floor", "otlp transport / transport floor", ""),
        ("spool-collector", "line-floor", "spool + collector / transport floor", ""),
        ("otlp", "audited", "otlp transport / sdk transport", ""),
        ("post-request", "post-metadata", "request level / metadata level, POST", ""),
        ("audited", "rev", f"audited now / @{s.compare_with}, GET", ""),
        ("post-metadata", "post-rev", f"metadata level now / @{s.compare_with}, POST", ""),
    ]  # fmt: skip
    for key, reference, name, note in pairs:
        if key in by_key and reference in by_key:
            a, b = by_key[key], by_key[reference]
            ratio = report.median_rps(a) / report.median_rps(b)
            lines.append(f"  {name}: {ratio:.3f}{_spread(report, a, b)}{note}")
    return lines


def _spread(report: HttpReport, variant: Variant, reference: Variant) -> str:
    """The per-round ratios' range: how much of a difference is noise on this machine."""
    ratios = report.round_ratios(variant, reference)
    if len(ratios) < 2:
        return ""
    return f" (rounds {min(ratios):.2f}-{max(ratios):.2f})"
