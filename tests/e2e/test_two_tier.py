"""Scale-out: app -> agent collector -> gateway collector -> archive, VictoriaLogs and traces."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from examples.stack import ROOT, free_port

from .harness import AuditStack
from .traffic import (
    Traffic,
    check_archive,
    check_note_only_in_victorialogs,
    check_span_events,
    check_victorialogs,
    drive_session,
    wait_for_archive,
)

pytestmark = pytest.mark.e2e

AGENT_CONFIG = ROOT / "collector-config" / "agent.yaml"
GATEWAY_OVERLAY = ROOT / "collector-config" / "gateway.yaml"
PATIENCE = 30.0


def test_two_tier_agent_gateway(tmp_path: Path) -> None:
    """Through an agent and a gateway, every event arrives once in the archive and backends."""
    stack = AuditStack(tmp_path / "stack")
    agent_http = f"127.0.0.1:{free_port()}"
    agent_env = {
        "OTEL_AUDIT_COLLECTOR_GRPC": f"127.0.0.1:{free_port()}",
        "OTEL_AUDIT_COLLECTOR_HTTP": agent_http,
        "OTEL_AUDIT_COLLECTOR_HEALTH": f"127.0.0.1:{free_port()}",
        "OTEL_AUDIT_COLLECTOR_METRICS_PORT": str(free_port()),
        "OTEL_AUDIT_QUEUE_DIR": str(tmp_path / "stack" / "agent-queue"),
        "OTEL_AUDIT_GATEWAY_ENDPOINT": stack.stack.otlp_http_endpoint,
    }
    try:
        stack.start("victoria-logs", stack.victoria_logs())
        stack.start("jaeger", stack.jaeger())
        gateway = stack.stack.collector(
            env=stack.collector_env(), overlays=[GATEWAY_OVERLAY], name="gateway"
        )
        stack.start("gateway", gateway)
        agent = stack.stack.collector(config=AGENT_CONFIG, env=agent_env, name="agent")
        stack.start("agent", agent)
        stack.start("app", stack.app(exporter=f"http://{agent_http}"))

        traffic = Traffic(stack.app_url)
        note = f"app note via the agent {uuid.uuid4().hex}"
        drive_session(traffic, note)
        archived = wait_for_archive(stack, traffic, PATIENCE)
        check_archive(archived, traffic)
        check_victorialogs(stack, archived, PATIENCE)
        check_span_events(stack, archived, PATIENCE)
        check_note_only_in_victorialogs(stack, note, PATIENCE)
    finally:
        stack.stop()
