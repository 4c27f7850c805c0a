"""Events out: JSON lines (the contract), CSV, OCSF, or a table for people.

Each writer takes events one at a time and writes as it goes, so a listing of millions of
events streams with constant memory; the table is printed in blocks that share their column
widths.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable
from typing import Any, Final, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..archive import ArchivedEvent
from ..query import event_to_dict, format_timestamp
from ..query._shape import (
    ACTION,
    CLIENT,
    OUTCOME,
    RESOURCE_ID,
    RESOURCE_TYPE,
    ROUTE,
    STATUS,
    TENANT_ID,
    USER_ID,
    event_time_ns,
    text,
)
from ._errors import EXIT_USAGE, CliError

FORMATS: Final = ("table", "json", "csv", "ocsf")
CSV_COLUMNS: Final = (
    ("timestamp", None),
    ("event_name", None),
    ("action", ACTION),
    ("outcome", OUTCOME),
    ("user", USER_ID),
    ("tenant", TENANT_ID),
    ("resource_type", RESOURCE_TYPE),
    ("resource_id", RESOURCE_ID),
    ("route", ROUTE),
    ("method", "http.request.method"),
    ("status", STATUS),
    ("client", CLIENT),
    ("trace_id", None),
    ("event_id", "audit.event.id"),
    ("body", None),
    ("source", None),
)
"""CSV columns: (header, attribute or None for a record field)."""
_TABLE_COLUMNS: Final = (
    ("time (UTC)", 19, None),
    ("action", 22, ACTION),
    ("outcome", 7, OUTCOME),
    ("actor", 18, USER_ID),
    ("tenant", 14, TENANT_ID),
    ("resource", 20, None),
    ("client", 15, CLIENT),
    ("route", 22, ROUTE),
)
_TABLE_WIDTH: Final = sum(width for _, width, _ in _TABLE_COLUMNS) + 2 * len(_TABLE_COLUMNS)
_OUTCOME_STYLES: Final = {"success": "green", "failure": "yellow", "error": "red"}
_TABLE_BLOCK: Final = 50

Writer = Callable[[ArchivedEvent], None]


def default_format(stream: TextIO) -> str:
    """``table`` on a terminal, ``json`` otherwise."""
    return "table" if stream.isatty() else "json"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class JsonLines:
    """One contract JSON object per event per line."""

    def __init__(self, out: TextIO, convert: Callable[[ArchivedEvent], Any] = event_to_dict):
        self._out = out
        self._convert = convert

    def __call__(self, event: ArchivedEvent) -> None:
        self._out.write(_dumps(self._convert(event)) + "\n")

    def close(self) -> None:
        self._out.flush()


def csv_row(event: ArchivedEvent) -> list[str]:
    """The :data:`CSV_COLUMNS` of one event."""
    fields = {
        "timestamp": format_timestamp(event_time_ns(event)),
        "event_name": event.event_name,
        "trace_id": event.trace_id,
        "body": _dumps(event.body) if isinstance(event.body, (dict, list)) else text(event.body),
        "source": event.source,
    }
    row = []
    for header, key in CSV_COLUMNS:
        row.append(fields[header] if key is None else text(event.attributes.get(key)))
    return row


class CsvRows:
    """A header, then one row per event."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._writer = csv.writer(out, lineterminator="\n")
        self._writer.writerow([header for header, _ in CSV_COLUMNS])

    def __call__(self, event: ArchivedEvent) -> None:
        self._writer.writerow(csv_row(event))

    def close(self) -> None:
        self._out.flush()


def _short(value: str) -> str:
    """Pseudonyms shortened for a table cell (the JSON output keeps them whole)."""
    if value.startswith("hmac-sha256:"):
        return "hmac:" + value[len("hmac-sha256:") :][:10] + "…"
    return value


class TableBlocks:
    """A table for people, printed in blocks of rows with fixed column widths."""

    def __init__(self, out: TextIO, block: int = _TABLE_BLOCK) -> None:
        console = Console(file=out, highlight=False)
        # Never narrower than the columns: a narrow terminal wraps lines, cells stay whole.
        self._console = Console(file=out, highlight=False, width=max(console.width, _TABLE_WIDTH))
        self._block = block
        self._rows: list[list[Text]] = []
        self._header = True
        self.count = 0

    def __call__(self, event: ArchivedEvent) -> None:
        attributes = event.attributes
        cells = []
        for title, _, key in _TABLE_COLUMNS:
            if title.startswith("time"):
                value = format_timestamp(event_time_ns(event))[:19].replace("T", " ")
            elif key is None:  # resource
                kind, ident = (text(attributes.get(k)) for k in (RESOURCE_TYPE, RESOURCE_ID))
                value = f"{kind}:{ident}" if kind or ident else ""
            else:
                value = _short(text(attributes.get(key)))
            style = _OUTCOME_STYLES.get(value, "") if key == OUTCOME else ""
            cells.append(Text(value, style=style))
        self._rows.append(cells)
        self.count += 1
        if len(self._rows) >= self._block:
            self._flush()

    def _flush(self) -> None:
        if not self._rows and not self._header:
            return
        table = Table(box=None, show_header=self._header, pad_edge=False, header_style="bold")
        for title, width, _ in _TABLE_COLUMNS:
            table.add_column(title, width=width, no_wrap=True, overflow="ellipsis")
        for row in self._rows:
            table.add_row(*row)
        self._console.print(table)
        self._rows.clear()
        self._header = False

    def close(self) -> None:
        self._flush()


class OcsfLines(JsonLines):
    """One OCSF object per event per line (``otel_audit.ocsf.to_ocsf``)."""

    def __init__(self, out: TextIO) -> None:
        try:
            from ..ocsf import to_ocsf  # type: ignore[import-not-found,unused-ignore]
        except ImportError as error:
            raise CliError(f"--format ocsf is not available: {error}", EXIT_USAGE) from None
        super().__init__(out, to_ocsf)


def writer_for(
    name: str, out: TextIO | None = None, *, table_block: int = _TABLE_BLOCK
) -> JsonLines | CsvRows | TableBlocks:
    """The writer of format ``name`` (one of :data:`FORMATS`) on ``out`` (stdout); a table
    is printed every ``table_block`` rows."""
    stream = out or sys.stdout
    if name == "json":
        return JsonLines(stream)
    if name == "csv":
        return CsvRows(stream)
    if name == "ocsf":
        return OcsfLines(stream)
    return TableBlocks(stream, table_block)


def write_all(events: Iterable[ArchivedEvent], writer: JsonLines | CsvRows | TableBlocks) -> int:
    """Write every event; returns how many."""
    count = 0
    try:
        for event in events:
            writer(event)
            count += 1
    finally:
        writer.close()
    return count
