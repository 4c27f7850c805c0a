"""The writer thread's file side: one instance folder, its lock, its open segment.

Used only from the spool's writer thread (and from ``SpoolWriter.__init__`` before that
thread starts), so it holds no lock of its own. Every method raises ``OSError`` on
failure and leaves the object ready to try again: the next batch re-creates whatever went
missing (the folder, the lock, the segment).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

from ._spool_files import (
    OPEN_SUFFIX,
    SegmentNamer,
    finalise_dead_instances,
    finalise_open_segments,
    finalise_segment,
    fsync_directory,
    make_directory,
    padding_for,
    take_own_lock,
)

_logger = logging.getLogger("otel_audit")
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class SegmentFiles:
    """The folder ``root/instance``: lock it, write segments into it, rotate them."""

    def __init__(
        self, root: Path, instance_id: str, max_segment_bytes: int, max_segment_age: float
    ) -> None:
        self.root = root
        self.folder = root / instance_id
        self._max_bytes = max_segment_bytes
        self._max_age = max_segment_age
        self._lock_fd: int | None = None
        self._namer: SegmentNamer | None = None
        self._fd: int | None = None
        self._path: Path | None = None  # the .open path of the segment being written
        self._inode = 0
        self._size = 0  # bytes of complete, written lines in the open segment
        self._lines = 0  # and how many lines
        self._opened_at = 0.0

    def prepare(self) -> SegmentNamer:
        """Create and lock the folder; finalise leftovers of dead writers (once per lock)."""
        if self._lock_fd is not None and self._namer is not None:
            return self._namer
        make_directory(self.folder)
        self._lock_fd = take_own_lock(self.folder)
        self._namer = namer = SegmentNamer(self.folder)
        # Our own folder may hold segments of an earlier life of this instance id, or one
        # we abandoned after an error: nobody else will finalise them while we hold the lock.
        finalise_open_segments(self.folder)
        finalise_dead_instances(self.root, self.folder)
        return namer

    def rotation_deadline(self) -> float | None:
        """``time.monotonic()`` value when the open segment is due for rotation by age."""
        if self._fd is None:
            return None
        return self._opened_at + self._max_age

    def write(self, data: bytes, *, fsync: bool) -> None:
        """Append ``data`` (complete lines) to the open segment, then fsync it."""
        self._check_segment_still_there()
        if self._fd is not None and self._size and self._size + len(data) > self._max_bytes:
            self.rotate()
        fd = self._open_segment()
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)  # releases the GIL
                view = view[written:]
        except OSError:
            self._cut_back_or_abandon()
            raise
        try:
            if fsync:
                os.fsync(fd)
        except OSError:
            # After a failed fsync the kernel may have dropped the dirty pages and cleared
            # the error: the file's state is unknown. Never write into it again.
            self._abandon()
            raise
        self._size += len(data)
        self._lines += data.count(b"\n")
        if self._size >= self._max_bytes:
            self.rotate()

    def rotate(self) -> None:
        """Close the open segment: fsync, rename ``.open`` -> ``.jsonl``, fsync the folder."""
        if self._fd is None or self._path is None:
            return
        fd, path, size, lines = self._fd, self._path, self._size, self._lines
        self._fd, self._path = None, None
        try:
            if size:
                self._pad(fd, size, lines)
            os.fsync(fd)
        finally:
            os.close(fd)
        if size == 0:
            # Only a failed first write can leave an empty segment; don't publish it.
            with contextlib.suppress(OSError):
                os.unlink(path)
            return
        os.rename(path, path.with_name(path.name.removesuffix(OPEN_SUFFIX)))
        fsync_directory(self.folder)

    @staticmethod
    def _pad(fd: int, size: int, lines: int) -> None:
        """Whole collector batches (see ``padding_for``); best effort: a full disk closes the
        segment unpadded rather than leaving it open."""
        try:
            os.write(fd, padding_for(lines))
        except OSError as error:
            _logger.warning("audit spool: segment closed without its padding: %s", error)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)

    def close(self) -> None:
        """Rotate the open segment and release the folder's lock."""
        try:
            self.rotate()
        finally:
            self.release()

    def release(self) -> None:
        """Drop the lock (closing the fd releases the flock)."""
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            os.close(fd)

    def forget_in_child(self) -> None:
        """After fork, in the child: close inherited fds so the parent's lock dies with it."""
        self._drop_fds()

    def _drop_fds(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._lock_fd = None
        self._path = None

    def _open_segment(self) -> int:
        if self._fd is not None:
            return self._fd
        path = self.folder / (self.prepare().next_name() + OPEN_SUFFIX)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | _O_CLOEXEC
        fd = os.open(path, flags, 0o640)
        try:
            fsync_directory(self.folder)  # the segment's name is durable before its lines
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
            raise
        self._fd, self._path, self._size, self._lines = fd, path, 0, 0
        self._inode = os.fstat(fd).st_ino
        self._opened_at = time.monotonic()
        return fd

    def _check_segment_still_there(self) -> None:
        """Notice a segment (or the whole folder) removed under us: writes would vanish."""
        if self._path is None:
            return
        try:
            gone = os.stat(self._path).st_ino != self._inode
        except FileNotFoundError:
            gone = True
        if not gone:
            return
        _logger.error(
            "audit spool: segment %s was removed while open (folder deleted?); its lines are "
            "lost from disk unless a consumer took them; starting a new segment",
            self._path,
        )
        self._drop_fds()  # the lock file went with the folder too: prepare() takes a new one

    def _cut_back_or_abandon(self) -> None:
        """After a failed write: cut the partial batch off, or give the segment up."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            self._abandon()

    def _abandon(self) -> None:
        """Stop using the open segment; finalise it if possible, else leave it ``.open``."""
        fd, path, size = self._fd, self._path, self._size
        self._fd, self._path = None, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        if path is None:
            return
        try:
            if size == 0:
                os.unlink(path)
                return
            finalise_segment(path, size)
            fsync_directory(self.folder)
        except OSError as error:
            _logger.warning("audit spool: left %s unfinalised: %s", path, error)
