"""``otel-audit verify`` on the collector's archive: the app's spool -> otelcol-audit -> archive.

The real app (``transport=spool``) writes its spool, the real collector reads it and writes
its archive; the app stops cleanly, so its trail ends with the closing record. ``verify``
must find that archive clean, name one tampered event by file and line, and report events
the collector masked (the in-process redaction off) as masked, not tampered.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from otel_audit.archive import ArchivedEvent

from .._trails import command
from .harness import AuditStack, poll
from .traffic import Traffic, wait_for_archive

pytestmark = pytest.mark.e2e

PATIENCE = 30.0
CLOSED = "audit.transport.closed"


def _instance(event: ArchivedEvent) -> str:
    return str(event.resource["service.instance.id"])


Request = tuple[str, str, dict[str, Any]]


def _run_app(stack: AuditStack, env: dict[str, str], send: list[Request]) -> str:
    """Start the app on the stack's spool, send ``send``, stop it; returns its instance id
    once its closing record is in the collector's archive."""
    spool = {"OTEL_AUDIT_TRANSPORT": "spool", "OTEL_AUDIT_SPOOL_DIR": str(stack.spool_dir)}
    stack.start("app", stack.app({**spool, **env}))
    traffic = Traffic(stack.app_url)
    for method, path, extra in send:
        response = traffic.request(method, path, user="verifier", tenant="acme", **extra)
        assert response.status_code < 500, response.text
    (instance,) = {_instance(e) for e in wait_for_archive(stack, traffic, PATIENCE)}
    stack.services["app"].stop()  # SIGTERM: the lifespan writes the closing record
    poll(
        lambda: any(
            e.event_name == CLOSED and _instance(e) == instance for e in stack.archive_events()
        ),
        timeout=PATIENCE,
        what="the app's closing record in the archive",
    )
    return instance


def test_verify_the_collectors_archive(audit_stack: AuditStack, tmp_path: Path) -> None:
    """Clean -> exit 0; one event edited -> exit 1 naming it; collector masking -> masked."""
    clean = _run_app(
        audit_stack,
        {},
        [
            ("GET", "/items/1", {}),
            ("PUT", "/users/u-1/role?role=viewer", {}),
            ("DELETE", "/documents/d-9", {}),
        ],
    )
    archive = audit_stack.archive_dir

    run = command("verify", archive, "--require-closed", "--format", "json")

    assert run.code == 0, run.out
    document = run.json()
    assert document["clean"] and document["closed"]
    (instance,) = document["instances"]
    assert instance["instance_id"] == clean and instance["first_seq"] == 1
    assert instance["last_seq"] == instance["events"] >= 5  # requests, role change, closing

    # One event's outcome edited in a copy (the collector keeps writing the original).
    copy = tmp_path / "copy"
    shutil.copytree(archive, copy)
    events = [e for e in audit_stack.archive_events() if e.event_name == "audit.user.role_changed"]
    (target,) = events
    file = copy / Path(str(target.source_file)).name
    lines = file.read_bytes().splitlines(keepends=True)
    index = int(str(target.line_number)) - 1
    event_id = f'"stringValue":"{target.attributes["audit.event.id"]}"'.encode()
    other = b'"stringValue":"00000000-0000-7000-8000-000000000000"'
    assert event_id in lines[index]
    lines[index] = lines[index].replace(event_id, other, 1)
    file.write_bytes(b"".join(lines))

    tampered = command("verify", copy, "--format", "json")

    assert tampered.code == 1
    assert tampered.failing() == {("modified", target.attributes["audit.seq"], index + 1)}
    assert tampered.files("modified") == {str(file)}

    # The collector as the only redaction layer: it masks an email in a business event.
    body = {"resource_id": "r-1", "details": {"note": "mail jane.doe@example.com"}, "changes": {}}
    masked = _run_app(
        audit_stack, {"OTEL_AUDIT_REDACTION": "false"}, [("POST", "/pii/x", {"json": body})]
    )

    both = command("verify", archive, "--require-closed", "--format", "json")

    assert both.code == 1
    assert both.kinds(failure=True) == {"masked"}
    masked_findings = [f for f in both.json()["findings"] if f["kind"] == "masked"]
    assert {f["instance_id"] for f in masked_findings} == {masked}
    assert "collector's redaction processor" in masked_findings[0]["message"]
    by_instance = {i["instance_id"]: i for i in both.json()["instances"]}
    assert by_instance[clean]["problems"] == 0 and by_instance[masked]["closed"]
