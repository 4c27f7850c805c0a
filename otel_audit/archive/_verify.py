"""Check an audit trail's sequence numbers and hash chain, per ``service.instance.id``.

``verify_events(events, key=...)`` reads every event once, recomputes its hash from
:func:`._integrity.canonical_form`, then checks each instance's ``audit.seq`` run and
``audit.chain.prev`` links in seq order. It names what it finds, each with the file and line
the event was read from:

==============  =====  ============================================================
kind            clean  meaning
==============  =====  ============================================================
``gap``         no     seqs missing (lost or deleted events); ``seq``..``seq_end``
``conflict``    no     one seq with two different contents (an inserted/forged copy)
``modified``    no     recomputed hash ≠ stored (unkeyed chain): the content changed
``forged``      no     keyed chain: the hash does not verify under the key given
``masked``      no     hash mismatch on an event the collector's redaction processor
                       says it changed (its summary attributes): not comparable any more,
                       but masking, not tampering. Anyone who can edit the file can add
                       such a summary too, which is why this is not clean either
``chain_break`` no     ``audit.chain.prev`` ≠ hash of the previous seq present: an event
                       deleted, inserted or re-chained (reported across gaps too)
``reordered``   yes    a new seq read after a higher one: the archive is out of write
                       order. Integrity is what the chain proves, in seq order; a collector
                       that hands segments on concurrently writes them out of order
``unsequenced`` no     an event without ``audit.seq``/chain fields
``after_close`` no     an event with a seq after the instance's closing record
``unkeyed``     no     a key was given but the chain is plain SHA-256: it proves order,
                       not authorship (anyone can recompute it)
``unverified``  no     the chain is keyed and no key was given: hashes not checked
``duplicate``   yes    the same seq and hash again (at-least-once delivery)
``open_tail``   yes    no closing record after the last seq: the tail may be lost, or the
                       process is running or was killed (a warning: see ``closed``)
==============  =====  ============================================================
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from ._integrity import (
    CHAIN_HASH,
    CHAIN_PREV,
    CLOSED_EVENT,
    COLLECTOR_SUMMARY_KEYS,
    GENESIS,
    SEQ,
    canonical_form,
    chain_hash,
)
from ._model import ArchivedEvent
from ._verify_report import Finding, FindingKind, InstanceReport, VerifyReport

__all__ = [
    "ChainChecker",
    "ChainEntry",
    "Finding",
    "FindingKind",
    "InstanceReport",
    "VerifyReport",
    "content_verifies",
    "entry_of",
    "verify_events",
]

# Summary attributes that say the processor changed something (allowed/ignored do not).
CHANGED_KEYS: Final = frozenset(
    key for key in COLLECTOR_SUMMARY_KEYS if "redacted" in key or "masked" in key
)
_INSTANCE_ID: Final = "service.instance.id"
_KEYED: Final = "hmac-sha256:"


@dataclass(slots=True)
class ChainEntry:
    """One event as the analysis needs it: its chain fields and where it was read."""

    seq: int
    hash: str
    prev: str
    content_ok: bool | None  # None: not checkable (keyed chain, no key)
    masked: bool
    closing: bool
    file: str | None
    line: int | None
    sequenced: bool = True
    """False: the event has no ``audit.seq`` / chain fields (the others are then empty)."""


@dataclass
class _Instance:
    instance_id: str
    events: int = 0
    entries: list[ChainEntry] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    keyed: int = 0
    unkeyed: int = 0

    def add(self, entry: ChainEntry) -> None:
        """One sequenced event of this instance, in read order."""
        self.entries.append(entry)
        if entry.hash.startswith(_KEYED):
            self.keyed += 1
        else:
            self.unkeyed += 1

    def finding(
        self,
        kind: FindingKind,
        entry: ChainEntry,
        message: str,
        *,
        seq: int | None = None,
        seq_end: int | None = None,
    ) -> None:
        self.findings.append(
            Finding(
                kind,
                self.instance_id,
                entry.seq if seq is None else seq,
                message,
                entry.file,
                entry.line,
                seq_end,
            )
        )


class ChainChecker:
    """Collects each instance's chain entries, then analyses them into a :class:`VerifyReport`.

    The readers feed it: :func:`verify_events` from decoded events, ``verify_files`` from
    raw lines, one :class:`ChainEntry` per event.
    """

    def __init__(self, key: bytes | None) -> None:
        if key is not None and not key:
            raise ValueError("the chain key must not be empty (pass None for an unkeyed chain)")
        self.key = key
        self.instances: dict[str, _Instance] = {}
        self.events = 0

    def add(self, instance_id: str, entry: ChainEntry) -> None:
        """One event of ``instance_id`` (an unsequenced entry when it has no chain fields)."""
        self.events += 1
        state = self.instances.get(instance_id)
        if state is None:
            state = self.instances[instance_id] = _Instance(instance_id)
        state.events += 1
        if entry.sequenced:
            state.add(entry)
            return
        state.findings.append(
            Finding(
                "unsequenced",
                instance_id,
                None,
                "no audit.seq / audit.chain.* fields: not written by the integrity stage, "
                "or inserted",
                entry.file,
                entry.line,
            )
        )

    def report(self) -> VerifyReport:
        """Analyse every instance read so far."""
        reports = []
        for state in self.instances.values():
            first_seq, last_seq, closed = _analyse(state, self.key)
            reports.append(
                InstanceReport(
                    state.instance_id,
                    state.events,
                    last_seq,
                    closed,
                    tuple(sorted(state.findings, key=lambda f: f.seq or 0)),
                    first_seq,
                )
            )
        return VerifyReport(tuple(reports), self.events)


def verify_events(events: Iterable[ArchivedEvent], *, key: bytes | None = None) -> VerifyReport:
    """Check sequence numbers and hash chain of every instance in ``events``.

    ``key`` is the chain's HMAC key (``OTEL_AUDIT_CHAIN_KEY``), needed to check a keyed
    chain. Memory grows with the number of events (a few dozen bytes each).
    """
    checker = ChainChecker(key)
    for event in events:
        checker.add(*entry_of(event, key))
    return checker.report()


def _location(event: ArchivedEvent) -> tuple[str | None, int | None]:
    file = event.source_file
    return (file, event.line_number) if file is not None else (event.source or None, None)


def entry_of(event: ArchivedEvent, key: bytes | None) -> tuple[str, ChainEntry]:
    """The event's instance id and chain entry (unsequenced when it has no chain fields)."""
    instance_id = str(event.resource.get(_INSTANCE_ID, ""))
    attributes = event.attributes
    seq, stored, prev = attributes.get(SEQ), attributes.get(CHAIN_HASH), attributes.get(CHAIN_PREV)
    file, line = _location(event)
    if type(seq) is not int or not isinstance(stored, str) or not isinstance(prev, str):
        return instance_id, ChainEntry(0, "", "", None, False, False, file, line, sequenced=False)
    content_ok: bool | None
    try:
        canonical = canonical_form(
            event_name=event.event_name,
            timestamp_ns=event.timestamp_ns,
            severity_number=event.severity_number,
            body=event.body,
            attributes=attributes,
            instance_id=instance_id,
        )
    except ValueError:  # a timestamp or severity out of range: no writer made this
        content_ok = False
    else:
        content_ok = content_verifies(stored, prev, canonical, key)
    masked = content_ok is False and any(k in attributes for k in CHANGED_KEYS)
    closing = event.event_name == CLOSED_EVENT
    return instance_id, ChainEntry(seq, stored, prev, content_ok, masked, closing, file, line)


