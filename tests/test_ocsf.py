"""OCSF export: events made by the real library map to OCSF classes that validate.

A real FastAPI app, instrumented with the spool transport, plays logins (good, bad and by
email), a logout, user and role changes and ordinary business calls; the trail is read back
from the spool and every event is mapped with ``to_ocsf`` and validated against the OCSF
schema of ``OCSF_SCHEMA_VERSION``: the JSON Schema the ``ocsf-json-schema`` package derives
from the OCSF schema server's export it ships, plus the cross-field rules JSON Schema cannot
state (``type_uid`` is ``class_uid * 100 + activity_id``; every ``*_name`` is the caption of
its id).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.testclient import TestClient
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel

from otel_audit import Action, Actor, AuditConfig, instrument_app, record, set_actor
from otel_audit._ocsf_classes import classify
from otel_audit.archive import ArchivedEvent, read_events
from otel_audit.ocsf import OCSF_SCHEMA_VERSION, to_ocsf

CLIENT_IP = "203.0.113.7"
PASSWORDS = {"alice": "alice-pass-1"}


@functools.cache
def ocsf_export() -> dict[str, Any]:
    """The OCSF schema server's export of OCSF_SCHEMA_VERSION, as the package ships it."""
    export: dict[str, Any] = get_ocsf_schema(version=OCSF_SCHEMA_VERSION)
    return export


@functools.cache
def class_validator(class_uid: int) -> jsonschema.Draft202012Validator:
    schemas = OcsfJsonSchemaEmbedded(ocsf_export())
    schema = schemas.get_class_schema(schemas.lookup_class_name_from_uid(class_uid), [])
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def sibling_problems(value: dict[str, Any], spec: dict[str, Any], path: str) -> Iterator[str]:
    """Each enum id's sibling (``activity_id`` -> ``activity_name``) holds the id's caption.

    Other (99) is exempt: its name is the producer's own. Recurses into objects.
    """
    objects = ocsf_export()["objects"]
    for key, item in value.items():
        attribute = spec.get(key, {})
        if "enum" in attribute and "sibling" in attribute and item != 99:
            wanted = attribute["enum"][str(item)]["caption"]
            if value.get(attribute["sibling"]) != wanted:
                got = value.get(attribute["sibling"])
                yield f"{path}{attribute['sibling']}: {got!r} is not {wanted!r}"
        if attribute.get("type") == "object_t":
            nested = objects[attribute["object_type"]]["attributes"]
            for element in item if isinstance(item, list) else [item]:
                yield from sibling_problems(element, nested, f"{path}{key}.")


def ocsf_problems(event: dict[str, Any]) -> list[str]:
    """Why ``event`` is not a valid OCSF event of its class; empty when it is."""
    try:
        validator = class_validator(event["class_uid"])
    except (KeyError, ValueError) as error:
        return [f"no OCSF class for {event.get('class_uid')!r}: {error}"]
    problems = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(event)
    ]
    if problems:
        return problems
    # What the JSON Schema cannot say: ids and their sibling captions agree.
    export = ocsf_export()
    name = next(n for n, c in export["classes"].items() if c["uid"] == event["class_uid"])
    problems = list(sibling_problems(event, export["classes"][name]["attributes"], ""))
    if event["type_uid"] != event["class_uid"] * 100 + event["activity_id"]:
        problems.append(f"type_uid {event['type_uid']} is not class_uid * 100 + activity_id")
    return problems


# --- the trail of a real app ---------------------------------------------------------


class Login(BaseModel):
    username: str
    password: str


def header_actor(connection: Any) -> Actor | None:
    """The caller named in X-Test-User (the test's stand-in for a verified token)."""
    user = connection.headers.get("x-test-user")
    return Actor(user, tenant="acme", roles=("admin",), session_id="s-42") if user else None


