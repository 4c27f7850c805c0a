"""audit_router: the audit trail as a read-only REST API, isolated by tenant, itself audited.

A real trail: a FastAPI app instrumented with the spool transport, driven by TestClient
(logins, failed logins, item views, role changes, denied requests, for two tenants and
anonymous callers), closed by its lifespan. A second real app serves it with
``audit_router`` under ``/api/audit`` (a router in a router with a prefix), behind a bearer
token dependency that says who calls with ``set_actor()``; that app's own trail (its own
spool) is read back to check every access was recorded as ``audit.audit_log.read``.
Answers are compared with the query engine run directly on the same archive (what
``otel-audit query --format json`` prints).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection

from otel_audit import Action, Actor, AuditConfig, instrument_app, record, set_actor
from otel_audit.archive import ArchivedEvent
from otel_audit.fastapi import audit_router
from otel_audit.query import (
    EventFilter,
    FileSource,
    compute_stats,
    event_to_dict,
    iter_events,
    page_events,
    pseudonym,
)

from .conftest import TESTCLIENT_SENDS_PEER

ACME = Actor(id="ann", tenant="acme", scopes=("audit:read",), auth_method="api_key")
GLOBEX = Actor(id="gus", tenant="globex", auth_method="api_key")
ROOT = Actor(id="root", tenant="ops", scopes=("audit:read", "audit:read:all"))
NO_TENANT = Actor(id="svc")
TOKENS = {"t-acme": ACME, "t-globex": GLOBEX, "t-root": ROOT, "t-none": NO_TENANT}
KEY = "router-tests-key"
COUNTERS = ("audit.seq", "audit.chain.")
ALL_PATHS = ("/events", "/stats", "/security/failed-logins")


# --- the trail ------------------------------------------------------------------------------


def business_app(spool: Path, key: str | None = None) -> FastAPI:
    """An app whose callers say who they are in X-User / X-Tenant (trail-making only)."""
    app = FastAPI()
    config = AuditConfig(transport="spool", spool_dir=str(spool), pseudonymization_key=key)
    instrument_app(app, config, tracer_provider=TracerProvider())

    def caller(
        x_user: Annotated[str | None, Header()] = None,
        x_tenant: Annotated[str | None, Header()] = None,
    ) -> None:
        if x_user is not None:
            set_actor(Actor(id=x_user, tenant=x_tenant))

    @app.post("/login", dependencies=[Depends(caller)])
    def login(user: str, tenant: str, ok: bool) -> dict[str, str]:
        if not ok:
            record(Action.AUTH_LOGIN_FAILED, outcome="failure", actor=Actor(id=user, tenant=tenant))
            raise HTTPException(401, "bad credentials")
        record(Action.AUTH_LOGIN, actor=Actor(id=user, tenant=tenant))
        return {"user": user}

    @app.get("/items/{item_id}", dependencies=[Depends(caller)])
    def item(item_id: int) -> dict[str, int]:
        record("item.viewed", resource_type="item", resource_id=item_id)
        return {"id": item_id}

    @app.put("/users/{user_id}/role", dependencies=[Depends(caller)])
    def role(user_id: str, role: str) -> dict[str, str]:
        record(Action.USER_ROLE_CHANGED, resource_type="user", resource_id=user_id,
               changes={"role": ("member", role)})  # fmt: skip
        return {"role": role}

    @app.get("/admin", dependencies=[Depends(caller)])
    def admin() -> None:
        raise HTTPException(403, "admins only")

    @app.get("/public")
    def public() -> dict[str, str]:
        return {"status": "ok"}

    return app


def write_trail(spool: Path, key: str | None = None) -> Path:
    """Drive the business app for acme, globex and anonymous callers; returns the spool."""
    app = business_app(spool, key)
    peers = (
        [{"client": (f"10.0.0.{n}", 4000 + n)} for n in (1, 2)] if TESTCLIENT_SENDS_PEER else [{}]
    )
    # One lifespan (the first client's) opens and closes the trail; the other client only
    # comes from another address.
    with TestClient(app, **peers[0]) as first:  # type: ignore[arg-type]
        clients = [first, *(TestClient(app, **peer) for peer in peers[1:])]  # type: ignore[arg-type]
        for round_ in range(3):
            for n, client in enumerate(clients):
                for user, tenant in (("ann", "acme"), ("al", "acme"), ("gus", "globex")):
                    who = {"x-user": user, "x-tenant": tenant}
                    client.post("/login", params={"user": user, "tenant": tenant, "ok": False})
                    client.post("/login", params={"user": user, "tenant": tenant, "ok": True})
                    client.get(f"/items/{round_ * 10 + n}", headers=who)
                    client.get("/admin", headers=who)
                client.put("/users/al/role", params={"role": "admin"},
                           headers={"x-user": "ann", "x-tenant": "acme"})  # fmt: skip
                client.get("/public")
    return spool


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The business app's closed trail (spool layout), written once for the module."""
    return write_trail(tmp_path_factory.mktemp("trail"))


