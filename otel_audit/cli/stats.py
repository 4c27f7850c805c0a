"""``otel-audit stats``: counts by action, outcome, actor, tenant, time; failed logins, denials."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Final

from rich.console import Console, Group
from rich.table import Table

from ..query import AuditStats, parse_duration
from ._errors import EXIT_USAGE, CliError
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

_TIMELINE_ROWS: Final = 48
_SECTIONS: Final = (
    ("by_action", "events by action", "action"),
    ("by_outcome", "events by outcome", "outcome"),
    ("by_actor", "events by actor (user.id)", "actor"),
    ("by_tenant", "events by tenant", "tenant"),
    ("failed_logins_by_client", "failed logins by client address", "client.address"),
    ("failed_logins_by_user", "failed logins by user", "user.id"),
    ("denied_by_user", "denied accesses by user", "user.id"),
    ("denied_by_route", "denied accesses by route", "http.route"),
)

EPILOG = """\
examples:
  otel-audit stats archive/ --since 7d
  otel-audit stats --source victorialogs+http://127.0.0.1:9428 --tenant acme --bucket 1d

failed logins: auth.login_failed, or auth.login with outcome failure.
denied accesses: access.denied, or a request answered 401 or 403.
exit codes as for query.
"""


def register(subparsers: Any) -> None:
    """Add the ``stats`` command."""
    parser = subparsers.add_parser(
        "stats",
        help="count the selected events by action, outcome, actor, tenant and time",
        description="Count the audit events that match every filter given: by action,\n"
        "outcome, actor and tenant, over time, failed logins by client address and by\n"
        "user, denied accesses. VictoriaLogs computes them itself (stats pipes).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_selection_arguments(parser)
    parser.add_argument("--format", choices=("table", "json"), help="default: table on a terminal")
    parser.add_argument(
        "--bucket", default="1h", metavar="DURATION", help="time bucket width (default 1h)"
    )
    parser.add_argument(
        "--top", type=int, default=10, metavar="N", help="rows per table (default 10)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``otel-audit stats``."""
    flt = build_filter(args)
    with engine_errors():
        bucket = parse_duration(args.bucket, "bucket")
    if args.top < 1:
        raise CliError("--top must be at least 1", EXIT_USAGE)
    output = args.format or ("table" if sys.stdout.isatty() else "json")
    errors = ReadErrors("stats")
    meter = ByteMeter()
    source = open_selected_source(args, errors, on_line=meter)
    with engine_errors():
        if show_progress(False):
            with meter.progress(source, "stats"):
                stats = source.stats(flt, bucket=bucket)
        else:
            stats = source.stats(flt, bucket=bucket)
    with quiet_broken_pipe():
        if output == "json":
            print(json.dumps(stats.to_dict(), ensure_ascii=False, indent=2))
        else:
            # Wide enough for a pseudonym (hmac-sha256:<64 hex>) on one line.
            console = Console(highlight=False)
            Console(highlight=False, width=max(console.width, 100)).print(render(stats, args.top))
    return errors.exit_code()


def _counts(title: str, column: str, counts: dict[str, int], top: int) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", min_width=len(title))
    table.add_column(column, overflow="fold")
    table.add_column("count", justify="right")
    for value, count in list(counts.items())[:top]:
        table.add_row(value or "(none)", str(count))
    if len(counts) > top:
        rest = sum(list(counts.values())[top:])
        table.add_row(f"... {len(counts) - top} more", str(rest), style="dim")
    return table


def render(stats: AuditStats, top: int) -> Group:
    """The tables ``stats`` prints."""
    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_column(style="bold")
    summary.add_column()
    for label, value in (
        ("events", stats.total),
        ("first", stats.first or "-"),
        ("last", stats.last or "-"),
        ("failed logins", stats.failed_logins),
        ("denied accesses", stats.denied),
    ):
        summary.add_row(label, str(value))
    parts: list[Any] = [summary]
    for name, title, column in _SECTIONS:
        counts = getattr(stats, name)
        if counts:
            parts.append(_counts(title, column, counts, top))
    if stats.over_time:
        title = f"events per {stats.bucket}"
        timeline = Table(title=title, title_justify="left", title_style="bold")
        timeline.add_column("bucket start (UTC)")
        timeline.add_column("count", justify="right")
        timeline.add_column("")
        peak = max(stats.over_time.values())
        rows = list(stats.over_time.items())
        if len(rows) > _TIMELINE_ROWS:
            hidden = len(rows) - _TIMELINE_ROWS
            rows = rows[hidden:]
            timeline.add_row(f"... {hidden} earlier (a wider --bucket, or --format json)", "", "")
        for start, count in rows:
            timeline.add_row(start, str(count), "█" * max(1, round(30 * count / peak)))
        parts.append(timeline)
    return Group(*parts)
