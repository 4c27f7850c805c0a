"""Throughput of otelcol-audit's three pipelines without PII processors, with the contrib
redaction processor, and with the project's audit_redaction processor.

Pipelines (each loaded with its own payload, ``bench/audit_payload.py``):

* ``audit``: audit records to ``/v1/logs``; ``logs/audit`` (audit_redaction/audit,
  transform/audit) writes the archive and queues for VictoriaLogs, as configured;
* ``default``: application log records to ``/v1/logs``, routed to ``logs/default``
  (audit_redaction/default, batch/backends);
* ``traces``: request traces to ``/v1/traces``; ``traces`` (memory_limiter,
  audit_redaction/traces, transform/traces, batch/backends).

Variants, all from collector-config/otelcol-audit.yaml so there is no second YAML to drift:
without PII processors (``--set`` of the pipeline's processor list, leaving memory_limiter
and batch), contrib redaction (the same file with every ``audit_redaction/`` processor
renamed ``redaction/``, written to the run's folder: both processors read the same
settings), and audit_redaction (the file unchanged). The default and traces pipelines
export to a file instead of their network backend (``--set``, in every variant), so that
what left the pipeline can be counted and searched for PII like the audit archive.

Each run starts a fresh stack in a temporary folder (examples/stack.py): VictoriaLogs,
pinned to the load core, and otelcol-audit, pinned to core 0. The load generator
(``bench/otlp_load.py``, pinned to the load core) POSTs a pre-encoded OTLP/HTTP export back
to back from a few connections; when the collector has stopped (flushing its file
exporters), the output is counted. Variants rotate within the run (ABC, CBA, ...) so drift
of the machine cancels out of the ratios. Then the emit -> archive latency is measured at a
moderate rate with the audit pipeline as configured.
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

import yaml

from examples.stack import COLLECTOR_CONFIG, Service, Stack, binary, free_port

from .audit_payload import APP_RECORD_KEY, EVENT_ID_KEY, PII_MARKER, pii_count
from .processes import APP_CORE, LOAD_CORE, child_environment, pinned, python

_GOAL_COST = 0.15
_GOAL_RECORDS_PER_SECOND = 20_000
_PII_TOKENS = (PII_MARKER.encode(), PII_MARKER.replace("@", "%40").encode())


@dataclass(frozen=True)
class PipelineSettings:
    seconds: float = 10.0
    warmup_seconds: float = 3.0
    rounds: int = 3
    batch: int = 500  # records (spans) per export request
    senders: int = 4  # concurrent connections of the load generator
    latency_rate: float = 200.0  # records/s, one per request
    latency_seconds: float = 10.0
    pipelines: tuple[str, ...] = ("audit", "default", "traces")


@dataclass(frozen=True)
class Pipeline:
    """One pipeline of otelcol-audit.yaml and the load that exercises it."""

    key: str
    label: str
    name: str  # in the config's service::pipelines
    payload: str  # otlp_load --payload
    path: str  # OTLP/HTTP path the payload goes to
    without: str  # the processor list with the PII processors taken out
    record_token: bytes  # once per record (span) in the exported OTLP JSON
    archive: bool  # output is the audit archive (else a file exporter replaces the backend)

    def output_files(self, workdir: Path, archive_dir: Path) -> list[Path]:
        if self.archive:
            return sorted(archive_dir.glob("audit*.jsonl"))
        return sorted(workdir.glob("pipeline-out*.jsonl"))

    def output_overrides(self, workdir: Path) -> tuple[str, ...]:
        """``--set``s sending the pipeline's output to a file instead of its network backend."""
        if self.archive:
            return ()
        return (
            f"exporters::file/bench::path={workdir / 'pipeline-out.jsonl'}",
            "exporters::file/bench::format=json",
            f"service::pipelines::{self.name}::exporters=[file/bench]",
        )


AUDIT = Pipeline(
    "audit", "audit logs", "logs/audit", "audit", "/v1/logs", "[]",
    b'{"key":"' + EVENT_ID_KEY.encode() + b'"', archive=True,
)  # fmt: skip
DEFAULT = Pipeline(
    "default", "default logs", "logs/default", "default", "/v1/logs", "[batch/backends]",
    b'{"key":"' + APP_RECORD_KEY.encode() + b'"', archive=False,
)  # fmt: skip
TRACES = Pipeline(
    "traces", "traces", "traces", "traces", "/v1/traces", "[memory_limiter, batch/backends]",
    b'"spanId":"', archive=False,
)  # fmt: skip
PIPELINES = {p.key: p for p in (AUDIT, DEFAULT, TRACES)}


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    pii_processors: bool


