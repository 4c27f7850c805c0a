"""The full-stack example, audited zero-code: routes, actors, failed logins and no PII.

One real session against ``examples.fullstack.main:app`` under ``opentelemetry-instrument
uvicorn`` (a subprocess on loopback): failed and successful OAuth2 logins, user and item
CRUD with JWTs, refused calls, the mounted admin app and a WebSocket. The audit events are
read back from the library's embedded archive, the contrib server spans from the console
span exporter on the server's stdout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from examples.stack import stop_process
from otel_audit.archive import ArchivedEvent, iter_archive_files, read_events

from ._process import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

# Distinctive values, so finding one anywhere in the archive means it leaked.
ADMIN_EMAIL = "root.admin@fullstack.example"
ADMIN_PASSWORD = "Adm1n-Secret-Passphrase"
BOB_EMAIL = "bob.builder@fullstack.example"
BOB_PASSWORD = "B0b-First-Passphrase"
BOB_NEW_EMAIL = "bob.renamed@fullstack.example"
BOB_NEW_PASSWORD = "B0b-Second-Passphrase"
UNKNOWN_EMAIL = "mallory.guess@fullstack.example"
GUESSED_PASSWORD = "Guessed-Passphrase-123"
FORGED_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.Zm9yZ2VkLXNpZ25hdHVyZQ"
TENANT = "acme"
# Failed logins come from this client, through uvicorn's proxy headers (trusted from
# 127.0.0.1 by --forwarded-allow-ips below), as from a load balancer in production.
ATTACKER = "203.0.113.7"
ADMIN_MOUNT = "/admin"


@dataclass(frozen=True)
class Who:
    """An account as the audit trail should name it."""

    user_id: str
    roles: list[str]


@dataclass(frozen=True)
class Expected:
    """What one request of the session should leave in the audit trail."""

    method: str
    template: str
    status: int
    actor: Who | None


@dataclass
class Session:
    """Everything one run of the example left behind."""

    expected: dict[str, Expected] = field(default_factory=dict)
    """By the request id the client sent."""
    secrets: list[str] = field(default_factory=list)
    events: list[ArchivedEvent] = field(default_factory=list)
    archive_bytes: bytes = b""
    spans: list[dict[str, Any]] = field(default_factory=list)
    stderr: str = ""

    def requests(self) -> dict[str, ArchivedEvent]:
        """The ``audit.http.request`` events by request id."""
        return {
            str(e.attributes["audit.request.id"]): e
            for e in self.events
            if e.event_name == "audit.http.request"
        }


class Driver:
    """Sends the session's requests and notes what each should leave in the trail."""

    def __init__(self, client: httpx.Client, session: Session) -> None:
        self.client = client
        self.session = session

    def call(
        self,
        method: str,
        path: str,
        template: str,
        status: int,
        *,
        token: str | None = None,
        actor: Who | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        request_id = f"fullstack-{len(self.session.expected) + 1:03d}"
        sent = {"x-request-id": request_id, **(headers or {})}
        if token is not None:
            sent["authorization"] = f"Bearer {token}"
        response = self.client.request(method, path, headers=sent, **kwargs)
        assert response.status_code == status, (method, path, response.text)
        self.session.expected[request_id] = Expected(method, template, status, actor)
        return response

    def login(self, email: str, password: str, status: int, actor: Who | None = None) -> str:
        response = self.call(
            "POST",
            "/api/v1/login/access-token",
            "/api/v1/login/access-token",
            status,
            actor=actor,
            data={"username": email, "password": password},
            headers={"x-forwarded-for": ATTACKER} if status != 200 else None,
        )
        token: str = response.json().get("access_token", "")
        if token:
            self.session.secrets.append(token)
        return token


def _play(driver: Driver, port: int) -> None:
    """The scripted session: every kind of request a real client of this service sends."""
    users, items, admin = "/api/v1/users", "/api/v1/items", Who("1", ["admin"])
    # Failed logins first: an unknown account, then the admin's email with a guess.
    driver.login(UNKNOWN_EMAIL, GUESSED_PASSWORD, 400)
    driver.login(ADMIN_EMAIL, GUESSED_PASSWORD, 400)
    admin_token = driver.login(ADMIN_EMAIL, ADMIN_PASSWORD, 200, actor=admin)
    # Unauthenticated and forged-token calls name nobody.
    driver.call("GET", f"{users}/", f"{users}/", 401)
    driver.call("GET", f"{users}/me", f"{users}/me", 401, token=FORGED_TOKEN)
    created = driver.call(
        "POST",
        f"{users}/",
        f"{users}/",
        200,
        token=admin_token,
        actor=admin,
        json={"email": BOB_EMAIL, "password": BOB_PASSWORD, "full_name": "Bob"},
    ).json()
    bob_id = str(created["id"])
    bob = Who(bob_id, ["member"])
    by_id = f"{users}/{{user_id}}"
    driver.call("GET", f"{users}/", f"{users}/", 200, token=admin_token, actor=admin)
    driver.call("GET", f"{users}/{bob_id}", by_id, 200, token=admin_token, actor=admin)
    driver.call(
        "PATCH",
        f"{users}/{bob_id}",
        by_id,
        200,
        token=admin_token,
        actor=admin,
        json={"email": BOB_NEW_EMAIL, "password": BOB_NEW_PASSWORD, "full_name": "Bob B."},
    )
    bob_token = driver.login(BOB_NEW_EMAIL, BOB_NEW_PASSWORD, 200, actor=bob)
    driver.call("GET", f"{users}/", f"{users}/", 403, token=bob_token, actor=bob)
    driver.call("GET", f"{users}/me", f"{users}/me", 200, token=bob_token, actor=bob)
    item = driver.call(
        "POST", f"{items}/", f"{items}/", 200, token=bob_token, actor=bob, json={"title": "Box"}
    ).json()
    item_path, item_template = f"{items}/{item['id']}", f"{items}/{{item_id}}"
    driver.call("GET", f"{items}/", f"{items}/", 200, token=bob_token, actor=bob)
    driver.call("GET", item_path, item_template, 200, token=bob_token, actor=bob)
    driver.call(
        "PATCH", item_path, item_template, 200, token=bob_token, actor=bob, json={"title": "Crate"}
    )
    url = f"ws://127.0.0.1:{port}/api/v1/ws/items?token={bob_token}"
    with connect(url, additional_headers={"x-request-id": "fullstack-ws"}) as websocket:
        websocket.send("count")
        assert json.loads(websocket.recv()) == {"items": 1}
    driver.call("DELETE", item_path, item_template, 204, token=bob_token, actor=bob)
    stats = f"{ADMIN_MOUNT}/tenants/{{tenant}}/stats"
    driver.call(
        "GET", f"{ADMIN_MOUNT}/tenants/{TENANT}/stats", stats, 200, token=admin_token, actor=admin
    )
    driver.call(
        "GET", f"{ADMIN_MOUNT}/tenants/globex/stats", stats, 403, token=admin_token, actor=admin
    )
    driver.call("GET", f"{ADMIN_MOUNT}/tenants/{TENANT}/stats", stats, 401)
    driver.call("DELETE", f"{users}/{bob_id}", by_id, 204, token=admin_token, actor=admin)
    # A valid signature for a deleted account opens nothing.
    driver.call("GET", f"{users}/me", f"{users}/me", 401, token=bob_token)


def _console_spans(text: str) -> list[dict[str, Any]]:
    """The JSON span dumps the console exporter wrote, one object after another."""
    decoder, spans, index = json.JSONDecoder(), [], 0
    while (index := text.find("{", index)) != -1:
        span, index = decoder.raw_decode(text, index)
        spans.append(span)
    return spans


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    """Run the example under opentelemetry-instrument, play the session, stop it, read back."""
    tmp = tmp_path_factory.mktemp("fullstack")
    archive, port = tmp / "archive", free_port()
    # The runner's own OTEL_* settings must not steer the server: in particular
    # OTEL_AUDIT_JWT_KEY stays unset, so every actor comes from the app's set_actor().
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "FULLSTACK_"))
    }
    env.update(
        OTEL_SERVICE_NAME="fullstack-example",
        OTEL_TRACES_EXPORTER="console",
        OTEL_LOGS_EXPORTER="none",
        OTEL_METRICS_EXPORTER="none",
        OTEL_AUDIT_ARCHIVE_DIR=str(archive),
        FULLSTACK_DATA_DIR=str(tmp / "data"),
        FULLSTACK_SECRET_KEY="test-signing-key-of-at-least-32-bytes!",
        FULLSTACK_FIRST_SUPERUSER=ADMIN_EMAIL,
        FULLSTACK_FIRST_SUPERUSER_PASSWORD=ADMIN_PASSWORD,
        FULLSTACK_TENANT=TENANT,
    )
    command = [
        str(BIN / "opentelemetry-instrument"),
        str(BIN / "uvicorn"),
        "examples.fullstack.main:app",
        "--port",
        str(port),
        "--forwarded-allow-ips",
        "127.0.0.1",
        # Access-log lines would go to stdout, between the span dumps.
        "--no-access-log",
    ]
    result = Session()
    stdout, stderr = tmp / "stdout.log", tmp / "stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=err, cwd=ROOT)
        try:
            wait_for_port(port, process)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                _play(Driver(client, result), port)
        finally:
            stop_process(process, signal.SIGINT)
    result.stderr = stderr.read_text()
    assert process.returncode == 0, result.stderr
    result.secrets += [
        ADMIN_EMAIL, ADMIN_PASSWORD, BOB_EMAIL, BOB_PASSWORD, BOB_NEW_EMAIL,
        BOB_NEW_PASSWORD, UNKNOWN_EMAIL, GUESSED_PASSWORD, FORGED_TOKEN,
    ]  # fmt: skip
    result.events = list(read_events(archive))
    result.archive_bytes = b"".join(f.read_bytes() for f in iter_archive_files(archive))
    result.spans = _console_spans(stdout.read_text())
    return result