def audited_app(spool: Path) -> FastAPI:
    app = FastAPI()
    instrument_app(
        app,
        AuditConfig(transport="spool", spool_dir=str(spool), actor_resolver=header_actor),
        tracer_provider=TracerProvider(),  # each request traced: events carry trace ids
    )

    @app.post("/auth/login")
    async def login(body: Login) -> dict[str, str]:
        if PASSWORDS.get(body.username) != body.password:
            record(Action.AUTH_LOGIN_FAILED, outcome="failure", details={"username": body.username})
            raise HTTPException(401, "bad credentials")
        set_actor(Actor("u-" + body.username, tenant="acme"))
        record(Action.AUTH_LOGIN, resource_type="session")
        return {"token": "t"}

    @app.post("/auth/logout")
    async def logout() -> None:
        record(Action.AUTH_LOGOUT)

    @app.post("/users", status_code=201)
    async def create_user() -> None:
        record(Action.USER_CREATED, resource_type="user", resource_id="u-bob")

    @app.put("/users/{user_id}/role")
    async def change_role(user_id: str) -> None:
        record(
            Action.USER_ROLE_CHANGED,
            resource_type="user",
            resource_id=user_id,
            changes={"role": ("viewer", "editor")},
        )

    @app.delete("/users/{user_id}", status_code=204)
    async def delete_user(user_id: str) -> None:
        record(Action.USER_DELETED, resource_type="user", resource_id=user_id)

    @app.post("/me/password")
    async def change_password(request: Request) -> None:
        record(Action.AUTH_PASSWORD_CHANGED)

    @app.post("/documents", status_code=201)
    async def create_document() -> None:
        record("document.created", resource_type="document", resource_id="doc-1")

    @app.get("/admin/settings")
    async def settings() -> None:
        record(Action.ACCESS_DENIED, outcome="failure", details={"needed": ["owner"]})
        raise HTTPException(403, "forbidden")

    @app.get("/boom")
    async def boom() -> None:
        raise HTTPException(500, "broken")

    return app


def play(client: TestClient) -> None:
    alice = {"x-test-user": "u-alice"}
    client.post("/auth/login", json={"username": "alice", "password": "wrong"})
    client.post("/auth/login", json={"username": "mallory@evil.example", "password": "guess"})
    client.post("/auth/login", json={"username": "alice", "password": PASSWORDS["alice"]})
    client.post("/auth/logout", headers=alice)
    client.post("/users", headers=alice)
    client.put("/users/u-bob/role", headers=alice)
    client.delete("/users/u-bob", headers=alice)
    client.post("/me/password", headers=alice)
    client.post("/documents?draft=1", headers=alice)
    client.get("/admin/settings", headers=alice)
    client.get("/boom", headers=alice)
    client.get("/no-such-route")


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> list[ArchivedEvent]:
    spool = tmp_path_factory.mktemp("spool")
    with TestClient(audited_app(spool), client=(CLIENT_IP, 50123)) as client:
        play(client)
    events = list(read_events(spool))
    assert len(events) > 20
    return events


def find(trail: list[ArchivedEvent], action: str, **attributes: object) -> Iterator[ArchivedEvent]:
    for event in trail:
        values = event.attributes
        if values.get("audit.action") == action and all(
            values.get(k) == v for k, v in attributes.items()
        ):
            yield event


# --- tests ---------------------------------------------------------------------------


def test_every_event_of_the_trail_validates(trail: list[ArchivedEvent]) -> None:
    """Each archived event, whatever its kind, maps to a valid OCSF event of its class."""
    seen = set()
    for event in trail:
        ocsf = to_ocsf(event)
        assert ocsf_problems(ocsf) == [], (event.event_name, ocsf)
        seen.add(ocsf["class_uid"])
    assert seen == {3001, 3002, 6003}


