"""What reading an archive yields: events, and reports of what could not be read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class ArchiveReadError:
    """A part of an archive that could not be read, and why."""

    source: str
    """``file:line`` of the damaged line, or the file for file-level problems."""
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


@dataclass(frozen=True)
class ArchivedEvent:
    """One log record from an archive, with its resource and scope flattened in."""

    event_name: str
    timestamp_ns: int
    """``timeUnixNano``; 0 when the producer did not set it."""
    observed_timestamp_ns: int
    severity_number: int
    severity_text: str
    body: object
    attributes: dict[str, object]
    """Attribute values decoded to Python: arrays to lists, kvlists to dicts, bytes to bytes."""
    resource: dict[str, object]
    scope_name: str
    trace_id: str
    """Lowercase hex, or ``""``."""
    span_id: str
    source: str
    """``file:line`` the record was read from."""
    scope_version: str = ""
    flags: int = 0
    dropped_attributes_count: int = 0
    """Attributes the producer dropped (over its limits) before the record was written."""

    @property
    def source_file(self) -> str | None:
        """The file the record was read from (``None`` when ``source`` is not ``file:line``)."""
        file, _, line = self.source.rpartition(":")
        return file if file and line.isdigit() else None

    @property
    def line_number(self) -> int | None:
        """The 1-based line of ``source_file`` holding the record (``None`` likewise)."""
        file, _, line = self.source.rpartition(":")
        return int(line) if file and line.isdigit() else None

    @property
    def timestamp(self) -> datetime:
        """When the event happened, as an aware UTC datetime (observed time if unset)."""
        nanos = self.timestamp_ns or self.observed_timestamp_ns
        # Integer arithmetic: float seconds would round away microseconds in 2026-era stamps.
        return _EPOCH + timedelta(microseconds=nanos // 1000)