def content_verifies(stored: str, prev: str, canonical: bytes, key: bytes | None) -> bool | None:
    """Whether ``stored`` is the hash of ``prev`` + ``canonical``; None: keyed, and no key."""
    if stored.startswith(_KEYED):
        if key is None:
            return None
        # compare_digest: a verifier that answers requests must not leak the hash by timing.
        return hmac.compare_digest(stored, chain_hash(prev, canonical, key))
    return stored == chain_hash(prev, canonical)


def _analyse(state: _Instance, key: bytes | None) -> tuple[int, int, bool]:  # noqa: PLR0912
    """Findings from the entries read; returns (first seq, last seq, closed)."""
    by_seq: dict[int, list[ChainEntry]] = {}
    highest = 0
    for entry in state.entries:  # read order
        seen = by_seq.get(entry.seq)
        if seen is None:
            if entry.seq < highest:
                state.finding(
                    "reordered", entry, f"seq {entry.seq} read after seq {highest}: out of order"
                )
            by_seq[entry.seq] = [entry]
            highest = max(highest, entry.seq)
            continue
        first = seen[0]
        if entry.hash == first.hash and entry.prev == first.prev and entry.content_ok is not False:
            state.finding(
                "duplicate", entry, f"seq {entry.seq} delivered again (first at {_at(first)})"
            )
            continue
        seen.append(entry)
    if not by_seq:
        return 0, 0, False
    _content_findings(state, by_seq, key)
    chosen: dict[int, ChainEntry] = {}
    expected, previous = 1, None
    for seq in sorted(by_seq):
        if seq < 1:
            state.finding("chain_break", by_seq[seq][0], f"seq {seq}: seqs start at 1")
            continue
        want = GENESIS if previous is None else chosen[previous].hash
        entry = _choose(state, by_seq[seq], want)
        chosen[seq] = entry
        if seq > expected:
            span = f"seq {expected}" if seq == expected + 1 else f"seqs {expected}..{seq - 1}"
            message = f"{span} missing (lost or deleted) before seq {seq}"
            state.finding("gap", entry, message, seq=expected, seq_end=seq - 1)
        if entry.prev != want:
            if previous is None:
                why = "does not start at the chain's genesis"
            elif previous == seq - 1:
                why = f"does not match the hash of seq {previous}: inserted, deleted or re-chained"
            else:
                why = f"does not match the hash of seq {previous}, the previous one present"
            state.finding("chain_break", entry, f"audit.chain.prev of seq {seq} {why}")
        expected, previous = seq + 1, seq
    last = max(by_seq)
    closings = [s for s, entry in chosen.items() if entry.closing]
    if closings:
        closed_at = min(closings)
        for seq in sorted(s for s in chosen if s > closed_at):
            state.finding(
                "after_close", chosen[seq], f"seq {seq} after the closing record (seq {closed_at})"
            )
    else:
        state.finding(
            "open_tail",
            chosen[last],
            f"no closing record after seq {last}: the tail may be lost "
            "(or the process is still running, or was killed)",
        )
    return min(by_seq), last, bool(closings)


