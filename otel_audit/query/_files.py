"""Archive files and folders as a source: streamed, prefiltered line by line, never loaded whole."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..archive import ArchivedEvent, ArchiveReadError, iter_archive_files, read_events
from ._errors import SourceError
from ._filter import EventFilter
from ._match import Matcher, compile_filter
from ._page import Page, page_of_stream
from ._shape import EVENT_ID
from ._stats import DEFAULT_BUCKET, AuditStats, StatsTally

ErrorHandler = Callable[[ArchiveReadError], None]


class _Reported(list[ArchiveReadError]):
    """What ``read_events`` appends to: hands each damaged line to a callback at once."""

    def __init__(self, handler: ErrorHandler) -> None:
        super().__init__()
        self._handler = handler

    def append(self, error: ArchiveReadError) -> None:
        self._handler(error)


class FileSource:
    """Archive files and folders (the library's archive and spool, the collector's archive,
    rotated and ``.gz`` files included), read in the order :func:`iter_archive_files` gives.

    Damaged lines are skipped and handed to ``on_error`` (``file:line`` and why); without
    one they are logged on the ``otel_audit`` logger. A path that does not exist raises
    :class:`SourceError` here, not halfway through a listing.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        on_error: ErrorHandler | None = None,
        on_line: Callable[[bytes], None] | None = None,
    ) -> None:
        if not paths:
            raise SourceError("no archive path given")
        self.paths = [Path(path) for path in paths]
        for path in self.paths:
            if not path.exists():
                raise SourceError(f"{path}: no such file or directory")
        self._on_error = on_error
        self._on_line = on_line
        """Sees every line read (progress reporting)."""

    def __repr__(self) -> str:
        return f"FileSource({[str(p) for p in self.paths]!r})"

    def files(self) -> list[Path]:
        """The files that would be read now, in reading order."""
        found: list[Path] = []
        for path in self.paths:
            try:
                found += iter_archive_files(path)
            except OSError as error:
                raise SourceError(f"{path}: {error}") from None
        return found

    def _read(self, matcher: Matcher) -> Iterator[ArchivedEvent]:
        errors = None if self._on_error is None else _Reported(self._on_error)
        keep = matcher.keep_line
        if self._on_line is not None:
            on_line, screen = self._on_line, keep

            def keep(raw: bytes) -> bool:
                on_line(raw)
                return screen(raw)

        for path in self.paths:
            try:
                for event in read_events(path, errors=errors, keep_line=keep):
                    if matcher(event):
                        yield event
            except OSError as error:  # a folder removed or unlistable since it was opened
                if self._on_error is None:
                    raise SourceError(f"{path}: {error}") from None
                self._on_error(ArchiveReadError(str(path), f"could not list: {error}"))

    def events(self, flt: EventFilter, *, now: datetime | None = None) -> Iterator[ArchivedEvent]:
        """Every selected record, in reading order (copies included, as stored)."""
        return self._read(compile_filter(flt, now or datetime.now(timezone.utc)))

    def page(
        self,
        flt: EventFilter,
        *,
        limit: int = 100,
        cursor: str | None = None,
        newest_first: bool = False,
        now: datetime | None = None,
    ) -> Page:
        """One page of the selected events by ``(timestamp, event id)``, in one pass."""
        matcher = compile_filter(flt, now or datetime.now(timezone.utc))
        return page_of_stream(
            lambda: self._read(matcher), limit=limit, cursor=cursor, newest_first=newest_first
        )

    def get(self, event_id: str) -> ArchivedEvent | None:
        """The first record whose ``audit.event.id`` is ``event_id``, or None."""
        if not event_id:
            return None
        matcher = compile_filter(EventFilter())
        needle = event_id.encode("utf-8", "surrogatepass")

        def screen(raw: bytes) -> bool:
            return needle in raw or b"\\u" in raw or b"\\/" in raw

        for path in self.paths:
            for event in read_events(path, keep_line=screen):
                if event.attributes.get(EVENT_ID) == event_id and matcher(event):
                    return event
        return None

    def stats(
        self,
        flt: EventFilter,
        *,
        bucket: timedelta = DEFAULT_BUCKET,
        now: datetime | None = None,
    ) -> AuditStats:
        """Counts over the selected records (copies counted, as stored)."""
        return StatsTally(bucket).add_all(self.events(flt, now=now)).result()
