"""Follow archive files as they grow and rotate, like ``tail -F``.

:func:`follow_files` first yields the last ``last`` selected events already written, then
every selected event appended afterwards. Files are told apart by inode, so a file renamed
by rotation (the collector's ``audit-<time>.jsonl``, the library's backups, a spool segment
losing ``.open``) is read to its end once and never again, and a new live file or segment
is read from its start. A file truncated in place (copytruncate), noticed by its size or by
its first bytes changing, is read again from its start. Only
complete lines are decoded; compressed (``.gz``) files are copies of what was already read
and are skipped.
"""

from __future__ import annotations

import collections
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..archive import ArchivedEvent, ArchiveReadError, iter_archive_files
from ..archive._otlp_json import DECODE_ERRORS, decode_logs_request
from ._errors import SourceError
from ._match import Matcher

_CHUNK = 1 << 20
# Descriptors kept open at most; rotated backups stop growing, the live files come last.
_MAX_OPEN = 64
# Bytes of a file's start remembered to notice it was rewritten in place.
_HEAD = 1024


@dataclass
class _Tracked:
    path: Path
    stream: BinaryIO | None = None
    offset: int = 0
    line: int = 0
    partial: bytes = b""
    mtime: float = 0.0
    mtime_ns: int = 0
    head: bytes = b""
    """The file's first bytes as read: a file rewritten in place no longer starts with them."""


def _live_files(paths: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        try:
            files = iter_archive_files(path) if path.exists() else []
        except FileNotFoundError:  # rotated away between the check and the listing
            files = []
        found += [f for f in files if not f.name.endswith(".gz")]
    return found


class _Follower:
    """Files by inode, each with an open descriptor, so a file renamed or deleted by
    rotation is still read to its end (as ``tail -F`` does)."""

    def __init__(
        self, paths: Sequence[Path], matcher: Matcher, report: Callable[[ArchiveReadError], None]
    ) -> None:
        self._paths = paths
        self._matcher = matcher
        self._report = report
        self._tracked: dict[tuple[int, int], _Tracked] = {}

    def close(self) -> None:
        for tracked in self._tracked.values():
            if tracked.stream is not None:
                tracked.stream.close()
        self._tracked.clear()

    def poll(self, *, decode: bool = True) -> Iterator[ArchivedEvent]:
        """Everything appended since the last poll: files in reading order, then files
        that left the listing (renamed or deleted by rotation) read to their end.
        ``decode=False`` only moves past what is there."""
        listed: set[tuple[int, int]] = set()
        for file in _live_files(self._paths):
            try:
                stat = file.stat()
            except OSError:  # rotated or removed meanwhile: read through its descriptor
                continue
            key = (stat.st_dev, stat.st_ino)
            listed.add(key)
            tracked = self._tracked.setdefault(key, _Tracked(file))
            tracked.path, tracked.mtime = file, stat.st_mtime
            if stat.st_size != tracked.offset or stat.st_mtime_ns != tracked.mtime_ns:
                tracked.mtime_ns = stat.st_mtime_ns
                yield from self._read(tracked, key, decode)
        for key, tracked in list(self._tracked.items()):
            if key not in listed:
                yield from self._read(tracked, key, decode)
                if tracked.stream is not None:
                    tracked.stream.close()
                del self._tracked[key]
        self._close_idle()

    def _open(self, tracked: _Tracked, key: tuple[int, int]) -> BinaryIO | None:
        if tracked.stream is None:
            try:
                stream = open(tracked.path, "rb")  # noqa: SIM115 - kept open across polls
            except OSError:
                return None
            stat = os.fstat(stream.fileno())
            if (stat.st_dev, stat.st_ino) != key:  # another file took the name meanwhile
                stream.close()
                return None
            stream.seek(tracked.offset)
            tracked.stream = stream
        return tracked.stream

    def _read(
        self, tracked: _Tracked, key: tuple[int, int], decode: bool
    ) -> Iterator[ArchivedEvent]:
        stream = self._open(tracked, key)
        if stream is None:
            return
        try:
            fd = stream.fileno()
            if os.fstat(fd).st_size < tracked.offset or (
                tracked.head and os.pread(fd, len(tracked.head), 0) != tracked.head
            ):  # truncated, or truncated and written again (copytruncate): start over
                stream.seek(0)
                tracked.offset, tracked.line, tracked.partial, tracked.head = 0, 0, b"", b""
            while chunk := stream.read(_CHUNK):
                if len(tracked.head) < _HEAD:
                    tracked.head = (tracked.head + chunk)[:_HEAD]
                tracked.offset += len(chunk)
                lines = (tracked.partial + chunk).split(b"\n")
                tracked.partial = lines.pop()
                if not decode:
                    tracked.line += len(lines)
                    continue
                for raw in lines:
                    tracked.line += 1
                    yield from self._decode(tracked, raw)
        except OSError as error:
            self._report(ArchiveReadError(str(tracked.path), f"could not read further: {error}"))

    def _decode(self, tracked: _Tracked, raw: bytes) -> Iterator[ArchivedEvent]:
        if not raw.strip() or not self._matcher.keep_line(raw + b"\n"):
            return
        source = f"{tracked.path}:{tracked.line}"
        try:
            events = decode_logs_request(json.loads(raw), source, self._report)
        except ValueError as error:
            self._report(ArchiveReadError(source, f"not valid JSON: {error}"))
            return
        except DECODE_ERRORS as error:
            self._report(ArchiveReadError(source, f"not an OTLP logs request: {error!r}"))
            return
        for event in events:
            if self._matcher(event):
                yield event

    def _close_idle(self) -> None:
        """Keep descriptors only for the most recently written files; the others are
        reopened by name (and inode) if they ever grow."""
        open_files = [t for t in self._tracked.values() if t.stream is not None]
        if len(open_files) <= _MAX_OPEN:
            return
        open_files.sort(key=lambda t: t.mtime)
        for tracked in open_files[: len(open_files) - _MAX_OPEN]:
            if tracked.stream is not None:
                tracked.stream.close()
                tracked.stream = None


def follow_files(
    paths: Sequence[str | os.PathLike[str]],
    matcher: Matcher,
    *,
    last: int = 10,
    follow: bool = True,
    interval: float = 0.2,
    on_error: Callable[[ArchiveReadError], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> Iterator[ArchivedEvent]:
    """The last ``last`` selected events, then (``follow``) new ones as they are written.

    Polls every ``interval`` seconds until ``stop()`` returns true (or forever). A path may
    be a file or a folder (every archive file and spool segment in it); it need not exist
    yet when ``follow`` is set.
    """
    folders = [Path(path) for path in paths]
    if not follow:
        missing = [str(p) for p in folders if not p.exists()]
        if missing:
            raise SourceError(f"{missing[0]}: no such file or directory")
    report = on_error or (lambda error: None)
    follower = _Follower(folders, matcher, report)
    try:
        tail: collections.deque[ArchivedEvent] = collections.deque(maxlen=max(last, 0))
        tail.extend(follower.poll(decode=last > 0))
        yield from tail
        tail.clear()
        while follow and not (stop is not None and stop()):
            time.sleep(interval)
            yield from follower.poll()
    finally:
        follower.close()
