"""``verify_files`` (the line verifier ``otel-audit verify`` runs) gives ``verify_events``'s report.

Archives written by the real exporter, then altered: every tampering of the integrity tests,
and lines in the other spellings proto JSON allows or broken in ways the decoder refuses.
The fast path must never accept what the exact path (decode, then the canonical form of the
values) would not, and must agree on everything else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from otel_audit.archive import ArchiveReadError, read_events, verify_events
from otel_audit.archive._scan import TrailScanner, verify_files

from .test_integrity import (
    INSTANCE,
    KEY,
    TAMPERING,
    Lines,
    dump,
    log_record,
    read_lines,
    write_chain,
)


def both(path: Path, key: bytes | None = None) -> None:
    """Assert both verifiers agree on ``path``: report and read errors."""
    fast_errors: list[ArchiveReadError] = []
    exact_errors: list[ArchiveReadError] = []

    fast = verify_files([path], key=key, errors=fast_errors)
    exact = verify_events(read_events(path, errors=exact_errors), key=key)

    assert fast == exact
    assert fast_errors == exact_errors


@pytest.mark.parametrize("tamper", [t for t, _ in TAMPERING], ids=lambda t: t.__name__)
def test_tampered_archives_get_the_same_report(
    tmp_path: Path, tamper: Callable[[Lines], Lines]
) -> None:
    """Each tampering of the integrity tests, found alike by both verifiers."""
    path = write_chain(tmp_path, 20)
    path.write_bytes(b"".join(tamper(read_lines(path))))

    both(path)


@pytest.mark.parametrize("key", [None, KEY, b"wrong"], ids=["sha256", "hmac", "wrong_key"])
def test_keyed_and_unkeyed_chains_get_the_same_report(tmp_path: Path, key: bytes | None) -> None:
    """Keyed chains with the key, with another one, and without one."""
    path = write_chain(tmp_path, 10, key=KEY)
    both(path, key)
    both(write_chain(tmp_path / "plain", 10), key)


def _record_edit(edit: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    def change(line: bytes) -> bytes:
        request, log = log_record(line)
        edit(log)
        return dump(request)

    return change


def _attribute(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(log: dict[str, Any]) -> None:
        for item in log["attributes"]:
            if item["key"] == key:
                item["value"] = value

    return edit


def _set(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda log: log.__setitem__(field, value)


def _drop(field: str) -> Callable[[dict[str, Any]], None]:
    return lambda log: log.pop(field, None)


def _raw(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    return lambda line: line.replace(old, new, 1)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"stringValue": "bottom"}
    for _ in range(depth):
        value = {"arrayValue": {"values": [value]}}
    return value


# Changes to line 5 (seq 5): other spellings of the same values (they verify either way),
# values changed, fields the decoder refuses.
VARIANTS: dict[str, Callable[[bytes], bytes]] = {
    "seq_as_number": _record_edit(_attribute("audit.seq", {"intValue": 5})),
    "int_as_number": _record_edit(_attribute("http.response.status_code", {"intValue": 200})),
    "double_spelled_2_0": _raw(b'"doubleValue":2.5', b'"doubleValue":2.50'),
    "severity_by_name": _record_edit(_set("severityNumber", "SEVERITY_NUMBER_INFO")),
    "time_as_number": _record_edit(lambda log: log.update(timeUnixNano=int(log["timeUnixNano"]))),
    "escaped_unicode": _raw("tenant-ä".encode(), b"tenant-\\u00e4"),
    "value_with_two_kinds": _record_edit(
        _attribute("audit.outcome", {"stringValue": "success", "boolValue": True})
    ),
    "hash_spelled_twice": _record_edit(
        lambda log: log["attributes"].append(
            {"key": "audit.chain.hash", "value": {"stringValue": "sha256:" + "0" * 64}}
        )
    ),
    "no_body": _record_edit(_drop("body")),
    "no_event_name": _record_edit(_drop("eventName")),
    "bad_trace_id": _record_edit(_set("traceId", "xyz")),
    "scope_name_number": _raw(b'"scope":{}', b'"scope":{"name":7}'),
    "severity_text_number": _record_edit(_set("severityText", 9)),
    "flags_text": _record_edit(_set("flags", "many")),
    "attributes_object": _record_edit(_set("attributes", {})),
    "key_number": _record_edit(lambda log: log["attributes"][0].__setitem__("key", 5)),
    "value_missing": _record_edit(lambda log: log["attributes"][0].pop("value")),
    "nan_literal": _raw(b'"doubleValue":2.5', b'"doubleValue":NaN'),
    "time_negative": _record_edit(_set("timeUnixNano", "-5")),
    "bytes_unpadded": _raw(b'"bytesValue":"BQD/"', b'"bytesValue":"BQD/==="'),
    "summary_malformed": _record_edit(
        lambda log: log["attributes"].append(
            {"key": "redaction.masked.count", "value": {"intValue": "x"}}
        )
    ),
    "masked_by_collector": _record_edit(
        lambda log: log["attributes"].extend(
            [
                {"key": "redaction.masked.count", "value": {"intValue": "1"}},
                {"key": "user.id", "value": {"stringValue": "****"}},
            ]
        )
    ),
    "record_not_object": lambda line: line.replace(b'"logRecords":[{', b'"logRecords":[7,{', 1),
    "request_not_object": lambda _line: b"[1, 2]\n",
    "nested_70_deep": _record_edit(_attribute("audit.nested", _nested(70))),
}


@pytest.mark.parametrize("variant", VARIANTS.values(), ids=VARIANTS.keys())
def test_other_spellings_and_broken_fields_get_the_same_report(
    tmp_path: Path, variant: Callable[[bytes], bytes]
) -> None:
    """Same findings, same read errors, whichever path each record takes."""
    path = write_chain(tmp_path, 8)
    lines = read_lines(path)
    changed = variant(lines[4])
    assert changed != lines[4]
    lines[4] = changed
    path.write_bytes(b"".join(lines))

    both(path)


def test_scanning_learns_each_files_size_hashes_and_chain_span(tmp_path: Path) -> None:
    """What seal and verify --public-key use: bytes, SHA-256, and the seqs held per instance."""
    path = write_chain(tmp_path, 6)
    scan = TrailScanner(None, lambda error: pytest.fail(str(error))).scan(path)

    data = path.read_bytes()
    assert (scan.size, scan.content_size, scan.complete) == (len(data), len(data), True)
    assert scan.sha256 == scan.content_sha256 == hashlib.sha256(data).hexdigest()
    ((instance_id, span),) = scan.chains.items()
    assert instance_id == INSTANCE
    last = json.loads(data.splitlines()[-1])["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    last_hash = next(a for a in last["attributes"] if a["key"] == "audit.chain.hash")
    assert (span.events, span.first_seq, span.last_seq) == (7, 1, 7)
    assert span.last_hash == last_hash["value"]["stringValue"]


def test_worker_processes_give_the_same_report(tmp_path: Path) -> None:
    """Files read two at a time in worker processes: the report of one process reading them,
    findings in the same order with the same files and lines."""
    for part in range(3):
        path = write_chain(tmp_path / f"part{part}", 10)
        path.rename(tmp_path / f"audit-2026112{part}T000000000Z.jsonl")
    lines = read_lines(tmp_path / "audit-20261121T000000000Z.jsonl")
    (tmp_path / "audit-20261121T000000000Z.jsonl").write_bytes(b"".join(lines[:4] + lines[5:]))
    serial_errors: list[ArchiveReadError] = []
    parallel_errors: list[ArchiveReadError] = []

    serial = verify_files([tmp_path], errors=serial_errors)
    parallel = verify_files([tmp_path], errors=parallel_errors, jobs=2)

    assert parallel == serial and parallel_errors == serial_errors
    # One instance written three times over, one line less in the second copy.
    assert parallel.events == 32 and parallel.count("duplicate") == 21
