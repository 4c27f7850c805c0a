"""In-process cost of ``otel_audit.record()`` relative to a bare OTel ``logger.emit``.

Both go through the same SDK ``LoggerProvider``. Its processor is a
``SimpleLogRecordProcessor`` whose exporter does the OTLP protobuf encoding a real exporter
does and discards the bytes: the work stays on the calling thread, where it is timed, and no
background export thread competes for the GIL during the measurement. The bare emit carries
the attributes one ``record()`` call produced for the same arguments, captured beforehand,
so the ratio is the price of what ``record()`` adds (validation, actor and request lookup,
redaction, ids, the span-event path, its metrics), not of a smaller payload.

``record()`` is timed twice: through that provider (the ``sdk`` transport, the app passed
``logger_provider=``) and through the library's own ``spool`` transport (sequence number,
hash chain, OTLP-JSON encoding, an append to the group-committing writer; the writer thread's
``write`` + ``fsync`` run beside the timed thread), against the same bare emit. Each case
makes its app's auditor the process default before its block (``record()`` outside a
request uses the default).
"""

from __future__ import annotations

import cProfile
import gc
import io
import pstats
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

import otel_audit
from otel_audit import Actor
from otel_audit._auditor import Auditor, adopt_as_default, default_auditor
from otel_audit.testing import reset_default_auditor

_GOAL = 1.5
_SPOOL_GOAL = 0.5
_WARMUP_CALLS = 1000
_ACTOR = Actor(
    id="user-1842",
    tenant="acme",
    roles=("admin",),
    scopes=("users:read", "users:write"),
    auth_method="jwt",
    session_id="sess-7f3a9c",
)
# A realistic mix: clean fields next to values the redaction layer must catch.
_CHANGES = {
    "role": ("viewer", "admin"),
    "display_name": ("Al", "Alice Example"),
    "email": ("al@example.org", "alice@example.org"),
    "phone": (None, "+44 20 7946 0958"),
}
_DETAILS = {
    "reason": "promotion approved in ticket OPS-1234",
    "approved_by": "user-77",
    "api_key": "sk_live_51HxYzAbCdEfGhIjKlMnOpQr",
    "note": "questions to bob@example.com",
    "batch": {"size": 3, "dry_run": False},
}


def _record_plain() -> str | None:
    return otel_audit.record(
        "user.role_changed", resource_type="user", resource_id="4711", actor=_ACTOR
    )


def _record_changes() -> str | None:
    return otel_audit.record(
        "user.updated",
        resource_type="user",
        resource_id="4711",
        actor=_ACTOR,
        changes=_CHANGES,
        details=_DETAILS,
    )


class EncodingExporter(LogRecordExporter):
    """Encodes each batch to OTLP protobuf bytes, as the OTLP exporters do, then drops it."""

    def __init__(self) -> None:
        self.last: ReadableLogRecord | None = None
        self.encoded_bytes = 0

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.last = batch[-1]
        self.encoded_bytes += len(encode_logs(batch).SerializeToString())
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@dataclass(frozen=True)
class Case:
    label: str
    call: Callable[[], object]
    auditor: Auditor | None = None  # made the process default before each block


def _use(auditor: Auditor | None) -> None:
    if auditor is not None and default_auditor() is not auditor:
        reset_default_auditor()
        adopt_as_default(auditor)


@dataclass(frozen=True)
class RecordReport:
    iterations: int
    repeats: int
    ns_per_op: dict[str, float]  # best of the repeats, by case label
    pairs: list[tuple[str, str]]  # (bare label, record label)
    goals: dict[str, float]  # by record label


