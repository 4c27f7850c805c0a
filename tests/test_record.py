"""Explicit business events: record() and @audited, inside and outside requests."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient
from opentelemetry._logs import SeverityNumber

from otel_audit import Action, Actor, AuditConfig, AuditEventError, audited, record, set_actor
from otel_audit.fastapi import instrument_app

from .conftest import TESTCLIENT_PEER, Telemetry, audited_app


def test_record_inside_a_request_inherits_request_context(telemetry: Telemetry) -> None:
    """A business event carries the request's actor, request id, route, client and trace."""
    app = audited_app(telemetry)

    @app.put("/users/{user_id}/role")
    async def change_role(user_id: str) -> dict[str, str]:
        set_actor(Actor("admin-1", tenant="acme", roles=("admin",)))
        record(
            Action.USER_ROLE_CHANGED,
            resource_type="user",
            resource_id=user_id,
            changes={"role": ("viewer", "editor")},
            details={"reason": "promotion"},
        )
        return {"ok": "yes"}

    response = TestClient(app).put("/users/u-7/role", headers={"x-request-id": "rq-1"})
    event = telemetry.one_record("audit.user.role_changed")
    request_event = telemetry.one_record("audit.http.request")
    attributes = event.attributes
    assert attributes["audit.action"] == "user.role_changed"
    assert attributes["audit.outcome"] == "success"
    assert attributes["audit.resource.type"] == "user"
    assert attributes["audit.resource.id"] == "u-7"
    assert json.loads(str(attributes["audit.changes"])) == {
        "role": {"old": "viewer", "new": "editor"}
    }
    assert json.loads(str(attributes["audit.details"])) == {"reason": "promotion"}
    assert attributes["user.id"] == "admin-1"
    assert attributes["tenant.id"] == "acme"
    assert attributes["audit.request.id"] == "rq-1" == response.headers["x-request-id"]
    assert attributes["http.route"] == "/users/{user_id}/role"
    assert attributes.get("client.address") == TESTCLIENT_PEER
    assert event.trace_id == request_event.trace_id != 0
    assert attributes["audit.event.id"] != request_event.attributes["audit.event.id"]
    assert event.body == "user.role_changed on user u-7 (success)"


def test_record_outside_a_request_uses_the_instrumented_provider(telemetry: Telemetry) -> None:
    """A job or script can record events; the actor comes from set_actor or the argument."""
    audited_app(telemetry)
    set_actor(Actor("cron-job", auth_method="service"))
    try:
        event_id = record(
            "tenant.deleted", resource_type="tenant", resource_id="t-1", outcome="failure"
        )
        record("report.sent", actor=Actor("mailer"))
    finally:
        set_actor(None)
    deleted = telemetry.one_record("audit.tenant.deleted")
    assert deleted.attributes["audit.event.id"] == event_id
    assert deleted.attributes["user.id"] == "cron-job"
    assert deleted.severity_number == SeverityNumber.WARN
    assert "audit.request.id" not in deleted.attributes
    assert telemetry.one_record("audit.report.sent").attributes["user.id"] == "mailer"


def test_secrets_in_changes_and_details_are_redacted(telemetry: Telemetry) -> None:
    """Password changes and PII in details never leave the process; the reason is kept."""
    audited_app(telemetry)
    record(
        "user.updated",
        changes={
            "password": ("old-Secret-1", "new-Secret-2"),
            "email": ("a@x.example", "b@x.example"),
        },
        details={"note": "card 4111 1111 1111 1111 on file", "nested": {"api_key": "k-998877"}},
    )
    attributes = telemetry.one_record("audit.user.updated").attributes
    serialised = json.dumps(dict(attributes), default=str)
    for secret in (
        "old-Secret-1",
        "new-Secret-2",
        "a@x.example",
        "4111 1111 1111 1111",
        "k-998877",
    ):
        assert secret not in serialised
    changes = json.loads(str(attributes["audit.changes"]))
    assert set(changes) == {"password", "email"}
    assert "audit.changes.password:secret_key" in attributes["audit.redactions"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "User Created"}, "resource.verb"),
        ({"action": "user"}, "resource.verb"),
        ({"action": "user.created", "outcome": "maybe"}, "outcome"),
        ({"action": "user.updated", "changes": {"role": "editor"}}, "old, new"),
        ({"action": "user.updated", "changes": ["role"]}, "changes"),
    ],
)
def test_invalid_arguments_raise_a_clear_error(
    telemetry: Telemetry, kwargs: dict[str, Any], message: str
) -> None:
    """Malformed actions, outcomes and changes raise AuditEventError naming the problem."""
    audited_app(telemetry)
    with pytest.raises(AuditEventError, match=message):
        record(**kwargs)
    assert telemetry.audit_records() == []


