"""The audit trail's hash chain: a canonical form of an event, its hash, and the writer's state.

Each event of a process (one ``service.instance.id``) carries ``audit.seq`` (1, 2, 3, …),
``audit.chain.prev`` (the previous event's hash, :data:`GENESIS` for seq 1) and
``audit.chain.hash`` (:func:`chain_hash` of ``prev`` and the event's :func:`canonical_form`).
The form is computed in-process from the values handed to the encoder and must come out
byte-identical when recomputed from what an archive holds (our OTLP JSON decoder's values),
so it normalises exactly what the OTLP encoding normalises and nothing else.

Canonical form, version 1 (all integers big-endian; this is the whole spec)::

    canonical = b"otel-audit/canonical/1\\n"
                STR(instance_id) STR(event_name) U64(timestamp_ns) I64(severity_number)
                VALUE(body) MAP(attributes minus EXCLUDED_KEYS)
    STR(s)    = U32(len(utf8(s))) utf8(s)
    VALUE(v)  = "n"                        None (an empty AnyValue)
              | "t" | "f"                  bool
              | "i" I64(v)                 int in [-2**63, 2**63 - 1]
              | "d" F64(v)                 float as IEEE 754 binary64; every NaN as
                                           0x7ff8000000000000; -0.0 keeps its sign
              | "s" STR(v)                 str; also an int outside int64 as its decimal
                                           digits, because OTLP has no such integer and the
                                           encoder writes it as a stringValue (so 2**70 and
                                           "1180591620717411303424" are the same here, as they
                                           are in the archive)
              | "b" U32(len(v)) v          bytes, bytearray, memoryview
              | "a" U32(n) VALUE(item)*n   list, tuple, any other non-text sequence
              | "m" MAP(v)                 any mapping
    MAP(m)    = U32(n) (STR(key) VALUE(value))*n   keys as str(key), sorted by their UTF-8
                                           bytes (= code point order); if two keys give the
                                           same str, the one iterated last wins (as the
                                           decoder's dict does with the duplicated key)
    other     = "s" STR(str(v))            what the encoder does with unknown types

Type tags keep ``"1"``, ``1``, ``1.0`` and ``True`` apart. ``utf8`` is UTF-8 with lone
surrogates encoded as their three-byte form (Python's ``surrogatepass``): the archive writes
them as ``\\udcxx`` JSON escapes and Python reads them back exactly; a Go reimplementation
must read those escapes without replacing them by U+FFFD. Nesting deeper than 64 levels is
refused (``ValueError``), as the encoder refuses it.

Excluded attributes: ``audit.chain.hash`` itself, and the summary attributes the collector's
redaction processor adds (:data:`COLLECTOR_SUMMARY_KEYS`, read from
``processor/redactionprocessor/processor.go`` of collector-contrib v0.145.0), so an event the
collector did not change still verifies. ``audit.seq`` and ``audit.chain.prev`` are included.

Hash: ``chain_hash(prev, canonical)`` is ``"sha256:" + hex(SHA-256(STR(prev) canonical))``,
or with a key ``"hmac-sha256:" + hex(HMAC-SHA-256(key, STR(prev) canonical))``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final

__all__ = [
    "CHAIN_HASH",
    "CHAIN_PREV",
    "CLOSED_EVENT",
    "CLOSED_LAST_SEQ",
    "COLLECTOR_SUMMARY_KEYS",
    "EXCLUDED_KEYS",
    "GENESIS",
    "SEQ",
    "ChainState",
    "canonical_form",
    "chain_hash",
]

SEQ: Final = "audit.seq"
CHAIN_PREV: Final = "audit.chain.prev"
CHAIN_HASH: Final = "audit.chain.hash"
CLOSED_EVENT: Final = "audit.transport.closed"
CLOSED_LAST_SEQ: Final = "audit.transport.closed.last_seq"

GENESIS: Final = "sha256:" + "0" * 64
"""``audit.chain.prev`` of seq 1, keyed chains included."""

COLLECTOR_SUMMARY_KEYS: Final = frozenset(
    {
        "redaction.redacted.keys",
        "redaction.redacted.count",
        "redaction.masked.keys",
        "redaction.masked.count",
        "redaction.allowed.keys",
        "redaction.allowed.count",
        "redaction.ignored.count",
        "redaction.body.redacted.keys",
        "redaction.body.redacted.count",
        "redaction.body.masked.keys",
        "redaction.body.masked.count",
        "redaction.body.allowed.keys",
        "redaction.body.allowed.count",
        "redaction.body.ignored.count",
        # Set by otelcol-audit's own transform/audit when it masks a secret query parameter.
        "redaction.query.masked",
    }
)
"""What the collector adds: the redaction processor's ``summary`` (``info`` or ``debug``) and
otelcol-audit's query-masking flag."""