def engine(trail: Path, **fields: Any) -> list[dict[str, Any]]:
    """Every event the engine selects, as ``otel-audit query --format json`` prints them."""
    page = page_events(trail, EventFilter.parse(**fields), limit=100_000)
    assert page.next_cursor is None
    return [event_to_dict(event) for event in page.events]


# --- the API app ----------------------------------------------------------------------------


def authenticate(authorization: Annotated[str | None, Header()] = None) -> None:
    """The app's own auth: a known bearer token sets the actor; an unknown one is refused.

    A sync dependency, so FastAPI runs it in a worker thread with a copy of the context.
    """
    if authorization is None:
        return  # no credentials: the router itself must refuse (401)
    scheme, _, token = authorization.partition(" ")
    actor = TOKENS.get(token) if scheme.lower() == "bearer" else None
    if actor is None:
        raise HTTPException(401, "invalid token")
    set_actor(actor)


@dataclass
class AuditApi:
    """The API app, its client, and its own trail (the accesses)."""

    client: TestClient
    reads_spool: Path
    stack: ExitStack
    requests: int = 0
    closed: bool = field(default=False)

    def get(self, path: str, token: str | None = "t-root", **params: Any) -> Any:
        """The response to GET /api/audit<path> with ``token`` (httpx's, or httpx2's)."""
        self.requests += 1
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return self.client.get("/api/audit" + path, params=params, headers=headers)

    def json(self, path: str, token: str | None = "t-root", **params: Any) -> Any:
        response = self.get(path, token, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def walk(self, path: str = "/events", token: str = "t-root", **params: Any) -> list[Any]:
        """Every event of a listing, following next_cursor page by page."""
        events: list[Any] = []
        cursor = None
        while True:
            extra: dict[str, str] = {"cursor": cursor} if cursor else {}
            page = self.json(path, token, **params, **extra)
            events += page["events"]
            cursor = page["next_cursor"]
            if cursor is None:
                return events

    def reads(self) -> list[ArchivedEvent]:
        """The ``audit.audit_log.read`` events of the app's trail (closes the app first)."""
        if not self.closed:
            self.stack.close()
            self.closed = True
        return list(iter_events(self.reads_spool, EventFilter(action="audit_log.read")))


def api_app(source: Any, reads_spool: Path, key: str | None = None) -> FastAPI:
    app = FastAPI()
    instrument_app(
        app, AuditConfig(transport="spool", spool_dir=str(reads_spool), pseudonymization_key=key)
    )
    api = APIRouter(prefix="/api")
    api.include_router(audit_router(source, dependencies=[Depends(authenticate)]), prefix="/audit")
    app.include_router(api)
    return app


@pytest.fixture
def api(trail: Path, tmp_path: Path) -> Iterator[AuditApi]:
    with ExitStack() as stack:
        reads = tmp_path / "reads"
        client = stack.enter_context(TestClient(api_app(trail, reads)))
        yield AuditApi(client, reads, stack.pop_all())


def tenants(events: list[dict[str, Any]]) -> set[object]:
    return {event["attributes"].get("tenant.id") for event in events}


# --- creation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dependencies", "error", "message"),
    [
        ([], ValueError, "at least one auth dependency"),
        ((), ValueError, "at least one auth dependency"),
        ("authenticate", TypeError, "list of fastapi.Depends"),
        (None, TypeError, "list of fastapi.Depends"),
        ([authenticate], TypeError, "must be fastapi.Depends"),
        ([Depends()], TypeError, "must be fastapi.Depends"),
    ],
)
def test_the_router_is_refused_without_an_auth_dependency(
    trail: Path, dependencies: Any, error: type[Exception], message: str
) -> None:
    """No auth dependency, or something that is not one: refused when the router is made."""
    with pytest.raises(error, match=message):
        audit_router(trail, dependencies=dependencies)