def test_changes_accept_old_new_mappings(telemetry: Telemetry) -> None:
    """Changes may be given as {"old": .., "new": ..} mappings as well as pairs."""
    audited_app(telemetry)
    record("settings.updated", changes={"theme": {"old": "light", "new": "dark"}, "limit": [1, 2]})
    changes = json.loads(
        str(telemetry.one_record("audit.settings.updated").attributes["audit.changes"])
    )
    assert changes == {"theme": {"old": "light", "new": "dark"}, "limit": {"old": 1, "new": 2}}


def test_audited_endpoint_outcomes(telemetry: Telemetry) -> None:
    """@audited records success on return, failure for 4xx HTTPException, error otherwise."""
    app = audited_app(telemetry)

    @app.delete("/docs/{doc_id}")
    @audited("document.deleted", resource_type="document", resource_id_param="doc_id")
    async def delete_doc(doc_id: str) -> dict[str, str]:
        if doc_id == "locked":
            raise HTTPException(status_code=403, detail="locked")
        if doc_id == "boom":
            raise ValueError("bug")
        return {"deleted": doc_id}

    client = TestClient(app, raise_server_exceptions=False)
    assert client.delete("/docs/d1").status_code == 200
    assert client.delete("/docs/locked").status_code == 403
    assert client.delete("/docs/boom").status_code == 500
    events = [r for r in telemetry.audit_records() if r.event_name == "audit.document.deleted"]
    assert [(e.attributes["audit.resource.id"], e.attributes["audit.outcome"]) for e in events] == [
        ("d1", "success"),
        ("locked", "failure"),
        ("boom", "error"),
    ]
    assert json.loads(str(events[2].attributes["audit.details"])) == {"error.type": "ValueError"}


def test_audited_plain_sync_function(telemetry: Telemetry) -> None:
    """@audited works on plain functions and re-raises exceptions unchanged."""
    audited_app(telemetry)

    @audited("invoice.generated", resource_type="invoice", resource_id_param="number")
    def generate(number: int, fail: bool = False) -> str:
        if fail:
            raise KeyError("missing")
        return f"inv-{number}"

    assert generate(7) == "inv-7"
    with pytest.raises(KeyError):
        generate(8, fail=True)
    outcomes = [
        (r.attributes["audit.resource.id"], r.attributes["audit.outcome"])
        for r in telemetry.audit_records()
    ]
    assert outcomes == [("7", "success"), ("8", "error")]


def test_audited_rejects_unknown_resource_parameter() -> None:
    """Naming a parameter the function does not have fails at decoration time."""
    with pytest.raises(AuditEventError, match="no parameter"):

        @audited("a.b", resource_id_param="missing")
        def function(present: int) -> None:
            return None


def test_instrument_app_is_idempotent(telemetry: Telemetry) -> None:
    """Instrumenting twice still yields exactly one event per request."""
    app = audited_app(telemetry)
    instrument_app(app, AuditConfig(), logger_provider=telemetry.logger_provider)

    @app.get("/x")
    async def endpoint() -> str:
        return "ok"

    TestClient(app).get("/x")
    assert len(telemetry.audit_records()) == 1
