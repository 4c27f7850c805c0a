"""Verify archive files line by line, without decoding every value: the fast path of ``verify``.

``verify_files(paths, key=...)`` gives the same :class:`VerifyReport` as
``verify_events(read_events(path), key=...)`` and the same read errors, at a fraction of the
cost: each line is parsed once (``json.loads``) and each record's canonical form is built
straight from the parsed OTLP JSON, never turned into Python values and encoded back.

Why that is sound: canonical form 2 is the encoder's text of the record's values. For a
value in the encoder's own spelling (everything the project and the collector write), the
parsed JSON re-serialised compactly *is* that text. So the fast form is computed from the
parsed JSON, and when the stored hash verifies against it the record is exactly what the
writer hashed: JSON text determines its parsed value, so the decoder would read the same
values back and the exact path would agree. When the fast form does not verify (a tampered
record, another spelling, a keyed chain without its key) the record goes through the exact
path (``_otlp_json`` decoder + :func:`canonical_form`), which decides. A record the decoder
would refuse is refused here too: the fields outside the hash are checked as the decoder
checks them.

:class:`TrailScanner` also learns what ``seal`` and ``verify --public-key`` need about each
file, in the same pass: its size and SHA-256 as stored, and of its content (decompressed),
and which seqs of which instance it holds (:class:`FileScan`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import multiprocessing
import os
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any, BinaryIO, Final

from ._integrity import CHAIN_HASH, CHAIN_PREV, CLOSED_EVENT, EXCLUDED_KEYS, SEQ, _form
from ._model import ArchiveReadError
from ._otlp_json import (
    DECODE_ERRORS,
    _decode_key_values,
    _decode_record,
    _key_prefix,
    _key_prefixes,
    _list,
    _object,
    decode_any_value,
)
from ._reader import iter_archive_files
from ._verify import ChainChecker, ChainEntry, content_verifies, entry_of
from ._verify_report import VerifyReport

__all__ = ["ChainSpan", "FileScan", "TrailScanner", "scan_file", "verify_files"]

_INSTANCE_ID: Final = "service.instance.id"
_dumps: Callable[[Any], str] = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), check_circular=False
).encode
_CHUNK: Final = 1 << 20
_json_string: Callable[[str], str] = encode_basestring
_OPENINGS: Final = {"stringValue": '{"stringValue":', "intValue": '{"intValue":'}
_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}").fullmatch
_SPAN_ID = re.compile(r"[0-9a-fA-F]{16}").fullmatch
# Fast-path failures that only mean "take the exact path" (a non-str key makes sorting fail).
_FALLBACK = (*DECODE_ERRORS, RecursionError)


@dataclass
class ChainSpan:
    """The part of one instance's chain a file holds."""

    events: int
    first_seq: int
    last_seq: int
    last_hash: str
    """``audit.chain.hash`` of the event with ``last_seq``."""


@dataclass
class FileScan:
    """What reading one archive file learnt about it."""

    path: Path
    size: int = 0
    """Bytes read as stored (compressed for ``.gz``)."""
    sha256: str = ""
    content_size: int = 0
    """Bytes of content (decompressed); equal to ``size`` for a plain file."""
    content_sha256: str = ""
    complete: bool = False
    """Read to its end (False: an I/O error or a truncated gzip stream stopped the read)."""
    chains: dict[str, ChainSpan] = field(default_factory=dict)
    """Per ``service.instance.id``: the seqs this file holds."""
    entries: list[tuple[str, ChainEntry]] = field(default_factory=list)
    """Its events' chain entries, in read order (handed to the checker, then emptied)."""
    errors: list[ArchiveReadError] = field(default_factory=list)
    """What could not be read (likewise)."""


class _HashingReader(io.RawIOBase):
    """A binary file that hashes and counts what is read through it."""

    def __init__(self, raw: io.FileIO, progress: Callable[[int], None] | None) -> None:
        self._raw = raw
        self._progress = progress
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._raw.readinto(buffer)
        if count:
            self.sha256.update(memoryview(buffer)[:count])
            self.size += count
            if self._progress is not None:
                self._progress(count)
        return count or 0


class TrailScanner:
    """Reads archive files into a :class:`ChainChecker`, learning each file; in parallel
    processes when asked (``scan_many``), the chain still fed in file order."""

    def __init__(self, key: bytes | None, report: Callable[[ArchiveReadError], None]) -> None:
        self.checker = ChainChecker(key)
        self._key = key
        self._report = report

    def report(self) -> VerifyReport:
        """The chain analysis of every file scanned so far."""
        return self.checker.report()

    def scan(self, path: Path, progress: Callable[[int], None] | None = None) -> FileScan:
        """Read ``path`` (plain or gzip) into the checker; ``progress`` gets bytes read."""
        return self._take(scan_file(path, self._key, progress))

    def scan_many(
        self, files: list[Path], *, jobs: int = 1, progress: Callable[[int], None] | None = None
    ) -> list[FileScan]:
        """:meth:`scan` each file, ``jobs`` at a time in worker processes (same result)."""
        if jobs <= 1 or len(files) < 2:
            return [self.scan(file, progress) for file in files]
        # forkserver: a worker must not inherit this process's threads (a progress bar's).
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        with ProcessPoolExecutor(min(jobs, len(files)), mp_context=context) as pool:
            scans = []
            for scan in pool.map(scan_file, files, itertools.repeat(self._key)):
                if progress is not None:
                    progress(scan.size)
                scans.append(self._take(scan))
            return scans

    def _take(self, scan: FileScan) -> FileScan:
        for instance_id, entry in scan.entries:
            self.checker.add(instance_id, entry)
        for error in scan.errors:
            self._report(error)
        scan.entries, scan.errors = [], []  # the checker holds them now
        return scan