class Bench:
    """One provider, an instrumented app (so ``record()`` uses it), and the cases."""

    def __init__(self) -> None:
        self.exporter = EncodingExporter()
        provider = LoggerProvider(resource=Resource.create({"service.name": "otel-audit-bench"}))
        provider.add_log_record_processor(SimpleLogRecordProcessor(self.exporter))
        # A real SDK meter provider, so record()'s emitted-counter does its real work.
        meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
        # record() outside a request uses the provider of the last instrument_app().
        otel_audit.instrument_app(FastAPI(), logger_provider=provider, meter_provider=meters)
        sdk = default_auditor()
        self._bare_logger = provider.get_logger("bench.bare")
        self.plain = Case("record(), sdk transport", _record_plain, sdk)
        self.changes = Case("record(changes, details), sdk", _record_changes, sdk)
        # The spool transport: a second app, its auditor made the default for its blocks.
        self.spool_dir = tempfile.TemporaryDirectory(prefix="otel-audit-bench-record-")
        reset_default_auditor()
        config = otel_audit.AuditConfig(transport="spool", spool_dir=self.spool_dir.name)
        otel_audit.instrument_app(FastAPI(), config, meter_provider=meters)
        self.spool_auditor = default_auditor()
        self.spool_plain = Case("record(), spool transport", _record_plain, self.spool_auditor)
        self.spool_changes = Case(
            "record(changes, details), spool", _record_changes, self.spool_auditor
        )
        _use(sdk)
        self.bare_plain = Case("bare logger.emit", self._bare_twin(_record_plain))
        self.bare_changes = Case(
            "bare logger.emit (changes+details attrs)", self._bare_twin(_record_changes)
        )

    def _bare_twin(self, call: Callable[[], str | None]) -> Callable[[], None]:
        """A bare ``emit`` carrying what one ``call()`` produced, built once, outside the loop."""
        if call() is None:
            raise RuntimeError("record() dropped the event; the benchmark would measure nothing")
        captured = self.exporter.last
        if captured is None:
            raise RuntimeError("record() reached no exporter")
        source = captured.log_record
        attributes = dict(source.attributes or {})
        logger = self._bare_logger

        def emit() -> None:
            now = time.time_ns()
            logger.emit(
                timestamp=now,
                observed_timestamp=now,
                severity_number=source.severity_number,
                severity_text=source.severity_text,
                body=source.body,
                attributes=attributes,
                event_name=source.event_name,
            )

        return emit


def _time_ns(case: Case, iterations: int) -> float:
    _use(case.auditor)
    call = case.call
    gc.collect()  # start each block from the same heap state
    start = time.perf_counter_ns()
    for _ in range(iterations):
        call()
    return (time.perf_counter_ns() - start) / iterations


def measure(iterations: int, repeats: int) -> RecordReport:
    bench = Bench()
    cases = [
        bench.bare_plain,
        bench.plain,
        bench.spool_plain,
        bench.bare_changes,
        bench.changes,
        bench.spool_changes,
    ]
    try:
        for case in cases:
            _use(case.auditor)
            for _ in range(_WARMUP_CALLS):
                case.call()
        best = {case.label: float("inf") for case in cases}
        for repeat in range(repeats):
            # Alternate the order each repeat so drift does not favour one side.
            for case in cases if repeat % 2 == 0 else reversed(cases):
                best[case.label] = min(best[case.label], _time_ns(case, iterations))
        bench.spool_auditor.close()
        spool_calls = (_WARMUP_CALLS + repeats * iterations) * 2
        # One line per record (+ the closing record): a refused append would flatter the figure.
        lines = sum(f.read_bytes().count(b"\n") for f in Path(bench.spool_dir.name).glob("*/seg-*"))
        if lines < spool_calls:
            raise RuntimeError(
                f"the spool holds {lines:,} records for {spool_calls:,} record() calls"
            )
    finally:
        bench.spool_auditor.close()
        bench.spool_dir.cleanup()
    pairs = [
        (bench.bare_plain.label, bench.plain.label),
        (bench.bare_plain.label, bench.spool_plain.label),
        (bench.bare_changes.label, bench.changes.label),
        (bench.bare_changes.label, bench.spool_changes.label),
    ]
    goals = {bench.plain.label: _GOAL, bench.spool_plain.label: _SPOOL_GOAL}
    goals[bench.spool_changes.label] = _SPOOL_GOAL
    return RecordReport(iterations, repeats, best, pairs, goals)


def format_report(report: RecordReport) -> list[str]:
    lines = [
        f"record() cost ({report.iterations:,} calls x {report.repeats} repeats, best;"
        " SimpleLogRecordProcessor + OTLP protobuf encoding)"
    ]
    shown: set[str] = set()
    for bare, audited in report.pairs:
        bare_ns, audited_ns = report.ns_per_op[bare], report.ns_per_op[audited]
        goal = f"   (goal <= {report.goals[audited]})" if audited in report.goals else ""
        if bare not in shown:
            shown.add(bare)
            lines.append(f"  {bare:<44} {bare_ns / 1000:>7.1f} us/op")
        lines.append(
            f"  {audited:<44} {audited_ns / 1000:>7.1f} us/op   ratio {audited_ns / bare_ns:.2f}"
            f"{goal}"
        )
    return lines


def profile(iterations: int, top: int = 25) -> list[str]:
    """cProfile of ``record()`` (plain, then with changes and details), top by tottime."""
    bench = Bench()
    lines: list[str] = []
    for case in (bench.plain, bench.changes, bench.spool_plain, bench.spool_changes):
        _use(case.auditor)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(iterations):
            case.call()
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.strip_dirs().sort_stats(pstats.SortKey.TIME).print_stats(top)
        lines.append(f"cProfile of {case.label} x {iterations:,}, top {top} by tottime")
        lines.extend(out.getvalue().rstrip().splitlines())
        lines.append("")
    return lines
