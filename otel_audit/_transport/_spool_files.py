"""The spool's files: instance folders, their ``.lock``, segment names, finalisation.

Layout (a contract shared with the reader, the collector and the shipper)::

    <root>/<instance>/.lock                                  flock'ed by the live writer
    <root>/<instance>/seg-20261130T120000.000000Z-000001.jsonl        closed segment
    <root>/<instance>/seg-20261130T120005.000000Z-000002.jsonl.open   segment being written

Names sort in write order: the stamp never goes backwards within a folder (a clock that
does is clamped to the last stamp used) and the counter breaks ties.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path

_logger = logging.getLogger("otel_audit")

LOCK_NAME = ".lock"
OPEN_SUFFIX = ".open"
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_SEGMENT = re.compile(r"seg-(\d{8}T\d{6}\.\d{6})Z-(\d{6,})\.jsonl(?:\.open)?")
_STAMP = "%Y%m%dT%H%M%S.%f"
# A finaliser of a dead folder holds its lock for a moment; a new owner of the same
# folder waits this long before calling the folder taken.
_LOCK_PATIENCE = 1.0


# The collector's file reader (pkg/stanza fileconsumer, v0.145) hands lines on in batches of
# 100 and, with delete_after_read, deletes the file at end of file *before* handing on the
# last, partial batch: a collector killed in between loses those lines. A closed segment is
# therefore padded with record-less requests up to a whole number of batches, so its last
# batch goes out inside the read loop and only padding is left for after the delete.
COLLECTOR_BATCH = 100
PADDING_LINE = b'{"resourceLogs":[]}\n'


def padding_for(lines: int) -> bytes:
    """Record-less lines that bring a segment of ``lines`` lines to whole batches."""
    return PADDING_LINE * (-lines % COLLECTOR_BATCH)


class LockedError(OSError):
    """The instance folder's lock is held by another live process."""


def fsync_directory(path: Path) -> None:
    """Make creates and renames in ``path`` durable (the directory entry, not just the data)."""
    fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_directory(path: Path) -> None:
    """Create ``path`` (and parents) as 0o750, fsyncing the parent when it is new."""
    if path.is_dir():
        return
    try:
        path.mkdir(mode=0o750, parents=True)
    except FileExistsError:
        if not path.is_dir():
            raise NotADirectoryError(
                errno.ENOTDIR, "exists and is not a directory", str(path)
            ) from None
        return
    fsync_directory(path.parent)


def take_lock(folder: Path, *, patience: float = 0.0) -> int:
    """Open and ``flock`` ``folder/.lock``; the fd keeps the lock. Raises LockedError if held."""
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | _O_CLOEXEC, 0o640)
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise LockedError(
                    errno.EWOULDBLOCK, "locked by another live process", str(folder)
                ) from None
            time.sleep(0.02)
        except BaseException:
            os.close(fd)
            raise


def take_own_lock(folder: Path) -> int:
    """Lock the writer's own folder, waiting briefly for a finaliser that holds it."""
    return take_lock(folder, patience=_LOCK_PATIENCE)


class SegmentNamer:
    """Names segments of one folder so that lexicographic order is write order."""

    def __init__(self, folder: Path) -> None:
        self._last = datetime.min.replace(tzinfo=timezone.utc)
        self._counter = 0
        # A folder reused by a later process (same instance id) continues its order.
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                if match := _SEGMENT.fullmatch(entry.name):
                    stamp = datetime.strptime(match[1], _STAMP).replace(tzinfo=timezone.utc)
                    self._last = max(self._last, stamp)
                    self._counter = max(self._counter, int(match[2]))

    def next_name(self) -> str:
        """The closed name of the next segment (``.open`` is added while it is written)."""
        self._last = max(self._last, datetime.now(timezone.utc))
        self._counter += 1
        return f"seg-{self._last.strftime(_STAMP)}Z-{self._counter:06d}.jsonl"


def finalise_segment(open_path: Path, good_size: int | None = None) -> Path:
    """Close a segment for good: cut a torn tail, fsync, rename ``.open`` -> ``.jsonl``.

    ``good_size`` is the length known to hold only complete lines; without it the file is
    cut after its last newline (a writer killed mid-write leaves a torn last line). The
    caller fsyncs the directory afterwards.
    """
    closed = open_path.with_name(open_path.name.removesuffix(OPEN_SUFFIX))
    fd = os.open(open_path, os.O_RDWR | _O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size if good_size is None else good_size
        if good_size is None:
            size = _complete_length(fd, size)
        if size != os.fstat(fd).st_size:
            os.ftruncate(fd, size)
        if size:
            os.pwrite(fd, padding_for(_count_lines(fd, size)), size)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(open_path, closed)
    return closed


def _count_lines(fd: int, size: int) -> int:
    chunk = 1 << 20
    return sum(os.pread(fd, chunk, start).count(b"\n") for start in range(0, size, chunk))


def _complete_length(fd: int, size: int) -> int:
    """The length of the file up to and including its last newline."""
    chunk = 64 << 10
    end = size
    while end > 0:
        start = max(0, end - chunk)
        data = os.pread(fd, end - start, start)
        newline = data.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def finalise_open_segments(folder: Path) -> int:
    """Finalise every ``.open`` segment in ``folder`` (whose lock the caller holds)."""
    finalised = 0
    for path in sorted(folder.glob(f"seg-*.jsonl{OPEN_SUFFIX}")):
        try:
            finalise_segment(path)
        except FileNotFoundError:  # another finaliser was quicker
            continue
        finalised += 1
    if finalised:
        fsync_directory(folder)
    return finalised


def finalise_dead_instances(root: Path, own: Path) -> int:
    """Finalise the ``.open`` segments of every dead writer's folder under ``root``.

    A folder is dead when its ``.lock`` can be taken. Errors are logged, not raised: a
    folder this process cannot repair is left for the next writer (readers still read
    ``.open`` segments).
    """
    finalised = 0
    try:
        entries = list(os.scandir(root))
    except OSError as error:
        _logger.warning("audit spool: cannot list %s to finalise dead writers: %s", root, error)
        return 0
    for entry in entries:
        folder = Path(entry.path)
        if folder == own or not entry.is_dir(follow_symlinks=False):
            continue
        if not (folder / LOCK_NAME).is_file():
            continue  # not a spool instance folder
        try:
            lock = take_lock(folder)
        except LockedError:
            continue  # its writer is alive
        except OSError as error:
            _logger.warning("audit spool: cannot lock %s to finalise it: %s", folder, error)
            continue
        try:
            finalised += finalise_open_segments(folder)
        except OSError as error:
            _logger.warning("audit spool: cannot finalise segments in %s: %s", folder, error)
        finally:
            os.close(lock)
    return finalised
