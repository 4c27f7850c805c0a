"""``tail``: the last events, then new ones across rotation (rename, new file, truncation)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_audit.archive import ArchivedEvent
from otel_audit.query import EventFilter, compile_filter, follow_files

from .test_cli import cli
from .trail import write_events

WAIT = 20.0
"""Longest wait for an event to show up (polls are 0.05-0.1 s apart)."""


def event(name: str, action: str = "user.updated") -> dict[str, Any]:
    return {
        "timestamp_ns": time.time_ns(),
        "attributes": {"audit.action": action, "audit.outcome": "success", "audit.event.id": name},
    }


def write(path: Path, *names: str, action: str = "user.updated") -> None:
    write_events(path, [event(name, action) for name in names])


class Follower:
    """follow_files in a thread; what it yields goes to a queue."""

    def __init__(self, paths: list[Path], flt: EventFilter | None = None, last: int = 10) -> None:
        self.events: queue.Queue[ArchivedEvent] = queue.Queue()
        self._stop = threading.Event()
        self._errors: list[object] = []
        matcher = compile_filter(flt or EventFilter())
        self._thread = threading.Thread(target=self._run, args=(paths, matcher, last), daemon=True)
        self._thread.start()

    def _run(self, paths: list[Path], matcher: Any, last: int) -> None:
        for found in follow_files(
            paths, matcher, last=last, interval=0.05, on_error=self._errors.append,
            stop=self._stop.is_set,
        ):  # fmt: skip
            self.events.put(found)

    def ids(self, count: int) -> list[str]:
        """The event ids of the next ``count`` events (fails after :data:`WAIT`)."""
        got: list[str] = []
        deadline = time.monotonic() + WAIT
        while len(got) < count:
            try:
                found = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"only {got} of {count} events arrived within {WAIT}s")
            got.append(str(found.attributes["audit.event.id"]))
        return got

    def nothing_more(self, settle: float = 0.4) -> bool:
        time.sleep(settle)
        return self.events.empty()

    def stop(self) -> list[object]:
        self._stop.set()
        self._thread.join(WAIT)
        return self._errors


@pytest.fixture
def follower_factory() -> Iterator[list[Follower]]:
    followers: list[Follower] = []
    yield followers
    for follower in followers:
        follower.stop()


def test_follows_rename_rotation_and_new_files(
    tmp_path: Path, follower_factory: list[Follower]
) -> None:
    """Collector-style rotation: the renamed file is read to its end, the new one from the start."""
    folder = tmp_path / "archive"
    live = folder / "audit.jsonl"
    write(live, "a1", "a2", "a3")
    follower = Follower([folder], last=2)
    follower_factory.append(follower)
    assert follower.ids(2) == ["a2", "a3"]
    write(live, "b1")
    assert follower.ids(1) == ["b1"]
    rotated = folder / "audit-2026-11-30T10-00-00.000.jsonl"
    live.rename(rotated)
    write(rotated, "b2")  # the writer still had the old file open
    write(live, "c1", "c2")
    assert sorted(follower.ids(3)) == ["b2", "c1", "c2"]
    os.remove(rotated)  # gone (compressed elsewhere): nothing repeats
    write(live, "c3")
    assert follower.ids(1) == ["c3"]
    assert follower.nothing_more()
    assert follower.stop() == []


def test_follows_a_truncated_file_and_spool_segments(
    tmp_path: Path, follower_factory: list[Follower]
) -> None:
    """copytruncate starts the file over; a new open segment is read, its close adds nothing."""
    root = tmp_path / "spool"
    opened = root / "instance-1" / "seg-20261130T100000.000000Z-000001.jsonl.open"
    write(opened, "s1")
    follower = Follower([root], last=5)
    follower_factory.append(follower)
    assert follower.ids(1) == ["s1"]
    closed = opened.with_name(opened.name.removesuffix(".open"))
    opened.rename(closed)
    second = root / "instance-1" / "seg-20261130T100001.000000Z-000002.jsonl.open"
    write(second, "s2")
    assert follower.ids(1) == ["s2"]
    os.truncate(second, 0)
    write(second, "s3")
    assert follower.ids(1) == ["s3"]
    assert follower.nothing_more()


def test_filters_apply_and_damaged_lines_are_reported(
    tmp_path: Path, follower_factory: list[Follower]
) -> None:
    """Only selected events come out; a garbage line is reported with file:line."""
    live = tmp_path / "audit.jsonl"
    write(live, "x1", action="user.updated")
    follower = Follower([live], EventFilter(action="auth.*"), last=5)
    follower_factory.append(follower)
    write(live, "x2", action="auth.login")
    assert follower.ids(1) == ["x2"]
    with live.open("a") as out:
        out.write("garbage\n")
    write(live, "x3", action="auth.logout")
    assert follower.ids(1) == ["x3"]
    errors = follower.stop()
    assert [str(e).split(": Expecting")[0] for e in errors] == [f"{live}:3: not valid JSON"]


def test_without_follow_prints_the_last_events(tmp_path: Path) -> None:
    """`otel-audit tail -n 2 FILE` prints the last two events and exits."""
    live = tmp_path / "audit.jsonl"
    write(live, "a", "b", "c")
    run = cli("tail", "-n", "2", live, "--format", "json")
    assert run.code == 0, run.err
    assert [line["event_id"] for line in run.json_lines()] == ["b", "c"]


def test_cli_follows_across_rotation_until_interrupted(tmp_path: Path) -> None:
    """The real command: JSON lines as events are written and rotated; Ctrl-C ends it (130)."""
    folder = tmp_path / "archive"
    live = folder / "audit.jsonl"
    write(live, "old")
    process = subprocess.Popen(
        [sys.executable, "-m", "otel_audit", "tail", "-f", str(folder), "-n", "1",
         "--interval", "0.05", "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    lines: queue.Queue[bytes] = queue.Queue()
    assert process.stdout is not None and process.stderr is not None
    stdout = process.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()

    def next_ids(count: int) -> list[str]:
        ids = []
        for _ in range(count):
            try:
                ids.append(json.loads(lines.get(timeout=WAIT))["event_id"])
            except queue.Empty:
                pytest.fail(f"no line within {WAIT}s after {ids}")
        return ids

    try:
        assert next_ids(1) == ["old"]
        write(live, "n1")
        assert next_ids(1) == ["n1"]
        live.rename(folder / "audit-2026-11-30T11-00-00.000.jsonl")
        write(live, "n2")
        assert next_ids(1) == ["n2"]
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(WAIT)
    assert code == 130
    assert process.stderr.read() == b""
