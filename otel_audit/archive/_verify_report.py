"""What ``verify`` reports: findings, per instance, for the whole trail (see ``_verify``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["Finding", "FindingKind", "InstanceReport", "VerifyReport"]

FindingKind = Literal[
    "gap",
    "conflict",
    "modified",
    "forged",
    "masked",
    "chain_break",
    "reordered",
    "unsequenced",
    "after_close",
    "unkeyed",
    "unverified",
    "duplicate",
    "open_tail",
]
_BENIGN: Final = frozenset({"duplicate", "open_tail", "reordered"})


@dataclass(frozen=True)
class Finding:
    """One thing ``verify`` found, located where the event was read."""

    kind: FindingKind
    instance_id: str
    seq: int | None
    """The event's seq (the first missing one for a gap); None when it has none."""
    message: str
    source_file: str | None
    line_number: int | None
    seq_end: int | None = None
    """For a gap: the last missing seq."""

    @property
    def clean(self) -> bool:
        """Whether the trail can still be clean with this finding (duplicates, an open tail)."""
        return self.kind in _BENIGN

    @property
    def location(self) -> str:
        """``file:line``, or ``?`` when unknown."""
        if self.source_file is None:
            return "?"
        return f"{self.source_file}:{self.line_number}"

    def __str__(self) -> str:
        return f"{self.location}: {self.kind}: {self.message}"


@dataclass(frozen=True)
class InstanceReport:
    """What ``verify`` found for one ``service.instance.id``."""

    instance_id: str
    events: int
    """Records read, duplicates included."""
    last_seq: int
    """The highest seq read (0 when none)."""
    closed: bool
    """A closing record ends the run: no tail can be missing."""
    findings: tuple[Finding, ...]
    first_seq: int = 0
    """The lowest seq read (0 when none)."""


@dataclass(frozen=True)
class VerifyReport:
    """The result of :func:`verify_events`."""

    instances: tuple[InstanceReport, ...]
    events: int

    @property
    def findings(self) -> tuple[Finding, ...]:
        """Every finding, instance by instance, in seq order."""
        return tuple(f for instance in self.instances for f in instance.findings)

    @property
    def clean(self) -> bool:
        """No gap, and nothing modified, forged, masked or unverifiable.

        Duplicates, read-order differences and open tails are reported but leave the trail
        clean; see ``closed``.
        """
        return all(f.clean for f in self.findings)

    @property
    def closed(self) -> bool:
        """Every instance ended with its closing record (no tail can be lost)."""
        return all(instance.closed for instance in self.instances)

    def count(self, kind: FindingKind) -> int:
        """How many findings of ``kind``."""
        return sum(1 for f in self.findings if f.kind == kind)