WITHOUT = Variant("without", "without PII processors", False)
CONTRIB = Variant("contrib", "contrib redaction", True)
OURS = Variant("audit_redaction", "audit_redaction", True)
VARIANTS = (WITHOUT, CONTRIB, OURS)


def _ottl_string(text: str) -> str:
    """``text`` as an OTTL string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ottl_replacements(replace_patterns: list[dict[str, Any]]) -> dict[str, Any]:
    """A transform processor doing what an audit_redaction's replace_patterns do.

    Logs: each key of each entry in the record's attributes, the marker set when the value
    changed (compared with its copy in the record's cache). Traces: span and span event
    attributes, as audit_redaction does.
    """
    log, span, event = [], [], []
    for rp in replace_patterns:
        pattern, replacement = _ottl_string(rp["pattern"]), _ottl_string(rp["replacement"])
        for key in rp["keys"]:
            attribute = f"attributes[{_ottl_string(key)}]"
            log.append(f"set(log.cache[{_ottl_string(key)}], log.{attribute})")
            log.append(f"replace_pattern(log.{attribute}, {pattern}, {replacement})")
            if rp.get("marker"):
                log.append(
                    f"set(log.attributes[{_ottl_string(rp['marker'])}], true)"
                    f" where log.{attribute} != log.cache[{_ottl_string(key)}]"
                )
            span.append(f"replace_pattern(span.{attribute}, {pattern}, {replacement})")
            event.append(f"replace_pattern(spanevent.{attribute}, {pattern}, {replacement})")
    return {
        "error_mode": "ignore",
        "log_statements": [{"context": "log", "statements": log}],
        "trace_statements": [
            {"context": "span", "statements": span},
            {"context": "spanevent", "statements": event},
        ],
    }


def contrib_config(workdir: Path) -> Path:
    """otelcol-audit.yaml with the contrib redaction processor in place of audit_redaction.

    The processors keep their settings; audit_redaction's own ``replace_patterns`` (which
    the contrib processor refuses) become a transform processor right after it, the OTTL
    statements the shipped config had before audit_redaction took them over.
    """
    config = yaml.safe_load(COLLECTOR_CONFIG.read_text())
    processors: dict[str, Any] = config["processors"]
    renamed: dict[str, list[str]] = {}
    for name in [n for n in processors if n.split("/")[0] == "audit_redaction"]:
        settings = processors.pop(name)
        contrib = "redaction/" + name.partition("/")[2]
        processors[contrib] = settings
        renamed[name] = [contrib]
        if settings.get("replace_patterns"):
            transform = "transform/replace_" + name.partition("/")[2]
            processors[transform] = _ottl_replacements(settings.pop("replace_patterns"))
            renamed[name].append(transform)
    if not renamed:
        raise RuntimeError(f"{COLLECTOR_CONFIG} has no audit_redaction processor to swap")
    for pipeline in config["service"]["pipelines"].values():
        pipeline["processors"] = [
            new for old in pipeline.get("processors", []) for new in renamed.get(old, [old])
        ]
    path = workdir / "otelcol-audit-contrib.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass(frozen=True)
class RunResult:
    pipeline: Pipeline
    variant: Variant
    round: int
    records_per_second: float  # accepted by the collector, measured window
    accepted: int  # every record the collector answered 200 for, warm-up included
    archived: int  # records in the output after the collector stopped
    pii_in_archive: int  # occurrences of the planted email, raw or percent-encoded
    collector_cpu: float  # share of one core used by the collector while loaded
    load_core_cpu: float  # the same for the load generator and VictoriaLogs together
    request_p50_ms: float
    # Collector CPU time per accepted record, the backend queue drained: what a record
    # costs whatever else runs on the machine (the throughput varies with that).
    cpu_us_per_record: float


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

    def of(self, pipeline: Pipeline, variant: Variant) -> list[RunResult]:
        return [r for r in self.runs if r.pipeline == pipeline and r.variant == variant]

    def median_rps(self, pipeline: Pipeline, variant: Variant) -> float:
        return statistics.median(r.records_per_second for r in self.of(pipeline, variant))

    def median_cpu(self, pipeline: Pipeline, variant: Variant) -> float:
        return statistics.median(r.cpu_us_per_record for r in self.of(pipeline, variant))

    def round_costs(self, pipeline: Pipeline, variant: Variant) -> list[float]:
        """1 - with / without, each round against the run without PII processors of that round."""
        without = {r.round: r.records_per_second for r in self.of(pipeline, WITHOUT)}
        return [1 - r.records_per_second / without[r.round] for r in self.of(pipeline, variant)]


class _PipelineStack:
    """VictoriaLogs on the load core and otelcol-audit on core 0, with ``--set`` overrides.

    Jaeger is not started: the traces pipeline is measured with a file exporter.
    """

    def __init__(
        self, workdir: Path, overrides: Sequence[str], config: Path = COLLECTOR_CONFIG
    ) -> None:
        self.stack = Stack(workdir, config=config)
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
        return self.otlp_url("/v1/logs")

    def otlp_url(self, path: str) -> str:
        return f"{self.stack.otlp_http_endpoint}{path}"

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU time so far of the collector and of VictoriaLogs."""
        return (
            _cpu_seconds(self.collector),
            _cpu_seconds(self.stack.services["victoria-logs"]),
        )

    def settled_cpu_seconds(self, idle: float = 0.05, limit: float = 30.0) -> float:
        """The collector's CPU time once it is idle again (its export queue drained)."""
        deadline = time.monotonic() + limit
        before = _cpu_seconds(self.collector)
        while True:
            time.sleep(0.5)
            now = _cpu_seconds(self.collector)
            if now - before < idle * 0.5 or time.monotonic() > deadline:
                return now
            before = now

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


