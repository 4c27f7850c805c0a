"""``otel-audit tail``: the last events, and with ``-f`` every new one, through rotations."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

from ..archive import ArchivedEvent
from ..query import VictoriaLogsSource, compile_filter, follow_files, sort_key
from ._errors import EXIT_USAGE, CliError
from ._render import FORMATS, default_format, write_all, writer_for
from ._selection import (
    ReadErrors,
    add_selection_arguments,
    build_filter,
    engine_errors,
    open_selected_source,
    quiet_broken_pipe,
)

EPILOG = """\
examples:
  otel-audit tail -f /var/lib/otelcol/audit/            the collector's archive folder
  otel-audit tail -f spool/ --action 'auth.*' --format json
  otel-audit tail -f --source victorialogs+http://127.0.0.1:9428 --outcome failure

Like tail -F: a file renamed by rotation is read to its end, the new file from its start;
new files and spool segments in a followed folder are picked up. Compressed (.gz) files are
copies of rotated ones and are skipped. With --source, -f uses VictoriaLogs' live tailing
(/select/logsql/tail), which starts when it is called. Stop with Ctrl-C.
"""


def register(subparsers: Any) -> None:
    """Add the ``tail`` command."""
    parser = subparsers.add_parser(
        "tail",
        help="print the last audit events, and follow new ones (-f)",
        description="Print the last audit events that match the filters; with -f, keep\n"
        "printing new ones as they are written, across file rotation.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_selection_arguments(parser)
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    parser.add_argument(
        "-n", "--lines", type=int, default=10, metavar="N", help="events shown first (default 10)"
    )
    parser.add_argument("--format", choices=FORMATS, help="default: table on a terminal")
    parser.add_argument(
        "--interval", type=float, default=0.5, metavar="SECONDS", help="poll interval (files)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``otel-audit tail``."""
    flt = build_filter(args)
    if args.lines < 0 or args.interval <= 0:
        raise CliError("-n must be 0 or more and --interval positive", EXIT_USAGE)
    output = args.format or default_format(sys.stdout)
    errors = ReadErrors("tail")
    if args.source:
        source = open_selected_source(args, errors)
        if not isinstance(source, VictoriaLogsSource):  # pragma: no cover - --source is one
            raise CliError(f"cannot follow {source!r}", EXIT_USAGE)
        events = _backend_tail(source, args)
    elif args.paths:
        with engine_errors():
            events = follow_files(
                args.paths,
                compile_filter(flt),
                last=args.lines,
                follow=args.follow,
                interval=args.interval,
                on_error=errors,
            )
    else:
        raise CliError("give archive PATHs, or --source victorialogs+http://HOST:PORT", EXIT_USAGE)
    writer = writer_for(output, table_block=1 if args.follow else 50)
    with quiet_broken_pipe(), engine_errors():
        write_all(_flushed(events, sys.stdout), writer)
    return errors.exit_code()


def _backend_tail(source: VictoriaLogsSource, args: argparse.Namespace) -> Iterator[ArchivedEvent]:
    flt = build_filter(args)
    shown = None
    if args.lines:
        page = source.page(flt, limit=args.lines, newest_first=True)
        for event in reversed(page.events):
            shown = sort_key(event)
            yield event
    if args.follow:
        for event in source.follow(flt):
            if shown is None or sort_key(event) > shown:
                yield event


def _flushed(events: Iterator[ArchivedEvent], out: Any) -> Iterator[ArchivedEvent]:
    """Flush after each event once the backlog is out: a follower's reader waits for lines."""
    for event in events:
        yield event
        out.flush()
