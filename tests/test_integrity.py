"""The hash chain: canonical form round trip, and verify against every kind of tampering.

Archives are written by the real ``ArchiveLogExporter`` from real SDK ``ReadableLogRecord``
objects, read back with ``read_events``, and tampered with at the byte level, line by line.
"""

from __future__ import annotations

import json
import math
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource

from otel_audit._archive_exporter import ArchiveLogExporter
from otel_audit.archive import (
    ArchivedEvent,
    ArchiveReadError,
    ChainState,
    VerifyReport,
    canonical_form,
    chain_hash,
    read_events,
    verify_events,
)
from otel_audit.archive._integrity import CLOSED_EVENT, CLOSED_LAST_SEQ, GENESIS

KEY = b"k" * 32
INSTANCE = "3f1c2a4e-0000-4000-8000-000000000001"
T0 = 1_780_000_000_000_000_000

# -- writing real archives -------------------------------------------------------------------


def record(
    instance_id: str,
    event_name: str,
    attributes: dict[str, Any],
    *,
    timestamp_ns: int = T0,
    severity: SeverityNumber | None = SeverityNumber.INFO,
    body: Any = "user 42 changed role",
) -> ReadableLogRecord:
    """One SDK record, built as the transport builds them (no Logger.emit copying)."""
    log = LogRecord(
        timestamp=timestamp_ns,
        observed_timestamp=timestamp_ns,
        severity_number=severity,
        body=body,
        attributes=attributes,
        event_name=event_name,
    )
    return ReadableLogRecord(log, Resource({"service.instance.id": instance_id}))


def chained(
    state: ChainState,
    instance_id: str,
    event_name: str,
    attributes: dict[str, Any],
    timestamp_ns: int,
) -> ReadableLogRecord:
    """A record with the integrity fields ChainState hands out, set as the writer sets them."""
    seq, prev, digest = state.next(
        event_name=event_name,
        timestamp_ns=timestamp_ns,
        severity_number=int(SeverityNumber.INFO.value),
        body="user 42 changed role",
        attributes=attributes,
        instance_id=instance_id,
    )
    full = {**attributes, "audit.seq": seq, "audit.chain.prev": prev, "audit.chain.hash": digest}
    return record(instance_id, event_name, full, timestamp_ns=timestamp_ns)


def event_attributes(n: int) -> dict[str, Any]:
    """A realistic audit event's attributes, of every type the schema uses."""
    return {
        "audit.action": "user.role_changed",
        "audit.outcome": "success",
        "audit.event.id": f"0190f0a0-0000-7000-8000-{n:012d}",
        "audit.changes": json.dumps({"role": {"old": "viewer", "new": "admin"}}),
        "user.id": f"u-{n % 7}",
        "user.roles": ("admin", "ops"),
        "tenant.id": "tenant-ä",
        "http.response.status_code": 200,
        "audit.websocket.duration_s": 0.25 * n,
        "audit.flag": n % 2 == 0,
        "audit.blob": bytes([n % 256, 0, 255]),
        "audit.nested": {"b": [1, 2.5, None], "a": {"x": "y"}},
    }


def write_chain(
    directory: Path, count: int, *, key: bytes | None = None, closed: bool = True
) -> Path:
    """An archive file of ``count`` chained events (one line each) and a closing record."""
    exporter = ArchiveLogExporter(directory, fsync=False)
    state = ChainState(key)
    for n in range(1, count + 1):
        rec = chained(state, INSTANCE, "audit.user.role_changed", event_attributes(n), T0 + n)
        exporter.export([rec])
    if closed:
        closing = {CLOSED_LAST_SEQ: state.seq}
        exporter.export([chained(state, INSTANCE, CLOSED_EVENT, closing, T0 + count + 1)])
    exporter.shutdown()
    return exporter.path


def verify(path: Path, key: bytes | None = None) -> VerifyReport:
    """verify_events over what read_events reads back from ``path``."""
    return verify_events(read_events(path), key=key)