def output_counts(files: Sequence[Path], record_token: bytes) -> tuple[int, int]:
    """Records and planted-PII occurrences in a pipeline's output files (OTLP JSON lines).

    Counted on the bytes, not parsed: a run writes hundreds of megabytes. The first line
    is parsed as well, to check that the byte count agrees with the JSON.
    """
    records = pii = 0
    for file in files:
        data = file.read_bytes()
        records += data.count(record_token)
        pii += sum(data.count(token) for token in _PII_TOKENS)
    if files:
        with files[0].open("rb") as output:
            line = output.readline()
        first = json.loads(line)
        parsed = sum(
            len(scope.get("logRecords", scope.get("spans", [])))
            for resource in first.get("resourceLogs", first.get("resourceSpans", []))
            for scope in resource.get("scopeLogs", resource.get("scopeSpans", []))
        )
        if parsed != line.count(record_token):
            raise RuntimeError(
                f"{files[0].name}: {parsed} records parsed, the byte count disagrees"
            )
    return records, pii


def _run_once(
    pipeline: Pipeline, variant: Variant, round_number: int, settings: PipelineSettings
) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="otel-audit-bench-pipeline-") as tmp:
        workdir = Path(tmp)
        overrides = list(pipeline.output_overrides(workdir))
        if variant == WITHOUT:
            overrides.append(f"service::pipelines::{pipeline.name}::processors={pipeline.without}")
        config = contrib_config(workdir) if variant == CONTRIB else COLLECTOR_CONFIG
        with _PipelineStack(workdir, overrides, config) as stack:
            argv = load_argv(
                "throughput", stack.otlp_url(pipeline.path), "--payload", pipeline.payload,
                "--batch", str(settings.batch), "--senders", str(settings.senders),
                "--warmup", str(settings.warmup_seconds), "--seconds", str(settings.seconds),
            )  # fmt: skip
            cpu_before, load_before = stack.cpu_seconds(), _children_cpu_seconds()
            started = time.monotonic()
            load = _run_load(argv, stack)
            wall = time.monotonic() - started
            cpu_after, load_after = stack.cpu_seconds(), _children_cpu_seconds()
            stack.check_running()
            settled = stack.settled_cpu_seconds()
        # The collector has stopped: its file exporters closed (flushed) their files.
        archived, pii = output_counts(
            pipeline.output_files(workdir, stack.stack.archive_dir), pipeline.record_token
        )
    result = RunResult(
        pipeline=pipeline,
        variant=variant,
        round=round_number,
        records_per_second=load["measured_records"] / load["seconds"],
        accepted=load["accepted_records"],
        archived=archived,
        pii_in_archive=pii,
        collector_cpu=(cpu_after[0] - cpu_before[0]) / wall,
        load_core_cpu=(cpu_after[1] - cpu_before[1] + load_after - load_before) / wall,
        request_p50_ms=load["request_p50_ms"],
        cpu_us_per_record=1e6 * (settled - cpu_before[0]) / load["accepted_records"],
    )
    _check(result, settings)
    return result


def _check(result: RunResult, settings: PipelineSettings) -> None:
    """Fail loudly when a run did not do what its variant promises."""
    name = f"{result.pipeline.label}, {result.variant.label} (round {result.round})"
    if result.archived == 0:
        raise RuntimeError(f"{name}: the output is empty")
    if result.variant.pii_processors and result.pii_in_archive:
        raise RuntimeError(f"{name}: {result.pii_in_archive} planted PII values in the output")
    planted = pii_count(settings.batch) if result.pipeline == AUDIT else 1
    if not result.variant.pii_processors and result.pii_in_archive < planted:
        raise RuntimeError(f"{name}: planted PII missing: the processors were not switched off")


