"""The spool writer on real files, real threads, real processes and real mounts."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_audit._transport._spool import Commit, SpoolError, SpoolWriter
from otel_audit._transport._spool_files import COLLECTOR_BATCH, PADDING_LINE
from otel_audit.archive import ArchiveReadError, iter_archive_files, read_events


def line(seq: int, thread: int = 0, pad: int = 0) -> bytes:
    """One OTLP/JSON ExportLogsServiceRequest line holding one record numbered ``seq``."""
    attributes = [
        {"key": "audit.seq", "value": {"intValue": str(seq)}},
        {"key": "thread", "value": {"intValue": str(thread)}},
        {"key": "pad", "value": {"stringValue": "x" * pad}},
    ]
    record = {"timeUnixNano": str(seq), "attributes": attributes}
    request = {"resourceLogs": [{"resource": {}, "scopeLogs": [{"logRecords": [record]}]}]}
    return json.dumps(request, separators=(",", ":")).encode() + b"\n"


def read(root: Path) -> tuple[list[tuple[int, int]], list[ArchiveReadError]]:
    """(thread, seq) of every record under ``root`` in reading order, and the read errors."""
    errors: list[ArchiveReadError] = []
    events = [
        (int(e.attributes["thread"]), int(e.attributes["audit.seq"]))  # type: ignore[call-overload]
        for e in read_events(root, errors=errors)
    ]
    return events, errors


class Drops:
    """An ``on_drop`` that counts lost lines by reason."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, reason: str, count: int) -> None:
        self.counts[reason] += count


@pytest.fixture
def drops() -> Drops:
    """A fresh drop counter."""
    return Drops()


@pytest.fixture
def writers() -> Iterator[list[SpoolWriter]]:
    """Writers made by a test, closed in teardown."""
    made: list[SpoolWriter] = []
    yield made
    for writer in made:
        writer.close()


def make(writers: list[SpoolWriter], root: Path, drops: Drops, **options: Any) -> SpoolWriter:
    writer = SpoolWriter(root, options.pop("instance_id", "inst"), on_drop=drops, **options)
    writers.append(writer)
    return writer


