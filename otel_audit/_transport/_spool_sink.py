"""The ``spool`` and ``otlp`` transports' writing side: events sealed, encoded and spooled.

One sink per spool folder per process (``sink_for``), whatever number of apps the process
instruments: one process owns one instance folder, and its ``audit.seq`` and hash chain are
one sequence. Under one lock, in write order, each event gets its integrity fields (the last
stage of the pipeline: after redaction, so the chain covers exactly what is stored), is
encoded as one OTLP JSON line (the archive's encoder, no SDK record in between) and is
appended to the group-committing writer. A clean close writes ``audit.transport.closed``
with the last sequence number, so a lost tail is told apart from a quiet one.

A forked child (gunicorn workers, multiprocessing) must not write into its parent's folder
or continue its chain: after a fork the sink starts afresh, lazily, with a new instance id.
"""

from __future__ import annotations

import atexit
import os
import threading
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from .._event import SEVERITY, AuditEvent, Outcome, uuid7
from .._export_queue import DropSink
from .._selftelemetry import SCOPE_NAME
from .._version import __version__
from ..archive._integrity import ChainState
from ..archive._otlp_json import (
    encode_log_fields,
    encode_resource,
    encode_scope,
    encode_single_group_line,
    encode_value,
)
from ._shipper import OtlpTarget, SegmentShipper
from ._spool import Commit, SpoolError, SpoolWriter

CLOSED_ACTION: Final = "transport.closed"
ErrorSink = Callable[[str, BaseException | None], None]


class SpoolRefused(SpoolError):
    """The writer refused the record (its pending memory is full); already counted."""


class SpoolSink:
    """Seals, encodes and appends audit records to this process's spool folder."""

    def __init__(
        self,
        root: Path,
        *,
        chain_key: bytes | None,
        ship_to: OtlpTarget | None,
        on_drop: DropSink,
        on_error: ErrorSink,
    ) -> None:
        self._root = root
        self._chain_key = chain_key
        self._ship_to = ship_to
        self._on_drop = on_drop
        self._on_error = on_error
        self._lock = threading.Lock()
        self._writer: SpoolWriter | None = None
        self._shipper: SegmentShipper | None = None
        self._chain = ChainState(chain_key)
        self._instance_id = ""
        self._line_prefix = ""
        self._scope_text = encode_scope(InstrumentationScope(SCOPE_NAME, __version__))
        if hasattr(os, "register_at_fork"):
            forget = weakref.WeakMethod(self._forget_parent)
            os.register_at_fork(after_in_child=lambda: (method := forget()) and method())

    @property
    def instance_id(self) -> str:
        """The ``service.instance.id`` of the instance now writing ("" before the first)."""
        return self._instance_id

    def write(self, event: AuditEvent) -> Commit:
        """Seal and spool ``event``; the commit tells when it is on disk.

        Raises :class:`SpoolRefused` (counted by the writer) or :class:`SpoolError`.
        """
        with self._lock:
            writer = self._writer or self._open()
            commit = writer.append(self._seal_and_encode(event))
        if commit is None:
            raise SpoolRefused("audit spool refused the record: pending memory is full")
        return commit

    def flush(self, timeout: float) -> bool:
        """Wait until everything spooled so far is on disk."""
        writer = self._writer
        return writer.flush(timeout) if writer is not None else True

    def close(self, timeout: float) -> None:
        """Write the closing record, close the writer and let the shipper drain (if any)."""
        with self._lock:
            writer, shipper = self._writer, self._shipper
            if writer is None:
                return
            closing = AuditEvent(
                CLOSED_ACTION,
                Outcome.SUCCESS,
                {
                    "audit.action": CLOSED_ACTION,
                    "audit.outcome": Outcome.SUCCESS.value,
                    "audit.event.id": uuid7(),
                    "audit.transport.closed.last_seq": self._chain.seq,
                },
                "audit trail closed cleanly",
            )
            try:
                writer.append(self._seal_and_encode(closing))
            except Exception as exc:
                self._on_error("close_error", exc)
            self._writer, self._shipper = None, None
            self._chain = ChainState(self._chain_key)  # a reopened sink is a new instance
        writer.close(timeout)
        if shipper is not None:
            shipper.stop(timeout)

    def _open(self) -> SpoolWriter:
        """Start an instance: a new id, its folder and writer, its shipper (lock held)."""
        self._instance_id = str(uuid.uuid4())
        resource = Resource.create({"service.instance.id": self._instance_id})
        self._line_prefix = encode_resource(resource)
        self._writer = SpoolWriter(self._root, self._instance_id, on_drop=self._on_drop)
        if self._ship_to is not None:
            self._shipper = SegmentShipper(
                self._root,
                self._instance_id,
                self._ship_to,
                on_drop=self._on_drop,
                on_error=self._on_error,
            )
            self._shipper.start()
        return self._writer

    def _seal_and_encode(self, event: AuditEvent) -> bytes:
        """The integrity fields, then the OTLP JSON line (lock held: write order).

        Each value is encoded once: the chain hashes the text the line is made of.
        """
        severity_number, severity_text = SEVERITY[event.outcome]
        severity = int(severity_number.value)
        body_text = encode_value(event.body)
        attributes_text = self._chain.seal(
            event_name=event.name,
            timestamp_ns=event.timestamp_ns,
            severity_number=severity,
            body_text=body_text,
            attributes=event.attributes,
            instance_id=self._instance_id,
        )
        span_context = event.span.get_span_context() if event.span is not None else None
        record = encode_log_fields(
            timestamp_ns=event.timestamp_ns,
            observed_timestamp_ns=event.timestamp_ns,
            severity_number=severity,
            severity_text=severity_text,
            body=None,
            body_text=body_text,
            attributes=None,
            attributes_text=attributes_text,
            flags=int(span_context.trace_flags) if span_context is not None else 0,
            trace_id=span_context.trace_id if span_context is not None else None,
            span_id=span_context.span_id if span_context is not None else None,
            event_name=event.name,
        )
        line = encode_single_group_line(self._line_prefix, self._scope_text, [record])
        # A lone surrogate cannot be UTF-8; "\udcxx" is the JSON escape for it.
        return (line + "\n").encode("utf-8", "backslashreplace")

    def _forget_parent(self) -> None:
        self._lock = threading.Lock()
        self._writer, self._shipper = None, None
        self._chain = ChainState(self._chain_key)


_sinks: dict[Path, SpoolSink] = {}
_sinks_lock = threading.Lock()


def sink_for(
    root: str,
    *,
    chain_key: str | None,
    ship_to: OtlpTarget | None,
    on_drop: DropSink,
    on_error: ErrorSink,
) -> SpoolSink:
    """The process's sink for the spool folder ``root`` (created on first use).

    Its losses go to the callbacks of the auditor that created it, so each is counted once.
    """
    path = Path(root).resolve()
    with _sinks_lock:
        sink = _sinks.get(path)
        if sink is None:
            sink = SpoolSink(
                path,
                chain_key=chain_key.encode() if chain_key else None,
                ship_to=ship_to,
                on_drop=on_drop,
                on_error=on_error,
            )
            _sinks[path] = sink
            atexit.register(sink.close, 10.0)
        return sink