def test_dependencies_are_a_required_keyword(trail: Path) -> None:
    """Forgetting ``dependencies`` altogether fails at once too."""
    with pytest.raises(TypeError, match="dependencies"):
        audit_router(trail)  # type: ignore[call-arg]


def test_a_victorialogs_url_that_cannot_work_is_refused_at_creation() -> None:
    """A source URL with an unknown scheme is a configuration error, not a 503 later."""
    with pytest.raises(ValueError, match="victorialogs"):
        audit_router("victorialogs+ftp://127.0.0.1:9428", dependencies=[Depends(authenticate)])


# --- authentication and tenant isolation ----------------------------------------------------


@pytest.mark.parametrize("path", [*ALL_PATHS, "/events/whatever"])
def test_a_call_without_credentials_is_401(api: AuditApi, path: str) -> None:
    """No actor after the app's dependencies: 401 on every endpoint, nothing leaked."""
    response = api.get(path, token=None)
    assert response.status_code == 401
    assert response.json() == {"detail": "authentication required"}


def test_the_apps_own_refusal_stands(api: AuditApi) -> None:
    """An unknown token is refused by the app's dependency before the router runs."""
    response = api.get("/events", token="t-forged")
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid token"}


def test_a_tenant_sees_only_its_own_events(api: AuditApi, trail: Path) -> None:
    """acme's caller lists exactly the engine's acme events, none of anyone else's."""
    expected = engine(trail, tenant="acme")
    events = api.walk(token="t-acme", limit=50)
    assert len(events) == len(expected) > 0
    assert tenants(events) == {"acme"}
    assert [e["event_id"] for e in events] == [e["event_id"] for e in expected]
    assert api.json("/events", "t-acme")["total"] == len(expected)
    globex = api.walk(token="t-globex", limit=50)
    assert tenants(globex) == {"globex"}
    assert not {e["event_id"] for e in events} & {e["event_id"] for e in globex}


def test_tenant_callers_get_no_cross_tenant_counters(api: AuditApi, trail: Path) -> None:
    """Line numbers and sequence numbers count every tenant's events: not shown to tenants."""
    (event,) = api.json("/events", "t-acme", limit=1)["events"]
    assert event["source"] is None
    assert not [name for name in event["attributes"] if name.startswith(COUNTERS)]
    (full,) = [e for e in engine(trail, tenant="acme") if e["event_id"] == event["event_id"]]
    assert full["source"] and "audit.seq" in full["attributes"]
    shown = {k: v for k, v in full["attributes"].items() if not k.startswith(COUNTERS)}
    assert event == {**full, "source": None, "attributes": shown}


def test_the_all_tenants_scope_sees_everything(api: AuditApi, trail: Path) -> None:
    """audit:read:all lists every event, as the engine prints them (source and seq included)."""
    expected = engine(trail)
    assert api.walk(limit=1000) == expected
    assert {"acme", "globex", None} <= tenants(expected)


@pytest.mark.parametrize("token", ["t-acme", "t-globex"])
def test_stats_and_failed_logins_count_the_own_tenant_only(
    api: AuditApi, trail: Path, token: str
) -> None:
    """/stats and /security/failed-logins equal the engine's answers for the caller's tenant."""
    tenant = TOKENS[token].tenant
    stats = api.json("/stats", token)
    assert stats == compute_stats(trail, EventFilter(tenant=tenant)).to_dict()
    assert stats["by_tenant"] == {tenant: stats["total"]}
    failed = api.json("/security/failed-logins", token, limit=1000)
    expected = engine(trail, tenant=tenant, category="failed-login")
    assert [e["event_id"] for e in failed["events"]] == [e["event_id"] for e in expected]
    assert failed["total"] == len(expected) > 0
    counts = compute_stats(trail, EventFilter(tenant=tenant, category="failed-login"))
    assert failed["by_client"] == counts.failed_logins_by_client
    assert failed["by_user"] == counts.failed_logins_by_user
    assert set(failed["by_user"]) <= {"ann", "al", "gus"} - (
        {"gus"} if tenant == "acme" else {"ann", "al"}
    )


