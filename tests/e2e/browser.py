"""Headless Chromium and the logs-only stack the browser tests share."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from examples.stack import Stack

from .harness import LIVE_SERVICES

CHROMIUM = Path("/usr/bin/chromium")
WINDOW = (1400, 900)


def chromium_command(profile: Path, *arguments: str) -> list[str]:
    """Headless Chromium that talks to nothing but the page it is given."""
    return [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",  # tests run as root, where the sandbox refuses to start
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        # Run the page's scripts (fetches, the 300 ms query debounce) before dumping.
        "--virtual-time-budget=15000",
        *arguments,
    ]


def run_chromium(profile: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        chromium_command(profile, *arguments),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, f"chromium exited with {result.returncode}:\n{result.stderr}"
    return result


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header (IHDR)."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


@contextlib.contextmanager
def logs_stack(workdir: Path) -> Iterator[Stack]:
    """VictoriaLogs and otelcol-audit (no traces backend: this test sends none)."""
    stack = Stack(workdir)
    try:
        stack.start(["victoria-logs", "otelcol-audit"])
        # Their log tails go into the report if the test fails (tests/e2e/conftest.py).
        LIVE_SERVICES.update({service.log: service for service in stack.services.values()})
        yield stack
    finally:
        stack.stop()
        for service in stack.services.values():
            LIVE_SERVICES.pop(service.log, None)
