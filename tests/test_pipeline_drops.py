"""The embedded pipeline loses nothing silently: every lost record is counted, by reason."""

from __future__ import annotations

import os
import socket
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import otel_audit
from otel_audit import AuditConfig
from otel_audit._archive_exporter import ArchiveLogExporter
from otel_audit._auditor import default_auditor
from otel_audit._export_queue import AccountedBatchProcessor

from .conftest import counter_value


class GatedExporter(LogRecordExporter):
    """Exports to memory once the test opens the gate: an exporter stuck on a slow backend."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self.gate.wait(10)
        return self.memory.export(batch)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        self.gate.set()


class RaisingExporter(LogRecordExporter):
    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        raise ConnectionResetError("backend went away mid-export")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        pass


def _pipeline(
    exporter: LogRecordExporter,
    capacity: int = 100,
    *,
    count_export_failures: bool = True,
    drops: Counter[str] | None = None,
) -> tuple[LoggerProvider, AccountedBatchProcessor, Counter[str]]:
    """A provider whose AccountedBatchProcessor tallies its losses in ``drops``."""
    drops = Counter() if drops is None else drops
    processor = AccountedBatchProcessor(
        exporter,
        lambda reason, count: drops.update({reason: count}),
        capacity=capacity,
        count_export_failures=count_export_failures,
        max_export_batch_size=min(capacity, 512),
    )
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(processor)
    return provider, processor, drops


def _emit(provider: LoggerProvider, count: int) -> None:
    logger = provider.get_logger("test")
    for number in range(count):
        logger.emit(event_name="audit.test", body=f"event {number}")


def test_full_queue_refuses_new_records_and_counts_them() -> None:
    exporter = GatedExporter()
    provider, processor, drops = _pipeline(exporter, capacity=4)

    _emit(provider, 10)  # the exporter is stuck: four wait, six are refused
    assert drops == {"queue_full": 6}
    assert processor.pending == 4

    exporter.gate.set()
    assert processor.force_flush(5_000)
    exported = [r.log_record.body for r in exporter.memory.get_finished_logs()]
    # The oldest records are kept (the SDK alone would have evicted them for the newest).
    assert exported == [f"event {n}" for n in range(4)]
    assert processor.pending == 0
    provider.shutdown()
    assert drops == {"queue_full": 6}


def _refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed on exit: connections are refused


def test_failed_otlp_export_is_counted() -> None:
    exporter = OTLPLogExporter(endpoint=f"http://127.0.0.1:{_refused_port()}/v1/logs", timeout=1)
    provider, processor, drops = _pipeline(exporter)

    _emit(provider, 3)
    processor.force_flush(10_000)

    assert drops == {"export_failed": 3}
    assert processor.pending == 0
    provider.shutdown()


def test_exporter_that_raises_is_counted() -> None:
    provider, processor, drops = _pipeline(RaisingExporter())
    _emit(provider, 5)
    processor.force_flush(5_000)
    assert drops == {"export_failed": 5}
    provider.shutdown()


def test_records_after_shutdown_are_counted() -> None:
    memory = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider, processor, drops = _pipeline(memory)
    _emit(provider, 2)
    processor.shutdown()  # exports the two queued records
    _emit(provider, 3)
    assert len(memory.get_finished_logs()) == 2
    assert drops == {"shutdown": 3}


def test_archive_write_failure_is_counted_once(tmp_path: Path) -> None:
    """The archive reports its own losses; the processor does not count them again."""
    not_a_directory = tmp_path / "archive"
    not_a_directory.write_text("a file where the archive folder should be")
    drops: Counter[str] = Counter()
    archive = ArchiveLogExporter(
        not_a_directory, on_lost=lambda reason, count: drops.update({reason: count})
    )
    provider, processor, _ = _pipeline(archive, count_export_failures=False, drops=drops)

    _emit(provider, 4)
    processor.force_flush(5_000)

    assert drops == {"write_error": 4}
    provider.shutdown()


def test_embedded_pipeline_losses_reach_the_dropped_counter(tmp_path: Path) -> None:
    """record() into the library's own pipeline, whose archive cannot be written."""
    blocked = tmp_path / "blocked-archive"
    blocked.write_text("not a directory")
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    otel_audit.instrument_app(
        FastAPI(),
        AuditConfig(archive_dir=str(blocked), transport="sdk"),
        meter_provider=meter_provider,
    )

    for _ in range(3):
        otel_audit.record("user.deleted", resource_type="user", resource_id="42")
    default_auditor().flush()

    assert counter_value(reader, "otel_audit.events.dropped", reason="write_error") == 3
    assert counter_value(reader, "otel_audit.events.emitted") == 3
    meter_provider.shutdown()


def test_forked_child_starts_with_nothing_pending(tmp_path: Path) -> None:
    """A worker forked with records queued must not count the parent's records as its own."""
    exporter = GatedExporter()
    provider, processor, drops = _pipeline(exporter, capacity=4)
    _emit(provider, 4)  # stuck in the parent: the queue is full
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            _emit(provider, 1)  # accepted: the child's queue is empty
            os.write(write_end, f"{processor.pending},{sum(drops.values())}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    report = os.read(read_end, 100).decode()
    os.waitpid(child, 0)
    os.close(read_end)
    assert report == "1,0"
    exporter.gate.set()
    provider.shutdown()
    assert drops == {}
