"""The ``otlp`` transport: ship closed spool segments to an OTLP endpoint from one thread.

The spool is the persistent queue. The shipper reads the CLOSED segments
(``<root>/<instance>/seg-*.jsonl``, never the ``.open`` one) of its own instance, oldest
first, and sends their lines in order, a few lines per request. A segment is deleted only
after every line in it was accepted; until then the same lines are retried, with capped
exponential backoff and jitter (or what ``Retry-After`` asks), for as long as it takes.

Progress inside a segment survives a restart: after each accepted request the count of
accepted lines goes to ``<segment>.shipped`` (written to a temporary file, then renamed), so
a restart resends at most the request that was in flight: at-least-once, duplicates allowed
(``audit.event.id`` is the dedup key downstream), losses not. The sidecar is not fsync'd: a
sidecar lost in a crash only means more duplicates, never a loss.

Segments of DEAD instances in the same root (their ``.lock`` can be ``flock``ed) are shipped
too, at start and from time to time, under that lock so two shippers never ship the same
folder; the folder is removed once empty. Their ``.open`` segment is left to the next spool
writer, which finalises it.

A segment the collector refuses (a 4xx that is about the data) is never deleted: it moves to
``<root>/<instance>/rejected/`` (its sidecar beside it says how many lines went through) and
its remaining records are counted as ``on_drop("export_rejected", n)``.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from ._shipper_send import Accepted, ExportError, Refused, Retry, Sender, make_sender
from ._shipper_target import OtlpConfigError, OtlpTarget

__all__ = ["ExportError", "OtlpConfigError", "OtlpTarget", "SegmentShipper"]

_log = logging.getLogger("otel_audit.transport")

SEGMENT_GLOB: Final = "seg-*.jsonl"
SIDECAR_SUFFIX: Final = ".shipped"
REJECTED_DIR: Final = "rejected"
LOCK_NAME: Final = ".lock"
_FIRST_BACKOFF: Final = 0.2
_DEAD_SCAN_INTERVAL: Final = 30.0
# A writer creates its folder's .lock an instant before it flocks it: a folder that young
# may be starting, not dead, so it is shipped but not removed.
_FRESH_FOLDER_AGE: Final = 60.0

DropHandler = Callable[[str, int], None]
ErrorHandler = Callable[[str, BaseException | None], None]


class _Stopped(Exception):
    """The shipper was told to stop while a segment was still in progress."""


class SegmentShipper:
    """Ships the closed spool segments of one instance (and of dead ones) to an OTLP target."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        instance_id: str,
        target: OtlpTarget,
        *,
        on_drop: DropHandler,
        on_error: ErrorHandler,
        poll_interval: float = 0.5,
        max_backoff: float = 30.0,
        max_batch_bytes: int = 1 << 20,
    ) -> None:
        if not instance_id or "/" in instance_id or instance_id in (".", ".."):
            raise ValueError(f"instance_id must be a plain folder name, got {instance_id!r}")
        if poll_interval <= 0 or max_backoff <= 0 or max_batch_bytes <= 0:
            raise ValueError("poll_interval, max_backoff and max_batch_bytes must be positive")
        self._root = Path(root)
        self._instance = instance_id
        self._directory = self._root / instance_id
        self._target = target
        self._on_drop = on_drop
        self._on_error = on_error
        self._poll_interval = poll_interval
        self._max_backoff = max_backoff
        self._max_batch_bytes = max_batch_bytes
        self._wake = threading.Event()
        self._halt = threading.Event()  # stop now, even mid-retry
        self._draining = False  # stop once the own folder is empty
        self._thread: threading.Thread | None = None
        self._sender: Sender | None = None
        self._next_dead_scan = 0.0

    @property
    def directory(self) -> Path:
        """The folder of this shipper's own instance."""
        return self._directory

    def start(self) -> None:
        """Start the background thread (once)."""
        if self._thread is not None:
            raise RuntimeError("SegmentShipper already started")
        self._sender = make_sender(self._target)
        self._thread = threading.Thread(
            target=self._run, name=f"otel-audit-shipper-{self._instance}", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        """A segment was just closed: look now instead of at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> bool:
        """Ship what it can within ``timeout`` seconds, then stop; True if its spool is empty."""
        thread = self._thread
        if thread is not None:
            self._draining = True
            self._wake.set()
            thread.join(max(timeout, 0.0))
            self._halt.set()
            self._wake.set()
            # A request still in flight ends within the target's timeout; do not wait for it.
            thread.join(0.1)
            if not thread.is_alive() and self._sender is not None:
                self._sender.close()
        return self._own_spool_empty()

    def _own_spool_empty(self) -> bool:
        try:
            return not any(
                entry.name.startswith("seg-") and SIDECAR_SUFFIX not in entry.name
                for entry in os.scandir(self._directory)
            )
        except FileNotFoundError:
            return True

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._halt.is_set():
            try:
                if time.monotonic() >= self._next_dead_scan and not self._draining:
                    self._next_dead_scan = time.monotonic() + _DEAD_SCAN_INTERVAL
                    self._ship_dead_instances()
                shipped = self._ship_folder(self._directory)
            except _Stopped:
                return
            except Exception as error:  # never let the thread die: the spool keeps everything
                _log.exception("otel-audit shipper: unexpected error; retrying")
                self._on_error("export_error", error)
                shipped = False
                self._pause(self._poll_interval)
            if self._draining and self._own_spool_closed_empty():
                return
            if not shipped:
                self._wake.wait(self._poll_interval)
                self._wake.clear()

    def _own_spool_closed_empty(self) -> bool:
        return not any(_segments(self._directory))

    def _ship_folder(self, folder: Path) -> bool:
        """Ship every closed segment in ``folder``, oldest first; True if there was any."""
        _remove_orphan_sidecars(folder)
        found = False
        for segment in _segments(folder):
            found = True
            self._ship_segment(segment)
        return found

    def _ship_dead_instances(self) -> None:
        try:
            folders = [entry for entry in os.scandir(self._root) if entry.is_dir()]
        except FileNotFoundError:
            return
        for entry in sorted(folders, key=lambda folder: folder.name):
            if entry.name == self._instance:
                continue
            with _dead_folder_lock(Path(entry.path)) as locked:
                if locked:
                    self._ship_folder(Path(entry.path))
                    _remove_if_done(Path(entry.path))

    def _ship_segment(self, segment: Path) -> None:
        sidecar = segment.with_name(segment.name + SIDECAR_SUFFIX)
        try:
            lines = segment.read_bytes().splitlines()
        except FileNotFoundError:  # another shipper (or an operator) took it
            return
        done = _read_count(sidecar)
        single = False  # after a refused batch, one line per request to find the bad one
        while done < len(lines):
            batch = self._batch(lines, done, single)
            if not batch:  # only blank lines left
                done = len(lines)
                break
            outcome = self._send_until_answered([lines[i] for i in batch])
            if isinstance(outcome, Refused):
                if len(batch) > 1:
                    single = True
                    continue
                self._reject(segment, sidecar, lines[batch[0] :], outcome.error)
                return
            if outcome.rejected:
                self._on_drop("export_rejected", outcome.rejected)
                _log.warning(
                    "otel-audit shipper: the collector rejected %d records: %s",
                    outcome.rejected,
                    outcome.message,
                )
            done = batch[-1] + 1
            if done < len(lines):
                _write_count(sidecar, done)
        segment.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)

    def _batch(self, lines: list[bytes], start: int, single: bool) -> list[int]:
        """Indexes of the next lines to send together (blank lines skipped)."""
        batch: list[int] = []
        size = 0
        for index in range(start, len(lines)):
            line = lines[index].strip()
            if not line:
                continue
            if batch and (single or size + len(line) > self._max_batch_bytes):
                break
            batch.append(index)
            size += len(line)
        return batch

    def _send_until_answered(self, lines: list[bytes]) -> Accepted | Refused:
        """Send until the lines are accepted or refused; retries forever unless halted."""
        if self._sender is None:
            raise RuntimeError("SegmentShipper used before start()")
        attempt = 0
        stripped = [line.strip() for line in lines]
        while True:
            if self._halt.is_set():
                raise _Stopped
            outcome = self._sender.send(stripped)
            if not isinstance(outcome, Retry):
                return outcome
            self._on_error("export_retry", outcome.error)
            delay = self._backoff(attempt)
            if outcome.after is not None:
                delay = max(delay, outcome.after)
            attempt += 1
            self._pause(delay)

    def _backoff(self, attempt: int) -> float:
        # Capped exponential with jitter: many restarted workers must not retry in lockstep.
        ceiling = min(self._max_backoff, _FIRST_BACKOFF * 2 ** min(attempt, 32))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security

    def _pause(self, seconds: float) -> None:
        if self._halt.wait(seconds):
            raise _Stopped

    def _reject(
        self, segment: Path, sidecar: Path, remaining: list[bytes], error: BaseException
    ) -> None:
        records = sum(_record_count(line) for line in remaining if line.strip())
        rejected = segment.parent / REJECTED_DIR
        while True:
            try:
                rejected.mkdir(exist_ok=True)
                if sidecar.exists():
                    os.replace(sidecar, rejected / sidecar.name)
                os.replace(segment, rejected / segment.name)
                break
            except OSError as move_error:  # never delete it instead: wait for the disk
                self._on_error("export_error", move_error)
                self._pause(self._max_backoff)
        self._on_drop("export_rejected", records)
        self._on_error("export_rejected", error)
        _log.error(
            "otel-audit shipper: %s refused by the collector (%s); moved to %s, %d records",
            segment.name,
            error,
            rejected,
            records,
        )


def _segments(folder: Path) -> Iterator[Path]:
    """Closed segments, oldest first (their names sort in write order)."""
    try:
        names = sorted(
            entry.name
            for entry in os.scandir(folder)
            if entry.name.startswith("seg-") and entry.name.endswith(".jsonl")
        )
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        yield folder / name


def _remove_orphan_sidecars(folder: Path) -> None:
    # A crash between deleting a segment and its sidecar leaves the sidecar behind.
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(folder):
            if entry.name.endswith(SIDECAR_SUFFIX):
                segment = folder / entry.name[: -len(SIDECAR_SUFFIX)]
                if not segment.exists():
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)


def _read_count(sidecar: Path) -> int:
    try:
        return max(int(sidecar.read_text().strip() or 0), 0)
    except (FileNotFoundError, ValueError):
        return 0  # resend the segment: a duplicate, never a loss


def _write_count(sidecar: Path, count: int) -> None:
    temporary = sidecar.with_name(sidecar.name + ".tmp")
    temporary.write_text(f"{count}\n")
    os.replace(temporary, sidecar)


def _record_count(line: bytes) -> int:
    # Cheap and good enough for a drop counter: every record has exactly one body field.
    return max(line.count(b'"body":'), 1)


@contextlib.contextmanager
def _dead_folder_lock(folder: Path) -> Iterator[bool]:
    """Hold the folder's ``.lock`` if its owner is dead; yields whether it is held."""
    try:
        # No O_CREAT: a folder without a lock is being set up, not abandoned.
        descriptor = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its process is alive (or another shipper has it)
            yield False
            return
        yield True
    finally:
        os.close(descriptor)


def _remove_if_done(folder: Path) -> None:
    """Remove a dead instance's folder once it holds nothing but its lock (and stale sidecars)."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    leftovers = [
        entry
        for entry in entries
        if entry.name != LOCK_NAME and not entry.name.endswith((SIDECAR_SUFFIX, ".tmp"))
    ]
    if leftovers:
        return
    try:
        if time.time() - (folder / LOCK_NAME).stat().st_mtime < _FRESH_FOLDER_AGE:
            return
    except FileNotFoundError:
        return
    for entry in entries:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)
    with contextlib.suppress(OSError):  # a writer started there meanwhile: leave it
        folder.rmdir()