def _server_span(session: Session, event: ArchivedEvent) -> dict[str, Any]:
    spans = [
        span
        for span in session.spans
        if span["kind"] == "SpanKind.SERVER"
        and span["context"]["trace_id"] == f"0x{event.trace_id}"
    ]
    assert len(spans) == 1, (event.attributes["url.path"], event.trace_id, len(spans))
    return spans[0]


def test_every_request_is_audited_once_with_its_full_route_template(session: Session) -> None:
    """Each request leaves one event whose http.route is the whole template, prefixes included."""
    events = session.requests()
    assert sorted(events) == sorted(session.expected)
    for request_id, expected in session.expected.items():
        attributes = events[request_id].attributes
        assert attributes["http.route"] == expected.template, request_id
        assert attributes["http.request.method"] == expected.method, request_id
        assert attributes["http.response.status_code"] == expected.status, request_id


def test_routes_agree_with_the_contrib_server_spans(session: Session) -> None:
    """Every request has one contrib SERVER span, and its http.route is the audit event's."""
    for request_id, event in session.requests().items():
        span_route = _server_span(session, event)["attributes"]["http.route"]
        route = event.attributes["http.route"]
        if str(route).startswith(ADMIN_MOUNT + "/"):
            # The contrib instrumentation names a route inside a mounted sub-application by
            # the mount path only ("/admin"); the audit trail keeps the full template.
            assert span_route in {route, ADMIN_MOUNT}, request_id
        else:
            assert span_route == route, request_id


