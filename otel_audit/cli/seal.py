"""``otel-audit seal``: a signed digest over the closed archive files not sealed yet."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..archive._seal import DIGESTS_FOLDER, SealRefusedError, seal
from ._errors import EXIT_FINDINGS, EXIT_INPUT, EXIT_KEY, CliError
from ._keys import load_private_key
from ._progress import byte_progress, total_bytes

EPILOG = f"""\
closed files: spool segments seg-*.jsonl (not *.open), and rotated archive files, the
library's (audit-<YYYYmmddTHHMMSSmmm>Z[-n].jsonl) and the collector's
(audit-<YYYY-MM-DDTHH-MM-SS.mmm>.jsonl), plain or .gz; never the live audit.jsonl. Each
digest lists the files it seals (path, size, SHA-256, and the seqs and last hash of each
instance they hold), names the previous digest's SHA-256 and is signed with Ed25519. Run it
from cron: each run seals only what closed since the last one. Digests are written to
--digests, by default {DIGESTS_FOLDER}/ inside the first PATH.

examples:
  otel-audit keygen --out /etc/otel-audit/seal
  otel-audit seal /var/lib/otelcol/audit-archive --private-key /etc/otel-audit/seal.key
  otel-audit verify /var/lib/otelcol/audit-archive --public-key seal.pub

exit codes: 0 sealed (or nothing new), 1 the digests there already are not intact (seal
refuses to chain onto them; run verify), 3 missing or unreadable path, 5 unreadable key or
digests signed by another key.
"""


def register(subparsers: Any) -> None:
    """Add the ``seal`` command."""
    parser = subparsers.add_parser(
        "seal",
        help="sign a digest over the closed archive files not sealed yet",
        description="Write the next signed, chained digest over the closed archive files\n"
        "under PATH... that no digest covers yet.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="archive folder or file"
    )
    parser.add_argument(
        "--private-key", required=True, type=Path, metavar="FILE", help="Ed25519 key (keygen)"
    )
    parser.add_argument(
        "--digests",
        type=Path,
        metavar="DIR",
        help=f"where digests are kept (default: PATH/{DIGESTS_FOLDER}, first PATH)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=run)


def default_digests(paths: list[Path]) -> Path:
    """``--digests`` when not given: a folder inside the first PATH (its folder for a file)."""
    first = paths[0]
    return (first if first.is_dir() else first.parent) / DIGESTS_FOLDER


def run(args: argparse.Namespace) -> int:
    """Run ``otel-audit seal``."""
    private_key = load_private_key(args.private_key)
    for path in args.paths:
        if not path.exists():
            raise CliError(f"no audit archive at {path}", EXIT_INPUT)
    digests = args.digests or default_digests(args.paths)
    try:
        with byte_progress(total_bytes(args.paths), "seal") as advance:
            result = seal(args.paths, private_key=private_key, digests=digests, progress=advance)
    except SealRefusedError as error:
        foreign = all(p.kind == "digest_foreign_key" for p in error.problems)
        reason = "signed by another key" if foreign else "not intact"
        message = f"the digests in {digests} are {reason}, refusing to seal onto them: {error}"
        raise CliError(message, EXIT_KEY if foreign else EXIT_FINDINGS) from None
    except OSError as error:
        raise CliError(
            f"{getattr(error, 'filename', None) or digests}: {error}", EXIT_INPUT
        ) from None
    for skipped in result.skipped:
        print(f"otel-audit seal: warning: {skipped}", file=sys.stderr)
    if args.format == "json":
        out = {
            "digest": str(result.digest) if result.digest else None,
            "seq": result.seq or None,
            "files": [str(file) for file in result.files],
            "warnings": [str(skipped) for skipped in result.skipped],
        }
        print(json.dumps(out, indent=2))
    elif result.digest is None:
        print(f"nothing new to seal under {', '.join(map(str, args.paths))}")
    else:
        print(f"sealed {len(result.files)} file(s) in digest {result.seq}: {result.digest}")
    return 0
