"""``otel-audit verify``: is the trail complete and unmodified? Exit 0 only when it is clean."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Final

from ..archive import ArchiveReadError, iter_archive_files
from ..archive._digest import DigestChain, load_digests
from ..archive._scan import FileScan, TrailScanner
from ..archive._seal import DIGESTS_FOLDER, SealFinding, is_closed
from ..archive._sealcheck import check_sealed
from ._errors import EXIT_INPUT, EXIT_USAGE, CliError
from ._keys import CHAIN_KEY_ENV, load_chain_key, load_public_key
from ._progress import byte_progress
from ._verify_output import JSON_FORMAT, Outcome, render_json, render_text

# Below this, worker processes cost more to start than they save.
_PARALLEL_BYTES: Final = 64 << 20
_MAX_JOBS: Final = 8

EPILOG = f"""\
checks, per service.instance.id: audit.seq has no gap (lost or deleted events, a lost tail
when the closing record is missing), every audit.chain.hash matches its event (modified;
"forged" under a keyed chain) and links to the one before (deleted, inserted, re-chained
events); reports duplicates (at-least-once delivery), read order and open tails as notes,
and events the collector's redaction masked apart from tampering. With --public-key it also
checks the digests written by `otel-audit seal` (signatures, the chain of digests) and that
every sealed file is still there, whole and unchanged. Every finding names file:line.

the chain key: --key-file, else ${CHAIN_KEY_ENV} (as the library reads it).
digests: --digests, else {DIGESTS_FOLDER}/ inside the first PATH.

--format json writes one object ({JSON_FORMAT}): clean, exit_code, events, files,
instances [{{instance_id, events, first_seq, last_seq, closed}}], findings [{{kind,
failure, instance_id, seq, seq_end, file, line, message}}], digests (null without
--public-key). See README.md, "Verify and seal the trail".

exit codes: 0 clean, 1 not clean (a gap, tampering, masking, a bad digest or sealed file),
2 bad option, 3 a path, file or line that cannot be read, 5 a key problem (no key for a
keyed chain, no hash verifies under the key given, digests signed by another key, an
unreadable key file).
"""


def register(subparsers: Any) -> None:
    """Add the ``verify`` command."""
    parser = subparsers.add_parser(
        "verify",
        help="check the trail is complete and unmodified (exit 0 only when clean)",
        description="Check sequence numbers, hash chains and (with --public-key) sealed\n"
        "files of the audit trail in PATH... (archive folders or files: the library's\n"
        "spool or archive, the collector's archive, rotated and .gz files included).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    parser.add_argument(
        "--key-file",
        type=Path,
        metavar="FILE",
        help=f"the chain's HMAC key (else ${CHAIN_KEY_ENV})",
    )
    parser.add_argument(
        "--public-key", type=Path, metavar="FILE", help="check digests with this Ed25519 key"
    )
    parser.add_argument(
        "--digests",
        type=Path,
        metavar="DIR",
        help=f"digests folder (default: PATH/{DIGESTS_FOLDER})",
    )
    parser.add_argument(
        "--require-closed",
        action="store_true",
        help="an instance without its closing record fails (a lost or deleted tail): for "
        "the trail of services that have stopped; by default it is a note, as a running "
        "process has not written it yet",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        metavar="N",
        help="files read at a time in worker processes (default: one per CPU, up to 8, when "
        f"the archive holds over {_PARALLEL_BYTES >> 20} MiB; 1: in this process)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``otel-audit verify``."""
    key = load_chain_key(args.key_file)
    public_key = load_public_key(args.public_key) if args.public_key else None
    if args.digests is not None and public_key is None:
        raise CliError("--digests needs --public-key (the key that checks them)", EXIT_USAGE)
    files = _archive_files(args.paths)
    chain = _digests(args, public_key) if public_key is not None else None
    if args.jobs is not None and args.jobs < 1:
        raise CliError("--jobs must be at least 1", EXIT_USAGE)
    size = _size(files)
    jobs = args.jobs or (_cpus() if size > _PARALLEL_BYTES else 1)
    errors: list[ArchiveReadError] = []
    scanner = TrailScanner(key, errors.append)
    with byte_progress(size, "verify") as advance:
        read = scanner.scan_many(files, jobs=jobs, progress=advance)
    scans: dict[Path, FileScan] = {scan.path.resolve(): scan for scan in read}
    sealed: list[SealFinding] = []
    if chain is not None:
        closed = [file for file in files if is_closed(file)]
        sealed = check_sealed(chain, scans, closed, scanner.checker)
    outcome = Outcome.make(
        report=scanner.report(),
        checker=scanner.checker,
        read_errors=errors,
        closed={str(file) for file in files if is_closed(file)},
        sealed=sealed,
        chain=chain,
        files=len(files),
        key_given=key is not None,
        require_closed=args.require_closed,
    )
    if args.format == "json":
        render_json(outcome, sys.stdout)
    else:
        render_text(outcome, sys.stdout)
    return outcome.exit_code


def _archive_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        try:
            listed = iter_archive_files(path)
        except FileNotFoundError:
            raise CliError(f"no audit archive at {path}", EXIT_INPUT) from None
        except OSError as error:
            raise CliError(f"cannot list {path}: {error.strerror or error}", EXIT_INPUT) from None
        for file in listed:
            if file.resolve() not in seen:  # the same file named twice is read once
                seen.add(file.resolve())
                files.append(file)
    return files


def _digests(args: argparse.Namespace, public_key: Any) -> DigestChain:
    first: Path = args.paths[0]
    folder: Path = args.digests or (first if first.is_dir() else first.parent) / DIGESTS_FOLDER
    if not folder.is_dir():
        raise CliError(f"no digests at {folder} (otel-audit seal writes them)", EXIT_INPUT)
    try:
        return load_digests(folder, public_key)
    except OSError as error:
        raise CliError(f"cannot list {folder}: {error.strerror or error}", EXIT_INPUT) from None


def _cpus() -> int:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    return min(usable, _MAX_JOBS)


def _size(files: list[Path]) -> int:
    total = 0
    for file in files:
        try:
            total += os.stat(file).st_size
        except OSError:
            continue
    return total
