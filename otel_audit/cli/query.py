"""``otel-audit query``: the events a filter selects, as JSON lines, CSV, OCSF or a table."""

from __future__ import annotations

import argparse
import itertools
import sys
from typing import Any

from ..query import EventFilter, to_logsql
from ..query.views import as_table, vmui_url
from ._errors import EXIT_USAGE, CliError
from ._render import FORMATS, default_format, write_all, writer_for
from ._selection import (
    ByteMeter,
    ReadErrors,
    add_selection_arguments,
    build_filter,
    engine_errors,
    open_selected_source,
    quiet_broken_pipe,
    show_progress,
)

EPILOG = """\
examples:
  otel-audit query archive/ --user u-42 --since 7d
  otel-audit query archive/ --action 'user.*' --outcome failure --format csv > failed.csv
  otel-audit query --source victorialogs+http://127.0.0.1:9428 --tenant acme --format json
  otel-audit query --category failed-login --since 24h --emit-logsql

--format json (the default when stdout is not a terminal) writes one object per event per
line: event_name, timestamp (RFC 3339), attributes, event_id, severity_text,
severity_number, body, trace_id, span_id, resource, source (file:line).

exit codes: 0 done, 2 bad option or filter, 3 unreadable file or line (reported as
file:line, the rest is still read), 4 VictoriaLogs unreachable or in error, 5 bad key.
"""


def register(subparsers: Any) -> None:
    """Add the ``query`` command."""
    parser = subparsers.add_parser(
        "query",
        help="list the audit events a filter selects",
        description="List the audit events that match every filter given, from archive\n"
        "files and folders or from VictoriaLogs, streamed in reading order\n"
        "(VictoriaLogs: oldest first).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_selection_arguments(parser)
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: table on a terminal, json otherwise)",
    )
    parser.add_argument("--limit", type=int, metavar="N", help="stop after N events")
    parser.add_argument(
        "--emit-logsql",
        action="store_true",
        help="print the LogsQL query for VictoriaLogs that selects the same events, and exit",
    )
    parser.add_argument(
        "--emit-url",
        action="store_true",
        help="print the link to VictoriaLogs' web UI (vmui) showing the same events as a table "
        "(time, actor, tenant, action, resource, outcome, client, route), and exit; needs "
        "--source victorialogs+http://HOST:PORT",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``otel-audit query``."""
    flt = build_filter(args)
    if args.emit_logsql:
        print(to_logsql(flt))
        return 0
    if args.emit_url:
        print(_vmui_link(args.source, flt))
        return 0
    if args.limit is not None and args.limit < 1:
        raise CliError("--limit must be at least 1", EXIT_USAGE)
    output = args.format or default_format(sys.stdout)
    errors = ReadErrors("query")
    meter = ByteMeter()
    source = open_selected_source(args, errors, on_line=meter)
    writer = writer_for(output)
    with quiet_broken_pipe(), engine_errors():
        events = source.events(flt)
        if args.limit is not None:
            events = itertools.islice(events, args.limit)
        if show_progress(sys.stdout.isatty()):
            with meter.progress(source, "query"):
                write_all(events, writer)
        else:
            write_all(events, writer)
    return errors.exit_code()


def _vmui_link(source: str | None, flt: EventFilter) -> str:
    """The vmui table of the events ``flt`` selects, on the VictoriaLogs ``source`` names."""
    prefix = "victorialogs+"
    if not source or not source.startswith(prefix):
        raise CliError("--emit-url needs --source victorialogs+http://HOST:PORT", EXIT_USAGE)
    return vmui_url(source[len(prefix) :], as_table(to_logsql(flt)))