def problems(report: VerifyReport) -> set[tuple[str, int | None, int | None]]:
    """(kind, seq, line) of every finding that makes the trail unclean."""
    return {(f.kind, f.seq, f.line_number) for f in report.findings if not f.clean}


# -- tampering with the file's bytes ---------------------------------------------------------

Lines = list[bytes]


def read_lines(path: Path) -> Lines:
    """The archive's lines, newline kept."""
    return path.read_bytes().splitlines(keepends=True)


def log_record(line: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parsed request of one line, and its single log record."""
    request = json.loads(line)
    return request, request["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]


def dump(request: dict[str, Any]) -> bytes:
    """A line as a tamperer would write it back: compact JSON, newline-terminated."""
    return json.dumps(request, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def set_attribute(line: bytes, key: str, value: dict[str, Any]) -> bytes:
    """The line with attribute ``key`` set to the OTLP AnyValue ``value`` (added if absent)."""
    request, log = log_record(line)
    attributes = [a for a in log["attributes"] if a["key"] != key]
    log["attributes"] = [*attributes, {"key": key, "value": value}]
    return dump(request)


def rehash(line: bytes, key: bytes | None = None) -> bytes:
    """The line with its audit.chain.hash recomputed from its (tampered) content."""
    with tempfile.TemporaryDirectory() as scratch:
        single = Path(scratch, "one.jsonl")
        single.write_bytes(line)
        (event,) = read_events(single)
    digest = chain_hash(str(event.attributes["audit.chain.prev"]), canonical(event), key)
    return set_attribute(line, "audit.chain.hash", {"stringValue": digest})


def canonical(event: ArchivedEvent) -> bytes:
    """canonical_form of an archived event."""
    return canonical_form(
        event_name=event.event_name,
        timestamp_ns=event.timestamp_ns,
        severity_number=event.severity_number,
        body=event.body,
        attributes=event.attributes,
        instance_id=str(event.resource.get("service.instance.id", "")),
    )


FAILURE = {"stringValue": "failure"}


def _modify(lines: Lines) -> Lines:
    lines[9] = set_attribute(lines[9], "audit.outcome", FAILURE)
    return lines


def _delete(lines: Lines) -> Lines:
    del lines[9]
    return lines


def _reorder(lines: Lines) -> Lines:
    lines[9], lines[10] = lines[10], lines[9]
    return lines


def _insert_rehashed_copy(lines: Lines) -> Lines:
    lines.insert(10, rehash(set_attribute(lines[9], "audit.outcome", FAILURE)))
    return lines


def _rechain_one(lines: Lines) -> Lines:
    lines[9] = rehash(set_attribute(lines[9], "audit.outcome", FAILURE))
    return lines


def _append_after_close(lines: Lines) -> Lines:
    _, log = log_record(lines[-1])
    last_hash = next(a for a in log["attributes"] if a["key"] == "audit.chain.hash")
    extra = set_attribute(lines[5], "audit.seq", {"intValue": str(len(lines) + 1)})
    extra = set_attribute(extra, "audit.chain.prev", last_hash["value"])
    lines.append(rehash(extra))
    return lines


# (tamper, unclean findings as (kind, seq, line)) for a 20-event archive plus closing record.
TAMPERING: list[tuple[Callable[[Lines], Lines], set[tuple[str, int | None, int | None]]]] = [
    (_modify, {("modified", 10, 10)}),
    (_delete, {("gap", 10, 10), ("chain_break", 11, 10)}),
    (_insert_rehashed_copy, {("conflict", 10, 11)}),
    (_rechain_one, {("chain_break", 11, 11)}),
    (_append_after_close, {("after_close", 22, 22)}),
]


def test_read_order_is_reported_but_the_chain_decides(tmp_path: Path) -> None:
    """Lines out of write order (a collector handing segments on concurrently) stay clean."""
    path = write_chain(tmp_path, 20)
    path.write_bytes(b"".join(_reorder(read_lines(path))))

    report = verify(path)

    assert report.clean
    assert [(f.kind, f.seq, f.line_number) for f in report.findings] == [("reordered", 10, 11)]


@pytest.mark.parametrize(
    ("tamper", "expected"), TAMPERING, ids=lambda v: getattr(v, "__name__", "")
)
def test_each_kind_of_tampering_is_named_with_file_and_line(
    tmp_path: Path, tamper: Callable[[Lines], Lines], expected: set[tuple[str, int, int]]
) -> None:
    """A tampered archive is unclean, and each finding names its kind, seq, file and line."""
    path = write_chain(tmp_path, 20)
    path.write_bytes(b"".join(tamper(read_lines(path))))

    report = verify(path)

    assert problems(report) == expected
    assert not report.clean
    assert {f.source_file for f in report.findings} == {str(path)}
    assert all(str(f).startswith(f"{path}:{f.line_number}: {f.kind}: ") for f in report.findings)


@pytest.mark.parametrize("key", [None, KEY], ids=["sha256", "hmac"])
def test_a_chain_of_1000_events_verifies_clean(tmp_path: Path, key: bytes | None) -> None:
    """1,000 events and the closing record: clean, closed, nothing to report."""
    report = verify(write_chain(tmp_path, 1000, key=key), key=key)

    assert report.clean and report.closed
    assert report.findings == ()
    assert report.events == 1001
    assert [(i.instance_id, i.last_seq) for i in report.instances] == [(INSTANCE, 1001)]


def test_interleaved_instances_are_checked_separately(tmp_path: Path) -> None:
    """Two instances' events interleaved in one file each form their own clean chain."""
    exporter = ArchiveLogExporter(tmp_path, fsync=False)
    states = {"a": ChainState(None), "b": ChainState(None)}
    for n in range(1, 11):
        for instance, state in states.items():
            exporter.export([chained(state, instance, "audit.x", event_attributes(n), T0 + n)])
    for instance, state in states.items():
        exporter.export([chained(state, instance, CLOSED_EVENT, {CLOSED_LAST_SEQ: 10}, T0 + 99)])
    exporter.shutdown()

    report = verify(exporter.path)

    assert report.clean and report.closed and report.findings == ()
    assert sorted((i.instance_id, i.last_seq, i.events) for i in report.instances) == [
        ("a", 11, 11),
        ("b", 11, 11),
    ]


def test_a_lost_tail_is_a_warning_distinct_from_a_gap(tmp_path: Path) -> None:
    """Without the closing record the trail is still clean but not closed, and says so."""
    path = write_chain(tmp_path, 20)
    path.write_bytes(b"".join(read_lines(path)[:-3]))

    report = verify(path)

    assert report.clean and not report.closed
    assert [(f.kind, f.seq, f.line_number) for f in report.findings] == [("open_tail", 18, 18)]
    assert "tail may be lost" in report.findings[0].message


def test_a_torn_last_line_is_a_read_error_and_an_open_tail(tmp_path: Path) -> None:
    """A crash mid-write: the torn line is reported by the reader, the tail by verify."""
    path = write_chain(tmp_path, 5, closed=False)
    lines = read_lines(path)
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][:40])
    errors: list[ArchiveReadError] = []

    report = verify_events(read_events(path, errors=errors))

    assert [e.source for e in errors] == [f"{path}:5"]
    assert [(f.kind, f.seq) for f in report.findings] == [("open_tail", 4)]


