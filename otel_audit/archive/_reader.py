"""Read audit archives: OTLP JSON lines files, one ``ExportLogsServiceRequest`` per line.

Finds and orders the files and splits them into lines; :mod:`._otlp_json` decodes each
line. Reads what the library's archive exporter writes and what the OpenTelemetry
Collector's ``file`` exporter writes (``format: json``), including their rotated files and
gzip-compressed ``.jsonl.gz`` copies, and the library's spool
(``<root>/<instance>/seg-<stamp>Z-<n>.jsonl[.open]``: closed and open segments of every
instance folder, each folder in write order). ``read_events`` flattens every line into
:class:`ArchivedEvent` objects, oldest file first.

A damaged line (a write torn by a crash, garbage) is skipped and reported as an
:class:`ArchiveReadError`, never dropped silently: pass ``errors=[]`` to collect them, or
they are logged on the ``otel_audit`` logger.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from io import BufferedReader
from pathlib import Path

from ._model import ArchivedEvent, ArchiveReadError
from ._otlp_json import DECODE_ERRORS, decode_logs_request

_logger = logging.getLogger("otel_audit")

_SUFFIXES = (".jsonl", ".jsonl.gz")
# Spool segments sort by name in write order; the open one is the same name plus ".open".
_SPOOL_SEGMENT = re.compile(r"seg-\d{8}T\d{6}\.\d{6}Z-\d{6,}\.jsonl(?:\.open)?")
_OPEN_SUFFIX = ".open"
# ArchiveLogExporter backups: audit-20261122T055258123Z.jsonl, audit-20261122T055258123Z-1.jsonl
_OWN_BACKUP = re.compile(r".+-(\d{8}T\d{9})Z(?:-(\d+))?\.jsonl(?:\.gz)?")
# Collector (lumberjack) backups: audit-2026-11-22T05-52-58.123.jsonl
_COLLECTOR_BACKUP = re.compile(
    r".+-(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})\.(\d{3})\.jsonl(?:\.gz)?"
)


def iter_archive_files(path: str | os.PathLike[str]) -> list[Path]:
    """The archive files at ``path`` in reading order.

    A file is returned as is. For a directory: every ``*.jsonl`` / ``*.jsonl.gz`` in it
    (not recursive), rotated backups first, oldest first by the timestamp in their name
    (our ``name-YYYYMMDDTHHMMSSmmmZ[-n]`` and the collector's
    ``name-YYYY-MM-DDTHH-MM-SS.mmm``), then live files by modification time. Spool
    segments (``seg-…jsonl`` and the open ``seg-…jsonl.open``) in it, then in each
    subfolder holding any (a spool root's instance folders, by name), follow in name order,
    which is their write order.
    """
    root = Path(path)
    if not root.is_dir():
        if not root.exists():
            raise FileNotFoundError(f"no audit archive at {root}")
        return [root]
    files = [p for p in root.iterdir() if p.name.endswith(_SUFFIXES) and p.is_file()]
    segments = [p for p in files if _SPOOL_SEGMENT.fullmatch(p.name)]
    files = sorted((p for p in files if p not in segments), key=_reading_order)
    files += _spool_segments(root)
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files += _spool_segments(folder)
    return files


def _spool_segments(folder: Path) -> list[Path]:
    try:
        names = [e.name for e in os.scandir(folder) if _SPOOL_SEGMENT.fullmatch(e.name)]
    except OSError:  # a folder removed or unreadable meanwhile holds nothing to read
        return []
    # The open segment has the highest counter of its folder, so it sorts last as is.
    return [folder / name for name in sorted(names)]


def _reading_order(path: Path) -> tuple[int, str, int, str]:
    if own := _OWN_BACKUP.fullmatch(path.name):
        return (0, own[1], int(own[2] or 0), path.name)
    if theirs := _COLLECTOR_BACKUP.fullmatch(path.name):
        return (0, "{}{}{}T{}{}{}{}".format(*theirs.groups()), 0, path.name)
    # Live files have no stamp; the one written last is read last. Zero-padded so the
    # string compares like the number. A file rotated away meanwhile just sorts first.
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = 0
    return (1, f"{mtime:024d}", 0, path.name)


def read_events(
    path: str | os.PathLike[str],
    *,
    errors: list[ArchiveReadError] | None = None,
    keep_line: Callable[[bytes], bool] | None = None,
) -> Iterator[ArchivedEvent]:
    """Yield every log record in the archive at ``path`` (file or directory), in order.

    Damaged lines and records are skipped. Each is appended to ``errors`` when given,
    otherwise logged as a warning on the ``otel_audit`` logger.

    ``keep_line`` (a query's prefilter) sees each complete line's raw bytes first; a line it
    rejects is neither decoded nor checked, so it must only reject lines that cannot hold a
    wanted record. An incomplete last line is always decoded (and reported as torn).
    """
    report: Callable[[ArchiveReadError], None] = (
        errors.append if errors is not None else _log_read_error
    )
    for file in iter_archive_files(path):
        yield from _read_file(file, report, keep_line)


def _log_read_error(error: ArchiveReadError) -> None:
    _logger.warning("audit archive: skipped unreadable data at %s", error)


def _open_archive(file: Path) -> gzip.GzipFile | BufferedReader:
    if file.name.endswith(".gz"):
        return gzip.GzipFile(file, "rb")
    try:
        return open(file, "rb")
    except FileNotFoundError:
        if not file.name.endswith(_OPEN_SUFFIX):
            raise
        # The writer closed (renamed) the open segment between listing and opening.
        return open(file.with_name(file.name.removesuffix(_OPEN_SUFFIX)), "rb")


def _read_file(
    file: Path,
    report: Callable[[ArchiveReadError], None],
    keep_line: Callable[[bytes], bool] | None = None,
) -> Iterator[ArchivedEvent]:
    try:
        with _open_archive(file) as stream:
            for number, raw in enumerate(stream, 1):
                if not raw.strip():
                    continue
                if keep_line is not None and raw.endswith(b"\n") and not keep_line(raw):
                    continue
                source = f"{file}:{number}"
                try:
                    request = json.loads(raw)
                except ValueError as error:  # includes UnicodeDecodeError
                    torn = "incomplete last line (torn write?)" if not raw.endswith(b"\n") else ""
                    report(ArchiveReadError(source, torn or f"not valid JSON: {error}"))
                    continue
                try:
                    events = decode_logs_request(request, source, report)
                except DECODE_ERRORS as error:
                    report(ArchiveReadError(source, f"not an OTLP logs request: {error!r}"))
                    continue
                yield from events
    except (OSError, EOFError) as error:  # unreadable file, truncated gzip stream
        report(ArchiveReadError(str(file), f"could not read further: {error}"))
