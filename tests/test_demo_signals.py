"""``make demo`` stops every process it started on SIGINT, SIGTERM and SIGHUP.

The demo starts VictoriaLogs, Jaeger, the collector and the app in sessions of their own, so a
signal to the demo reaches none of them: the demo must stop them. Each case sends one signal
to the top process only (not its process group) and then checks through /proc that every
process under it has exited and that none of their listening ports is still open. The demos
of all cases start together (each on its own ports and folder), so the suite waits for one
start-up rather than one per case.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from examples.stack import BIN, ROOT

pytestmark = pytest.mark.e2e

RUNNING_LINE = "Running until Ctrl-C"
STOPPING_WORDS = "stopping the demo app, the collector and the backends"
# Patience, not a performance bound: start-up includes the scripted session, and the demo
# may take up to 20 s per service before it kills one that ignores its stop signal.
START_PATIENCE = 240.0
STOP_PATIENCE = 90.0
# Processes the demo must have started (matched in each process's command line).
EXPECTED_PROGRAMS = ("victoria-logs", "bin/jaeger", "otelcol-audit", "examples.app:app")


@dataclass(frozen=True)
class Case:
    """How the demo is launched and which signal stops it."""

    via: str  # "python": `python -m examples.demo`; "make": `make demo`
    stop: signal.Signals

    @property
    def id(self) -> str:
        return f"{self.via}-{self.stop.name}"


CASES = [
    Case("python", signal.SIGINT),
    Case("python", signal.SIGTERM),
    Case("python", signal.SIGHUP),
    # make passes on only SIGTERM (the others a terminal sends to the whole group).
    Case("make", signal.SIGTERM),
]


@dataclass
class Demo:
    """One demo run: its top process and its output."""

    process: subprocess.Popen[bytes]
    output: Path
    found: dict[tuple[int, int], str] = field(default_factory=dict)

    def text(self) -> str:
        return self.output.read_text(errors="replace")


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process, or None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself hold spaces or parentheses.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def _descendants(top: int) -> dict[tuple[int, int], str]:
    """(pid, start time) -> command line of ``top`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[1], []).append(int(entry.name))
    found: dict[tuple[int, int], str] = {}
    pending = [top]
    while pending:
        pid = pending.pop()
        stat = _stat(pid)
        if stat is None:
            continue
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        found[(pid, stat[2])] = command
        pending += children.get(pid, [])
    return found


def _alive(pid: int, start_time: int) -> bool:
    """The very process (not a later one with its pid) still runs; a zombie has exited."""
    stat = _stat(pid)
    return stat is not None and stat[2] == start_time and stat[0] not in {"Z", "X"}


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    except OSError:
        pass  # exited meanwhile, or a file descriptor closed while being read
    return inodes


def _listening() -> dict[str, int]:
    """Socket inode -> port of every TCP socket listening on this host."""
    sockets = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            columns = line.split()
            if columns[3] == "0A":  # TCP_LISTEN
                sockets[columns[9]] = int(columns[1].rsplit(":", 1)[1], 16)
    return sockets


def _listening_ports(pids: set[int]) -> set[int]:
    listening = _listening()
    return {listening[inode] for pid in pids for inode in _socket_inodes(pid) if inode in listening}


def _environment() -> dict[str, str]:
    """This environment without an outer make's settings (its jobserver is not ours)."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"}
    }


def _command(case: Case, workdir: Path) -> list[str]:
    if case.via == "python":
        return [sys.executable, "-m", "examples.demo", f"--workdir={workdir}"]
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    # The venv running this test is the one make would refresh: never reinstall it here.
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:16]
    return [
        make,
        "--no-print-directory",
        f"--old-file=.venv/.installed-{digest}",
        "demo",
        f"ARGS=--workdir={workdir}",
    ]


def _kill_leftovers(demo: Demo) -> None:
    """SIGKILL whatever of the run is still alive, so a failing case leaves nothing behind."""
    for pid, start_time in [*demo.found, *_descendants(demo.process.pid)]:
        if _alive(pid, start_time):
            os.kill(pid, signal.SIGKILL)
    demo.process.wait()


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Demo]]:
    """A running demo per case, all started at once (the binaries come from `make tools`)."""
    for name in ("otelcol-audit", "victoria-logs", "jaeger"):
        if not os.access(BIN / name, os.X_OK):
            pytest.fail(f"{BIN / name} is missing: run `make collector backends`")
    started: dict[str, Demo] = {}
    try:
        for case in CASES:
            folder = tmp_path_factory.mktemp(case.id)
            output = folder / "demo.out"
            with output.open("wb") as sink:
                process = subprocess.Popen(
                    _command(case, folder / "demo"),
                    cwd=ROOT,
                    env=_environment(),
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    # Away from pytest's process group: only the test's own signal reaches it.
                    start_new_session=True,
                )
            started[case.id] = Demo(process, output)
        yield started
    finally:
        for demo in started.values():
            _kill_leftovers(demo)


def _wait_until_running(demo: Demo) -> None:
    deadline = time.monotonic() + START_PATIENCE
    while RUNNING_LINE not in demo.text():
        if demo.process.poll() is not None:
            pytest.fail(f"demo exited with {demo.process.returncode}:\n{demo.text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"demo not running after {START_PATIENCE:.0f}s:\n{demo.text()}")
        time.sleep(0.2)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_stop_signal_to_the_demo_stops_everything_it_started(
    case: Case, demos: dict[str, Demo]
) -> None:
    """The signal, sent to the top process alone, ends every process below it and frees ports."""
    demo = demos[case.id]
    _wait_until_running(demo)
    demo.found = _descendants(demo.process.pid)
    commands = " ".join(demo.found.values())
    missing = [program for program in EXPECTED_PROGRAMS if program not in commands]
    assert not missing, f"{missing} not among the demo's processes: {demo.found}"
    ports = _listening_ports({pid for pid, _ in demo.found})
    assert len(ports) >= len(EXPECTED_PROGRAMS), f"listening ports found: {ports}"

    os.kill(demo.process.pid, case.stop)

    returncode = demo.process.wait(STOP_PATIENCE)
    deadline = time.monotonic() + STOP_PATIENCE
    while (alive := {k: c for k, c in demo.found.items() if _alive(*k)}) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert not alive, f"still running after {case.stop.name}: {alive}\n{demo.text()}"
    assert not ports & set(_listening().values()), f"ports still listening: {ports}"
    assert STOPPING_WORDS in demo.text(), demo.text()
    assert returncode == -case.stop, "the demo should end by the signal that stopped it"