def test_duplicate_delivery_is_reported_and_clean(tmp_path: Path) -> None:
    """At-least-once redelivery of seqs 5..9: five duplicates, located, trail clean."""
    path = write_chain(tmp_path, 20)
    lines = read_lines(path)
    path.write_bytes(b"".join([*lines, *lines[4:9]]))

    report = verify(path)

    assert report.clean and report.closed
    duplicates = [(f.seq, f.line_number) for f in report.findings if f.kind == "duplicate"]
    assert duplicates == [(5, 22), (6, 23), (7, 24), (8, 25), (9, 26)]
    assert f"first at {path}:5" in report.findings[0].message


@pytest.mark.parametrize(
    ("summary", "kind"),
    [
        ({"redaction.masked.count": {"intValue": "1"}}, "masked"),
        ({"redaction.body.masked.count": {"intValue": "1"}}, "masked"),
        ({"redaction.masked.keys": {"stringValue": "user.id"}}, "masked"),
        ({"redaction.ignored.count": {"intValue": "9"}}, "modified"),  # claims no change
        ({}, "modified"),
    ],
)
def test_collector_masking_is_told_apart_from_tampering(
    tmp_path: Path, summary: dict[str, dict[str, Any]], kind: str
) -> None:
    """A value replaced by **** with the redaction processor's summary is masked, else modified."""
    path = write_chain(tmp_path, 20)
    lines = read_lines(path)
    line = set_attribute(lines[9], "user.id", {"stringValue": "****"})
    for key, value in summary.items():
        line = set_attribute(line, key, value)
    lines[9] = line
    path.write_bytes(b"".join(lines))

    report = verify(path)

    assert problems(report) == {(kind, 10, 10)}


