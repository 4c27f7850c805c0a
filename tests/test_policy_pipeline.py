"""The audit policy in the pipeline: levels decided per event, bodies captured and redacted.

Apps are real FastAPI apps driven through raw ASGI (so chunked and streamed bodies are
exactly what a server would pass), with the real SDK and in-memory exporters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.testclient import TestClient

from otel_audit import AuditConfig, AuditConfigError, record
from otel_audit.policy import Policy, Rule

from .conftest import Telemetry, audited_app, http_scope
from .pii_corpus import PII_SAMPLES

SECRET_PASSWORD = "hunter2-but-longer"


def _echo_app(telemetry: Telemetry, policy: Policy | str | None, **config: Any) -> FastAPI:
    """Endpoints that report exactly what they received, and stream what they send."""
    app = audited_app(telemetry, AuditConfig(policy=policy, **config))

    @app.post("/api/v1/admin/echo")
    async def admin_echo(request: Request) -> Response:
        body = await request.body()
        return Response(
            json.dumps({"sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}),
            media_type="application/json",
        )

    @app.post("/api/v1/items")
    async def create_item(request: Request) -> dict[str, str]:
        return {"sha256": hashlib.sha256(await request.body()).hexdigest()}

    @app.get("/api/v1/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, Any]:
        return {"id": item_id, "owner": "alice.compliance@example.org", "password": "pw-123456"}

    @app.get("/internal/ping")
    async def internal() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for index in range(50):
                yield f'{{"chunk":{index}}}\n'.encode()

        return StreamingResponse(chunks(), media_type="application/x-ndjson")

    @app.post("/api/v1/jobs")
    async def job() -> dict[str, bool]:
        record("job.started", resource_type="job", resource_id="j-1")
        record("user.role_changed", resource_type="user", resource_id="u-1")
        return {"ok": True}

    return app


async def _call(
    app: FastAPI,
    method: str,
    path: str,
    chunks: list[bytes] = [],  # noqa: B006 - never mutated
    content_type: bytes = b"application/json",
) -> tuple[int, bytes]:
    """Drive ``app`` through raw ASGI: the request body in ``chunks``; (status, body) back."""
    scope = http_scope(path, method=method, headers=[(b"content-type", content_type)])
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks or [b""])
    ]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


ADMIN_POLICY = Policy(
    (
        Rule(level="none", routes=("/internal/**",)),
        Rule(level="request_response", methods=("POST",), routes=("/api/*/admin/*",)),
        Rule(level="request_response", routes=("/stream",)),
        # Before the POST rule: record() events inside a POST request carry its method too.
        Rule(level="none", actions=("job.*",)),
        Rule(level="request", methods=("POST",)),
        Rule(level="metadata"),
    )
)


def _one(telemetry: Telemetry, name: str = "audit.http.request") -> dict[str, Any]:
    return dict(telemetry.one_record(name).attributes)


async def test_none_level_records_nothing(telemetry: Telemetry) -> None:
    """A route at `none` leaves no event at all; others are unaffected."""
    app = _echo_app(telemetry, ADMIN_POLICY)
    assert (await _call(app, "GET", "/internal/ping"))[0] == 200
    assert telemetry.audit_records() == []
    assert (await _call(app, "GET", "/api/v1/items/3"))[0] == 200
    assert len(telemetry.audit_records()) == 1


async def test_metadata_level_has_no_bodies(telemetry: Telemetry) -> None:
    """At `metadata` the event carries no body attributes, even for a response with PII."""
    app = _echo_app(telemetry, ADMIN_POLICY)
    await _call(app, "GET", "/api/v1/items/3")
    attributes = _one(telemetry)
    assert not {k for k in attributes if "body" in k}


async def test_request_level_records_the_redacted_request_body(telemetry: Telemetry) -> None:
    """At `request` the JSON body is recorded field by field, secrets and PII masked."""
    app = _echo_app(telemetry, ADMIN_POLICY)
    payload = {
        "name": "widget",
        "password": SECRET_PASSWORD,
        "contact": {"email": "alice.compliance@example.org", "qty": 3},
    }
    raw = json.dumps(payload).encode()
    status, body = await _call(app, "POST", "/api/v1/items", [raw])
    assert status == 200
    assert json.loads(body)["sha256"] == hashlib.sha256(raw).hexdigest()
    attributes = _one(telemetry)
    recorded = json.loads(attributes["audit.request.body"])
    assert recorded["name"] == "widget"
    assert recorded["contact"]["qty"] == 3
    assert SECRET_PASSWORD not in attributes["audit.request.body"]
    assert "alice.compliance@example.org" not in attributes["audit.request.body"]
    assert attributes["http.request.body.size"] == len(raw)
    assert "audit.response.body" not in attributes
    assert "audit.request.body.password:secret_key" in attributes["audit.redactions"]


async def test_request_response_level_records_both_bodies(telemetry: Telemetry) -> None:
    """At `request_response` the response body is recorded too, and the event still lands."""
    app = _echo_app(telemetry, ADMIN_POLICY)
    raw = b'{"user": "u-1", "token": "abc123secretvalue"}'
    status, body = await _call(app, "POST", "/api/v1/admin/echo", [raw[:10], raw[10:]])
    assert status == 200
    attributes = _one(telemetry)
    assert json.loads(attributes["audit.response.body"]) == json.loads(body)
    assert "abc123secretvalue" not in attributes["audit.request.body"]
    assert attributes["http.response.body.size"] == len(body)
    (span,) = telemetry.server_spans()
    assert any(e.name == "audit.http.request" for e in span.events)  # inside the span


async def test_streamed_response_reaches_the_client_unchanged(telemetry: Telemetry) -> None:
    """A streamed response at `request_response` is passed through chunk for chunk."""
    app = _echo_app(telemetry, ADMIN_POLICY)
    status, body = await _call(app, "GET", "/stream")
    expected = b"".join(f'{{"chunk":{index}}}\n'.encode() for index in range(50))
    assert (status, body) == (200, expected)
    attributes = _one(telemetry)
    assert attributes["http.response.body.size"] == len(expected)
    assert json.loads(attributes["audit.response.body"])["captured"] is False  # ndjson


async def test_record_events_follow_action_rules(telemetry: Telemetry) -> None:
    """record() events match on their action: `job.*` is dropped, `user.*` kept."""
    app = _echo_app(telemetry, ADMIN_POLICY)
    await _call(app, "POST", "/api/v1/jobs", [b"{}"])
    names = [r.event_name for r in telemetry.audit_records()]
    assert names == ["audit.user.role_changed", "audit.http.request"]


@pytest.mark.parametrize(
    ("rule", "level_expected"),
    [
        (Rule(level="request", outcomes=("failure",)), "request"),
        (Rule(level="request", status=("4xx",)), "request"),
        (Rule(level="request", status=("404",)), "request"),
        (Rule(level="request", status=("2xx",)), "metadata"),
        (Rule(level="request", users=("u-7",)), "request"),
        (Rule(level="request", users=("u-8",)), "metadata"),
        (Rule(level="request", roles=("admin",)), "request"),
        (Rule(level="request", tenants=("acme",)), "request"),
        (Rule(level="request", tenants=("other",)), "metadata"),
    ],
)
def test_fields_known_only_after_the_response_decide_the_level(
    telemetry: Telemetry, rule: Rule, level_expected: str
) -> None:
    """Outcome, status and actor rules apply though they are unknown when the body is read."""
    from otel_audit import Actor, set_actor

    app = audited_app(telemetry, AuditConfig(policy=Policy((rule,))))

    @app.post("/things")
    async def things(request: Request) -> Response:
        set_actor(Actor("u-7", tenant="acme", roles=("admin",)))
        await request.body()
        return Response(status_code=404)

    TestClient(app).post("/things", json={"a": 1})
    attributes = _one(telemetry)
    assert ("audit.request.body" in attributes) == (level_expected == "request")


HOSTILE_BODIES = {
    "huge": ([b'{"a":"' + b"x" * 200_000 + b'"}'], b"application/json"),
    "not_utf8": ([b'{"a":"\xff\xfe\xfa"}'], b"application/json"),
    "deep_json": ([b"[" * 100_000 + b"]" * 100_000], b"application/json"),
    "multipart": (
        [
            b'--XyZ\r\nContent-Disposition: form-data; name="password"\r\n\r\n'
            + SECRET_PASSWORD.encode()
            + b"\r\n--XyZ--\r\n"
        ],
        b"multipart/form-data; boundary=XyZ",
    ),
    "chunked": (
        [b'{"email": "alice.comp', b'liance@example.org", ', b'"n": 1}'],
        b"application/json",
    ),
    "form": (
        [b"username=alice.compliance%40example.org&password=" + SECRET_PASSWORD.encode()],
        b"application/x-www-form-urlencoded",
    ),
    "pii_corpus": (
        [json.dumps({f"field{i}": s.value for i, s in enumerate(PII_SAMPLES)}).encode()],
        b"application/json",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
async def test_hostile_bodies_reach_the_app_unchanged_and_leak_nothing(
    telemetry: Telemetry, name: str
) -> None:
    """The app gets byte-identical bodies and answers; the event holds no secret or PII."""
    chunks, content_type = HOSTILE_BODIES[name]
    raw = b"".join(chunks)
    audited = _echo_app(telemetry, ADMIN_POLICY)
    plain = FastAPI()
    plain.router = audited.router  # the same endpoints, not audited
    answer = await _call(audited, "POST", "/api/v1/admin/echo", chunks, content_type)
    assert answer == await _call(plain, "POST", "/api/v1/admin/echo", chunks, content_type)
    assert json.loads(answer[1]) == {"sha256": hashlib.sha256(raw).hexdigest(), "size": len(raw)}
    attributes = _one(telemetry)
    text = json.dumps(attributes, default=str)
    for secret in [
        SECRET_PASSWORD,
        "alice.compliance@example.org",
        *(s.value for s in PII_SAMPLES),
    ]:
        assert secret not in text, (name, secret)
    assert attributes["http.request.body.size"] == len(raw)
    assert len(attributes["audit.request.body"]) <= 4096 + 64


def test_default_policy_records_write_bodies_but_not_credentials(telemetry: Telemetry) -> None:
    """The shipped default: bodies for state changes, metadata only for logins and reads."""
    app = audited_app(telemetry)

    @app.post("/api/v1/login/access-token")
    async def login(request: Request) -> dict[str, bool]:
        await request.body()
        return {"ok": True}

    @app.post("/api/v1/items")
    async def create(request: Request) -> dict[str, bool]:
        await request.body()
        return {"ok": True}

    client = TestClient(app)
    client.post("/api/v1/login/access-token", data={"username": "a", "password": "b"})
    client.post("/api/v1/items", json={"name": "widget"})
    login_event, create_event = (dict(r.attributes) for r in telemetry.audit_records())
    assert "audit.request.body" not in login_event
    assert json.loads(create_event["audit.request.body"]) == {"name": "widget"}


def test_policy_file_from_the_environment(
    telemetry: Telemetry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_AUDIT_POLICY_FILE names a YAML policy, loaded and checked at start-up."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n  - level: none\n    methods: [GET]\n")
    monkeypatch.setenv("OTEL_AUDIT_POLICY_FILE", str(policy))
    app = audited_app(telemetry, AuditConfig())

    @app.get("/x")
    async def x() -> dict[str, bool]:
        return {"ok": True}

    TestClient(app).get("/x")
    assert telemetry.audit_records() == []
    policy.write_text("rules:\n  - level: loud\n")
    with pytest.raises(AuditConfigError, match=r"rules\[0\]\.level"):
        AuditConfig()


def test_policy_argument_takes_a_path(tmp_path: Path) -> None:
    """AuditConfig(policy=<path>) loads the file; a bad one fails at construction."""
    path = tmp_path / "p.yaml"
    path.write_text("rules:\n  - level: request\n    routes: ['/a/*']\n")
    config = AuditConfig(policy=str(path))
    assert isinstance(config.policy, Policy)
    assert config.policy.rules[0].level == "request"
    path.write_text("rules:\n  - level: request\n    colour: blue\n")
    with pytest.raises(AuditConfigError, match=r"rules\[0\].*colour"):
        AuditConfig(policy=str(path))
