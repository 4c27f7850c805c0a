"""A progress bar over bytes read, on stderr, for ``verify`` and ``seal`` on long runs."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Final

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ..archive import iter_archive_files

# Below this the run is short: no bar flickering for a moment.
_WORTH_A_BAR: Final = 32 << 20


def total_bytes(paths: Iterable[Path]) -> int:
    """The stored size of every archive file under ``paths`` (0 for what cannot be listed)."""
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            for file in iter_archive_files(path):
                with contextlib.suppress(OSError):
                    total += file.stat().st_size
    return total


@contextlib.contextmanager
def byte_progress(total: int, description: str) -> Iterator[Callable[[int], None] | None]:
    """Yields a callback taking bytes read, or None: a bar only when stderr is a terminal."""
    if total < _WORTH_A_BAR or not sys.stderr.isatty():
        yield None
        return
    with byte_bar() as bar:
        task = bar.add_task(description, total=total)
        yield lambda count: bar.advance(task, count)


def byte_bar() -> Progress:
    """A transient bar on stderr over bytes: description, bar, bytes, speed, time left."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
