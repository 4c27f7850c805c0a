"""Archive exporter: OTel SDK log records to a local, append-only OTLP JSON lines file.

The encoding (the collector file exporter's format) lives in
:mod:`otel_audit.archive._otlp_json`, next to the decoder that reads it back.
Durability beats speed for an audit trail: every export is one ``write`` of one whole line
to an ``O_APPEND`` descriptor, followed by ``fsync`` (on by default). The exporter never
truncates: a restart appends to the existing file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

from .archive._otlp_json import encode_logs_line

__all__ = ["ArchiveLogExporter"]

_logger = logging.getLogger("otel_audit")
# Resources and scopes are few and long-lived; the bound only guards against a leak.
_BLOCK_CACHE_SIZE = 256
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _ignore_loss(_reason: str, _count: int) -> None:
    """Losses are logged; without a callback nobody counts them."""


class ArchiveLogExporter(LogRecordExporter):
    """Append log records to ``<directory>/<file_name>`` as collector-format OTLP JSON lines.

    ``max_bytes`` rotates the file to ``<stem>-<UTC yyyymmddTHHMMSSmmmZ>[-n]<suffix>`` before
    a write would make it larger (a single larger line still gets written, alone);
    ``max_backups`` > 0 keeps only that many rotated files (0 keeps all). ``fsync`` makes
    each export durable before it returns SUCCESS.

    ``on_lost(reason, count)`` hears of every record not archived: ``encode_error``,
    ``write_error`` or ``shutdown``.

    I/O errors never raise out of ``export``: they are logged and reported as FAILURE, and
    the file is reopened on the next export, so an archive volume that comes back (or is
    mounted late) is picked up again. One process should own a given file.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        file_name: str = "audit.jsonl",
        max_bytes: int = 64 * 1024 * 1024,
        max_backups: int = 0,
        fsync: bool = True,
        on_lost: Callable[[str, int], None] | None = None,
    ) -> None:
        if not file_name or Path(file_name).name != file_name or file_name in {".", ".."}:
            raise ValueError(f"file_name must be a plain file name, got {file_name!r}")
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        if max_backups < 0:
            raise ValueError(f"max_backups must be >= 0, got {max_backups}")
        self._directory = Path(directory)
        self._path = self._directory / file_name
        self._stem, self._suffix = Path(file_name).stem, Path(file_name).suffix
        self._backup_pattern = re.compile(
            rf"{re.escape(self._stem)}-(\d{{8}}T\d{{9}}Z)(?:-(\d+))?{re.escape(self._suffix)}"
        )
        self._max_bytes = max_bytes
        self._max_backups = max_backups
        self._fsync = fsync
        self._on_lost = on_lost or _ignore_loss
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._size = 0
        self._last_stamp = ""
        self._last_counter = 0
        self._is_shutdown = False
        self._blocks: dict[int, tuple[object, str]] = {}
        try:
            self._open()
        except OSError as error:
            _logger.error("audit archive %s unavailable, will retry: %s", self._path, error)

    @property
    def path(self) -> Path:
        """The live archive file."""
        return self._path

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Append the batch as one line; FAILURE if any record was not made durable."""
        if self._is_shutdown:
            _logger.error("audit archive is shut down; %d records not archived", len(batch))
            self._on_lost("shutdown", len(batch))
            return LogRecordExportResult.FAILURE
        dropped = 0

        def on_error(record: ReadableLogRecord, error: Exception) -> None:
            nonlocal dropped
            dropped += 1
            # Name the event and the reason, never the content: it may hold personal data.
            _logger.error(
                "audit archive: dropped a log record that could not be encoded (event %r): %s: %s",
                record.log_record.event_name,
                type(error).__name__,
                error,
            )

        line = encode_logs_line(batch, on_error=on_error, block=self._block)
        if dropped:
            self._on_lost("encode_error", dropped)
        # A lone surrogate cannot be UTF-8; "\udcxx" is the JSON escape json would have
        # written with ensure_ascii=True, and strings are the only place one can appear.
        data = (line + "\n").encode("utf-8", "backslashreplace") if line else b""
        with self._lock:
            if self._is_shutdown:
                self._on_lost("shutdown", len(batch) - dropped)
                return LogRecordExportResult.FAILURE
            try:
                if data:
                    self._write(data)
            except OSError as error:
                kept = len(batch) - dropped
                _logger.error("audit archive: could not write %d records: %s", kept, error)
                self._on_lost("write_error", kept)
                self._close()  # reopen, and re-check the tail, on the next export
                return LogRecordExportResult.FAILURE
        return LogRecordExportResult.FAILURE if dropped else LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Make everything written so far durable (writes are unbuffered; this fsyncs)."""
        with self._lock:
            return self._sync_file()

    def shutdown(self) -> None:
        """Sync and close the file; later exports return FAILURE."""
        with self._lock:
            if not self._is_shutdown:
                self._is_shutdown = True
                self._sync_file()
                self._close()

    def _block(self, obj: Any, encode: Callable[[Any], str]) -> str:
        """A resource or scope block as text, encoded once per (immutable) object and reused."""
        cached = self._blocks.get(id(obj))
        if cached is not None and cached[0] is obj:  # holding obj keeps its id from reuse
            return cached[1]
        block = encode(obj)
        if len(self._blocks) >= _BLOCK_CACHE_SIZE:
            self._blocks.clear()
        self._blocks[id(obj)] = (obj, block)
        return block

    # -- file handling (callers hold self._lock) -----------------------------------------

    def _open(self) -> int:
        os.makedirs(self._directory, mode=0o750, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_APPEND | os.O_CREAT | _O_CLOEXEC, 0o640)
        try:
            size = os.fstat(fd).st_size
            # A crash can leave a torn last line; start ours on a fresh line so only the
            # torn fragment is unreadable, not the next record glued to it.
            if size and os.pread(fd, 1, size - 1) != b"\n":
                os.write(fd, b"\n")
                size += 1
        except OSError:
            os.close(fd)
            raise
        self._fd, self._size = fd, size
        self._sync_directory()
        return fd

    def _sync_file(self) -> bool:
        try:
            if self._fd is not None:
                os.fsync(self._fd)
        except OSError as error:
            _logger.error("audit archive: fsync of %s failed: %s", self._path, error)
            return False
        return True

    def _close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError as error:
                _logger.error("audit archive: closing %s failed: %s", self._path, error)
            self._fd = None

    def _ensure_open(self) -> int:
        """Return a descriptor for the file at ``self._path``, reopening if it moved."""
        if self._fd is not None:
            try:
                on_disk, ours = os.stat(self._path), os.fstat(self._fd)
                if (on_disk.st_dev, on_disk.st_ino) != (ours.st_dev, ours.st_ino):
                    self._close()  # rotated or replaced by someone else
            except OSError:
                self._close()  # deleted, or the directory is gone: writes would be lost
        return self._fd if self._fd is not None else self._open()

    def _write(self, data: bytes) -> None:
        self._ensure_open()
        if self._size and self._size + len(data) > self._max_bytes:
            try:
                self._rotate()
            except OSError as error:
                # An oversized file is better than a lost audit record.
                _logger.error("audit archive: rotating %s failed: %s", self._path, error)
        fd = self._ensure_open()
        view = memoryview(data)
        while view:  # os.write may write less than asked
            view = view[os.write(fd, view) :]
        self._size += len(data)
        if self._fsync:
            os.fsync(fd)

    def _rotate(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)  # the rotated file is final; make it durable even if fsync=False
            self._close()
        os.rename(self._path, self._backup_path())
        self._open()
        if self._max_backups:
            self._prune()

    def _backup_path(self) -> Path:
        now = datetime.now(timezone.utc)
        stamp = now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z"
        # Readers order backups by (stamp, counter) in the name: each new name must sort
        # after the last one, even within one millisecond, after pruning, or if the clock
        # steps back.
        counter = 0
        if stamp <= self._last_stamp:
            stamp, counter = self._last_stamp, self._last_counter + 1
        while True:
            tail = f"-{counter}" if counter else ""
            candidate = self._directory / f"{self._stem}-{stamp}{tail}{self._suffix}"
            if not candidate.exists():
                self._last_stamp, self._last_counter = stamp, counter
                return candidate
            counter += 1

    def _prune(self) -> None:
        matches = [self._backup_pattern.fullmatch(p.name) for p in self._directory.iterdir()]
        backups = sorted((m[1], int(m[2] or 0), m[0]) for m in matches if m)
        for *_, old_name in backups[: -self._max_backups]:
            old = self._directory / old_name
            try:
                old.unlink()
            except OSError as error:
                _logger.error("audit archive: could not delete old backup %s: %s", old, error)

    def _sync_directory(self) -> None:
        # Make the new file's or rename's directory entry durable. Best effort: not every
        # platform or filesystem can fsync a directory.
        with contextlib.suppress(OSError):
            dir_fd = os.open(self._directory, os.O_RDONLY | _O_CLOEXEC)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
