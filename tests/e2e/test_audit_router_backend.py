"""audit_router over VictoriaLogs answers as audit_router over the collector's archive.

The demo app (examples/app.py, tenants acme and globex) runs zero-code instrumented and
exports to otelcol-audit, which archives the trail and sends it on to VictoriaLogs (real
processes on loopback); the demo's scripted session plays logins good and bad, changes and
denied accesses. Two routers, one on ``victorialogs+http://`` and one on the archive folder,
give each tenant the same events, totals, counts and failed logins, and keep the other
tenant's events out of both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.testclient import TestClient

from examples.demo import play_session
from examples.stack import Stack
from otel_audit import Actor, AuditConfig, instrument_app, set_actor
from otel_audit.archive import read_events
from otel_audit.fastapi import audit_router

from .browser import logs_stack
from .harness import AUDIT_QUERY, LIVE_SERVICES, poll, start

pytestmark = pytest.mark.e2e

SERVICE_NAME = "demo-audit-router"
TOKENS = {
    "acme": Actor(id="auditor-acme", tenant="acme"),
    "globex": Actor(id="auditor-globex", tenant="globex"),
    "all": Actor(id="auditor", tenant="ops", scopes=("audit:read:all",)),
}


def authenticate(authorization: Annotated[str, Header()]) -> None:
    actor = TOKENS.get(authorization.removeprefix("Bearer "))
    if actor is None:
        raise HTTPException(401, "invalid token")
    set_actor(actor)


@dataclasses.dataclass(frozen=True)
class Routers:
    backend: TestClient
    files: TestClient


@pytest.fixture(scope="module")
def routers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Routers]:
    """The demo's trail in the collector's archive and in VictoriaLogs, a router on each."""
    workdir = tmp_path_factory.mktemp("audit-router")
    with logs_stack(workdir / "stack") as stack:
        trail_in_both(stack)
        clients = []
        for name, source in (("backend", f"victorialogs+{stack.logs_url}"),
                             ("files", str(stack.archive_dir))):  # fmt: skip
            app = FastAPI()
            instrument_app(app, AuditConfig(transport="spool", spool_dir=str(workdir / name)))
            app.include_router(
                audit_router(source, dependencies=[Depends(authenticate)]), prefix="/audit"
            )
            clients.append(TestClient(app))
        with clients[0] as backend, clients[1] as files:
            yield Routers(backend, files)


def trail_in_both(stack: Stack) -> None:
    app = stack.zero_code_app("examples.app:app", SERVICE_NAME, {"OTEL_TRACES_EXPORTER": "none"})
    app = dataclasses.replace(app, health_url=f"{app.base_url}/docs")  # never audited
    start(app)
    try:
        play_session(app.base_url)
    finally:
        app.stop()  # the app flushes its audit trail to the collector as it exits
        LIVE_SERVICES.pop(app.log, None)

    def complete() -> int | None:
        archived = [e for e in read_events(stack.archive_dir) if e.event_name.startswith("audit.")]
        stored = len(stack.query_logs(AUDIT_QUERY))
        return stored if archived and stored == len(archived) else None

    poll(complete, timeout=60, what="the archived trail, all of it in VictoriaLogs")


def answer(client: TestClient, path: str, token: str, **params: Any) -> Any:
    response = client.get(
        "/audit" + path, params=params, headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def listing(client: TestClient, token: str, path: str = "/events", **params: Any) -> list[Any]:
    """(event id, action, outcome, tenant) of every event, page by page."""
    rows: list[Any] = []
    cursor = None
    while True:
        page = answer(
            client, path, token, limit=10, **params, **({"cursor": cursor} if cursor else {})
        )
        rows += [(e["event_id"], e["timestamp"], e["attributes"].get("audit.action"),
                  e["attributes"].get("audit.outcome"), e["attributes"].get("tenant.id"))
                 for e in page["events"]]  # fmt: skip
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


@pytest.mark.parametrize("token", ["acme", "globex", "all"])
def test_the_backend_and_the_archive_give_the_same_answers(routers: Routers, token: str) -> None:
    """Events (paged), totals, counts and failed logins: equal from both sources, and
    limited to the caller's tenant."""
    from_backend = listing(routers.backend, token)
    assert from_backend == listing(routers.files, token)
    assert from_backend
    if token != "all":
        assert {row[4] for row in from_backend} == {token}
    for path, params in (("/stats", {}), ("/stats", {"action": "auth.*"})):
        backend = answer(routers.backend, path, token, **params)
        files = answer(routers.files, path, token, **params)
        for key in (
            "total",
            "by_action",
            "by_outcome",
            "by_actor",
            "by_tenant",
            "failed_logins",
            "denied",
        ):
            assert backend[key] == files[key], key
    backend = answer(routers.backend, "/security/failed-logins", token)
    files = answer(routers.files, "/security/failed-logins", token)
    if token == "all":  # the demo's failed logins carry no tenant: the others see none
        assert backend["total"] > 0
    assert [e["event_id"] for e in backend["events"]] == [e["event_id"] for e in files["events"]]
    assert (backend["total"], backend["by_client"], backend["by_user"]) == (
        files["total"], files["by_client"], files["by_user"],
    )  # fmt: skip


def test_another_tenants_event_is_not_found_in_the_backend(routers: Routers) -> None:
    """By id through VictoriaLogs: globex's event is 404 for acme, found for globex."""
    theirs = listing(routers.files, "globex")[0][0]
    headers = {"authorization": "Bearer acme"}
    assert routers.backend.get(f"/audit/events/{theirs}", headers=headers).status_code == 404
    assert answer(routers.backend, f"/events/{theirs}", "globex")["event_id"] == theirs
