"""Zero code: ``opentelemetry-instrument uvicorn app:app`` audits an app that never imports us.

Real processes: uvicorn under opentelemetry-instrument, real HTTP over loopback.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from otel_audit.archive import read_events

from ._process import free_port, running

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _serve_and_call(
    tmp_path: Path,
    env: dict[str, str],
    stop_signal: signal.Signals = signal.SIGINT,
    app: str = "tests.apps.plain_app:app",
    paths: tuple[str, ...] = (),
) -> Path:
    port = free_port()
    log = tmp_path / "server.log"
    command = [
        str(BIN / "opentelemetry-instrument"),
        str(BIN / "uvicorn"),
        app,
        "--port",
        str(port),
    ]
    with (
        running(command, port=port, env=env, log=log, cwd=ROOT, stop_signal=stop_signal),
        httpx.Client(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        if paths:
            for path in paths:
                assert client.get(path).status_code == 200
            return log
        assert client.get("/items/7", headers={"x-request-id": "zero-1"}).status_code == 200
        assert client.get("/items/403").status_code == 403
        assert client.get("/health").status_code == 404  # excluded by default
    return log


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_zero_code_writes_the_local_archive(tmp_path: Path, stop_signal: signal.Signals) -> None:
    """With no log exporter configured, events land in OTEL_AUDIT_ARCHIVE_DIR by shutdown.

    SIGTERM matters: uvicorn re-raises it after shutting down, so atexit never runs.
    """
    archive = tmp_path / "archive"
    env = {
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "zero-code-app",
        "OTEL_AUDIT_ARCHIVE_DIR": str(archive),
    }
    log = _serve_and_call(tmp_path, env, stop_signal)
    events = list(read_events(archive))
    # The default transport spools into the archive folder, and closes it cleanly.
    assert [e.event_name for e in events][-1] == "audit.transport.closed", log.read_text()
    events = [e for e in events if e.event_name == "audit.http.request"]
    assert [e.attributes["http.response.status_code"] for e in events] == [200, 403]
    assert [e.attributes["audit.seq"] for e in events] == [1, 2]
    first = events[0]
    assert first.event_name == "audit.http.request"
    assert first.attributes["http.route"] == "/items/{item_id}"
    assert first.attributes["audit.request.id"] == "zero-1"
    assert first.resource["service.name"] == "zero-code-app"
    assert first.resource["service.instance.id"]
    assert events[1].attributes["audit.outcome"] == "failure"


def test_zero_code_uses_the_configured_sdk_log_exporter(tmp_path: Path) -> None:
    """With the sdk transport, audit events go through the log exporter the agent configured."""
    env = {
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "console",
        "OTEL_AUDIT_TRANSPORT": "sdk",
        "OTEL_AUDIT_ARCHIVE_DIR": str(tmp_path / "must-stay-empty"),
    }
    log = _serve_and_call(tmp_path, env).read_text()
    assert log.count('"event_name": "audit.http.request"') == 2, log
    assert not (tmp_path / "must-stay-empty").exists()


@pytest.mark.parametrize("redaction", ["true", "false"])
def test_embedded_default_flushes_at_exit(tmp_path: Path, redaction: str) -> None:
    """instrument_app() with nothing configured archives every event by process exit."""
    archive = tmp_path / "archive"
    env = {"OTEL_AUDIT_ARCHIVE_DIR": str(archive), "OTEL_AUDIT_REDACTION": redaction}
    result = subprocess.run(
        [sys.executable, "-m", "tests.apps.embedded_default"],
        cwd=ROOT,
        env={**__import__("os").environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    events = list(read_events(archive))
    names = [e.event_name for e in events]
    assert names.count("audit.http.request") == 5
    assert names.count("audit.item.viewed") == 5
    viewed = [e for e in events if e.event_name == "audit.item.viewed"]
    assert sorted(str(e.attributes["audit.resource.id"]) for e in viewed) == [
        "0",
        "1",
        "2",
        "3",
        "4",
    ]
    assert all(e.attributes["user.id"] == "user-1" for e in viewed)
    assert json.loads(json.dumps(events[0].resource))["service.instance.id"]


def test_explicit_instrument_app_wins_over_zero_code(tmp_path: Path) -> None:
    """An app's own instrument_app(config) replaces the automatic, environment-only one."""
    archive = tmp_path / "archive"
    env = {
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_AUDIT_ARCHIVE_DIR": str(archive),
    }
    app = "tests.apps.explicit_config_app:app"
    _serve_and_call(tmp_path, env, app=app, paths=("/private", "/public"))
    paths = [
        e.attributes["url.path"]
        for e in read_events(archive)
        if e.event_name == "audit.http.request"
    ]
    assert paths == ["/public"]


def test_contrib_instrumentation_stays_on_under_zero_code(tmp_path: Path) -> None:
    """Under opentelemetry-instrument, contrib's spans and duration metric survive auditing."""
    env = {
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "console",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_AUDIT_ARCHIVE_DIR": str(tmp_path / "archive"),
    }
    log = _serve_and_call(tmp_path, env).read_text()
    assert "Skipping FastAPI instrumentation" not in log
    assert '"name": "opentelemetry.instrumentation.fastapi"' in log or (
        '"kind": "SpanKind.SERVER"' in log
    ), log
    assert '"http.route": "/items/{item_id}"' in log, log
    assert '"http.server.request.duration"' in log or '"http.server.duration"' in log, log
    events = [e for e in read_events(tmp_path / "archive") if e.event_name == "audit.http.request"]
    assert [e.attributes["http.route"] for e in events] == ["/items/{item_id}"] * 2
