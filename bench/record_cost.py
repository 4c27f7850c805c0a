"""In-process cost of ``otel_audit.record()`` relative to a bare OTel ``logger.emit``.

Both go through the same SDK ``LoggerProvider``. Its processor is a
``SimpleLogRecordProcessor`` whose exporter does the OTLP protobuf encoding a real exporter
does and discards the bytes: the work stays on the calling thread, where it is timed, and no
background export thread competes for the GIL during the measurement. The bare emit carries
the attributes one ``record()`` call produced for the same arguments, captured beforehand,
so the ratio is the price of what ``record()`` adds (validation, actor and request lookup,
redaction, ids, the span-event path, its metrics), not of a smaller payload.
"""

from __future__ import annotations

import cProfile
import gc
import io
import pstats
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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

_GOAL = 1.5
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


@dataclass(frozen=True)
class RecordReport:
    iterations: int
    repeats: int
    ns_per_op: dict[str, float]  # best of the repeats, by case label
    pairs: list[tuple[str, str]]  # (bare label, record label)


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
        self._bare_logger = provider.get_logger("bench.bare")
        self.plain = Case("record()", _record_plain)
        self.changes = Case("record(changes, details)", _record_changes)
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


def _time_ns(call: Callable[[], object], iterations: int) -> float:
    gc.collect()  # start each block from the same heap state
    start = time.perf_counter_ns()
    for _ in range(iterations):
        call()
    return (time.perf_counter_ns() - start) / iterations


def measure(iterations: int, repeats: int) -> RecordReport:
    bench = Bench()
    cases = [bench.bare_plain, bench.plain, bench.bare_changes, bench.changes]
    for case in cases:
        for _ in range(_WARMUP_CALLS):
            case.call()
    best = {case.label: float("inf") for case in cases}
    for repeat in range(repeats):
        # Alternate the order each repeat so drift does not favour one side.
        for case in cases if repeat % 2 == 0 else reversed(cases):
            best[case.label] = min(best[case.label], _time_ns(case.call, iterations))
    pairs = [(bench.bare_plain.label, bench.plain.label)]
    pairs.append((bench.bare_changes.label, bench.changes.label))
    return RecordReport(iterations, repeats, best, pairs)


def format_report(report: RecordReport) -> list[str]:
    lines = [
        f"record() cost ({report.iterations:,} calls x {report.repeats} repeats, best;"
        " SimpleLogRecordProcessor + OTLP protobuf encoding)"
    ]
    for index, (bare, audited) in enumerate(report.pairs):
        bare_ns, audited_ns = report.ns_per_op[bare], report.ns_per_op[audited]
        goal = f"   (goal <= {_GOAL})" if index == 0 else ""
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
    for case in (bench.plain, bench.changes):
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
