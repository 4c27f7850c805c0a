"""Run a server process until a block ends, ready once its port accepts connections.

For servers without a health endpoint (uvicorn apps, where a probe request would itself be
audited); examples/stack.py has the rest (free ports, graceful stops).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from examples.stack import die_with_parent, free_port, stop_process

__all__ = ["free_port", "running", "wait_for_port"]


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Block until ``port`` accepts connections; fail early if ``process`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port} within {timeout}s")


@contextlib.contextmanager
def running(
    command: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str] | None = None,
    log: Path,
    cwd: Path | None = None,
    stop_signal: signal.Signals = signal.SIGINT,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block ends, then stop it with ``stop_signal`` (then SIGKILL)."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            list(command),
            env={**os.environ, **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            # A test run killed outright must not leave the server holding its port.
            preexec_fn=die_with_parent(),  # noqa: PLW1509 (only prctl, getppid, kill)
        )
        try:
            wait_for_port(port, process)
            yield process
        finally:
            stop_process(process, how=stop_signal)
