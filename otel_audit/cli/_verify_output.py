"""What ``verify`` found, as a human summary or as one JSON object (a stable shape).

JSON (``otel-audit/verify/1``)::

    {"format": "otel-audit/verify/1",
     "clean": bool,            no finding with failure=true, nothing unreadable, keys fine
     "closed": bool,           every instance ended with its closing record
     "exit_code": int,         what the command returns
     "verdict": str,           one line, as the text summary's first line
     "events": int, "files": int,
     "instances": [{"instance_id", "events", "first_seq", "last_seq", "closed", "problems"}],
     "findings": [{"kind", "failure", "instance_id", "seq", "seq_end", "file", "line",
                   "message"}],
     "digests": null | {"directory", "count", "first_seq", "last_seq", "head_file",
                        "head_sha256", "files_sealed"}}

``findings`` holds the chain's findings (kinds of ``otel_audit.archive.verify_events``), read
problems (``unreadable``; ``torn_tail`` for the last line of a file still being written, a
note) and digest and sealed-file findings (``digest_invalid``, ``digest_missing``,
``digest_replaced``, ``digest_foreign_key``, ``file_deleted``, ``file_truncated``,
``file_modified``, ``file_unreadable``, ``file_unsealed``, ``chain_head``; notes
``compressed``, ``not_sealed_yet``). ``failure: false`` marks notes that leave the trail clean.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Final, TextIO

from rich.console import Console
from rich.table import Table

from ..archive import ArchiveReadError, VerifyReport
from ..archive._digest import DigestChain
from ..archive._seal import SealFinding, sealed_files
from ..archive._verify import ChainChecker
from ._errors import EXIT_FINDINGS, EXIT_INPUT, EXIT_KEY, EXIT_OK

JSON_FORMAT: Final = "otel-audit/verify/1"
# Per kind, the text summary lists this many and counts the rest (json lists all).
_SHOWN_PER_KIND: Final = 20
_KEYED: Final = "hmac-sha256:"


@dataclass(frozen=True)
class Item:
    """One finding of any source, in the JSON shape."""

    kind: str
    failure: bool
    instance_id: str | None
    seq: int | None
    seq_end: int | None
    file: str | None
    line: int | None
    message: str

    @property
    def location(self) -> str:
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line is not None else self.file


@dataclass(frozen=True)
class Outcome:
    """Everything ``verify`` found, and the exit code it makes."""

    report: VerifyReport
    items: tuple[Item, ...]
    files: int
    key_problem: str | None
    digests: dict[str, Any] | None

    @classmethod
    def make(
        cls,
        *,
        report: VerifyReport,
        checker: ChainChecker,
        read_errors: Iterable[ArchiveReadError],
        closed: set[str],
        sealed: Iterable[SealFinding],
        chain: DigestChain | None,
        files: int,
        key_given: bool,
        require_closed: bool = False,
    ) -> Outcome:
        items = [
            Item(f.kind, not f.clean or (require_closed and f.kind == "open_tail"),
                 f.instance_id, f.seq, f.seq_end, f.source_file, f.line_number, f.message)
            for f in report.findings
        ]  # fmt: skip
        items += [_read_item(error, closed) for error in read_errors]
        items += [
            Item(f.kind, f.failure, None, None, None, f.path or None, None, f.message)
            for f in sealed
        ]
        return cls(
            report, tuple(items), files, _key_problem(report, checker, chain, key_given),
            _digest_summary(chain),
        )  # fmt: skip

    @property
    def exit_code(self) -> int:
        if self.key_problem is not None:
            return EXIT_KEY
        if any(item.kind in ("unreadable", "file_unreadable") for item in self.items):
            return EXIT_INPUT
        if any(item.failure for item in self.items):
            return EXIT_FINDINGS
        return EXIT_OK

    @property
    def clean(self) -> bool:
        return self.exit_code == EXIT_OK

    @property
    def verdict(self) -> str:
        failures = sum(item.failure for item in self.items)
        scope = (
            f"{self.report.events:,} events in {self.files:,} file(s), "
            f"{len(self.report.instances)} instance(s)"
        )
        if self.key_problem is not None:
            return f"NOT VERIFIED: {self.key_problem} ({scope})"
        if self.clean:
            closed = "all closed" if self.report.closed else "not all closed (see open_tail)"
            return f"CLEAN: {scope}, {closed}"
        return f"NOT CLEAN: {failures} problem(s) in {scope}"


def _read_item(error: ArchiveReadError, closed: set[str]) -> Item:
    file, _, line = error.source.rpartition(":")
    if not (file and line.isdigit()):
        file, line = error.source, ""
    # The last line of a file still being written may be a write in progress.
    torn = error.message.startswith("incomplete last line") and file not in closed
    return Item(
        "torn_tail" if torn else "unreadable",
        not torn,
        None,
        None,
        None,
        file,
        int(line) if line else None,
        error.message + (" (the file is still being written)" if torn else ""),
    )


def _key_problem(
    report: VerifyReport, checker: ChainChecker, chain: DigestChain | None, key_given: bool
) -> str | None:
    if chain is not None and chain.foreign_only:
        return "every digest is signed by another key than --public-key: wrong key?"
    if report.count("unverified"):
        return "the chain is keyed (hmac-sha256): pass --key-file or set OTEL_AUDIT_CHAIN_KEY"
    keyed = [state for state in checker.instances.values() if state.keyed]
    if key_given and keyed:
        verifying = [
            state
            for state in keyed
            if any(e.content_ok for e in state.entries if e.hash.startswith(_KEYED))
        ]
        if not verifying:
            return "no chain hash verifies under the key given: wrong key?"
    return None


def _digest_summary(chain: DigestChain | None) -> dict[str, Any] | None:
    if chain is None:
        return None
    head = chain.head
    return {
        "directory": str(chain.directory),
        "count": len(chain.digests),
        "first_seq": chain.digests[0].seq if chain.digests else None,
        "last_seq": head.seq if head else None,
        "head_file": str(head.path) if head else None,
        "head_sha256": head.sha256 if head else None,
        "files_sealed": len(sealed_files(chain)),
    }


def render_json(outcome: Outcome, out: TextIO) -> None:
    """The outcome as one JSON object (module docstring)."""
    problems = Counter(item.instance_id for item in outcome.items if item.failure)
    document = {
        "format": JSON_FORMAT,
        "clean": outcome.clean,
        "closed": outcome.report.closed,
        "exit_code": outcome.exit_code,
        "verdict": outcome.verdict,
        "events": outcome.report.events,
        "files": outcome.files,
        "instances": [
            {
                "instance_id": i.instance_id,
                "events": i.events,
                "first_seq": i.first_seq,
                "last_seq": i.last_seq,
                "closed": i.closed,
                "problems": problems[i.instance_id],
            }
            for i in outcome.report.instances
        ],
        "findings": [asdict(item) for item in outcome.items],
        "digests": outcome.digests,
    }
    out.write(json.dumps(document, indent=2) + "\n")


def render_text(outcome: Outcome, out: TextIO) -> None:
    """A human summary: verdict, instances, problems by kind, notes, digests."""
    console = Console(file=out, highlight=False, markup=False, soft_wrap=True)
    console.print(outcome.verdict)
    if outcome.report.instances:
        table = Table(box=None, pad_edge=False)
        for column in ("instance", "events", "first seq", "last seq", "closed"):
            table.add_column(column, justify="left" if column == "instance" else "right")
        for i in outcome.report.instances:
            table.add_row(
                i.instance_id or "(none)",
                f"{i.events:,}",
                str(i.first_seq),
                str(i.last_seq),
                "yes" if i.closed else "no",
            )
        console.print(table)
    masked = [item for item in outcome.items if item.kind == "masked"]
    sections = (
        ("problems", [i for i in outcome.items if i.failure and i.kind != "masked"]),
        ("masked by the collector's redaction (not tampering, but not verifiable)", masked),
        ("notes (not failures)", [i for i in outcome.items if not i.failure]),
    )
    for title, items in sections:
        if items:
            console.print(f"\n{title} ({len(items)}):")
            for line in _lines(items):
                console.print(line)
    if outcome.digests is not None:
        d = outcome.digests
        console.print(
            f"\ndigests: {d['count']} valid in {d['directory']}, {d['files_sealed']} file(s) "
            f"sealed; head {d['head_file']} (sha256 {d['head_sha256']})"
        )


def _lines(items: list[Item]) -> list[str]:
    shown: Counter[str] = Counter()
    lines = []
    for item in items:
        shown[item.kind] += 1
        if shown[item.kind] <= _SHOWN_PER_KIND:
            where = f"{item.location}: " if item.location else ""
            lines.append(f"  {where}{item.kind}: {item.message}")
    for kind, count in shown.items():
        if count > _SHOWN_PER_KIND:
            lines.append(f"  … and {count - _SHOWN_PER_KIND} more {kind} (--format json lists all)")
    return lines
