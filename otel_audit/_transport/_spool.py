"""The audit spool writer: durable OTLP/JSON lines with group commit.

One :class:`SpoolWriter` per process owns ``<root>/<instance_id>/`` (layout in
:mod:`._spool_files`). ``append(line)`` queues one complete line and returns the
:class:`Commit` of the batch it joined; one background thread takes everything pending,
writes it with a single ``os.write`` and makes it durable with a single ``os.fsync`` (both
release the GIL), then completes that batch's commit. Lines are written as given: one
appended line is one line on disk, in append order.

Memory is bounded: lines waiting for (or in) a write hold at most ``max_pending_bytes``;
beyond that ``append`` refuses the line (returns ``None``) and reports
``on_drop("spool_full", 1)``. A batch that cannot be written (``ENOSPC``, ``EACCES``,
``EROFS``, the folder removed or replaced by a file) fails its commit with
:class:`SpoolError`, reports ``on_drop("spool_write_error", n)`` and logs (at most once per
``_LOG_INTERVAL`` per cause); the next batch tries again from scratch, so the writer recovers
on its own when the disk does.

Fork: a child process must create its own ``SpoolWriter`` with its own instance id. A
writer inherited through ``fork`` is closed in the child (its inherited fds too, so the
parent's folder lock dies with the parent): ``append`` there raises
``SpoolError("writer belongs to the parent process ...")`` rather than returning ``None``,
because that is a bug to fix, not a load condition to count; ``flush`` returns ``True``
(the child appended nothing) and ``close`` does nothing.
"""

from __future__ import annotations

import errno as errno_codes
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

from ._spool_files import LockedError
from ._spool_segment import SegmentFiles

_logger = logging.getLogger("otel_audit")
_LOG_INTERVAL = 10.0  # seconds between two log lines about the same failure


class SpoolError(Exception):
    """The spool could not make a line durable (one line: path and OS error text)."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class Commit:
    """The group commit a line joined; every line appended to the same batch shares it."""

    __slots__ = ("_callbacks", "_done", "_error", "_lines", "_nbytes")

    def __init__(self) -> None:
        self._lines: list[bytes] = []
        self._nbytes = 0
        self._done = threading.Event()
        self._error: SpoolError | None = None
        self._callbacks: list[Callable[[SpoolError | None], None]] = []

    def wait(self, timeout: float | None = None) -> bool:
        """True once the batch is written and fsync'd; False on timeout; SpoolError if it failed."""
        if not self._done.wait(timeout):
            return False
        if self._error is not None:
            raise SpoolError(str(self._error), self._error.errno) from self._error
        return True

    def add_done_callback(self, fn: Callable[[SpoolError | None], None]) -> None:
        """Call ``fn(error_or_None)`` from the writer thread when done (now, if it already is)."""
        if not self._done.is_set():
            self._callbacks.append(fn)
            # The writer may have completed between the check and the append: it reads the
            # list only after setting the event, so re-check and run it here if so.
            if not self._done.is_set():
                return
            try:
                self._callbacks.remove(fn)
            except ValueError:
                return  # the writer already took it
        _call(fn, self._error)

    def _complete(self, error: SpoolError | None) -> None:
        self._error = error
        self._done.set()
        callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            _call(fn, error)


def _call(fn: Callable[[SpoolError | None], None], error: SpoolError | None) -> None:
    try:
        fn(error)
    except Exception:  # a caller's bug must not stop the writer thread
        _logger.exception("audit spool: a commit callback raised")