def test_collector_summary_on_unchanged_events_still_verifies(tmp_path: Path) -> None:
    """The counts the collector adds to every event (ignored keys) are outside the hash."""
    path = write_chain(tmp_path, 10)
    ignored = {"intValue": "7"}
    lines = [set_attribute(line, "redaction.ignored.count", ignored) for line in read_lines(path)]
    path.write_bytes(b"".join(lines))

    assert verify(path).clean


def test_the_right_key_verifies_a_keyed_chain(tmp_path: Path) -> None:
    """hmac-sha256 hashes checked with the key they were made with: clean."""
    report = verify(write_chain(tmp_path, 20, key=KEY), key=KEY)

    assert report.clean and report.findings == ()


def test_a_wrong_key_fails_every_hash_as_forged(tmp_path: Path) -> None:
    """Under another key no hash verifies: every event is forged, and the key is suspected."""
    report = verify(write_chain(tmp_path, 20, key=KEY), key=b"not the key")

    forged = [f for f in report.findings if f.kind == "forged"]
    assert [f.seq for f in forged] == list(range(1, 22))
    assert all("wrong key?" in f.message for f in forged)
    assert problems(report) == {("forged", seq, seq) for seq in range(1, 22)}


def test_a_forged_event_in_a_keyed_chain_is_caught(tmp_path: Path) -> None:
    """An event rewritten without the key (here with a guessed one) is forged, alone."""
    path = write_chain(tmp_path, 20, key=KEY)
    lines = read_lines(path)
    lines[9] = rehash(set_attribute(lines[9], "audit.outcome", FAILURE), key=b"guess")
    path.write_bytes(b"".join(lines))

    report = verify(path, key=KEY)

    assert problems(report) == {("forged", 10, 10), ("chain_break", 11, 11)}
    assert "wrong key?" not in str(report.findings)


def test_an_unkeyed_chain_checked_with_a_key_says_so(tmp_path: Path) -> None:
    """Plain sha256 hashes cannot prove authorship: one clear finding, not clean."""
    report = verify(write_chain(tmp_path, 20), key=KEY)

    assert [(f.kind, f.seq) for f in report.findings] == [("unkeyed", 1)]
    assert "21 hashes are plain sha256" in report.findings[0].message
    assert not report.clean


def test_a_keyed_chain_without_the_key_is_unverified(tmp_path: Path) -> None:
    """Keyed hashes and no key: the content is not checked, and the report says so."""
    report = verify(write_chain(tmp_path, 20, key=KEY))

    assert [(f.kind, f.seq) for f in report.findings] == [("unverified", 1)]
    assert "pass the chain key" in report.findings[0].message
    assert not report.clean


def test_events_without_integrity_fields_are_reported(tmp_path: Path) -> None:
    """An event inserted without seq and chain fields is unsequenced."""
    path = write_chain(tmp_path, 5)
    exporter = ArchiveLogExporter(tmp_path, fsync=False)
    exporter.export([record(INSTANCE, "audit.user.deleted", {"audit.outcome": "success"})])
    exporter.shutdown()

    assert problems(verify(path)) == {("unsequenced", None, 7)}