@pytest.mark.parametrize(
    ("action", "where", "expected"),
    [
        # action, attributes that pick the event, (class, activity, status, actor uid)
        ("auth.login", {}, (3002, 1, "Success", "u-alice")),
        ("auth.login_failed", {}, (3002, 1, "Failure", "anonymous")),
        (
            "http.request",
            {"url.path": "/auth/login", "http.response.status_code": 401},
            (3002, 1, "Failure", "anonymous"),
        ),
        (
            "http.request",
            {"url.path": "/auth/login", "http.response.status_code": 200},
            (3002, 1, "Success", "u-alice"),
        ),
        ("auth.logout", {}, (3002, 2, "Success", "u-alice")),
        ("user.created", {}, (3001, 1, "Success", "u-alice")),
        ("user.role_changed", {}, (3001, 99, "Success", "u-alice")),
        ("user.deleted", {}, (3001, 6, "Success", "u-alice")),
        ("auth.password_changed", {}, (3001, 3, "Success", "u-alice")),
        ("document.created", {}, (6003, 1, "Success", "u-alice")),
        ("access.denied", {}, (6003, 99, "Failure", "u-alice")),
        ("http.request", {"url.path": "/documents"}, (6003, 1, "Success", "u-alice")),
        ("http.request", {"url.path": "/users/u-bob/role"}, (6003, 3, "Success", "u-alice")),
        ("http.request", {"url.path": "/users/u-bob"}, (6003, 4, "Success", "u-alice")),
        ("http.request", {"url.path": "/admin/settings"}, (6003, 2, "Failure", "u-alice")),
        ("http.request", {"url.path": "/boom"}, (6003, 2, "Failure", "u-alice")),
        ("http.request", {"url.path": "/no-such-route"}, (6003, 2, "Failure", "anonymous")),
    ],
)
def test_events_land_in_their_class(
    trail: list[ArchivedEvent],
    action: str,
    where: dict[str, object],
    expected: tuple[int, int, str, str],
) -> None:
    """Logins are Authentication, user and role changes Account Change, the rest API Activity."""
    events = list(find(trail, action, **where))
    assert events, f"no {action} {where} in the trail"
    for event in events:
        ocsf = to_ocsf(event)
        user = ocsf["actor"]["user"]
        got = (
            ocsf["class_uid"],
            ocsf["activity_id"],
            ocsf["status"],
            user.get("uid", user.get("name")),
        )
        assert got == expected, ocsf


def test_fields_are_filled_from_the_event(trail: list[ArchivedEvent]) -> None:
    """Time, ids, actor, client, HTTP request, API operation and resources come across."""
    [event] = find(trail, "document.created")
    ocsf = to_ocsf(event)
    attributes = event.attributes
    assert ocsf["time"] == event.timestamp_ns // 1_000_000
    assert ocsf["metadata"]["uid"] == attributes["audit.event.id"]
    assert ocsf["metadata"]["correlation_uid"] == attributes["audit.request.id"]
    assert ocsf["metadata"]["version"] == OCSF_SCHEMA_VERSION
    assert ocsf["metadata"]["product"]["name"] == "otel-audit"
    assert ocsf["metadata"]["sequence"] == attributes["audit.seq"]
    assert ocsf["metadata"]["tenant_uid"] == "acme"
    assert ocsf["actor"] == {
        "user": {"uid": "u-alice", "type_id": 1, "type": "User", "org": {"uid": "acme"}},
        "session": {"uid": "s-42"},
    }
    assert ocsf["src_endpoint"] == {"ip": CLIENT_IP}
    assert ocsf["http_request"]["http_method"] == "POST"
    assert ocsf["http_request"]["url"] == {"path": "/documents", "query_string": "draft=1"}
    assert ocsf["api"]["operation"] == "document.created"
    assert ocsf["resources"] == [{"uid": "doc-1", "type": "document"}]
    assert ocsf["severity_id"] == 1
    # What OCSF has no place for is kept, under the event's own names.
    unmapped = ocsf["unmapped"]
    assert unmapped["attributes"]["user.roles"] == ["admin"]
    assert unmapped["attributes"]["http.route"] == "/documents"
    assert "audit.chain.hash" in unmapped["attributes"]
    assert len(event.trace_id) == 32
    assert (unmapped["trace_id"], unmapped["span_id"]) == (event.trace_id, event.span_id)
    assert unmapped["resource"]["service.instance.id"] == event.resource["service.instance.id"]


