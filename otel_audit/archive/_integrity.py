"""The audit trail's hash chain: a canonical form of an event, its hash, and the writer's state.

Each event of a process (one ``service.instance.id``) carries ``audit.seq`` (1, 2, 3, …),
``audit.chain.prev`` (the previous event's hash, :data:`GENESIS` for seq 1) and
``audit.chain.hash`` (:func:`chain_hash` of ``prev`` and the event's :func:`canonical_form`).
The form is computed in-process from the values handed to the encoder and must come out
byte-identical when recomputed from what an archive holds (our OTLP JSON decoder's values).

Canonical form, version 2 (integers big-endian; this is the whole spec)::

    canonical  = b"otel-audit/canonical/2\n"
                 STR(instance_id) STR(event_name) U64(timestamp_ns) I64(severity_number)
                 STR(ENC(body)) STR(ATTRS)
    ATTRS      = KV(key, value) for each attribute except EXCLUDED_KEYS, in the order of
                 the keys' UTF-8 bytes (= code point order), joined by ","
    KV(k, v)   = ENC's text of the OTLP ``KeyValue`` {"key": k, "value": v}
    ENC(v)     = the OTLP JSON text of the ``AnyValue`` v, as the project's encoder writes it
                 (``_otlp_json.encode_value``; maps keep their order, their keys as str(key),
                 the last of two keys with the same text winning)
    STR(s)     = U32(len(utf8(s))) utf8(s)

So the form is the event's own encoded fields, the attributes sorted, and the writer hashes
the text it writes anyway: one encoding pass serves the line and the chain. Recomputing it
from an archive re-encodes the decoded values; that gives the same text because the encoder
writes each value in one way only and the decoder reads every value back to an equal one
of a type the encoder writes the same way (``(1, 2)`` and ``[1, 2]``, ``2**70`` and its digits
as a string, ``2.0`` as a double: each pair is one OTLP value, and one text here).
``utf8`` is UTF-8 with lone surrogates as their three-byte form (Python's
``surrogatepass``): the archive writes them as ``\\udcxx`` JSON escapes and Python reads them
back exactly; a Go reimplementation must read those escapes without replacing them by U+FFFD.
Top-level attributes are sorted because collector processors may reorder them; nested maps
keep their order, which pdata preserves. Nesting deeper than 64 levels is refused
(``ValueError``), as the encoder refuses it.

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
import struct
from collections.abc import Mapping, MutableMapping
from typing import Any, Final

from ._otlp_json import encode_attribute, encode_value

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

_MAGIC: Final = b"otel-audit/canonical/2\n"
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_U64_MAX: Final = 2**64 - 1
_u32 = struct.Struct(">I").pack
_i64 = struct.Struct(">q").pack
_u64 = struct.Struct(">Q").pack


def _str(text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    return _u32(len(data)) + data


def _covered_attributes(attributes: Mapping[str, object]) -> str:
    """ATTRS of the form: the covered attributes' encoded text, sorted by key."""
    if any(type(key) is not str for key in attributes):
        # str() of every key first: keys with the same text collapse, the last one winning.
        attributes = {str(key): value for key, value in attributes.items()}
    excluded = EXCLUDED_KEYS
    parts = []
    for key in sorted(attributes):
        if key not in excluded:
            parts.append(encode_attribute(key, attributes[key]))
    return ",".join(parts)


def _form(
    *,
    instance_id: str,
    event_name: str,
    timestamp_ns: int,
    severity_number: int,
    body_text: str,
    attributes_text: str,
) -> bytes:
    if not 0 <= timestamp_ns <= _U64_MAX:
        raise ValueError(f"timestamp_ns must fit an unsigned 64-bit integer, got {timestamp_ns}")
    if not _INT64_MIN <= severity_number <= _INT64_MAX:
        raise ValueError(f"severity_number must fit a 64-bit integer, got {severity_number}")
    return b"".join(
        (
            _MAGIC,
            _str(instance_id),
            _str(event_name),
            _u64(timestamp_ns),
            _i64(severity_number),
            _str(body_text),
            _str(attributes_text),
        )
    )


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
    return _form(
        instance_id=instance_id,
        event_name=event_name,
        timestamp_ns=timestamp_ns,
        severity_number=severity_number,
        body_text=encode_value(body),
        attributes_text=_covered_attributes(attributes),
    )


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
        chained = dict(attributes)
        self.seal(
            event_name=event_name,
            timestamp_ns=timestamp_ns,
            severity_number=severity_number,
            body_text=encode_value(body),
            attributes=chained,
            instance_id=instance_id,
        )
        return self._seq, str(chained[CHAIN_PREV]), self._prev

    def seal(
        self,
        *,
        event_name: str,
        timestamp_ns: int,
        severity_number: int,
        body_text: str,
        attributes: MutableMapping[str, Any],
        instance_id: str,
    ) -> str:
        """Set the next ``audit.seq``, ``audit.chain.prev`` and ``audit.chain.hash`` in
        ``attributes`` (the writer's own copy) and return their encoded ``attributes`` array
        items, ready for the line: the form's text, then the hash and any other excluded key.

        ``body_text`` is the body's ``encode_value``. The writer encodes each value once, for
        the line and the hash together. On ``ValueError`` (a bad value) the state does not
        advance and ``attributes`` keeps no chain fields.
        """
        if self._instance_id is None:
            self._instance_id = instance_id
        elif instance_id != self._instance_id:
            raise ValueError(
                f"one chain per instance: this one is {self._instance_id!r}, got {instance_id!r}"
            )
        seq, prev = self._seq + 1, self._prev
        attributes[SEQ] = seq
        attributes[CHAIN_PREV] = prev
        try:
            covered = _covered_attributes(attributes)
            canonical = _form(
                instance_id=instance_id,
                event_name=event_name,
                timestamp_ns=timestamp_ns,
                severity_number=severity_number,
                body_text=body_text,
                attributes_text=covered,
            )
        except ValueError:
            for field in (SEQ, CHAIN_PREV, CHAIN_HASH):
                attributes.pop(field, None)
            raise
        digest = chain_hash(prev, canonical, self._key)
        attributes[CHAIN_HASH] = digest
        self._seq, self._prev = seq, digest
        outside = [encode_attribute(CHAIN_HASH, digest)]
        outside += [
            encode_attribute(key, value)
            for key, value in attributes.items()
            if key in COLLECTOR_SUMMARY_KEYS
        ]
        return ",".join([covered, *outside]) if covered else ",".join(outside)