# -- the canonical form ----------------------------------------------------------------------


def texts() -> st.SearchStrategy[str]:
    """Any text, lone surrogates and non-ASCII included."""
    return st.text(st.characters(codec=None, categories=None), max_size=8)


SCALARS = (
    texts()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([-(2**63), 2**63 - 1, 2**63, 0])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([-0.0, 1e21, 1e-5, 2.0])
    | st.binary(max_size=6)
)
VALUES = st.none() | st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        # Integer keys next to their text (1 and "1"): one key once encoded and read back.
        | st.dictionaries(texts() | st.integers(0, 3) | st.sampled_from("0123"), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    instance_id=texts(),
    event_name=texts(),
    timestamp_ns=st.integers(0, 2**64 - 1),
    severity=st.none() | st.sampled_from(SeverityNumber),
    body=VALUES,
    attributes=st.dictionaries(texts().filter(bool), VALUES, max_size=6),
)
def test_canonical_form_survives_the_archive_round_trip(
    instance_id: str,
    event_name: str,
    timestamp_ns: int,
    severity: SeverityNumber | None,
    body: Any,
    attributes: dict[str, Any],
) -> None:
    """canonical_form of the values handed to the encoder == that of what read_events returns."""
    original = record(
        instance_id, event_name, attributes, timestamp_ns=timestamp_ns, severity=severity, body=body
    )
    with tempfile.TemporaryDirectory() as directory:
        exporter = ArchiveLogExporter(directory, fsync=False)
        exporter.export([original])
        exporter.shutdown()
        (archived,) = read_events(exporter.path)

    before = canonical_form(
        event_name=event_name,
        timestamp_ns=timestamp_ns,
        severity_number=int(severity.value) if severity is not None else 0,
        body=body,
        attributes=attributes,
        instance_id=instance_id,
    )
    assert canonical(archived) == before


def form(**changes: Any) -> bytes:
    """canonical_form of a small fixed event with some fields changed."""
    fields: dict[str, Any] = {
        "event_name": "audit.x",
        "timestamp_ns": 1,
        "severity_number": 9,
        "body": "b",
        "attributes": {"k": "v"},
        "instance_id": "i",
    }
    return canonical_form(**(fields | changes))


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("1", 1),
        (1, 1.0),
        (True, 1),
        (False, None),
        ([], {}),
        (b"a", "a"),
        ("a", ["a"]),
        ([1, 2], [2, 1]),
        ({"a": 1}, {"a": "1"}),
        ({"a": {"b": 1}}, {"a.b": 1}),
        (0.0, -0.0),
        (["a", "b"], ["ab"]),
        ("", None),
    ],
)
def test_different_values_have_different_forms(one: Any, other: Any) -> None:
    """Type tags and length prefixes keep values apart that a plain text form would merge."""
    assert form(attributes={"k": one}) != form(attributes={"k": other})
    assert form(body=one) != form(body=other)


@pytest.mark.parametrize(
    "changes",
    [
        {"event_name": "audit.y"},
        {"timestamp_ns": 2},
        {"severity_number": 13},
        {"body": "c"},
        {"instance_id": "j"},
        {"attributes": {"k": "v", "audit.seq": 1}},
        {"attributes": {"k": "v", "audit.chain.prev": GENESIS}},
    ],
)
def test_every_covered_field_changes_the_form(changes: dict[str, Any]) -> None:
    """Instance, name, time, severity, body, seq and prev are all under the hash."""
    assert form(**changes) != form()


@pytest.mark.parametrize(
    "attributes",
    [
        {"k": "v", "audit.chain.hash": "sha256:00"},
        {"k": "v", "redaction.masked.count": 3, "redaction.ignored.count": 2},
        {"k": "v", "redaction.body.redacted.keys": "a,b"},
        {"k": ("v",)[0]},
    ],
)
def test_the_stored_hash_and_collector_summaries_are_outside_the_form(
    attributes: dict[str, Any],
) -> None:
    """What the hash cannot cover (itself) and what the collector adds do not change the form."""
    assert form(attributes=attributes) == form()


