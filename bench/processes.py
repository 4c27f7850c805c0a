"""Child processes the HTTP benchmark starts: pinned to a core, always stopped.

Every process is started in its own session so a Ctrl-C in the terminal reaches only the
harness, which then stops the children in order (the app first, so it can flush its
telemetry into the sink, then the sink).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType

# One port chooser for the project (below the ephemeral range, never reused in a process).

# Two cores: the app under test owns core 0; wrk and the sink share core 1.
APP_CORE = 0
LOAD_CORE = 1
_STOP_TIMEOUT_SECONDS = 15.0
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def pinned(core: int, argv: Sequence[str]) -> list[str]:
    """``argv`` under ``taskset -c core`` when taskset exists (util-linux), else unpinned."""
    if shutil.which("taskset") is None or (os.cpu_count() or 1) <= core:
        return list(argv)
    return ["taskset", "-c", str(core), *argv]


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The harness's environment without any ``OTEL_*`` setting, plus ``extra``.

    An ambient ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or a disabled SDK) would silently change
    what the apps under test export; each variant states its configuration explicitly.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env["PYTHONPATH"] = str(_PROJECT_ROOT)
    env.update(extra or {})
    return env


class ChildProcess:
    """One started child; ``stop()`` is idempotent and escalates to SIGKILL."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        stop_signal: signal.Signals = signal.SIGTERM,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.stop_signal = stop_signal
        self.process = subprocess.Popen(
            self.argv,
            env=dict(env),
            cwd=cwd or _PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise RuntimeError(f"{self.name} exited early with code {code}: {self.argv}")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(_STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def running(
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    stop_signal: signal.Signals = signal.SIGTERM,
    cwd: Path | None = None,
) -> Iterator[ChildProcess]:
    """Start a child for the duration of the block; stopped on exit, exception or Ctrl-C."""
    child = ChildProcess(name, argv, env, stop_signal, cwd)
    try:
        yield child
    finally:
        child.stop()


def wait_http_ok(child: ChildProcess, url: str, timeout: float = 30.0) -> int:
    """Poll ``url`` until it answers 200; returns how many requests that took."""
    deadline = time.monotonic() + timeout
    attempts = 0
    while True:
        child.check_alive()
        attempts += 1
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:
                if response.status == 200:
                    return attempts
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{child.name} did not answer 200 at {url} within {timeout}s")
        time.sleep(0.1)


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt so ``finally`` blocks stop the children."""
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


def python() -> str:
    """The interpreter running the harness (the project's virtualenv)."""
    return sys.executable
