"""What otel_audit reads from FastAPI, Starlette and the SDK, checked on real apps.

These tests also run on the oldest FastAPI that pyproject allows (``make compat``), so a
release that moves an internal shows up here, in one file.
"""

from __future__ import annotations

import logging
from typing import Literal

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from otel_audit import AuditConfig, instrument_app

from .conftest import Telemetry, Tracing, audited_app

# (request path, full route template) for an app laid out as real services are.
NESTED_ROUTES = [
    ("/api/v1/login/access-token", "/api/v1/login/access-token"),
    ("/api/v1/users/7", "/api/v1/users/{user_id}"),
    ("/api/v1/users/7/items/3", "/api/v1/users/{user_id}/items/{item_id}"),
    ("/api/v1/status", "/api/v1/status"),
    ("/plain/5", "/plain/{n}"),
    ("/admin/settings/9", "/admin/settings/{key}"),
    ("/admin/v2/reports/4", "/admin/v2/reports/{report_id}"),
]
# Routes inside mounted sub-applications: contrib's span reports only the mount's path.
MOUNTED = {"/admin/settings/{key}", "/admin/v2/reports/{report_id}"}


def _add_nested_routes(app: FastAPI) -> None:
    """Routers in routers with prefixes, plain routes, and a mounted sub-app with its own."""
    login = APIRouter(prefix="/login")

    @login.get("/access-token")
    async def access_token() -> dict[str, str]:
        return {"token": "t"}

    items = APIRouter(prefix="/items")

    @items.get("/{item_id}")
    async def item(user_id: int, item_id: int) -> dict[str, int]:
        return {"user": user_id, "item": item_id}

    users = APIRouter(prefix="/users")
    users.include_router(items, prefix="/{user_id}")

    @users.get("/{user_id}")
    async def user(user_id: int) -> dict[str, int]:
        return {"user": user_id}

    api = APIRouter()
    api.include_router(login)
    api.include_router(users)

    @api.get("/status")
    async def status() -> dict[str, str]:
        return {"ok": "yes"}

    app.include_router(api, prefix="/api/v1")

    @app.get("/plain/{n}")
    async def plain(n: int) -> dict[str, int]:
        return {"n": n}

    admin = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

    @admin.get("/settings/{key}")
    async def setting(key: str) -> dict[str, str]:
        return {"key": key}

    reports = APIRouter(prefix="/reports")

    @reports.get("/{report_id}")
    async def report(report_id: int) -> dict[str, int]:
        return {"report": report_id}

    admin.include_router(reports, prefix="/v2")
    app.mount("/admin", admin)


@pytest.mark.parametrize(("path", "template"), NESTED_ROUTES)
def test_route_is_the_full_template(
    telemetry: Telemetry, tracing: Tracing, path: str, template: str
) -> None:
    """http.route has every include_router and mount prefix, as the server span has."""
    app = audited_app(telemetry, tracing=tracing)
    _add_nested_routes(app)
    assert TestClient(app).get(path).status_code == 200
    record = telemetry.one_record("audit.http.request")
    assert record.attributes["http.route"] == template
    (span,) = telemetry.server_spans()
    span_route = span.attributes["http.route"] if span.attributes else None
    if tracing == "contrib" and template in MOUNTED:
        assert span_route == "/admin"  # contrib's own limit: it does not look inside mounts
    else:
        assert span_route == template
    (event,) = [e for e in span.events if e.name == "audit.http.request"]
    assert event.attributes is not None
    assert event.attributes["audit.event.id"] == record.attributes["audit.event.id"]


def test_route_without_tracing_is_the_full_template(telemetry: Telemetry) -> None:
    """With no HTTP tracing at all, the template is found from the routing alone."""
    app = audited_app(telemetry, tracing="none")
    _add_nested_routes(app)
    client = TestClient(app)
    for path, _ in NESTED_ROUTES:
        assert client.get(path).status_code == 200
    routes = [r.attributes["http.route"] for r in telemetry.audit_records()]
    assert routes == [template for _, template in NESTED_ROUTES]


Order = Literal["audit_first", "contrib_first"]


@pytest.mark.parametrize("order", ["audit_first", "contrib_first"])
def test_contrib_instrumentation_works_in_either_order(
    telemetry: Telemetry, order: Order, caplog: pytest.LogCaptureFixture
) -> None:
    """Auditing never switches contrib off: its spans, its metric and the echo all work."""
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    _add_nested_routes(app)

    def audit() -> None:
        instrument_app(
            app,
            AuditConfig(),
            logger_provider=telemetry.logger_provider,
            meter_provider=telemetry.meter_provider,
        )

    def contrib() -> None:
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )

    caplog.set_level(logging.WARNING)
    first, second = (audit, contrib) if order == "audit_first" else (contrib, audit)
    first()
    second()
    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/api/v1/users/7").status_code == 200
    crashed = client.get("/boom", headers={"x-request-id": "crash-7"})
    assert crashed.status_code == 500
    assert crashed.headers["x-request-id"] == "crash-7"
    assert "Skipping FastAPI instrumentation" not in caplog.text
    spans = telemetry.server_spans()
    assert [s.attributes["http.route"] for s in spans if s.attributes] == [
        "/api/v1/users/{user_id}",
        "/boom",
    ]
    assert spans[1].status.status_code.name == "ERROR"  # contrib recorded the exception
    names = _metric_names(telemetry)
    assert names & {"http.server.request.duration", "http.server.duration"}, names
    records = telemetry.audit_records()
    assert [r.attributes["audit.outcome"] for r in records] == ["success", "error"]
    assert records[1].attributes["audit.request.id"] == "crash-7"


def _metric_names(telemetry: Telemetry) -> set[str]:
    data = telemetry.metric_reader.get_metrics_data()
    return {
        metric.name
        for resource_metrics in (data.resource_metrics if data else ())
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    }