def wait_until(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_group_commit_many_threads_every_line_once_in_order(
    tmp_path: Path, drops: Drops, writers: list[SpoolWriter]
) -> None:
    """Eight threads' lines all land once, in per-thread order, in far fewer fsyncs than lines."""
    batches: list[int] = []
    gate = threading.Event()

    def on_batch(lines: int, _nbytes: int) -> None:
        batches.append(lines)
        gate.wait(10)  # hold the writer after its first batch so the rest piles up

    writer = make(writers, tmp_path, drops, on_batch=on_batch)
    threads, per_thread = 8, 400
    commits: list[list[Commit | None]] = [[] for _ in range(threads)]

    def work(thread: int) -> None:
        commits[thread] = [writer.append(line(n, thread)) for n in range(per_thread)]

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    gate.set()
    assert all(c is not None and c.wait(10) for cs in commits for c in cs)

    events, errors = read(tmp_path)
    assert errors == []
    assert sorted(events) == [(t, n) for t in range(threads) for n in range(per_thread)]
    for thread in range(threads):
        assert [n for t, n in events if t == thread] == list(range(per_thread))
    assert sum(batches) == threads * per_thread
    assert len(batches) <= 3  # the first line(s), then everything that piled up
    assert drops.counts == Counter()


def test_waiting_callers_share_fsyncs(
    tmp_path: Path, drops: Drops, writers: list[SpoolWriter]
) -> None:
    """Callers that each wait for their own line are all served, one fsync per batch."""
    batches: list[int] = []
    writer = make(writers, tmp_path, drops, on_batch=lambda lines, _n: batches.append(lines))

    def work(thread: int) -> None:
        for n in range(100):
            commit = writer.append(line(n, thread))
            assert commit is not None and commit.wait(10)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    events, errors = read(tmp_path)
    assert (len(events), errors) == (400, [])
    assert sum(batches) == 400  # one on_batch, i.e. one fsync, per batch: never one per line


def test_done_callbacks_run_once_with_the_outcome(
    tmp_path: Path, drops: Drops, writers: list[SpoolWriter]
) -> None:
    """A callback added before or after completion is called exactly once with None."""
    writer = make(writers, tmp_path, drops)
    seen: list[object] = []
    commit = writer.append(line(1))
    assert commit is not None
    commit.add_done_callback(seen.append)
    assert commit.wait(10)
    commit.add_done_callback(seen.append)
    wait_until(lambda: len(seen) == 2, "callbacks")
    assert seen == [None, None]


def test_rotation_by_size_keeps_segments_small_and_ordered(
    tmp_path: Path, drops: Drops, writers: list[SpoolWriter]
) -> None:
    """Segments rotate once full; each is closed except the last; all lines read in order."""
    writer = make(writers, tmp_path, drops, max_segment_bytes=1000)
    size = len(line(0, pad=100))
    for n in range(40):
        commit = writer.append(line(n, pad=100))
        assert commit is not None and commit.wait(10)
    segments = sorted(writer.directory.glob("seg-*"))
    assert len(segments) >= 40 * size // 1000
    # Lines stay under the limit; closing pads with record-less lines (see the next test).
    assert all(len(p.read_bytes().replace(PADDING_LINE, b"")) <= 1000 for p in segments)
    assert all(p.name.endswith(".jsonl") for p in segments[:-1])
    assert [n for _, n in read(tmp_path)[0]] == list(range(40))


def test_closed_segments_end_on_whole_collector_batches(
    tmp_path: Path, drops: Drops, writers: list[SpoolWriter]
) -> None:
    """A closed segment holds a multiple of the collector's batch of lines, padding last.

    The collector deletes a segment at end of file before handing on its last partial
    batch; padded to whole batches, only record-less padding is ever in that window.
    """
    writer = make(writers, tmp_path, drops)
    for n in range(7):
        commit = writer.append(line(n))
        assert commit is not None and commit.wait(10)
    writer.close()
    (segment,) = writer.directory.glob("seg-*.jsonl")
    lines = segment.read_bytes().splitlines(keepends=True)
    assert len(lines) == COLLECTOR_BATCH
    assert lines[7:] == [PADDING_LINE] * (COLLECTOR_BATCH - 7)
    assert [n for _, n in read(tmp_path)[0]] == list(range(7))  # padding holds no events


def test_rotation_by_age_closes_a_quiet_segment(
    tmp_path: Path, drops: Drops, writers: list[SpoolWriter]
) -> None:
    """A non-empty segment older than max_segment_age is closed without further appends."""
    writer = make(writers, tmp_path, drops, max_segment_age=0.2)
    for n in range(2):
        commit = writer.append(line(n))
        assert commit is not None and commit.wait(10)
        wait_until(lambda: not list(writer.directory.glob("*.open")), "age rotation")
    closed = sorted(p.name for p in writer.directory.glob("seg-*.jsonl"))
    assert len(closed) == 2
    assert [n for _, n in read(tmp_path)[0]] == [0, 1]


def test_close_renames_the_open_segment_and_releases_the_lock(tmp_path: Path, drops: Drops) -> None:
    """close() leaves only closed segments and a lock that another process could take."""
    writer = SpoolWriter(tmp_path, "inst", on_drop=drops)
    assert writer.append(line(1)) is not None
    writer.close()
    assert [p.suffix for p in writer.directory.glob("seg-*")] == [".jsonl"]
    with open(writer.directory / ".lock", "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with pytest.raises(SpoolError, match="closed"):
        writer.append(line(2))
    assert read(tmp_path)[0] == [(0, 1)]


def test_a_live_instance_folder_cannot_be_taken_twice(
    tmp_path: Path, drops: Drops, writers: list[SpoolWriter]
) -> None:
    """A second writer for a folder whose lock is held fails with a clear SpoolError."""
    make(writers, tmp_path, drops)
    with pytest.raises(SpoolError, match="locked by another live process"):
        SpoolWriter(tmp_path, "inst", on_drop=drops)


_CHILD = """
import sys
from otel_audit._transport._spool import SpoolWriter
sys.path.insert(0, sys.argv[2])
from test_spool import line
writer = SpoolWriter(sys.argv[1], "dead", on_drop=print, max_segment_bytes=20000)
for n in range(10**6):
    commit = writer.append(line(n, pad=300))
    if n % 3 == 0:
        assert commit.wait(10)
        print(n, flush=True)
"""


def test_segments_of_a_killed_writer_are_finalised_by_the_next(
    tmp_path: Path, drops: Drops, writers: list[SpoolWriter]
) -> None:
    """SIGKILL mid-stream, a torn tail: the next writer cuts it, renames, and every commit reads."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path), str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    committed = [int(child.stdout.readline()) for _ in range(200)]
    child.send_signal(signal.SIGKILL)
    child.wait()
    dead = tmp_path / "dead"
    [open_segment] = dead.glob("*.open")
    with open(open_segment, "ab") as torn:
        torn.write(line(10**7)[:50])  # what a write cut by the kill leaves

    make(writers, tmp_path, drops, instance_id="next")

    assert not list(dead.glob("*.open"))
    assert open_segment.with_suffix("").exists()
    events, errors = read(tmp_path)
    assert errors == []
    seqs = [n for _, n in events]
    assert seqs == list(range(len(seqs)))  # in order, nothing torn, nothing twice
    assert set(committed) <= set(seqs)


def test_full_pending_memory_refuses_and_counts(
    tmp_path: Path, drops: Drops, writers: list[SpoolWriter]
) -> None:
    """While the writer is stuck, appends beyond max_pending_bytes are refused and counted."""
    stuck = threading.Event()
    release = threading.Event()

    def on_batch(_lines: int, _nbytes: int) -> None:
        stuck.set()
        release.wait(10)

    size = len(line(10))  # every line below has a two-digit number: all the same size
    writer = make(writers, tmp_path, drops, max_pending_bytes=10 * size, on_batch=on_batch)
    try:
        first = writer.append(line(0))
        assert first is not None and first.wait(10)
        stuck.wait(10)
        accepted = [c for n in range(10, 40) if (c := writer.append(line(n))) is not None]
        assert len(accepted) == 10
        assert drops.counts == Counter({"spool_full": 20})
    finally:
        release.set()
    assert all(c.wait(10) for c in accepted)
    assert writer.append(line(40)) is not None
    assert writer.flush()
    assert [n for _, n in read(tmp_path)[0]] == [0, *range(10, 20), 40]


@pytest.fixture
def mount_point(tmp_path: Path) -> Iterator[Path]:
    """A folder for mounts, unmounted in teardown."""
    point = tmp_path / "mnt"
    point.mkdir()
    yield point
    for target in (point / "spool", point):  # whatever a failed test left mounted
        subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


def mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here (needs root): {done.stderr.strip()}")


def test_full_disk_fails_the_batch_counts_and_recovers(
    mount_point: Path, drops: Drops, writers: list[SpoolWriter]
) -> None:
    """ENOSPC fails commits with SpoolError and counted drops; freeing space brings it back."""
    mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point))
    filler = mount_point / "filler"
    filler.write_bytes(b"\0" * (48 << 10))  # leaves room for a few dozen lines
    writer = make(writers, mount_point, drops)
    written: list[int] = []
    failure = None
    for n in range(200):
        commit = writer.append(line(n, pad=500))
        assert commit is not None
        try:
            commit.wait(10)
            written.append(n)
        except SpoolError as error:
            failure = error
            break
    assert failure is not None and failure.errno == errno.ENOSPC
    assert "No space left on device" in str(failure) and str(mount_point) in str(failure)
    assert drops.counts == Counter({"spool_write_error": 1})

    filler.unlink()
    commit = writer.append(line(1000, pad=500))
    assert commit is not None and commit.wait(10)
    events, errors = read(mount_point)
    assert errors == []  # the partial batch was cut off, not left torn
    assert [n for _, n in events] == [*written, 1000]


@pytest.mark.parametrize("blocker", ["file-as-folder", "read-only-mount"])
def test_unwritable_folder_fails_clearly_and_recovers(
    tmp_path: Path, mount_point: Path, drops: Drops, writers: list[SpoolWriter], blocker: str
) -> None:
    """An unwritable spool fails each batch with a clear error; fixing it lets writes resume."""
    root = mount_point / "spool"
    if blocker == "file-as-folder":
        root.write_bytes(b"")
        expected = "Not a directory"
    else:
        root.mkdir()
        mount("--bind", str(root), str(root))
        mount("-o", "remount,bind,ro", str(root))
        expected = "Read-only file system"
    writer = make(writers, root, drops)
    for n in range(2):
        commit = writer.append(line(n))
        assert commit is not None
        with pytest.raises(SpoolError, match=expected):
            commit.wait(10)
    assert drops.counts == Counter({"spool_write_error": 2})

    if blocker == "file-as-folder":
        root.unlink()
    else:
        subprocess.run(["umount", str(root)], check=True)
    commit = writer.append(line(2))
    assert commit is not None and commit.wait(10)
    assert [n for _, n in read(root)[0]] == [2]


def test_folder_removed_under_the_writer_is_recreated(
    tmp_path: Path, drops: Drops, writers: list[SpoolWriter]
) -> None:
    """Deleting the instance folder mid-life does not swallow later lines into a dead inode."""
    writer = make(writers, tmp_path, drops)
    commit = writer.append(line(1))
    assert commit is not None and commit.wait(10)
    shutil.rmtree(writer.directory)
    commit = writer.append(line(2))
    assert commit is not None and commit.wait(10)
    assert (writer.directory / ".lock").exists()
    assert [n for _, n in read(tmp_path)[0]] == [2]


def test_forked_child_cannot_write_into_the_parents_segment(
    tmp_path: Path, drops: Drops, writers: list[SpoolWriter]
) -> None:
    """The inherited writer refuses in the child; the parent's segment and writer are untouched."""
    writer = make(writers, tmp_path, drops)
    commit = writer.append(line(1))
    assert commit is not None and commit.wait(10)
    [segment] = writer.directory.glob("*.open")
    before = segment.read_bytes()
    pid = os.fork()
    if pid == 0:  # the child: report by exit status only
        try:
            writer.append(line(2))
            code = 1
        except SpoolError as error:
            code = 0 if "belongs to the parent process" in str(error) else 2
        code = code or (0 if writer.flush() else 3)
        writer.close()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert segment.read_bytes() == before
    commit = writer.append(line(3))
    assert commit is not None and commit.wait(10)
    assert [n for _, n in read(tmp_path)[0]] == [1, 3]


def test_read_events_reads_every_instance_open_and_closed(
    tmp_path: Path, drops: Drops, writers: list[SpoolWriter]
) -> None:
    """The reader takes closed and open segments of every instance folder, each in order."""
    first = make(writers, tmp_path, drops, instance_id="a", max_segment_bytes=500)
    second = make(writers, tmp_path, drops, instance_id="b")
    for n in range(10):
        for thread, writer in enumerate((first, second)):
            commit = writer.append(line(n, thread, pad=100))
            assert commit is not None and commit.wait(10)
    files = iter_archive_files(tmp_path)
    assert {p.parent.name for p in files} == {"a", "b"}
    assert any(p.name.endswith(".open") for p in files)
    events, errors = read(tmp_path)
    assert errors == []
    assert events == [(0, n) for n in range(10)] + [(1, n) for n in range(10)]


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        pytest.param(b'{"a":1}', ValueError, id="no-newline"),
        pytest.param(b'{"a":1}\n{"b":2}\n', ValueError, id="two-lines"),
        pytest.param('{"a":1}\n', TypeError, id="str"),
    ],
)
def test_append_rejects_what_is_not_one_line(
    tmp_path: Path, drops: Drops, writers: list[SpoolWriter], bad: Any, error: type[Exception]
) -> None:
    """Anything but one complete bytes line is refused with a clear error."""
    writer = make(writers, tmp_path, drops)
    with pytest.raises(error, match="line must be"):
        writer.append(bad)


@pytest.mark.parametrize(
    "options",
    [
        {"instance_id": ""},
        {"instance_id": "../x"},
        {"instance_id": ".hidden"},
        {"max_segment_bytes": 0},
        {"max_segment_age": 0},
        {"max_pending_bytes": -1},
    ],
)
def test_bad_options_are_rejected(tmp_path: Path, drops: Drops, options: dict[str, Any]) -> None:
    """Nonsense options fail at construction with a ValueError naming the option."""
    options.setdefault("instance_id", "inst")
    with pytest.raises(ValueError, match="must be"):
        SpoolWriter(tmp_path, on_drop=drops, **options)