def test_the_contrib_instrumentation_stays_on(session: Session) -> None:
    """Auditing does not switch opentelemetry-instrumentation-fastapi off."""
    assert "Skipping FastAPI instrumentation" not in session.stderr
    server_spans = [s for s in session.spans if s["kind"] == "SpanKind.SERVER"]
    # One per HTTP request, plus the WebSocket session's; the mounted admin app's own
    # instrumentation nests an INTERNAL span, not a second SERVER span.
    assert len(server_spans) == len(session.expected) + 1


def test_authenticated_requests_name_the_actor_and_others_nobody(session: Session) -> None:
    """user.id, tenant.id and user.roles come from the app's set_actor(), only when logged in."""
    events = session.requests()
    for request_id, expected in session.expected.items():
        attributes = events[request_id].attributes
        if expected.actor is None:
            assert not {"user.id", "tenant.id", "user.roles"} & attributes.keys(), request_id
        else:
            assert attributes["user.id"] == expected.actor.user_id, request_id
            assert attributes["tenant.id"] == TENANT, request_id
            assert attributes["user.roles"] == expected.actor.roles, request_id


def test_websocket_session_is_audited_with_its_actor(session: Session) -> None:
    """The WebSocket's connect and disconnect events carry its route and the token's user."""
    ws = [e for e in session.events if e.event_name.startswith("audit.websocket.")]
    assert [e.event_name for e in ws] == ["audit.websocket.connect", "audit.websocket.disconnect"]
    for event in ws:
        assert event.attributes["http.route"] == "/api/v1/ws/items"
        assert event.attributes["tenant.id"] == TENANT
        assert event.attributes["user.roles"] == ["member"]