_writers: weakref.WeakSet[SpoolWriter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for writer in list(_writers):
        writer._disown_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class SpoolWriter:
    """Appends complete lines to ``<root>/<instance_id>/`` segments with group commit.

    ``max_segment_bytes``/``max_segment_age`` rotate the open segment (a segment exceeds
    the size only when a single batch does); ``fsync=False`` writes without fsync (a commit
    then means "written to the OS"). ``on_drop(reason, count)`` is called for every line
    lost: from ``append``'s thread for ``spool_full``, from the writer thread for
    ``spool_write_error``. ``on_batch(lines, nbytes)``, when given, is called on the writer
    thread after each durable batch (telemetry; a slow hook slows the writer).

    Raises ``ValueError`` for bad arguments and :class:`SpoolError` when another live
    process holds the instance folder. Other I/O errors at start are logged and retried with
    the first batch, so an application can start while its disk is unusable.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        instance_id: str,
        *,
        max_segment_bytes: int = 16 << 20,
        max_segment_age: float = 5.0,
        max_pending_bytes: int = 32 << 20,
        fsync: bool = True,
        on_drop: Callable[[str, int], None],
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        if not instance_id or instance_id.startswith(".") or "/" in instance_id:
            raise ValueError(f"instance_id must be a plain folder name, got {instance_id!r}")
        for name, value in (
            ("max_segment_bytes", max_segment_bytes),
            ("max_segment_age", max_segment_age),
            ("max_pending_bytes", max_pending_bytes),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        self._files = SegmentFiles(Path(root), instance_id, max_segment_bytes, max_segment_age)
        self._fsync = fsync
        self._on_drop = on_drop
        self._on_batch = on_batch
        self._max_pending = max_pending_bytes
        self._pending_bytes = 0  # queued + being written
        self._cond = threading.Condition(threading.Lock())
        self._current = Commit()  # the batch appends join
        self._inflight: Commit | None = None  # the batch being written
        self._closing = False
        self._closed = False
        self._owner_pid = os.getpid()
        self._forked = False  # set in a forked child by the at-fork hook
        self._last_logged: dict[str, float] = {}
        try:
            self._files.prepare()
        except LockedError as error:
            raise SpoolError(
                f"spool folder {error.filename}: {error.strerror}", error.errno
            ) from None
        except OSError as error:
            self._log_failure(_describe(error, self._files.folder), error)
        self._thread = threading.Thread(
            target=self._run, name=f"otel-audit-spool-{instance_id}", daemon=True
        )
        self._thread.start()
        _writers.add(self)

    @property
    def directory(self) -> Path:
        """This writer's instance folder, ``<root>/<instance_id>``."""
        return self._files.folder

    def append(self, line: bytes) -> Commit | None:
        """Queue one complete line (ending in its only newline); None if the spool is full."""
        if self._forked:
            raise SpoolError(
                f"writer belongs to the parent process (pid {self._owner_pid}); "
                "create a new SpoolWriter with a new instance id in the child"
            )
        if not isinstance(line, bytes):
            raise TypeError(f"line must be bytes, got {type(line).__name__}")
        if not line.endswith(b"\n") or line.count(b"\n") != 1:
            raise ValueError("line must be one complete line ending in its only b'\\n'")
        size = len(line)
        with self._cond:
            if self._closing:
                raise SpoolError(f"spool writer for {self._files.folder} is closed")
            if self._pending_bytes + size > self._max_pending:
                refused = True
            else:
                refused = False
                self._pending_bytes += size
                commit = self._current
                if not commit._lines:
                    self._cond.notify()
                commit._lines.append(line)
                commit._nbytes += size
        if refused:
            self._drop("spool_full", 1)
            return None
        return commit

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything appended so far is written; False on timeout or failure."""
        if self._forked:
            return True
        with self._cond:
            commit = self._current if self._current._lines else self._inflight
        if commit is None:
            return True
        try:
            return commit.wait(timeout)
        except SpoolError:
            return False

    def close(self, timeout: float = 10.0) -> None:
        """Flush, close the open segment (rename to ``.jsonl``) and release the folder lock."""
        if self._forked:
            return
        with self._cond:
            if self._closing:
                already = True
            else:
                already = False
                self._closing = True
                self._cond.notify()
        self._thread.join(timeout)
        if not already and self._thread.is_alive():
            _logger.error(
                "audit spool: writer for %s did not finish within %ss; its open segment "
                "stays .open and is finalised by the next writer",
                self._files.folder,
                timeout,
            )

    # -- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._current._lines and not self._closing:
                    deadline = self._files.rotation_deadline()
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    timeout = None if deadline is None else deadline - time.monotonic()
                    self._cond.wait(timeout)
                batch = self._current
                if batch._lines:
                    self._current, self._inflight = Commit(), batch
                closing = self._closing and not batch._lines
            if batch._lines:
                self._write(batch)
            elif closing:
                self._finish()
                return
            else:
                self._rotate_by_age()

    def _write(self, batch: Commit) -> None:
        data = b"".join(batch._lines)
        error: SpoolError | None = None
        try:
            self._files.write(data, fsync=self._fsync)
        except OSError as failure:
            error = SpoolError(_describe(failure, self._files.folder), failure.errno)
            self._log_failure(str(error), failure)
        except Exception as failure:  # a bug here must not leave callers waiting forever
            _logger.exception("audit spool: unexpected error writing a batch")
            error = SpoolError(f"spool writer for {self._files.folder} failed: {failure!r}")
        lines = len(batch._lines)
        batch._lines = []  # the batch's memory goes now, not when the last handle does
        with self._cond:
            self._pending_bytes -= batch._nbytes
            if self._inflight is batch:
                self._inflight = None
        batch._complete(error)
        if error is not None:
            self._drop("spool_write_error", lines)
        elif self._on_batch is not None:
            try:
                self._on_batch(lines, len(data))
            except Exception:
                _logger.exception("audit spool: on_batch hook raised")

    def _rotate_by_age(self) -> None:
        try:
            self._files.rotate()
        except OSError as error:
            self._log_failure(_describe(error, self._files.folder), error)

    def _finish(self) -> None:
        try:
            self._files.close()
        except OSError as error:
            self._log_failure(_describe(error, self._files.folder), error)
        self._closed = True

    # -- helpers ---------------------------------------------------------------------------

    def _drop(self, reason: str, count: int) -> None:
        try:
            self._on_drop(reason, count)
        except Exception:
            _logger.exception("audit spool: on_drop callback raised")

    def _log_failure(self, message: str, error: OSError) -> None:
        """Log a failure, at most once per interval for the same errno."""
        key = errno_codes.errorcode.get(error.errno or 0, type(error).__name__)
        now = time.monotonic()
        last = self._last_logged.get(key)
        if last is not None and now - last < _LOG_INTERVAL:
            return
        self._last_logged[key] = now
        _logger.error(
            "audit spool: %s (repeats of this error are logged every %ss)", message, _LOG_INTERVAL
        )

    def _disown_after_fork(self) -> None:
        """In a forked child: never write, and let go of the parent's files."""
        self._cond = threading.Condition(threading.Lock())  # may have been held at fork
        self._forked = self._closing = self._closed = True
        self._current = Commit()
        self._inflight = None
        self._files.forget_in_child()


def _describe(error: OSError, folder: Path) -> str:
    """One line: which path, what went wrong (``ENOSPC``-style name and the OS text)."""
    name = errno_codes.errorcode.get(error.errno or 0, "")
    where = error.filename or folder
    text = error.strerror or str(error)
    return f"cannot write audit spool at {where}: {text}" + (f" ({name})" if name else "")