def test_all_tenants_stats_equal_the_engine(api: AuditApi, trail: Path) -> None:
    """For audit:read:all, /stats is the engine's stats over everything, bucket included."""
    assert (
        api.json("/stats", bucket="15m")
        == compute_stats(trail, EventFilter(), bucket=timedelta(minutes=15)).to_dict()
    )


def test_another_tenants_event_is_not_found(api: AuditApi, trail: Path) -> None:
    """By id: an event of another tenant answers 404, like one that does not exist."""
    theirs = engine(trail, tenant="globex")[0]["event_id"]
    mine = engine(trail, tenant="acme")[0]
    assert api.json(f"/events/{mine['event_id']}", "t-acme")["event_id"] == mine["event_id"]
    refused = api.get(f"/events/{theirs}", "t-acme")
    missing = api.get("/events/no-such-event", "t-acme")
    assert refused.status_code == missing.status_code == 404
    assert refused.json() == missing.json() == {"detail": "no such event"}
    assert api.json(f"/events/{theirs}") == engine(trail, tenant="globex")[0]


def test_an_anonymous_event_is_for_the_all_tenants_scope_only(api: AuditApi, trail: Path) -> None:
    """Events without tenant.id (anonymous requests) belong to no tenant's view."""
    anonymous = engine(trail, route="/public")
    assert anonymous and all("tenant.id" not in e["attributes"] for e in anonymous)
    assert api.get(f"/events/{anonymous[0]['event_id']}", "t-acme").status_code == 404
    assert api.json("/events", "t-acme", route="/public")["total"] == 0
    assert api.json("/events", route="/public")["total"] == len(anonymous)


@pytest.mark.parametrize("path", ALL_PATHS)
@pytest.mark.parametrize(
    ("token", "tenant"), [("t-acme", "globex"), ("t-none", "acme"), ("t-none", None)]
)
def test_asking_for_another_tenant_is_403(
    api: AuditApi, path: str, token: str, tenant: str | None
) -> None:
    """Another tenant's filter, or a caller without a tenant: 403, with no count in the answer."""
    params = {"tenant": tenant} if tenant else {}
    response = api.get(path, token, **params)
    assert response.status_code == 403
    assert set(response.json()) == {"detail"}


def test_the_own_tenant_may_be_named(api: AuditApi) -> None:
    """tenant=<own> is the same as no tenant filter."""
    assert api.json("/events", "t-acme", tenant="acme") == api.json("/events", "t-acme")


# --- listings -------------------------------------------------------------------------------


@pytest.mark.parametrize("newest_first", [False, True])
def test_the_cursor_walks_every_event_once(api: AuditApi, trail: Path, newest_first: bool) -> None:
    """Pages of 7 joined are the whole listing in order, each event once."""
    events = api.walk(limit=7, newest_first=newest_first)
    expected = engine(trail)
    if newest_first:
        expected.reverse()
    assert [e["event_id"] for e in events] == [e["event_id"] for e in expected]
    assert len({e["event_id"] for e in events}) == len(events)


@pytest.mark.parametrize(
    "fields",
    [
        {"action": "auth.*"},
        {"action": "user.role_changed", "user": "ann"},
        {"outcome": "failure"},
        {"category": "denied"},
        {"category": "failed-login", "user": "gus"},
        {"route": "/items/{item_id}", "outcome": "success"},
        {"resource_type": "item", "resource_id": "10"},
        {"since": "1h"},
        {"until": "2000-01-01T00:00:00Z"},
    ],
)
def test_filters_select_what_the_engine_selects(
    api: AuditApi, trail: Path, fields: dict[str, str]
) -> None:
    """Each filter answers exactly the engine's events (otel-audit query --format json)."""
    expected = engine(trail, **fields)
    page = api.json("/events", limit=1000, **fields)
    assert page["events"] == expected
    assert page["total"] == len(expected)
    if "until" not in fields:
        assert expected


