"""The ``otlp`` transport's shipper against the real otelcol-audit: HTTP and gRPC receivers.

Spool segments in the contract layout are shipped by a ``SegmentShipper`` to the collector's
OTLP receivers with each protocol; the events must then be in the collector's archive, and
the shipped segments gone.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from examples.stack import BIN
from otel_audit._transport._shipper import OtlpTarget, SegmentShipper

from ..test_shipper import closed_segments, line, wait_for
from .harness import AuditStack, poll

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (BIN / "otelcol-audit").exists(), reason="otelcol-audit not built (make collector)"
    ),
]

ARCHIVE_PATIENCE = 30.0


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json", "grpc"])
def test_shipped_events_reach_the_collector_archive(
    tmp_path: Path, audit_stack: AuditStack, protocol: str
) -> None:
    """Every event of the shipped segments is in otelcol-audit's archive."""
    stack = audit_stack.stack
    endpoint = (
        f"http://127.0.0.1:{stack.grpc_port}" if protocol == "grpc" else stack.otlp_http_endpoint
    )
    target = OtlpTarget.from_env(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol}
    )
    assert target is not None
    instance = str(uuid.uuid4())
    folder = tmp_path / "spool" / instance
    folder.mkdir(parents=True)
    ids = [f"shipper-{protocol}-{uuid.uuid4()}" for _ in range(5)]
    (folder / "seg-20261130T120000.000000Z-000001.jsonl").write_bytes(
        b"".join(line(event_id) for event_id in ids[:3])
    )
    (folder / "seg-20261130T120001.000000Z-000002.jsonl").write_bytes(
        b"".join(line(event_id) for event_id in ids[3:])
    )
    errors: list[tuple[str, BaseException | None]] = []
    drops: list[tuple[str, int]] = []
    shipper = SegmentShipper(
        tmp_path / "spool",
        instance,
        target,
        on_drop=lambda reason, count: drops.append((reason, count)),
        on_error=lambda reason, error: errors.append((reason, error)),
        poll_interval=0.1,
    )
    shipper.start()
    try:
        wait_for(lambda: not closed_segments(folder))
    finally:
        assert shipper.stop(timeout=10) is True, errors

    def archived() -> list[str] | None:
        found = [
            event.attributes.get("audit.event.id")
            for event in audit_stack.archive_events()
            if event.attributes.get("audit.event.id") in ids
        ]
        return [str(event_id) for event_id in found] if len(set(found)) == len(ids) else None

    found = poll(archived, timeout=ARCHIVE_PATIENCE, what="shipped events in the archive")
    assert sorted(set(found)) == sorted(ids)
    assert drops == []