def _schedule(
    pipelines: Sequence[Pipeline], rounds: int
) -> Iterator[tuple[Pipeline, int, Variant]]:
    for pipeline in pipelines:
        for round_number in range(1, rounds + 1):
            order = VARIANTS if round_number % 2 else tuple(reversed(VARIANTS))
            for variant in order:
                yield pipeline, round_number, variant


def measure_latency(settings: PipelineSettings) -> LatencyResult:
    """Emit -> archive latency, one record per request, the configuration unchanged."""
    with (
        tempfile.TemporaryDirectory(prefix="otel-audit-bench-latency-") as workdir,
        _PipelineStack(Path(workdir), ()) as stack,
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
    pipelines = [PIPELINES[key] for key in settings.pipelines]
    for pipeline, round_number, variant in _schedule(pipelines, settings.rounds):
        run = _run_once(pipeline, variant, round_number, settings)
        print("  " + _run_line(run), flush=True)
        runs.append(run)
    latency = measure_latency(settings)
    return PipelineReport(settings, runs, latency)


def _run_line(run: RunResult) -> str:
    line = (
        f"{run.pipeline.key:<8} round {run.round}  {run.variant.label:<22}"
        f" {run.records_per_second:>9,.0f} records/s"
        f"  request p50 {run.request_p50_ms:.1f} ms  CPU collector {100 * run.collector_cpu:.0f}%"
        f" ({run.cpu_us_per_record:.1f} us/record)"
        f" load core {100 * run.load_core_cpu:.0f}%"
        f"  output {run.archived:,} of {run.accepted:,} accepted"
    )
    if run.archived != run.accepted:
        line += "  WARNING: output and accepted disagree"
    return line


def format_report(report: PipelineReport) -> list[str]:
    s = report.settings
    lines = [
        f"otelcol-audit pipelines ({s.batch}-record requests from {s.senders} connections,"
        f" {s.rounds} rounds x {s.seconds:g} s after a {s.warmup_seconds:g} s warm-up;"
        f" cost = 1 - with / without, the median of each; per-round range in brackets)"
    ]
    for pipeline in (PIPELINES[key] for key in s.pipelines):
        without = report.median_rps(pipeline, WITHOUT)
        lines.append(f"  {pipeline.label} ({pipeline.name})")
        lines.append(f"    {WITHOUT.label:<26} {without:>9,.0f} records/s")
        for variant in (CONTRIB, OURS):
            rps = report.median_rps(pipeline, variant)
            costs = report.round_costs(pipeline, variant)
            cost = 1 - rps / without
            line = (
                f"    {variant.label:<26} {rps:>9,.0f} records/s   cost {100 * cost:.1f}%"
                f" [{100 * min(costs):.1f}-{100 * max(costs):.1f}%]"
            )
            if variant == OURS:
                line += f"  (goal <= {100 * _GOAL_COST:.0f}%"
                if pipeline == AUDIT:
                    line += f"; >= {_GOAL_RECORDS_PER_SECOND:,} records/s"
                line += ")"
            lines.append(line)
        ours, contrib = report.median_rps(pipeline, OURS), report.median_rps(pipeline, CONTRIB)
        lines.append(f"    {'audit_redaction / contrib':<26} {ours / contrib:>9.2f}x")
        base = report.median_cpu(pipeline, WITHOUT)
        cpu_costs = ", ".join(
            f"{variant.label} {report.median_cpu(pipeline, variant):.1f} us"
            f" (cost {100 * (1 - base / report.median_cpu(pipeline, variant)):.1f}%)"
            for variant in (CONTRIB, OURS)
        )
        lines.append(f"    collector CPU per record: without {base:.1f} us, {cpu_costs}")
    accepted = sum(r.accepted for r in report.runs)
    archived = sum(r.archived for r in report.runs)
    lines.append(f"  {'output received':<28} {100 * archived / accepted:>8.1f}% of accepted")
    lat = report.latency
    lines.append(
        f"emit -> archive latency ({s.latency_rate:g} records/s x {s.latency_seconds:g} s,"
        f" one record per request, audit pipeline as configured)"
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
        "service::extensions=[health_check, file_storage/queue, file_storage/spool, pprof]",
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
        lines = [f"pprof of otelcol-audit (audit pipeline as configured), {settings.seconds:g} s:"]
        for order in ((), ("-cum",)):
            top_output = subprocess.run(
                [go, "tool", "pprof", "-top", *order, f"-nodecount={top}",
                 str(binary("otelcol-audit")), str(cpu_profile)],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            lines += ["  " + line for line in top_output.splitlines()]
    return lines