def test_login_and_account_change_name_their_subject(trail: list[ArchivedEvent]) -> None:
    """A failed login names the account tried (as redacted); a change names the changed user."""
    attempted = {to_ocsf(e)["user"].get("name") for e in find(trail, "auth.login_failed")}
    assert "alice" in attempted
    assert "mallory@evil.example" not in attempted  # redaction ran before the archive
    [role_change] = find(trail, "user.role_changed")
    ocsf = to_ocsf(role_change)
    assert ocsf["user"] == {"uid": "u-bob"}
    assert ocsf["actor"]["user"]["uid"] == "u-alice"
    assert ocsf["activity_name"] == "Role Changed"
    assert ocsf["unmapped"]["attributes"]["audit.changes"] == {
        "role": {"old": "viewer", "new": "editor"}
    }
    [http_request] = find(trail, "http.request", **{"url.path": "/users/u-bob/role"})
    assert to_ocsf(http_request)["api"]["operation"] == "PUT /users/{user_id}/role"


def _drop(path: str) -> Any:
    def change(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = event
        for key in parents:
            target = target[key]
        del target[last]

    return change


def _set(path: str, value: object) -> Any:
    def change(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = event
        for key in parents:
            target = target[key]
        target[last] = value

    return change


@pytest.mark.parametrize(
    ("action", "breakage"),
    [
        ("auth.login", _drop("metadata.product")),
        ("auth.login", _drop("user")),
        ("auth.login", _drop("service")),  # Authentication needs service or dst_endpoint
        ("auth.login", _set("time", "2026-11-30T12:00:00Z")),
        ("auth.login", _set("type_uid", 300202)),  # Logoff's type on a Logon
        ("auth.login", _set("activity_name", "Logoff")),
        ("auth.login", _set("class_uid", 3001)),
        ("user.role_changed", _set("severity_id", 7)),
        ("user.role_changed", _set("status", "Succeeded")),
        ("user.role_changed", _set("roles", ["admin"])),  # no such attribute in the class
        ("document.created", _drop("api.operation")),
        ("document.created", _set("src_endpoint.ip", "not-an-address")),
        ("document.created", _set("metadata.sequence", "12")),
    ],
)
def test_a_broken_event_fails_validation(
    trail: list[ArchivedEvent], action: str, breakage: Any
) -> None:
    """The validator is not a rubber stamp: each deliberate breakage is caught."""
    event = next(find(trail, action))
    ocsf = to_ocsf(event)
    assert ocsf_problems(ocsf) == []
    broken = copy.deepcopy(ocsf)
    breakage(broken)
    assert ocsf_problems(broken) != []


@pytest.mark.parametrize(
    ("action", "method", "route", "expected"),
    [
        ("user.login", "", "", (3002, 1, False)),
        ("auth.sign_in_failed", "", "", (3002, 1, True)),
        ("session.logoff", "", "", (3002, 2, False)),
        ("http.request", "POST", "/api/v1/login/access-token", (3002, 1, False)),
        ("http.request", "POST", "/oauth/token", (3002, 1, False)),
        ("http.request", "POST", "/login/test-token", (6003, 1, False)),
        ("http.request", "GET", "/auth/login", (6003, 2, False)),
        ("http.request", "POST", "/auth/logout", (3002, 2, False)),
        ("http.request", "OPTIONS", "/items", (6003, 99, False)),
        ("websocket.connect", "", "", (6003, 99, False)),
        ("user.suspended", "", "", (3001, 5, False)),
        ("account.locked", "", "", (3001, 9, False)),
        ("auth.mfa_enabled", "", "", (3001, 10, False)),
        ("permission.granted", "", "", (3001, 7, False)),
        ("permission.revoked", "", "", (3001, 8, False)),
        ("tenant.created", "", "", (6003, 1, False)),
        ("api_key.revoked", "", "", (6003, 4, False)),
        ("data.exported", "", "", (6003, 2, False)),
    ],
)
def test_classification_rule(
    action: str, method: str, route: str, expected: tuple[int, int, bool]
) -> None:
    """The documented rule, case by case, for actions the demo app does not play."""
    kind = classify(action, method=method, route=route, success=True)
    assert (kind.class_uid, kind.activity_id, kind.failed) == expected
