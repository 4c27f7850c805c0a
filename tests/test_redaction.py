"""Tests for otel_audit._redaction: the PII corpus, look-alikes, keys, caps and robustness."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from urllib.parse import quote, unquote_plus, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_audit._redaction import REDACTED, Finding, Redactor

from .pii_corpus import NEGATIVE_SAMPLES, PII_SAMPLES, SECRET_FIELDS, PiiSample

SAMPLE_IDS = [f"{sample.kind}:{sample.value[:24]}" for sample in PII_SAMPLES]


@pytest.fixture
def redactor() -> Redactor:
    return Redactor()


def _marker(reason: str) -> str:
    return f"{REDACTED[:-1]}:{reason}]"


def _masked(sample: PiiSample) -> str:
    """The expected replacement; credential prefixes such as "Bearer " stay readable."""
    if sample.kind == "bearer_token":
        return sample.value.split(" ")[0] + " " + _marker(sample.kind)
    if sample.kind == "api_key":
        return sample.value.split("=")[0] + "=" + _marker(sample.kind)
    return _marker(sample.kind)


def _assert_no_leak(sample: PiiSample, *outputs: object) -> None:
    for output in outputs:
        text = output if isinstance(output, str) else json.dumps(output) + repr(output)
        assert sample.value not in text
        assert quote(sample.value) not in text


# --- the corpus --------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", PII_SAMPLES, ids=SAMPLE_IDS)
@pytest.mark.parametrize("template", ["{}", "q={}", "{}=1", "a=1&{}"])
def test_raw_unencoded_sample_in_query_does_not_survive(
    redactor: Redactor, sample: PiiSample, template: str
) -> None:
    """A sample written raw in a query (where "+" would decode to a space) is still masked."""
    result = redactor.scrub_query(template.format(sample.value), "url.query", [])
    _assert_no_leak(sample, result, unquote_plus(result))


@pytest.mark.parametrize("sample", PII_SAMPLES, ids=SAMPLE_IDS)
def test_sample_is_masked_in_text(redactor: Redactor, sample: PiiSample) -> None:
    """Every corpus sample inside free text is replaced by its marker, with one finding."""
    findings: list[Finding] = []
    result = redactor.scrub_text(f"note: {sample.value} (end)", "audit.reason", findings)
    assert result == f"note: {_masked(sample)} (end)"
    assert findings == [Finding("audit.reason", sample.kind)]


@pytest.mark.parametrize("encode", [urlencode, lambda q: urlencode(q, quote_via=quote)])
@pytest.mark.parametrize("sample", PII_SAMPLES, ids=SAMPLE_IDS)
def test_sample_is_masked_in_query(redactor: Redactor, sample: PiiSample, encode: object) -> None:
    """A percent-encoded corpus sample in a query value is decoded, masked and re-encoded."""
    query = encode({"page": "2", "q": sample.value})  # type: ignore[operator]
    findings: list[Finding] = []
    result = redactor.scrub_query(query, "url.query", findings)
    _assert_no_leak(sample, result, unquote_plus(result))
    assert result.startswith("page=2&q=")
    assert Finding("url.query.q", sample.kind) in findings


@pytest.mark.parametrize("sample", PII_SAMPLES, ids=SAMPLE_IDS)
def test_sample_is_masked_when_nested(redactor: Redactor, sample: PiiSample) -> None:
    """A corpus sample deep inside details is masked and its finding names the dotted path."""
    details = {"customer": {"notes": ("first", f"call {sample.value}")}}
    findings: list[Finding] = []
    result = redactor.scrub_value(details, "audit.details", findings)
    _assert_no_leak(sample, result)
    assert result == {"customer": {"notes": ["first", f"call {_masked(sample)}"]}}
    assert findings == [Finding("audit.details.customer.notes.1", sample.kind)]


@pytest.mark.parametrize("sample", PII_SAMPLES, ids=SAMPLE_IDS)
def test_sample_is_masked_as_dict_key(redactor: Redactor, sample: PiiSample) -> None:
    """A corpus sample used as a mapping key leaks neither through the key nor a path."""
    findings: list[Finding] = []
    result = redactor.scrub_value({sample.value: "kept"}, "d", findings)
    _assert_no_leak(sample, result, repr(findings))
    assert isinstance(result, dict)
    assert list(result) == [_masked(sample)]


@pytest.mark.parametrize("sample", PII_SAMPLES, ids=SAMPLE_IDS)
def test_masking_is_idempotent(redactor: Redactor, sample: PiiSample) -> None:
    """Scrubbing already-scrubbed text changes nothing and records nothing."""
    once = redactor.scrub_text(f"a {sample.value} b", "p", [])
    findings: list[Finding] = []
    assert redactor.scrub_text(once, "p", findings) is once
    assert findings == []


def test_findings_never_carry_values(redactor: Redactor) -> None:
    """Findings for a payload holding the whole corpus contain no sample and no secret."""
    payload = {
        "samples": [sample.value for sample in PII_SAMPLES],
        "fields": dict(SECRET_FIELDS),
    }
    findings: list[Finding] = []
    result = redactor.scrub_value(payload, "audit.details", findings)
    dumped = repr(findings)
    for secret in [sample.value for sample in PII_SAMPLES] + list(SECRET_FIELDS.values()):
        assert secret not in dumped
        assert secret not in json.dumps(result)
    assert {finding.reason for finding in findings} == {s.kind for s in PII_SAMPLES} | {
        "secret_key"
    }


# --- look-alikes -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", NEGATIVE_SAMPLES)
def test_negative_sample_survives_text(redactor: Redactor, text: str) -> None:
    """Look-alikes (ids, uuids, timestamps, IPs, versions, failing checksums) stay as they are."""
    findings: list[Finding] = []
    assert redactor.scrub_text(text, "url.path", findings) is text
    assert findings == []


@pytest.mark.parametrize("text", NEGATIVE_SAMPLES)
def test_negative_sample_survives_query(redactor: Redactor, text: str) -> None:
    """Look-alikes in a query value come back byte-for-byte."""
    query = urlencode({"q": text, "page": "3"})
    findings: list[Finding] = []
    assert redactor.scrub_query(query, "url.query", findings) == query
    assert findings == []


def test_rejected_candidate_does_not_hide_a_later_match(redactor: Redactor) -> None:
    """A number failing Luhn is kept while the phone number after it is still masked."""
    findings: list[Finding] = []
    result = redactor.scrub_text("/orders/1234567890123 202-555-0143", "p", findings)
    assert result == f"/orders/1234567890123 {_marker('phone')}"
    assert findings == [Finding("p", "phone")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4111 1111 1111 1111 12", f"{_marker('card_number')} 12"),
        ("+44 20 7946 0958 12345", f"{_marker('phone')} 12345"),
        ("GB82 WEST 1234 5698 7654 32 1234", f"{_marker('iban')} 1234"),
    ],
)
def test_greedy_match_is_cut_back_at_a_separator(
    redactor: Redactor, text: str, expected: str
) -> None:
    """A value followed by an unrelated number is still recognised and the number kept."""
    assert redactor.scrub_text(text, "p", []) == expected


def test_one_finding_per_reason_per_path(redactor: Redactor) -> None:
    """Two emails and a phone in one string give two findings, not three."""
    findings: list[Finding] = []
    redactor.scrub_text("a@example.org b@example.org +1-202-555-0143", "p", findings)
    assert findings == [Finding("p", "email"), Finding("p", "phone")]


# --- secret-named keys -------------------------------------------------------------------------

SECRET_KEYS = [
    "password", "PASSWORD", "db_password", "userPassword", "passwd", "pwd", "passphrase",
    "secret", "client_secret", "stripe_secret_key", "token", "access_token", "refresh_token",
    "id_token", "csrf_token", "X-Auth-Token", "auth", "authorization", "Proxy-Authorization",
    "cookie", "Set-Cookie", "session", "sessionid", "JSESSIONID", "PHPSESSID", "sessid",
    "session_token", "session_key", "api_key", "apikey", "apiKey", "X-API-Key", "private_key",
    "credential", "credentials", "signature", "ssn", "card_number", "creditCard", "cc_number",
    "pan", "cvv", "cvc", "pin", "pinCode", "otp", "mfa_code", "MFA-Code",
]  # fmt: skip
NON_SECRET_KEYS = [
    "shipping", "author", "authored_by", "company", "span", "session_id", "session.id",
    "sessionId", "user_id", "email_verified", "keyword", "primary_key", "spinner", "option",
    "", "---",
]  # fmt: skip


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_key_is_recognised(redactor: Redactor, key: str) -> None:
    """Secret-named keys match whatever their case and separators."""
    assert redactor.is_secret_key(key)


@pytest.mark.parametrize("key", NON_SECRET_KEYS)
def test_harmless_key_is_not_secret(redactor: Redactor, key: str) -> None:
    """Short needles match whole words only, and session ids are correlation ids."""
    assert not redactor.is_secret_key(key)


def test_extra_keys_use_the_same_normalisation() -> None:
    """Caller keys match across spellings: long ones as substrings, short ones as words."""
    redactor = Redactor(extra_keys=["employee_ref", "NIN"])
    assert redactor.is_secret_key("EmployeeRef")
    assert redactor.is_secret_key("hr-employee-ref-id")
    assert redactor.is_secret_key("nin")
    assert redactor.is_secret_key("uk_nin")
    assert not redactor.is_secret_key("ninja")
    assert not Redactor().is_secret_key("employee_ref")


@pytest.mark.parametrize(("key", "secret"), SECRET_FIELDS.items())
def test_secret_field_value_is_replaced(redactor: Redactor, key: str, secret: str) -> None:
    """A value under a secret-named key is replaced whole and the finding names the key."""
    findings: list[Finding] = []
    result = redactor.scrub_value({key: secret, "page": 2}, "audit.details", findings)
    assert result == {key: _marker("secret_key"), "page": 2}
    assert findings == [Finding(f"audit.details.{key}", "secret_key")]


@pytest.mark.parametrize(("key", "secret"), SECRET_FIELDS.items())
def test_secret_field_is_replaced_in_query(redactor: Redactor, key: str, secret: str) -> None:
    """A query parameter with a secret name loses its value and keeps its neighbours."""
    findings: list[Finding] = []
    query = f"page=2&{key}={quote(secret)}&sort=name"
    result = redactor.scrub_query(query, "url.query", findings)
    assert result == f"page=2&{key}={_marker('secret_key')}&sort=name"
    assert findings == [Finding(f"url.query.{key}", "secret_key")]


def test_secret_key_replaces_values_of_any_type(redactor: Redactor) -> None:
    """Containers and numbers under secret keys are replaced too, not walked."""
    value = {"password": {"old": "a", "new": "b"}, "tokens": ["t1"], "pin": 1234, "ok": None}
    result = redactor.scrub_value(value, "", [])
    secret = _marker("secret_key")
    assert result == {"password": secret, "tokens": secret, "pin": secret, "ok": None}


# --- queries -----------------------------------------------------------------------------------


def test_query_fast_paths(redactor: Redactor) -> None:
    """An empty query gives "" and a clean one comes back as the very same object."""
    clean = "page=2&sort=name&limit=50"
    findings: list[Finding] = []
    assert redactor.scrub_query("", "url.query", findings) == ""
    assert redactor.scrub_query(clean, "url.query", findings) is clean
    assert findings == []


def test_query_keeps_untouched_pairs_verbatim(redactor: Redactor) -> None:
    """Only the masked pair is re-encoded; the others keep their original encoding."""
    query = "q=hello+world&email=x%40example.org&path=%2Fa%2Fb&flag"
    result = redactor.scrub_query(query, "url.query", [])
    assert result == f"q=hello+world&email={_marker('email')}&path=%2Fa%2Fb&flag"


def test_query_key_holding_pii_is_masked(redactor: Redactor) -> None:
    """An email used as a query key is masked and does not appear in any finding path."""
    findings: list[Finding] = []
    result = redactor.scrub_query("alice%40example.org=1", "url.query", findings)
    assert result == f"{_marker('email')}=1"
    assert "alice" not in repr(findings)


@pytest.mark.parametrize("query", ["%", "%zz=1", "=&&=", "a=%E0%A4%A", "&&&", "a==b=c", "%ff%fe"])
def test_malformed_query_does_not_raise(redactor: Redactor, query: str) -> None:
    """Broken percent-encoding and stray separators are tolerated."""
    assert isinstance(redactor.scrub_query(query, "url.query", []), str)


# --- size caps ---------------------------------------------------------------------------------


def test_truncate_reports_removed_characters() -> None:
    """Text over the limit keeps its head and says how much was cut; short text is untouched."""
    redactor = Redactor(max_value_length=10)
    findings: list[Finding] = []
    short = "abcdefghij"
    assert redactor.truncate(short, "p", findings) is short
    assert findings == []
    assert redactor.truncate("abcdefghijklmno", "p", findings) == "abcdefghij…[TRUNCATED 5 chars]"
    assert findings == [Finding("p", "truncated")]


def test_scrub_text_masks_before_truncating() -> None:
    """A secret straddling the length limit is masked rather than half kept."""
    redactor = Redactor(max_value_length=20)
    findings: list[Finding] = []
    result = redactor.scrub_text("x" * 15 + " 4111 1111 1111 1111", "p", findings)
    assert "4111" not in result
    assert result.startswith("x" * 15 + " [RED…")
    assert findings == [Finding("p", "card_number"), Finding("p", "truncated")]


def test_huge_text_is_bounded() -> None:
    """A megabyte string comes back capped, with the full count of removed characters."""
    redactor = Redactor(max_value_length=100)
    text = "a" * 1_000_000
    result = redactor.scrub_text(text, "p", [])
    assert result == "a" * 100 + "…[TRUNCATED 999900 chars]"


def test_depth_cap() -> None:
    """Containers nested deeper than max_depth are replaced by a depth marker."""
    redactor = Redactor(max_depth=2)
    findings: list[Finding] = []
    result = redactor.scrub_value({"a": {"b": {"c": 1}, "s": "x"}}, "d", findings)
    assert result == {"a": {"b": _marker("depth"), "s": "x"}}
    assert findings == [Finding("d.a.b", "depth")]


@pytest.mark.parametrize(
    "container", [list(range(5)), tuple(range(5)), {str(i): i for i in range(5)}]
)
def test_items_cap(container: object) -> None:
    """Only the first max_items entries of a container are kept, and the cut is recorded."""
    redactor = Redactor(max_items=3)
    findings: list[Finding] = []
    result = redactor.scrub_value(container, "d", findings)
    assert result in ([0, 1, 2], {"0": 0, "1": 1, "2": 2})
    assert findings == [Finding("d", "truncated")]


def test_cycles_and_shared_subtrees_terminate(redactor: Redactor) -> None:
    """Self-references and wide cyclic structures finish and stay JSON-serialisable."""
    loop: dict[str, object] = {}
    loop["self"] = loop
    wide: list[object] = []
    wide.extend([wide] * 200)
    findings: list[Finding] = []
    for value in (loop, wide):
        json.dumps(redactor.scrub_value(value, "d", findings))
    assert {finding.reason for finding in findings} == {"depth", "truncated"}


# --- odd inputs --------------------------------------------------------------------------------


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("boom")

    __repr__ = __str__


class _BrokenMapping(Mapping[str, object]):
    def __getitem__(self, key: str) -> object:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("boom")

    def __len__(self) -> int:
        return 1


def test_unrepresentable_values_fail_closed(redactor: Redactor) -> None:
    """Objects whose str() raises, and broken mappings, become a placeholder instead of raising."""
    result = redactor.scrub_value({"obj": _Unprintable(), "map": _BrokenMapping(), "n": 1}, "d", [])
    assert result == {"obj": "<unrepresentable>", "map": "<unrepresentable>", "n": 1}


def test_non_json_values_become_json(redactor: Redactor) -> None:
    """Bytes, sets, tuples, datetimes and card numbers stored as ints come back JSON-ready."""
    when = datetime(2026, 11, 22, 5, 52, 58, tzinfo=timezone.utc)
    value = {
        1: b"mail alice@example.org",
        "tags": frozenset({"a"}),
        "pair": (1.5, True),
        "when": when,
        "card": 4111111111111111,
        "count": 10**20,
    }
    result = redactor.scrub_value(value, "d", [])
    assert result == {
        "1": f"mail {_marker('email')}",
        "tags": ["a"],
        "pair": [1.5, True],
        "when": str(when),
        "card": _marker("card_number"),
        "count": 10**20,
    }
    json.dumps(result)


def test_keys_masked_alike_do_not_overwrite_each_other(redactor: Redactor) -> None:
    """Two email keys both survive as distinct masked keys."""
    result = redactor.scrub_value({"a@example.org": 1, "b@example.org": 2}, "d", [])
    assert isinstance(result, dict)
    assert sorted(result.values()) == [1, 2]


def test_long_keys_are_truncated(redactor: Redactor) -> None:
    """Keys are capped at 256 characters."""
    result = redactor.scrub_value({"k" * 1000: 1}, "d", [])
    assert isinstance(result, dict)
    (key,) = result
    assert key.startswith("k" * 256 + "…[TRUNCATED 744 chars]")


def test_extra_patterns_mask_as_custom() -> None:
    """Caller regexes mask with reason "custom"; one that matches empty adds no markers."""
    redactor = Redactor(extra_patterns=[r"EMP-\d{6}", "z*"])
    findings: list[Finding] = []
    assert redactor.scrub_text("id EMP-123456 ok", "p", findings) == f"id {_marker('custom')} ok"
    assert findings == [Finding("p", "custom")]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"extra_patterns": ["(unclosed"]},
        {"max_value_length": 0},
        {"max_depth": 0},
        {"max_items": -1},
    ],
)
def test_invalid_configuration_raises_value_error(kwargs: dict[str, object]) -> None:
    """Bad settings fail at construction, not on the first request."""
    with pytest.raises(ValueError, match=r"extra_patterns|must be at least"):
        Redactor(**kwargs)  # type: ignore[arg-type]


# --- properties --------------------------------------------------------------------------------

_json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(alphabet=st.characters(exclude_categories=()))
    | st.binary(max_size=64)
    | st.sampled_from([sample.value for sample in PII_SAMPLES]),
    lambda children: (
        st.lists(children, max_size=6)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=20) | st.integers(), children, max_size=6)
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(value=_json_like)
def test_scrub_value_never_raises_and_returns_json(value: object) -> None:
    """Arbitrary JSON-ish data is scrubbed without raising into something json.dumps accepts."""
    findings: list[Finding] = []
    result = Redactor(max_depth=4, max_items=5).scrub_value(value, "d", findings)
    json.dumps(result)
    assert all(isinstance(finding, Finding) for finding in findings)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.characters(exclude_categories=())))
def test_scrub_text_and_query_never_raise(text: str) -> None:
    """Arbitrary text, lone surrogates included, goes through text and query scrubbing."""
    redactor = Redactor(max_value_length=64)
    assert isinstance(redactor.scrub_text(text, "p", []), str)
    assert isinstance(redactor.scrub_query(text, "q", []), str)


@settings(max_examples=400, deadline=None)
@given(sample=st.sampled_from(PII_SAMPLES), prefix=st.text(), suffix=st.text())
def test_sample_embedded_in_random_text_does_not_survive(
    sample: PiiSample, prefix: str, suffix: str
) -> None:
    """A corpus sample anywhere in random text is gone after scrubbing."""
    text = f"{prefix} {sample.value} {suffix}"
    assert sample.value not in Redactor().scrub_text(text, "p", [])