def _content_findings(
    state: _Instance, by_seq: dict[int, list[ChainEntry]], key: bytes | None
) -> None:
    keyed = [e for entries in by_seq.values() for e in entries if e.hash.startswith(_KEYED)]
    wrong_key = key is not None and bool(keyed) and not any(e.content_ok for e in keyed)
    for seq in sorted(by_seq):
        for entry in by_seq[seq]:
            if entry.content_ok is not False:
                continue
            if entry.masked:
                state.finding(
                    "masked",
                    entry,
                    f"seq {seq} was changed by the collector's redaction processor (its summary "
                    "attributes say so): masked, not comparable with its hash",
                )
            elif entry.hash.startswith(_KEYED):
                hint = " (no hash of this instance verifies: wrong key?)" if wrong_key else ""
                state.finding(
                    "forged",
                    entry,
                    f"seq {seq}: hash does not verify under the key: modified, or written "
                    f"without the key{hint}",
                )
            else:
                state.finding("modified", entry, f"seq {seq}: content does not match its hash")
    if key is not None and state.unkeyed:
        first = next(e for es in by_seq.values() for e in es if not e.hash.startswith(_KEYED))
        state.finding(
            "unkeyed",
            first,
            f"a key was given but {state.unkeyed} hashes are plain sha256: anyone can "
            "recompute them, so they prove order, not authorship",
        )
    if key is None and keyed:
        state.finding(
            "unverified",
            keyed[0],
            f"{state.keyed} hashes are keyed (hmac-sha256): pass the chain key to check them",
        )


def _choose(state: _Instance, entries: list[ChainEntry], want_prev: str) -> ChainEntry:
    """The entry for a seq that has several contents: the one that fits the chain."""
    if len(entries) == 1:
        return entries[0]
    fitting = [e for e in entries if e.content_ok is not False and e.prev == want_prev]
    chosen = fitting[0] if fitting else entries[0]
    for entry in entries:
        if entry is not chosen:
            state.finding(
                "conflict",
                entry,
                f"seq {entry.seq} also at {_at(chosen)} with other content: "
                "one of them is inserted or forged",
            )
    return chosen


def _at(entry: ChainEntry) -> str:
    return f"{entry.file}:{entry.line}" if entry.file is not None else "?"
