"""The embedded pipeline's batching, with every lost record counted.

The SDK's ``BatchLogRecordProcessor`` evicts the *oldest* queued record when its queue is
full and never retries a failed export; the application sees neither. For the pipeline
otel_audit builds itself (when the application brings no logger provider), this processor
keeps the number of records accepted but not yet exported, refuses a new record once
``capacity`` are waiting (so the SDK queue, of that size, never evicts), and reports
every record it loses to ``on_drop`` with a reason:

* ``queue_full``: refused because ``capacity`` records were already waiting;
* ``export_failed``: in a batch the exporter failed (or raised on); the SDK does not retry;
* ``shutdown``: emitted after shutdown, or still unexported when shutdown gave up.

An exporter that accounts for its own losses (the archive exporter knows which records of
a batch it could not write) is built with its own drop callback and
``count_export_failures=False``, so nothing is counted twice.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Sequence

from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)

DropSink = Callable[[str, int], None]
"""Called with (reason, number of records) for records the pipeline lost."""

_log = logging.getLogger("otel_audit")


class _ReportingExporter(LogRecordExporter):
    """Tells the processor how each batch ended; exceptions become FAILURE."""

    def __init__(self, inner: LogRecordExporter, done: Callable[[int, bool], None]) -> None:
        self._inner = inner
        self._done = done

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        result = LogRecordExportResult.FAILURE
        try:
            result = self._inner.export(batch)
        except Exception:
            _log.exception("otel_audit: audit log exporter raised; %d records lost", len(batch))
        finally:
            self._done(len(batch), result is LogRecordExportResult.SUCCESS)
        return result

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return bool(self._inner.force_flush(timeout_millis))

    def shutdown(self) -> None:
        self._inner.shutdown()  # type: ignore[no-untyped-call]  # untyped in the SDK


class AccountedBatchProcessor(LogRecordProcessor):
    """A batch processor that refuses rather than evicts, and counts whatever it loses."""

    def __init__(
        self,
        exporter: LogRecordExporter,
        on_drop: DropSink,
        *,
        capacity: int,
        count_export_failures: bool = True,
        max_export_batch_size: int | None = None,
    ) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self._on_drop = on_drop
        self._capacity = capacity
        self._count_export_failures = count_export_failures
        self._pending = 0
        self._is_shutdown = False
        self._lock = threading.Lock()
        # A record is counted as pending before it enters the SDK queue and uncounted only
        # after its batch was exported, so the queue never holds more than ``capacity``: at
        # that size it never evicts. Batch size and delay default to OTEL_BLRP_*, as for any
        # SDK batch processor.
        self._batch = BatchLogRecordProcessor(
            _ReportingExporter(exporter, self._exported),
            max_export_batch_size=max_export_batch_size,
            max_queue_size=capacity,
        )
        if hasattr(os, "register_at_fork"):
            # The SDK empties its queue in a forked child (those records are the parent's to
            # export), so the child starts with nothing pending either.
            reset = weakref.WeakMethod(self._reset_after_fork)
            os.register_at_fork(after_in_child=lambda: (method := reset()) and method())

    @property
    def pending(self) -> int:
        """Records accepted and not yet exported (or lost)."""
        return self._pending

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        with self._lock:
            if self._is_shutdown:
                reason = "shutdown"
            elif self._pending >= self._capacity:
                reason = "queue_full"
            else:
                self._pending += 1
                reason = ""
        if reason:
            self._on_drop(reason, 1)
            return
        self._batch.on_emit(log_record)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return bool(self._batch.force_flush(timeout_millis))

    def shutdown(self) -> None:
        with self._lock:
            if self._is_shutdown:
                return
            self._is_shutdown = True
        self._batch.shutdown()  # type: ignore[no-untyped-call]  # exports what is queued
        with self._lock:
            unexported, self._pending = self._pending, 0
        if unexported:
            self._on_drop("shutdown", unexported)

    def _exported(self, count: int, succeeded: bool) -> None:
        with self._lock:
            self._pending = max(0, self._pending - count)
        if not succeeded and self._count_export_failures:
            self._on_drop("export_failed", count)

    def _reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._pending = 0