def test_failed_logins_name_the_client_and_fail(session: Session) -> None:
    """Each failed login is an auth.login_failed event and a failed request, from the client."""
    failed = [e for e in session.events if e.event_name == "audit.auth.login_failed"]
    assert len(failed) == 2
    requests = session.requests()
    for event in failed:
        assert event.attributes["client.address"] == ATTACKER
        assert event.attributes["audit.outcome"] == "failure"
        request = requests[str(event.attributes["audit.request.id"])].attributes
        assert request["http.route"] == "/api/v1/login/access-token"
        assert request["audit.outcome"] == "failure"
        assert request["http.response.status_code"] in {400, 401}
        assert request["client.address"] == ATTACKER


def test_business_events_are_recorded_by_the_app(session: Session) -> None:
    """The app's own record() calls reach the archive in order, emails in changes redacted."""
    business = [
        e.event_name.removeprefix("audit.")
        for e in session.events
        if not e.event_name.startswith(("audit.http.", "audit.websocket.", "audit.transport."))
    ]
    assert business == [
        "auth.login_failed",
        "auth.login_failed",
        "auth.login",
        "user.created",
        "user.updated",
        "auth.password_changed",
        "auth.login",
        "access.denied",
        "item.created",
        "item.updated",
        "item.deleted",
        "user.deleted",
    ]
    (updated,) = (e for e in session.events if e.event_name == "audit.user.updated")
    changes = json.loads(str(updated.attributes["audit.changes"]))
    assert changes["full_name"] == {"old": "Bob", "new": "Bob B."}
    assert "@" not in json.dumps(changes["email"])


def test_no_email_password_or_token_reaches_the_archive(session: Session) -> None:
    """Not one login name, password or JWT of the session is in the archive's raw bytes."""
    assert b"audit.auth.login_failed" in session.archive_bytes  # the scan reads real data
    leaked = [s for s in session.secrets if s.encode() in session.archive_bytes]
    assert leaked == []
    assert b"eyJ" not in session.archive_bytes
    assert b"@fullstack.example" not in session.archive_bytes


def test_the_trail_is_complete_and_verifies(session: Session) -> None:
    """Spooled by default: gap-free sequence, an intact hash chain and a clean close."""
    from otel_audit.archive import verify_events

    report = verify_events(session.events)
    assert report.clean, report
    assert report.closed
    seqs = [int(str(e.attributes["audit.seq"])) for e in session.events]
    assert sorted(seqs) == list(range(1, len(session.events) + 1))