def scan_file(
    path: Path, key: bytes | None, progress: Callable[[int], None] | None = None
) -> FileScan:
    """Read one archive file: its chain entries, read errors, sizes, hashes and spans."""
    return _FileReader(path, key).read(progress)


class _FileReader:
    def __init__(self, path: Path, key: bytes | None) -> None:
        self.result = FileScan(path)
        self._key = key
        self._last_resource: tuple[Any, dict[str, object], str] = (object(), {}, "")

    def read(self, progress: Callable[[int], None] | None) -> FileScan:
        result = self.result
        path = result.path
        content = hashlib.sha256()
        try:
            with open(path, "rb", buffering=0) as raw:
                hashing = _HashingReader(raw, progress)
                buffered = io.BufferedReader(hashing, _CHUNK)
                stream: BinaryIO = (
                    gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[assignment]
                    if path.name.endswith(".gz")
                    else buffered
                )
                for number, line in enumerate(stream, 1):
                    content.update(line)
                    result.content_size += len(line)
                    if line.strip():
                        self._line(line, str(path), number)
                while buffered.read(_CHUNK):  # bytes after the gzip stream count as stored
                    pass
                result.complete = True
        except (OSError, EOFError) as error:  # unreadable file, truncated gzip stream
            result.errors.append(ArchiveReadError(str(path), f"could not read further: {error}"))
        else:
            result.size, result.sha256 = hashing.size, hashing.sha256.hexdigest()
        result.content_sha256 = content.hexdigest()
        if not path.name.endswith(".gz"):
            result.content_size = result.size
        return result

    def _line(self, raw: bytes, file: str, number: int) -> None:
        source = f"{file}:{number}"
        errors = self.result.errors
        try:
            request = json.loads(raw)
        except (ValueError, RecursionError) as error:  # includes UnicodeDecodeError
            torn = "incomplete last line (torn write?)" if not raw.endswith(b"\n") else ""
            errors.append(ArchiveReadError(source, torn or f"not valid JSON: {error}"))
            return
        try:
            # Committed only once the whole line decoded, as the reader yields a line's records.
            entries = list(self._entries(request, source, file, number))
        except (*DECODE_ERRORS, RecursionError) as error:
            errors.append(ArchiveReadError(source, f"not an OTLP logs request: {error!r}"))
            return
        self.result.entries += entries
        chains = self.result.chains
        for instance_id, entry in entries:
            if not entry.sequenced:
                continue
            span = chains.get(instance_id)
            if span is None:
                chains[instance_id] = ChainSpan(1, entry.seq, entry.seq, entry.hash)
                continue
            span.events += 1
            span.first_seq = min(span.first_seq, entry.seq)
            if entry.seq >= span.last_seq:
                span.last_seq, span.last_hash = entry.seq, entry.hash

    def _resource(self, resource_logs: Any) -> tuple[dict[str, object], str]:
        """The decoded resource and its instance id; lines of one writer repeat theirs."""
        raw = _object(resource_logs, "resource").get("attributes")
        if raw != self._last_resource[0]:
            resource = _decode_key_values(raw)
            self._last_resource = (raw, resource, str(resource.get(_INSTANCE_ID, "")))
        return self._last_resource[1], self._last_resource[2]

    def _entries(
        self, request: Any, source: str, file: str, line: int
    ) -> Iterator[tuple[str, ChainEntry]]:
        if not isinstance(request, dict):
            raise TypeError(f"expected a JSON object, got {type(request).__name__}")
        for resource_logs in _list(request, "resourceLogs"):
            resource, instance_id = self._resource(resource_logs)
            for scope_logs in _list(resource_logs, "scopeLogs"):
                scope = _object(scope_logs, "scope")
                for index, record in enumerate(_list(scope_logs, "logRecords")):
                    try:
                        entry = _fast_entry(
                            record, scope, instance_id, self._key, file=file, line=line
                        )
                    except _FALLBACK:
                        entry = None
                    if entry is not None:
                        yield instance_id, entry
                        continue
                    try:  # the exact path: decode, then the canonical form of the values
                        event = _decode_record(record, resource, scope, source)
                    except DECODE_ERRORS as error:
                        message = f"skipped log record #{index}: {error!r}"
                        self.result.errors.append(ArchiveReadError(source, message))
                        continue
                    yield entry_of(event, self._key)