EXCLUDED_KEYS: Final = COLLECTOR_SUMMARY_KEYS | {CHAIN_HASH}

_MAGIC: Final = b"otel-audit/canonical/1\n"
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_U64_MAX: Final = 2**64 - 1
_MAX_DEPTH: Final = 64  # the encoder's limit: deeper values never reach an archive
_NAN: Final = b"d\x7f\xf8\x00\x00\x00\x00\x00\x00"
_u32 = struct.Struct(">I").pack
_i64 = struct.Struct(">q").pack
_u64 = struct.Struct(">Q").pack
_f64 = struct.Struct(">d").pack
_TRUE: Final = b"t"
_FALSE: Final = b"f"
_NONE: Final = b"n"
# Attribute keys repeat from event to event; their STR() is kept (bounded against leaks).
_KEY_CACHE_SIZE: Final = 4096
_key_bytes: dict[str, bytes] = {}


def _str(text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    return _u32(len(data)) + data


def _key(key: str) -> bytes:
    cached = _key_bytes.get(key)
    if cached is None:
        cached = _str(key)
        if len(_key_bytes) >= _KEY_CACHE_SIZE:
            _key_bytes.clear()
        _key_bytes[key] = cached
    return cached


def _value(out: list[bytes], value: object, depth: int) -> None:  # noqa: PLR0912
    # The same type tests in the same order as the encoder's _value/_other_value.
    kind = type(value)
    if kind is str:
        out.append(b"s" + _str(value))  # type: ignore[arg-type]
    elif kind is int:
        _int(out, value)  # type: ignore[arg-type]
    elif kind is bool:
        out.append(_TRUE if value else _FALSE)
    elif value is None:
        out.append(_NONE)
    elif kind is tuple or kind is list:
        _array(out, value, depth)  # type: ignore[arg-type]
    elif isinstance(value, bool):
        out.append(_TRUE if value else _FALSE)
    elif isinstance(value, str):  # str enums: their characters, as the encoder writes them
        out.append(b"s" + _str(value))
    elif isinstance(value, int):
        _int(out, int(value))
    elif isinstance(value, float):
        out.append(_NAN if math.isnan(value) else b"d" + _f64(value))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        out.append(b"b" + _u32(len(data)) + data)
    elif depth >= _MAX_DEPTH:
        raise ValueError(f"value nested deeper than {_MAX_DEPTH} levels (cyclic?)")
    elif isinstance(value, Mapping):
        out.append(b"m")
        _map(out, value, depth + 1)
    elif isinstance(value, Sequence):
        _array(out, value, depth)
    else:
        out.append(b"s" + _str(str(value)))


def _int(out: list[bytes], value: int) -> None:
    if _INT64_MIN <= value <= _INT64_MAX:
        out.append(b"i" + _i64(value))
    else:
        out.append(b"s" + _str(str(value)))


def _array(out: list[bytes], items: Sequence[object], depth: int) -> None:
    if depth >= _MAX_DEPTH:
        raise ValueError(f"value nested deeper than {_MAX_DEPTH} levels (cyclic?)")
    out.append(b"a" + _u32(len(items)))
    for item in items:
        _value(out, item, depth + 1)


def _map(
    out: list[bytes], mapping: Mapping[Any, object], depth: int, skip: frozenset[str] = frozenset()
) -> None:
    if any(type(key) is not str for key in mapping):
        # str() of every key first: keys with the same text collapse, the last one winning.
        mapping = {k if type(k) is str else str(k): v for k, v in mapping.items()}
    keys = sorted(mapping.keys() - skip) if skip else sorted(mapping)
    out.append(_u32(len(keys)))
    cache = _key_bytes
    for key in keys:
        key_bytes = cache.get(key) or _key(key)
        value = mapping[key]
        if type(value) is str:  # most attributes: inlined, no call per value
            data = value.encode("utf-8", "surrogatepass")
            out += (key_bytes, b"s", _u32(len(data)), data)
        else:
            out.append(key_bytes)
            _value(out, value, depth)


def canonical_form(
    *,
    event_name: str,
    timestamp_ns: int,
    severity_number: int,
    body: object,
    attributes: Mapping[str, object],
    instance_id: str,
) -> bytes:
    """The bytes the chain hashes for one event (see the module docstring for the format).

    Raises ``ValueError`` for a timestamp outside uint64, a severity outside int64, or a value
    nested deeper than 64 levels.
    """
    if not 0 <= timestamp_ns <= _U64_MAX:
        raise ValueError(f"timestamp_ns must fit an unsigned 64-bit integer, got {timestamp_ns}")
    if not _INT64_MIN <= severity_number <= _INT64_MAX:
        raise ValueError(f"severity_number must fit a 64-bit integer, got {severity_number}")
    out = [
        _MAGIC,
        _key(instance_id),  # both repeat from event to event: cached like keys
        _key(event_name),
        _u64(timestamp_ns),
        _i64(severity_number),
    ]
    _value(out, body, 0)
    _map(out, attributes, 0, EXCLUDED_KEYS)
    return b"".join(out)


def chain_hash(prev: str, canonical: bytes, key: bytes | None = None) -> str:
    """``"sha256:<hex>"``, or ``"hmac-sha256:<hex>"`` keyed with ``key``, of ``prev`` + form."""
    message = _str(prev) + canonical
    if key is None:
        return "sha256:" + hashlib.sha256(message).hexdigest()
    if not key:
        raise ValueError("the chain key must not be empty (pass None for an unkeyed chain)")
    return "hmac-sha256:" + hmac.digest(key, message, "sha256").hex()


class ChainState:
    """The writer's side of one instance's chain: hands out seq, prev and hash in write order.

    Not thread-safe by design: the caller serialises ``next`` with the lock that also fixes
    the write order, so that seq order, chain order and file order are the same.
    """

    def __init__(self, key: bytes | None = None) -> None:
        if key is not None and not key:
            raise ValueError("the chain key must not be empty (pass None for an unkeyed chain)")
        self._key = key
        self._seq = 0
        self._prev: str = GENESIS
        self._instance_id: str | None = None

    @property
    def seq(self) -> int:
        """The seq handed out last (0 before the first event): the closing record's last_seq."""
        return self._seq

    @property
    def last_hash(self) -> str:
        """The hash handed out last (:data:`GENESIS` before the first event)."""
        return self._prev

    def next(
        self,
        *,
        event_name: str,
        timestamp_ns: int,
        severity_number: int,
        body: object,
        attributes: Mapping[str, object],
        instance_id: str,
    ) -> tuple[int, str, str]:
        """``(seq, prev, hash)`` for the next event; set them as ``audit.seq``,
        ``audit.chain.prev`` and ``audit.chain.hash`` on it, unchanged.

        ``attributes`` is not modified; any chain fields in it are replaced by the new ones.
        The state only advances when the hash was computed (a bad value raises ``ValueError``
        and leaves no hole in the sequence).
        """
        if self._instance_id is None:
            self._instance_id = instance_id
        elif instance_id != self._instance_id:
            raise ValueError(
                f"one chain per instance: this one is {self._instance_id!r}, got {instance_id!r}"
            )
        seq, prev = self._seq + 1, self._prev
        chained = dict(attributes)
        chained[SEQ] = seq
        chained[CHAIN_PREV] = prev
        canonical = canonical_form(
            event_name=event_name,
            timestamp_ns=timestamp_ns,
            severity_number=severity_number,
            body=body,
            attributes=chained,
            instance_id=instance_id,
        )
        digest = chain_hash(prev, canonical, self._key)
        self._seq, self._prev = seq, digest
        return seq, prev, digest