def test_filters_by_trace_id(api: AuditApi, trail: Path) -> None:
    """trace_id (any case) selects the events of one trace."""
    event = engine(trail, action="item.viewed")[0]
    trace_id = event["trace_id"]
    assert trace_id is not None
    page = api.json("/events", trace_id=trace_id.upper())
    assert page["events"] == engine(trail, trace_id=trace_id)


# --- bad input and an unreachable source ----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "status", "words"),
    [
        ("/events", {"outcome": "denied"}, 422, "outcome"),
        ("/events", {"category": "all"}, 422, "category"),
        ("/events", {"limit": 0}, 422, "limit"),
        ("/events", {"limit": 1001}, 422, "limit"),
        ("/events", {"trace_id": "xyz"}, 422, "trace_id"),
        ("/events", {"user": ""}, 422, "user"),
        ("/events", {"since": "yesterday"}, 400, "since: 'yesterday' is neither RFC 3339"),
        ("/events", {"since": "1h", "until": "2h"}, 400, "since must be before until"),
        ("/events", {"cursor": "not-a-cursor"}, 400, "not a cursor"),
        ("/stats", {"bucket": "soon"}, 400, "bucket: 'soon' is not a duration"),
        ("/security/failed-logins", {"until": "never"}, 400, "until"),
    ],
)
def test_bad_parameters_are_refused_clearly(
    api: AuditApi, path: str, params: dict[str, Any], status: int, words: str
) -> None:
    """Validation errors are 422, the engine's filter errors 400 with its one-line message."""
    response = api.get(path, **params)
    assert response.status_code == status
    assert words in json.dumps(response.json())