def test_the_form_follows_its_specification_byte_for_byte() -> None:
    """The module docstring's grammar, spelled out by hand for one event (a Go port's vector)."""

    def s(text: str) -> bytes:
        data = text.encode("utf-8", "surrogatepass")
        return struct.pack(">I", len(data)) + data

    attributes = {
        "z": [1, 2**64],
        "b": b"\x00",
        "n": math.nan,
        "m": {2: True, "1": None, "2": 3},
        "é": -0.0,
        "audit.chain.hash": "sha256:00",  # excluded: the hash cannot cover itself
    }
    sorted_attributes = ",".join(
        [
            '{"key":"b","value":{"bytesValue":"AA=="}}',
            '{"key":"m","value":{"kvlistValue":{"values":['
            '{"key":"2","value":{"intValue":"3"}},{"key":"1","value":{}}]}}}',
            '{"key":"n","value":{"doubleValue":"NaN"}}',
            '{"key":"z","value":{"arrayValue":{"values":['
            '{"intValue":"1"},{"stringValue":"18446744073709551616"}]}}}',
            '{"key":"é","value":{"doubleValue":-0.0}}',
        ]
    )
    expected = (
        b"otel-audit/canonical/2\n"
        + s("i")
        + s("audit.x")
        + struct.pack(">Q", 7)
        + struct.pack(">q", 9)
        + s('{"stringValue":"\udcff"}')
        + s(sorted_attributes)
    )
    actual = canonical_form(
        event_name="audit.x",
        timestamp_ns=7,
        severity_number=9,
        body="\udcff",
        attributes=attributes,
        instance_id="i",
    )
    assert actual == expected


@pytest.mark.parametrize(
    ("key", "prefix"), [(None, "sha256:"), (KEY, "hmac-sha256:")], ids=["sha256", "hmac"]
)
def test_chain_hash_names_its_algorithm(key: bytes | None, prefix: str) -> None:
    """Hashes say how they were made, and the key changes them."""
    digest = chain_hash(GENESIS, b"x", key)

    assert digest.startswith(prefix) and len(digest) == len(prefix) + 64
    assert digest != chain_hash(GENESIS, b"x", b"other")
    assert digest != chain_hash(GENESIS, b"y", key)


@pytest.mark.parametrize("call", [lambda: chain_hash(GENESIS, b"x", b""), lambda: ChainState(b"")])
def test_an_empty_key_is_refused(call: Callable[[], object]) -> None:
    """An empty key would look keyed and protect nothing."""
    with pytest.raises(ValueError, match="must not be empty"):
        call()


def test_chain_state_hands_out_a_gap_free_linked_chain() -> None:
    """seq counts from 1, each prev is the last hash, and a refused event leaves no hole."""
    state = ChainState(None)
    fields: dict[str, Any] = {
        "event_name": "audit.x",
        "timestamp_ns": 1,
        "severity_number": 9,
        "body": None,
        "instance_id": "i",
    }
    first = state.next(attributes={"k": 1}, **fields)
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(ValueError, match="nested deeper"):
        state.next(attributes={"k": cyclic}, **fields)
    second = state.next(attributes={"k": 2, "audit.seq": 99}, **fields)

    assert first[:2] == (1, GENESIS)
    assert second[:2] == (2, first[2])
    assert (state.seq, state.last_hash) == (2, second[2])
    expected = chain_hash(
        first[2],
        form(body=None, attributes={"k": 2, "audit.seq": 2, "audit.chain.prev": first[2]}),
    )
    assert second[2] == expected


def test_chain_state_refuses_a_second_instance() -> None:
    """One chain per instance: a different instance id is a caller bug, said clearly."""
    state = ChainState(None)
    fields: dict[str, Any] = {
        "event_name": "e",
        "timestamp_ns": 1,
        "severity_number": 9,
        "body": None,
        "attributes": {},
    }
    state.next(instance_id="a", **fields)

    with pytest.raises(ValueError, match="one chain per instance"):
        state.next(instance_id="b", **fields)
