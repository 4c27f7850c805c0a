"""Identifiers pass the collector's PII filters unchanged.

A card-number pattern loose enough to match digit-only UUID groups once corrupted about
0.2% of event ids, the archive's dedup key; random ids would almost never show it, so
these are built to be as digit-heavy as UUIDs get.
"""

from __future__ import annotations

import random

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

from .harness import AuditStack, poll

pytestmark = pytest.mark.e2e

COUNT = 2000


def _digit_heavy_uuid(rng: random.Random) -> str:
    digits = "".join(rng.choice("0123456789") for _ in range(32))
    head = format(rng.getrandbits(32), "08x")
    return f"{head}-{digits[0:4]}-{digits[4:8]}-{digits[8:12]}-{digits[12:24]}"


def test_event_and_request_ids_survive_the_pii_filters(audit_stack: AuditStack) -> None:
    """2000 digit-heavy UUID event and request ids reach the archive exactly as sent."""
    rng = random.Random(20261122)
    sent = {_digit_heavy_uuid(rng): _digit_heavy_uuid(rng) for _ in range(COUNT)}
    provider = LoggerProvider(shutdown_on_exit=False)
    endpoint = f"{audit_stack.stack.otlp_http_endpoint}/v1/logs"
    provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint)))
    logger = provider.get_logger("identifiers")
    for event_id, request_id in sent.items():
        logger.emit(
            event_name="audit.http.request",
            body="GET /items/{item_id} -> 200 (success)",
            attributes={
                "audit.action": "http.request",
                "audit.outcome": "success",
                "audit.event.id": event_id,
                "audit.request.id": request_id,
            },
        )
    assert provider.force_flush(30_000)
    provider.shutdown()

    def archived() -> dict[str, str] | None:
        events = audit_stack.archive_events()
        if len(events) < COUNT:
            return None
        return {
            str(e.attributes["audit.event.id"]): str(e.attributes["audit.request.id"])
            for e in events
        }

    assert poll(archived, timeout=30, what=f"{COUNT} archived events") == sent