def test_a_cursor_for_the_other_order_is_refused(api: AuditApi) -> None:
    """A cursor is bound to its order."""
    cursor = api.json("/events", limit=1)["next_cursor"]
    response = api.get("/events", limit=1, cursor=cursor, newest_first=True)
    assert response.status_code == 400
    assert "other order" in response.json()["detail"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_backend_is_503_without_a_traceback(tmp_path: Path) -> None:
    """VictoriaLogs down: 503 and one sentence; the access is recorded as an error."""
    source = f"victorialogs+http://127.0.0.1:{free_port()}"
    with ExitStack() as stack:
        client = stack.enter_context(TestClient(api_app(source, tmp_path / "reads")))
        api = AuditApi(client, tmp_path / "reads", stack.pop_all())
        for path in ALL_PATHS:
            response = api.get(path)
            assert response.status_code == 503
            assert response.json() == {"detail": "the audit trail cannot be read right now"}
        reads = api.reads()
    assert [e.attributes["audit.outcome"] for e in reads] == ["error"] * len(ALL_PATHS)
    assert {json.loads(str(e.attributes["audit.details"]))["reason"] for e in reads} == {
        "source_unavailable"
    }


def test_an_archive_folder_not_written_yet_is_503_until_it_is(tmp_path: Path) -> None:
    """The app may start before its first event: the router is made, answers 503, then works."""
    folder = tmp_path / "later"
    with TestClient(api_app(folder, tmp_path / "reads")) as client:
        headers = {"authorization": "Bearer t-root"}
        assert client.get("/api/audit/events", headers=headers).status_code == 503
        write_trail(folder)
        answer = client.get("/api/audit/events", headers=headers)
        assert answer.status_code == 200
        assert answer.json()["total"] == len(engine(folder))


# --- the router's own trail -----------------------------------------------------------------


def test_every_access_is_an_audit_event(api: AuditApi, trail: Path) -> None:
    """Each call, answered or refused, is one audit.audit_log.read with filter, count, outcome."""
    api.json("/events", "t-acme", action="auth.*", limit=5)
    api.get("/events", "t-acme", tenant="globex")
    api.get("/events", token=None)
    api.get("/events", token="t-forged")
    api.get("/events", since="yesterday")
    globex_id = engine(trail, tenant="globex")[0]["event_id"]
    api.get(f"/events/{globex_id}", "t-acme")
    api.json("/stats", "t-globex")
    api.json("/security/failed-logins")
    calls = api.requests
    reads = api.reads()
    assert len(reads) == calls
    details = [json.loads(str(e.attributes["audit.details"])) for e in reads]
    by_endpoint = [
        (d["endpoint"], d["status"], e.attributes["audit.outcome"])
        for d, e in zip(details, reads, strict=True)
    ]
    assert by_endpoint == [
        ("list_events", 200, "success"),
        ("list_events", 403, "failure"),
        ("list_events", 401, "failure"),
        ("list_events", 401, "failure"),
        ("list_events", 400, "failure"),
        ("read_event", 404, "failure"),
        ("stats", 200, "success"),
        ("failed_logins", 200, "success"),
    ]
    listed = api_total = engine(trail, tenant="acme", action="auth.*")
    assert details[0]["filter"] == {"action": "auth.*", "tenant": "acme"}
    assert details[0]["returned"] == 5
    assert details[0]["total"] == len(listed) == len(api_total)
    assert details[1]["filter"] == {"tenant": "globex"}
    assert details[1]["reason"] == "other_tenant"
    assert [d.get("reason") for d in details[2:6]] == [
        "unauthenticated", "unauthenticated", "bad_request", "other_tenant",
    ]  # fmt: skip
    assert reads[5].attributes["audit.resource.type"] == "audit_log"
    assert reads[5].attributes["audit.resource.id"] == globex_id
    actors = [(e.attributes.get("user.id"), e.attributes.get("tenant.id")) for e in reads]
    assert actors[0] == actors[1] == actors[5] == ("ann", "acme")
    assert actors[2] == actors[3] == (None, None)
    assert actors[6] == ("gus", "globex")
    assert reads[0].attributes["http.route"] == "/api/audit/events"
    assert reads[0].attributes["audit.actor.scopes"] == ["audit:read"]


# --- pseudonymised trails -------------------------------------------------------------------


def test_a_pseudonymised_trail_is_isolated_by_the_raw_tenant(tmp_path: Path) -> None:
    """With the key, tenant.id is stored as a pseudonym; the caller's raw tenant still finds
    their events, and the read event's filter holds the pseudonym, not the raw id."""
    trail = write_trail(tmp_path / "trail", key=KEY)
    mine = pseudonym("acme", KEY.encode())
    with ExitStack() as stack:
        client = stack.enter_context(TestClient(api_app(trail, tmp_path / "reads", key=KEY)))
        api = AuditApi(client, tmp_path / "reads", stack.pop_all())
        events = api.walk(token="t-acme", limit=100)
        assert events and tenants(events) == {mine}
        expected = page_events(trail, EventFilter(tenant=mine), limit=10_000).events
        assert [e["event_id"] for e in events] == [e.attributes["audit.event.id"] for e in expected]
        (read, *_) = api.reads()
    assert json.loads(str(read.attributes["audit.details"]))["filter"] == {"tenant": mine}
    assert read.attributes["tenant.id"] == mine


# --- the OpenAPI schema ---------------------------------------------------------------------


def test_openapi_documents_the_endpoints_and_their_shapes(trail: Path, tmp_path: Path) -> None:
    """The paths under the mount prefix, their parameters and response schemas."""
    schema = api_app(trail, tmp_path / "reads").openapi()
    paths = schema["paths"]
    assert set(paths) == {
        "/api/audit/events",
        "/api/audit/events/{event_id}",
        "/api/audit/stats",
        "/api/audit/security/failed-logins",
    }
    assert all(set(item) == {"get"} for item in paths.values())
    listing = paths["/api/audit/events"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert names >= {"user", "tenant", "action", "outcome", "resource_type", "resource_id",
                     "route", "client", "trace_id", "category", "since", "until", "limit",
                     "cursor", "newest_first"}  # fmt: skip
    assert "authorization" in names  # the app's own dependency is documented too
    ok = listing["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/AuditEventPage"}
    assert {"401", "403", "400", "422", "503"} <= set(listing["responses"])
    components = schema["components"]["schemas"]
    page = components["AuditEventPage"]
    assert set(page["required"]) == {"events", "total", "next_cursor"}
    event = components["AuditEventRecord"]
    assert {"event_name", "timestamp", "attributes"} <= set(event["required"])
    assert {"AuditStatistics", "FailedLogins", "ErrorMessage"} <= set(components)
    one = paths["/api/audit/events/{event_id}"]["get"]["responses"]
    assert one["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AuditEventRecord"
    }
    assert "404" in one


# --- other ways to say who calls; off the event loop ----------------------------------------


class TokenBackend(AuthenticationBackend):
    """Starlette's own authentication: scope["user"] and scope["auth"], no tenant."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        token = conn.headers.get("authorization", "").removeprefix("Bearer ")
        actor = TOKENS.get(token)
        return (
            None if actor is None else (AuthCredentials(list(actor.scopes)), SimpleUser(actor.id))
        )


def test_starlette_authentication_is_enough_without_instrumentation(
    trail: Path, tmp_path: Path
) -> None:
    """In an app that is not instrumented, AuthenticationMiddleware's user is the caller (no
    tenant, so only the all-tenants scope reads); an ambient set_actor() is not trusted; the
    accesses go to the process default auditor's trail."""
    sink = FastAPI()  # instrumented first: the process default auditor
    instrument_app(sink, AuditConfig(transport="spool", spool_dir=str(tmp_path / "reads")))

    async def ambient_identity() -> None:
        set_actor(ROOT)  # not in an audited request: not tied to it, so never trusted

    app = FastAPI(middleware=[Middleware(AuthenticationMiddleware, backend=TokenBackend())])
    app.include_router(
        audit_router(trail, dependencies=[Depends(ambient_identity)]), prefix="/audit"
    )
    with TestClient(sink), TestClient(app) as client:
        everything = client.get("/audit/events", headers={"authorization": "Bearer t-root"})
        assert everything.status_code == 200
        assert everything.json()["total"] == len(engine(trail))
        no_tenant = client.get("/audit/events", headers={"authorization": "Bearer t-acme"})
        assert no_tenant.status_code == 403
        assert client.get("/audit/events").status_code == 401
    reads = list(iter_events(tmp_path / "reads", EventFilter(action="audit_log.read")))
    statuses = [json.loads(str(e.attributes["audit.details"]))["status"] for e in reads]
    assert statuses == [200, 403, 401]
    assert [e.attributes.get("user.id") for e in reads[:2]] == ["root", "ann"]


class ThreadNoting(FileSource):
    """Archive files, noting the thread each engine call runs in."""

    def __init__(self, path: Path) -> None:
        super().__init__([path])
        self.threads: set[int] = set()

    def page(self, flt: EventFilter, **options: Any) -> Any:
        self.threads.add(threading.get_ident())
        return super().page(flt, **options)

    def get(self, event_id: str) -> Any:
        self.threads.add(threading.get_ident())
        return super().get(event_id)

    def stats(self, flt: EventFilter, **options: Any) -> Any:
        self.threads.add(threading.get_ident())
        return super().stats(flt, **options)


def test_engine_calls_run_off_the_event_loop(trail: Path, tmp_path: Path) -> None:
    """The engine reads files synchronously: never on the event loop's thread."""
    source = ThreadNoting(trail)
    loop_threads: set[int] = set()

    async def on_the_loop() -> None:
        loop_threads.add(threading.get_ident())

    app = FastAPI()
    instrument_app(app, AuditConfig(transport="spool", spool_dir=str(tmp_path / "reads")))
    guards = [Depends(on_the_loop), Depends(authenticate)]
    app.include_router(audit_router(source, dependencies=guards))
    event_id = engine(trail)[0]["event_id"]
    with TestClient(app) as client:
        for path in (*ALL_PATHS, f"/events/{event_id}"):
            response = client.get(path, headers={"authorization": "Bearer t-root"})
            assert response.status_code == 200, path
    assert loop_threads and source.threads
    assert not loop_threads & source.threads
