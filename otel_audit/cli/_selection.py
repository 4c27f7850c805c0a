"""What ``query``, ``stats`` and ``tail`` share: sources, filters, errors and progress.

Sources are archive paths (files or folders) or ``--source victorialogs+http://HOST:PORT``.
Damaged archive lines are reported on stderr as ``file:line: why`` while the command goes on;
the command then exits with :data:`EXIT_INPUT`. Engine errors become one-line
:class:`CliError` with their exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from ..archive import ArchiveReadError
from ..query import (
    CATEGORIES,
    OUTCOMES,
    BackendError,
    EventFilter,
    FileSource,
    FilterError,
    KeyFileError,
    QueryError,
    Source,
    SourceError,
    VictoriaLogsSource,
    load_pseudonym_key,
)
from ._errors import EXIT_BACKEND, EXIT_INPUT, EXIT_KEY, EXIT_OK, EXIT_USAGE, CliError
from ._progress import byte_bar

_PROGRESS_STEP = 1 << 20

_FILTERS = (
    ("--user", "user.id: the raw id (its pseudonym is found with the key)"),
    ("--tenant", "tenant.id: the raw id (pseudonymised like --user)"),
    ("--action", "audit.action glob: user.*, auth.login*"),
    ("--outcome", f"audit.outcome: {', '.join(OUTCOMES)}"),
    ("--resource-type", "audit.resource.type"),
    ("--resource-id", "audit.resource.id"),
    ("--route", "http.route template: /items/{item_id}"),
    ("--client", "client.address"),
    ("--trace-id", "trace id (32 hex digits)"),
    ("--category", f"derived selections: {', '.join(CATEGORIES)}"),
    ("--since", "at or after: RFC 3339 (2026-11-30T08:00:00Z) or relative (30m, 24h, 7d)"),
    ("--until", "before: RFC 3339 or relative"),
)


def add_selection_arguments(parser: argparse.ArgumentParser, *, paths: str = "*") -> None:
    """PATH..., ``--source`` and the filters."""
    parser.add_argument(
        "paths",
        nargs=paths,
        metavar="PATH",
        help="archive files or folders (the library's archive or spool, the collector's "
        "archive; rotated and .gz files included)",
    )
    parser.add_argument(
        "--source",
        metavar="URL",
        help="read VictoriaLogs instead of files: victorialogs+http://HOST:PORT",
    )
    group = parser.add_argument_group("filters (all given must match)")
    for option, text in _FILTERS:
        group.add_argument(option, metavar="VALUE", help=text)
    group.add_argument(
        "--pseudonym-key-file",
        metavar="FILE",
        help="the pseudonymisation key (default: $OTEL_AUDIT_PSEUDONYMIZATION_KEY)",
    )


def build_filter(args: argparse.Namespace) -> EventFilter:
    """The filter the options describe (bad values: exit 2; an unreadable key: exit 5)."""
    with engine_errors():
        key = load_pseudonym_key(args.pseudonym_key_file)
        names = [option[2:].replace("-", "_") for option, _ in _FILTERS]
        values = {name: getattr(args, name) for name in names}
        return EventFilter.parse(**values, pseudonym_key=key)


class ReadErrors:
    """Prints damaged lines as they are met and remembers how many there were."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.count = 0

    def __call__(self, error: ArchiveReadError) -> None:
        self.count += 1
        print(f"otel-audit {self.command}: {error}", file=sys.stderr, flush=True)

    def exit_code(self) -> int:
        """EXIT_INPUT after a summary when lines were skipped, else EXIT_OK."""
        if not self.count:
            return EXIT_OK
        print(
            f"otel-audit {self.command}: {self.count} unreadable line(s) or file(s) skipped",
            file=sys.stderr,
        )
        return EXIT_INPUT


def open_selected_source(
    args: argparse.Namespace, errors: ReadErrors, *, on_line: Callable[[bytes], None] | None = None
) -> Source:
    """``--source`` or the PATHs (exactly one of the two)."""
    if args.source and args.paths:
        raise CliError("give PATHs or --source, not both", EXIT_USAGE)
    with engine_errors():
        if args.source:
            try:
                return VictoriaLogsSource(args.source)
            except SourceError as error:  # not a victorialogs+http(s) URL
                raise CliError(str(error), EXIT_USAGE) from None
        if not args.paths:
            raise CliError(
                "give archive PATHs or --source victorialogs+http://HOST:PORT", EXIT_USAGE
            )
        return FileSource(args.paths, on_error=errors, on_line=on_line)


@contextlib.contextmanager
def engine_errors() -> Iterator[None]:
    """Engine exceptions as :class:`CliError` with their exit codes."""
    try:
        yield
    except FilterError as error:
        raise CliError(str(error), EXIT_USAGE) from None
    except BackendError as error:
        raise CliError(str(error), EXIT_BACKEND) from None
    except SourceError as error:
        raise CliError(str(error), EXIT_INPUT) from None
    except KeyFileError as error:
        raise CliError(str(error), EXIT_KEY) from None
    except QueryError as error:
        raise CliError(str(error), EXIT_INPUT) from None


class ByteMeter:
    """An ``on_line`` callback: counts the bytes read and moves a progress bar (stderr)."""

    def __init__(self) -> None:
        self.done = 0
        self._shown = 0
        self._update: Callable[[int], None] | None = None

    def __call__(self, raw: bytes) -> None:
        self.done += len(raw)
        if self._update is not None and self.done - self._shown >= _PROGRESS_STEP:
            self._shown = self.done
            self._update(self.done)

    @contextlib.contextmanager
    def progress(self, source: Source, description: str) -> Iterator[None]:
        """Show a transient progress bar over ``source``'s bytes while the block runs."""
        total = _archive_bytes(source)
        if not total:
            yield
            return
        with byte_bar() as bar:
            task = bar.add_task(description, total=total)
            self._update = lambda done: bar.update(task, completed=done)
            try:
                yield
            finally:
                self._update = None


def _archive_bytes(source: Source) -> int:
    """About how many bytes reading ``source`` decodes (gzip: the size its trailer gives)."""
    if not isinstance(source, FileSource):
        return 0
    total = 0
    for file in source.files():
        with contextlib.suppress(OSError):
            total += _decoded_size(file)
    return total


def _decoded_size(file: Path) -> int:
    size = file.stat().st_size
    if not file.name.endswith(".gz") or size < 4:
        return size
    with open(file, "rb") as raw:  # the gzip trailer's ISIZE: the size modulo 2**32
        raw.seek(-4, os.SEEK_END)
        return int.from_bytes(raw.read(4), "little")


@contextlib.contextmanager
def quiet_broken_pipe() -> Iterator[None]:
    """A closed stdout (``| head``) ends the output quietly, without Python's own complaint
    when it flushes stdout at exit."""
    try:
        yield
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def show_progress(output_is_terminal: bool) -> bool:
    """Progress bars go to stderr, only when it is a terminal that the output is not on."""
    return sys.stderr.isatty() and not output_is_terminal