def _plain_int(value: Any) -> bool:
    """An integer the decoder reads as is: a JSON number, or ASCII digits in a string."""
    kind = type(value)
    return kind is int or (kind is str and value.isascii() and value.isdigit())


def _plain_fields(record: dict[str, Any], scope: dict[str, Any]) -> bool:
    """The fields the decoder checks and the hash does not cover are of the usual kinds."""
    get = record.get
    trace_id, span_id = get("traceId", ""), get("spanId", "")
    return (
        type(scope.get("name", "")) is str
        and type(scope.get("version", "")) is str
        and type(get("severityText", "")) is str
        and type(get("eventName", "")) is str
        and type(get("severityNumber", 0)) is int
        and all(
            _plain_int(record[name])
            for name in ("timeUnixNano", "observedTimeUnixNano", "flags", "droppedAttributesCount")
            if name in record
        )
        and (not trace_id or bool(_TRACE_ID(trace_id)))
        and (not span_id or bool(_SPAN_ID(span_id)))
    )


def _covered_text(by_key: dict[str, Any]) -> str:
    """ATTRS of the canonical form from parsed ``KeyValue`` values (their compact text)."""
    covered = []
    prefixes = _key_prefixes
    excluded = EXCLUDED_KEYS
    for name in sorted(by_key):
        value = by_key[name]
        if name in excluded:
            decode_any_value(value)  # outside the hash: must decode all the same
            continue
        # Most values are {"stringValue": "..."}: inlined, as the encoder does for str.
        text = value.get("stringValue")
        if type(text) is str and len(value) == 1:
            covered.append(
                (prefixes.get(name) or _key_prefix(name))
                + '{"stringValue":'
                + _json_string(text)
                + "}}"
            )
        else:
            covered.append((prefixes.get(name) or _key_prefix(name)) + _text(value) + "}")
    return ",".join(covered)


def _fast_entry(
    record: Any, scope: dict[str, Any], instance_id: str, key: bytes | None, *, file: str, line: int
) -> ChainEntry | None:
    """The record's entry when its hash verifies against the fast form; None: take the exact
    path (anything unusual goes there, so these checks only accept what the decoder accepts).
    """
    items = record.get("attributes")
    if type(items) is not list or not _plain_fields(record, scope):
        return None
    by_key: dict[str, Any] = {item["key"]: item["value"] for item in items}
    values: list[Any] = [by_key.get(name) for name in (SEQ, CHAIN_PREV, CHAIN_HASH)]
    if not all(type(value) is dict for value in values):
        return None
    seq: Any = values[0].get("intValue")
    prev: Any = values[1].get("stringValue")
    stored: Any = values[2].get("stringValue")
    if not _plain_int(seq) or type(prev) is not str or type(stored) is not str:
        return None
    event_name: str = record.get("eventName", "")
    canonical = _form(
        instance_id=instance_id,
        event_name=event_name,
        timestamp_ns=int(record.get("timeUnixNano", 0)),
        severity_number=record.get("severityNumber", 0),
        body_text=_text(record.get("body", {})),
        attributes_text=_covered_text(by_key),
    )
    if not content_verifies(stored, prev, canonical, key):
        return None
    # It verified, so the collector masked nothing in it.
    return ChainEntry(int(seq), stored, prev, True, False, event_name == CLOSED_EVENT, file, line)


def _text(value: Any) -> str:
    """The compact JSON text of a parsed AnyValue (``_dumps(value)``, cheaper for the common
    shapes): the encoder's text when the value is in the encoder's own spelling."""
    if type(value) is dict and len(value) == 1:
        ((kind, inner),) = value.items()
        if type(inner) is str:  # {"stringValue": "..."}, {"intValue": "..."}
            return (
                (_OPENINGS.get(kind) or "{" + _json_string(kind) + ":") + _json_string(inner) + "}"
            )
        if kind == "arrayValue" and type(inner) is dict and len(inner) == 1:
            values = inner.get("values")
            if type(values) is list:
                return '{"arrayValue":{"values":[' + ",".join([_text(v) for v in values]) + "]}}"
    return _dumps(value)


def verify_files(
    paths: Iterable[str | os.PathLike[str]],
    *,
    key: bytes | None = None,
    errors: list[ArchiveReadError] | None = None,
    jobs: int = 1,
) -> VerifyReport:
    """``verify_events(read_events(path), key=key)`` over every path, faster (same report);
    ``jobs`` > 1 reads that many files at a time in worker processes.

    Read errors go to ``errors`` (they are not logged); missing paths raise
    ``FileNotFoundError``.
    """
    found = errors if errors is not None else []
    scanner = TrailScanner(key, found.append)
    scanner.scan_many([file for path in paths for file in iter_archive_files(path)], jobs=jobs)
    return scanner.report()
