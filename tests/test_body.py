"""Tests for otel_audit._body: bounded capture and rendering of hostile bodies."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from otel_audit import AuditConfig
from otel_audit._body import BodyCapture, render_body
from otel_audit._redaction import Finding
from otel_audit._scrub import Scrubber

from .pii_corpus import PII_SAMPLES, SECRET_FIELDS

PATH = "audit.request.body"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MiB = 1 << 20


def _render(
    body: bytes, content_type: str | None = JSON, limit: int = MiB
) -> tuple[str, list[str]]:
    capture = BodyCapture(content_type, limit)
    capture.add(body)
    findings: list[Finding] = []
    text = render_body(capture, Scrubber(AuditConfig()).json, PATH, findings)
    return text, [f"{finding.path}:{finding.reason}" for finding in findings]


def _assert_no_pii(text: str) -> None:
    for sample in PII_SAMPLES:
        assert sample.value not in text, sample
    for value in SECRET_FIELDS.values():
        assert value not in text, value


def _summary(text: str) -> dict[str, object]:
    value = json.loads(text)
    assert isinstance(value, dict)
    assert value["captured"] is False
    return value


def test_capture_keeps_at_most_the_limit_and_counts_everything() -> None:
    """Bytes beyond the limit are dropped, the total size is still counted, the cut remembered."""
    capture = BodyCapture(JSON, 10)
    for chunk in (b"0123", b"", b"456789AB", b"CDEF"):
        capture.add(chunk)
    assert capture.data == b"0123456789"
    assert capture.size == 16
    assert capture.truncated


def test_capture_exactly_at_the_limit_is_not_truncated() -> None:
    """A body of exactly `limit` bytes is complete; one more byte makes it truncated."""
    capture = BodyCapture(JSON, 4)
    capture.add(b"[12]")
    assert (capture.data, capture.truncated) == (b"[12]", False)
    capture.add(b" ")
    assert (capture.data, capture.size, capture.truncated) == (b"[12]", 5, True)


def test_capture_copies_mutable_buffers() -> None:
    """A bytearray the sender reuses after add() does not change what was captured."""
    buffer = bytearray(b"{}")
    capture = BodyCapture(JSON, 10)
    capture.add(buffer)
    buffer[:] = b"XX"
    assert capture.data == b"{}"


def test_huge_chunk_copies_only_what_fits() -> None:
    """Of a chunk far beyond the cap, only the part that fits is kept."""
    capture = BodyCapture(JSON, 16)
    capture.add(b"x" * (8 * MiB))
    assert len(capture.data) == 16
    assert capture.size == 8 * MiB


@pytest.mark.parametrize("limit", [-1, 1.5, "10", None])
def test_capture_refuses_a_bad_limit(limit: object) -> None:
    """The cap must be a non-negative int."""
    with pytest.raises(ValueError, match="limit"):
        BodyCapture(JSON, limit)  # type: ignore[arg-type]


def test_many_small_chunks_render_like_one() -> None:
    """A chunked body (one byte per message) renders exactly as the same body in one piece."""
    body = json.dumps({"items": list(range(2000)), "password": "hunter2-Correct-Horse"}).encode()
    capture = BodyCapture(JSON, MiB)
    for index in range(len(body)):
        capture.add(body[index : index + 1])
    findings: list[Finding] = []
    text = render_body(capture, Scrubber(AuditConfig()).json, PATH, findings)
    assert (text, [f"{f.path}:{f.reason}" for f in findings]) == _render(body)
    assert "hunter2" not in text


def _nested_json() -> bytes:
    pii = {sample.kind + str(index): sample.value for index, sample in enumerate(PII_SAMPLES)}
    return json.dumps(
        {
            "customer": {"profile": {"contact": pii, "notes": [s.value for s in PII_SAMPLES]}},
            "credentials": SECRET_FIELDS,
            "settings": {"db": {"db_password": SECRET_FIELDS["db_password"]}},
            "order_id": "ORD-2026-000123",
        }
    ).encode()


def test_json_body_with_secrets_and_pii_is_redacted_field_by_field() -> None:
    """Secrets under nested keys and PII in nested values are masked; the rest survives."""
    text, findings = _render(_nested_json(), "application/json; charset=utf-8")
    _assert_no_pii(text)
    value = json.loads(text)
    assert value["order_id"] == "ORD-2026-000123"
    assert value["customer"]["profile"]["contact"]["email0"] == "[REDACTED:email]"
    assert f"{PATH}.settings.db.db_password:secret_key" in findings
    assert f"{PATH}.customer.profile.contact.email0:email" in findings
    assert f"{PATH}.customer.profile.notes.0:email" in findings


@pytest.mark.parametrize("media_type", ["application/problem+json", "application/vnd.api+json"])
def test_structured_json_suffix_is_parsed(media_type: str) -> None:
    """`application/*+json` bodies are parsed and redacted like application/json."""
    text, findings = _render(b'{"password": "hunter2-Correct-Horse", "n": 1}', media_type)
    assert json.loads(text) == {"password": "[REDACTED:secret_key]", "n": 1}
    assert findings == [f"{PATH}.password:secret_key"]


def test_json_with_a_bom_is_parsed() -> None:
    """A UTF-8 byte-order mark before JSON is tolerated."""
    text, _ = _render(b'\xef\xbb\xbf{"email": "alice.compliance@example.org"}')
    assert json.loads(text) == {"email": "[REDACTED:email]"}


def test_form_body_is_parsed_and_redacted() -> None:
    """A form login body keeps its non-secret fields, masks password and email, lists repeats."""
    body = urlencode(
        [
            ("username", "alice"),
            ("password", SECRET_FIELDS["password"]),
            ("email", "alice.compliance@example.org"),
            ("scope", "read"),
            ("scope", "write"),
            ("note", ""),
        ]
    ).encode()
    text, findings = _render(body, FORM)
    _assert_no_pii(text)
    assert json.loads(text) == {
        "username": "alice",
        "password": "[REDACTED:secret_key]",
        "email": "[REDACTED:email]",
        "scope": ["read", "write"],
        "note": "",
    }
    assert findings == [f"{PATH}.password:secret_key", f"{PATH}.email:email"]


def test_form_body_with_the_whole_pii_corpus_leaks_nothing() -> None:
    """Every corpus sample and secret field, sent as a form, is masked."""
    pairs = [(f"field{index}", sample.value) for index, sample in enumerate(PII_SAMPLES)]
    text, findings = _render(urlencode([*pairs, *SECRET_FIELDS.items()]).encode(), FORM)
    _assert_no_pii(text)
    assert len(findings) >= len(pairs) + len(SECRET_FIELDS)


# (body, content type, limit, expected reason): bodies recorded as size and type only.
WITHHELD: list[tuple[bytes, str | None, int, str]] = [
    (_nested_json(), JSON, 64, "truncated"),
    (b"password=" + SECRET_FIELDS["password"].encode() + b"&x=y", FORM, 16, "truncated"),
    (b"x" * (2 * MiB), "application/octet-stream", MiB, "truncated"),
    (b'{"email": "alice.compliance@example.org"}', "text/plain", MiB, "unsupported_type"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png", MiB, "unsupported_type"),
    (b'{"password": "hunter2-Correct-Horse"}', None, MiB, "unsupported_type"),
    (b'{"password": "hunter2-Correct-Horse"}', "json", MiB, "unsupported_type"),
    ('{"name": "J\u00e9r\u00f4me"}'.encode("latin-1"), JSON, MiB, "not_utf8"),
    (b"password=\xff\xfe&email=a", FORM, MiB, "not_utf8"),
    (b'{"a": 1', JSON, MiB, "invalid_json"),
    (b'{"a": NaN}', JSON, MiB, "invalid_json"),
    (b"[" * 100_000 + b"]" * 100_000, JSON, MiB, "too_deep"),
    (b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, JSON, 2 * MiB, "too_deep"),
    (b'{"a": 1}', "application/json; charset=utf-16", MiB, "charset"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "content_type", "limit", "reason"), WITHHELD)
def test_bodies_recorded_as_size_and_type_only(
    body: bytes, content_type: str | None, limit: int, reason: str
) -> None:
    """Truncated, unsupported, undecodable and too-deep bodies keep size and type, and say why."""
    text, findings = _render(body, content_type, limit)
    _assert_no_pii(text)
    summary = _summary(text)
    assert summary["reason"] == reason
    assert summary["size"] == len(body)
    assert summary["truncated"] is (reason == "truncated")
    assert findings == [f"{PATH}:{reason}"]
    assert len(text) < 200  # no part of the body itself


def test_multipart_upload_is_size_and_type_only() -> None:
    """A multipart body (a file with PII, a password field) keeps only its media type and size."""
    body = (
        b"--b0undary\r\nContent-Disposition: form-data; name=password\r\n\r\n"
        + SECRET_FIELDS["password"].encode()
        + b"\r\n--b0undary\r\nContent-Disposition: form-data; name=f; filename=a.csv\r\n\r\n"
        + "\n".join(sample.value for sample in PII_SAMPLES).encode()
        + b"\r\n--b0undary--\r\n"
    )
    text, findings = _render(body, 'multipart/form-data; boundary="b0undary"')
    _assert_no_pii(text)
    assert "b0undary" not in text
    assert _summary(text)["content_type"] == "multipart/form-data"
    assert findings == [f"{PATH}:unsupported_type"]


def test_hostile_content_type_is_not_echoed() -> None:
    """A content type that is not a plain media type is recorded as null, not as sent."""
    text, _ = _render(b"{}", "alice.compliance@example.org/json")
    assert _summary(text)["content_type"] is None
    assert "alice" not in text
    text, _ = _render(b"{}", "text/202-555-0143")
    assert "202-555-0143" not in text


def test_empty_body_is_a_summary_without_finding() -> None:
    """An empty body says so and adds no finding."""
    text, findings = _render(b"")
    assert _summary(text) == {
        "captured": False,
        "content_type": JSON,
        "size": 0,
        "truncated": False,
        "reason": "empty",
    }
    assert findings == []


def test_lone_surrogates_are_escaped() -> None:
    """JSON escapes that decode to lone surrogates come out as encodable text."""
    text, _ = _render(b'{"note": "a\\ud800b"}')
    text.encode("utf-8")
    assert json.loads(text) == {"note": "a\ud800b"}


def test_redaction_off_keeps_values_but_still_withholds_unparsed_bodies() -> None:
    """With in-process redaction off, JSON is kept as sent, and truncation still hides the rest."""
    scrubber = Scrubber(AuditConfig(redaction=False))
    capture = BodyCapture(JSON, MiB)
    capture.add(b'{"email": "alice.compliance@example.org"}')
    findings: list[Finding] = []
    assert "alice.compliance" in render_body(capture, scrubber.json, PATH, findings)
    cut = BodyCapture(JSON, 8)
    cut.add(b'{"email": "alice.compliance@example.org"}')
    assert "alice" not in render_body(cut, scrubber.json, PATH, findings)
