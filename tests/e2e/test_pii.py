"""The PII corpus, sent through every channel, leaves no trace in the archive or the backends.

Run twice: with the in-process redaction on (the default), and with it off so that the
collector's processors are the only layer (``OTEL_AUDIT_REDACTION=false``).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from otel_audit.archive import verify_events
from tests.pii_corpus import PII_SAMPLES, SECRET_FIELDS

from .harness import CAPTURED_HEADERS, AuditStack, audit_span_events, poll
from .traffic import Traffic, wait_for_archive, wait_for_logs

pytestmark = pytest.mark.e2e

BACKEND_PATIENCE = 30.0


@pytest.fixture(
    scope="module",
    params=[pytest.param("true", id="in_process_on"), pytest.param("false", id="collector_only")],
)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuditStack]:
    """A stack whose app redacts in-process (``true``) or leaves it to the collector."""
    audit_stack = AuditStack(tmp_path_factory.mktemp(f"pii-redaction-{request.param}"))
    try:
        audit_stack.start_all({"OTEL_AUDIT_REDACTION": request.param})
        yield audit_stack
    finally:
        audit_stack.stop()


def send_sample(traffic: Traffic, value: str) -> None:
    """One request carrying ``value`` in every channel the app audits."""
    # Query string: both percent-encodings clients use, plus the secret-named parameters.
    query = "&".join(
        [
            f"note={urllib.parse.quote_plus(value)}",
            f"ref={urllib.parse.quote(value, safe='')}",
            urllib.parse.urlencode(SECRET_FIELDS),
        ]
    )
    body = {
        "resource_id": value,  # audit.resource.id and the record's body sentence
        "details": {"note": value, "sentence": f"reach me at {value} today", **SECRET_FIELDS},
        "changes": {
            "contact": [f"was {value}", value],
            **{k: ["old", v] for k, v in SECRET_FIELDS.items()},
        },
    }
    headers = dict.fromkeys(CAPTURED_HEADERS, value) | {"user-agent": f"agent {value}"}
    response = traffic.request(
        "POST",
        f"/pii/{urllib.parse.quote(value, safe='')}?{query}",
        user="pii-tester",
        tenant="acme",
        headers=headers,
        content=json.dumps(body).encode(),
    )
    assert response.status_code == 200, response.text


@dataclass(frozen=True)
class Needle:
    """A form of a secret that must not be found, and what it stands for."""

    label: str
    pattern: re.Pattern[bytes]


def needles() -> list[Needle]:
    """Every PII sample as sent, lowercased and percent-encoded; each secret next to its key."""
    found: list[Needle] = []
    for sample in PII_SAMPLES:
        value = sample.value
        forms = dict.fromkeys(
            [value, value.lower(), urllib.parse.quote(value), urllib.parse.quote_plus(value)]
        )
        for form in forms:
            label = f"{sample.kind} {value!r}" + ("" if form == value else f" as {form!r}")
            found.append(Needle(label, re.compile(re.escape(form.encode()))))
    for key, value in SECRET_FIELDS.items():
        # Short values ("739") occur by chance in ids and timestamps: look for them next to
        # their key (`cvv=739`, `"cvv": "739"`, `\"cvv\": \"739\"`); long ones anywhere.
        near_key = (
            rb"(?i)" + re.escape(key.encode()) + rb"[^A-Za-z0-9]{1,8}" + re.escape(value.encode())
        )
        pattern = re.escape(value.encode()) if len(value) >= 8 else near_key
        found.append(Needle(f"{key} value {value!r}", re.compile(pattern)))
    return found


def leaks(where: str, raw: bytes) -> list[str]:
    """Each needle found in ``raw``, with the text around its first hit."""
    found = []
    for needle in needles():
        hit = needle.pattern.search(raw)
        if hit:
            context = raw[max(0, hit.start() - 80) : hit.end() + 40].decode(errors="replace")
            found.append(f"{where}: {needle.label} in ...{context}...")
    return found


def test_pii_corpus_leaves_no_trace(stack: AuditStack, request: pytest.FixtureRequest) -> None:
    """No PII sample or secret value survives into the archive, VictoriaLogs or Jaeger."""
    traffic = Traffic(stack.app_url)
    for sample in PII_SAMPLES:
        send_sample(traffic, sample.value)

    # Everything must have arrived, or an empty archive would pass.
    archived = wait_for_archive(stack, traffic, timeout=20)
    assert len(archived) == 2 * len(PII_SAMPLES)
    assert sorted(e.event_name for e in archived) == sorted(
        ["audit.http.request", "audit.pii.submitted"] * len(PII_SAMPLES)
    )
    # The default audit policy records POST bodies: the corpus also travels in the request
    # body attribute, through both layers (a channel the collector must mask too).
    requests = [e for e in archived if e.event_name == "audit.http.request"]
    assert all("audit.request.body" in e.attributes for e in requests)
    # The hash chain tells the collector's changes apart from tampering: nothing is ever
    # "modified" or missing. With the in-process layer on, the collector masks no value (it
    # only deletes the captured headers, which its shipped allow-list does not name); with it
    # off, the events it masked are named as masked.
    report = verify_events(archived)
    assert report.count("modified") == 0 and report.count("gap") == 0, report
    masked_values = [e for e in archived if "redaction.masked.count" in e.attributes]
    if request.node.callspec.params["stack"] == "true":  # OTEL_AUDIT_REDACTION of this stack
        assert masked_values == []
    else:
        assert masked_values
        assert report.count("masked") >= len(masked_values), report
    event_ids = {str(e.attributes["audit.event.id"]) for e in archived}
    trace_ids = {e.trace_id for e in archived}
    wait_for_logs(stack, event_ids, BACKEND_PATIENCE)
    poll(
        lambda: event_ids <= audit_span_events(stack.trace_spans(trace_ids)).keys(),
        timeout=BACKEND_PATIENCE,
        what="every audit span event in Jaeger",
    )

    found = (
        leaks("archive", stack.archive_bytes())
        + leaks("VictoriaLogs", stack.stack.query_logs_raw("*").encode())
        + leaks("Jaeger", stack.jaeger_answers(trace_ids))
    )
    assert found == [], "\n".join(found)
