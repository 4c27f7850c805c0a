"""Which OpenTelemetry providers the audit trail writes to.

An application that already configured OTel (or passed providers to ``instrument_app``)
gets its events through those providers. One that did not gets a private, non-global
logger provider: OTLP when an ``OTEL_EXPORTER_OTLP_*`` endpoint is set, otherwise the local
OTLP-JSON archive, so auditing works with nothing else running. It is never installed
globally, so it cannot change how the application's own logs are exported.
"""

from __future__ import annotations

import os
import threading
import uuid

from opentelemetry import _logs
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.resources import Resource

from ._archive_exporter import ArchiveLogExporter
from ._compat import logger_provider_delivers
from ._export_queue import AccountedBatchProcessor, DropSink

# A larger queue than the SDK default (2048), so an audit burst survives an exporter pause;
# beyond it new records are refused and counted (see _export_queue).
_QUEUE_SIZE = 65536

_lock = threading.Lock()
_embedded: dict[str, LoggerProvider] = {}
# One instance id per process, shared by every provider this module builds.
SERVICE_INSTANCE_ID = str(uuid.uuid4())


def resolve_logger_provider(
    explicit: _logs.LoggerProvider | None, archive_dir: str, on_drop: DropSink
) -> _logs.LoggerProvider:
    """The provider audit events go to: explicit, else global if configured, else embedded.

    ``on_drop`` counts what the embedded pipeline loses; providers the application brings
    account for their own pipelines.
    """
    if explicit is not None:
        return explicit
    global_provider = _logs.get_logger_provider()
    if logger_provider_delivers(global_provider):
        return global_provider
    return embedded_logger_provider(archive_dir, on_drop)


def embedded_logger_provider(archive_dir: str, on_drop: DropSink) -> LoggerProvider:
    """The process-wide private provider (one per archive folder), created on first use.

    Its losses go to the ``on_drop`` of the caller that created it, so each is counted
    once even when several apps' auditors share the provider.
    """
    with _lock:
        provider = _embedded.get(archive_dir)
        if provider is None:
            resource = Resource.create({"service.instance.id": SERVICE_INSTANCE_ID})
            # shutdown_on_exit flushes the queue at interpreter exit.
            provider = LoggerProvider(resource=resource, shutdown_on_exit=True)
            provider.add_log_record_processor(_processor(archive_dir, on_drop))
            _embedded[archive_dir] = provider
        return provider


def _processor(archive_dir: str, on_drop: DropSink) -> AccountedBatchProcessor:
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not endpoint:
        # The archive knows which records of a failed batch it lost, and says so itself.
        archive = ArchiveLogExporter(archive_dir, on_lost=on_drop)
        return AccountedBatchProcessor(
            archive, on_drop, capacity=_QUEUE_SIZE, count_export_failures=False
        )
    return AccountedBatchProcessor(_otlp_exporter(), on_drop, capacity=_QUEUE_SIZE)


def _otlp_exporter() -> LogRecordExporter:
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"  # the OTLP specification's default
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter()
    from opentelemetry.exporter.otlp.proto.http._log_exporter import (
        OTLPLogExporter as HTTPLogExporter,
    )

    return HTTPLogExporter()
