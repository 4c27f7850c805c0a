"""Seal closed archive files into signed digests, and check sealed files against them.

A file is *closed* when no writer will append to it again; only closed files are sealed:

* spool segments ``seg-<stamp>Z-<n>.jsonl`` (the library's spool and local archive: the
  writer renames ``….jsonl.open`` to ``….jsonl`` after the segment's last fsync); the
  ``.open`` segment is being written;
* the library archive exporter's rotated files ``<stem>-<YYYYmmddTHHMMSSmmm>Z[-n].jsonl``;
  its live ``audit.jsonl`` is not closed;
* the collector's rotated files ``<stem>-<YYYY-MM-DDTHH-MM-SS.mmm>.jsonl``; its live file
  is not closed;
* either kind of rotated file compressed (``….jsonl.gz``), once its uncompressed original is
  gone: while both exist the compressor is still writing the ``.gz``. A ``.gz`` whose
  original was sealed is that file's copy: it is checked by its content, not sealed again.

A spool that a collector consumes loses its segments once read (``delete_after_read``): seal
the collector's archive there, and the spool only where it is the local archive.

:func:`seal` lists the closed files not in any digest yet, reads each once (size and SHA-256
as stored and of the content, and the part of each instance's hash chain it holds) and
writes the next digest (:mod:`._digest`), atomically. :func:`check_sealed` tells, for each
sealed file, whether it is still what was sealed.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ._digest import DIGEST_FORMAT, DigestChain, DigestProblem, digest_name, key_id, load_digests
from ._digest import sign as sign_digest
from ._model import ArchiveReadError
from ._reader import iter_archive_files
from ._scan import ChainSpan, FileScan, TrailScanner

__all__ = [
    "DIGESTS_FOLDER",
    "SealFinding",
    "SealRefusedError",
    "SealResult",
    "closed_files",
    "file_hashes",
    "is_closed",
    "seal",
    "sealed_files",
]

DIGESTS_FOLDER: Final = "otel-audit-digests"
"""The digests' default folder, inside the (first) archive folder sealed."""
_SPOOL_CLOSED = re.compile(r"seg-\d{8}T\d{6}\.\d{6}Z-\d{6,}\.jsonl")
_ROTATED = re.compile(
    r".+-(?:\d{8}T\d{9}Z(?:-\d+)?|\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3})\.jsonl(?:\.gz)?"
)
_CHUNK: Final = 1 << 20
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def is_closed(path: Path) -> bool:
    """Whether ``path`` is a closed archive file (see the module docstring)."""
    name = path.name
    if _SPOOL_CLOSED.fullmatch(name):
        return True
    if not _ROTATED.fullmatch(name):
        return False
    # A .gz still being written by the compressor sits beside its original.
    return not name.endswith(".gz") or not path.with_name(name.removesuffix(".gz")).exists()


def closed_files(path: str | os.PathLike[str]) -> list[Path]:
    """The closed archive files at ``path`` (file or folder), in reading order."""
    return [file for file in iter_archive_files(path) if is_closed(file)]


class SealRefusedError(Exception):
    """The existing digests are not intact: sealing on top of them would hide that."""

    def __init__(self, problems: Iterable[DigestProblem]) -> None:
        self.problems = tuple(problems)
        first = self.problems[0]
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{first.path}: {first.kind}: {first.message}{more}")


@dataclass
class SealResult:
    """What :func:`seal` did."""

    digest: Path | None
    """The digest written; None when there was nothing new to seal."""
    files: list[Path] = field(default_factory=list)
    skipped: list[ArchiveReadError] = field(default_factory=list)
    """Closed files left out (unreadable), and damaged lines in the files sealed."""
    seq: int = 0


def seal(
    paths: Iterable[str | os.PathLike[str]],
    *,
    private_key: Ed25519PrivateKey,
    digests: Path,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> SealResult:
    """Write the next digest over the closed files under ``paths`` not sealed yet.

    Raises :class:`SealRefusedError` when the digests already in ``digests`` are not intact
    (or signed by another key), ``FileNotFoundError`` for a missing path.
    """
    roots = list(paths)
    candidates = _unique(file for root in roots for file in closed_files(root))
    digests.mkdir(mode=0o750, parents=True, exist_ok=True)
    with _locked(digests):
        chain = load_digests(digests, private_key.public_key())
        if chain.problems:
            raise SealRefusedError(chain.problems)
        sealed = sealed_files(chain)
        new = [f for f in candidates if f.resolve() not in sealed and not _copy_of(f, sealed)]
        result = SealResult(None)
        scanner = TrailScanner(None, result.skipped.append)
        entries = []
        for file in new:
            scan = scanner.scan(file, progress)
            if not scan.complete:
                continue
            result.files.append(file)
            entries.append(_file_entry(scan, digests))
        if not entries:
            return result
        head = chain.head
        moment = now or datetime.now(timezone.utc)
        payload: dict[str, Any] = {
            "format": DIGEST_FORMAT,
            "seq": head.seq + 1 if head else 1,
            "created": _rfc3339(moment),
            "key_id": key_id(private_key.public_key()),
            "previous": (
                {"seq": head.seq, "file": head.path.name, "sha256": head.sha256} if head else None
            ),
            "files": entries,
            "chains": _heads(head.chains if head else [], entries),
        }
        stamp = moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        result.digest = _write_new(
            digests / digest_name(payload["seq"], stamp), payload, private_key
        )
        result.seq = payload["seq"]
        return result


def _unique(files: Iterable[Path]) -> list[Path]:
    seen: set[Path] = set()
    unique = []
    for file in files:
        resolved = file.resolve()
        if resolved not in seen:
            seen.add(resolved)
            unique.append(file)
    return unique


def _copy_of(file: Path, sealed: dict[Path, tuple[Path, dict[str, Any]]]) -> bool:
    """A ``.gz`` whose uncompressed original is sealed (checked as that file's copy)."""
    return file.name.endswith(".gz") and file.resolve().with_suffix("") in sealed


def sealed_files(chain: DigestChain) -> dict[Path, tuple[Path, dict[str, Any]]]:
    """Every file the valid digests list: resolved path -> (digest file, its entry)."""
    files: dict[Path, tuple[Path, dict[str, Any]]] = {}
    for digest in chain.digests:
        for entry in digest.files:
            target = Path(os.path.normpath(chain.directory.resolve() / entry["path"]))
            files.setdefault(target, (digest.path, entry))
    return files


def _file_entry(scan: FileScan, digests: Path) -> dict[str, Any]:
    return {
        "path": Path(os.path.relpath(scan.path.resolve(), digests.resolve())).as_posix(),
        "size": scan.size,
        "sha256": scan.sha256,
        "content_size": scan.content_size,
        "content_sha256": scan.content_sha256,
        "chains": [_span(instance_id, span) for instance_id, span in sorted(scan.chains.items())],
    }


def _span(instance_id: str, span: ChainSpan) -> dict[str, Any]:
    return {
        "instance_id": instance_id,
        "events": span.events,
        "first_seq": span.first_seq,
        "last_seq": span.last_seq,
        "last_hash": span.last_hash,
    }


def _heads(before: list[dict[str, Any]], entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each instance's highest sealed seq and its hash, over earlier digests and ``entries``."""
    heads = {head["instance_id"]: (head["last_seq"], head["last_hash"]) for head in before}
    for entry in entries:
        for span in entry["chains"]:
            known = heads.get(span["instance_id"])
            if known is None or span["last_seq"] > known[0]:
                heads[span["instance_id"]] = (span["last_seq"], span["last_hash"])
    return [
        {"instance_id": instance_id, "last_seq": seq, "last_hash": digest}
        for instance_id, (seq, digest) in sorted(heads.items())
    ]


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One sealer at a time per digests folder (two would both write the next seq)."""
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT | _O_CLOEXEC, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_new(path: Path, payload: dict[str, Any], private_key: Ed25519PrivateKey) -> Path:
    """Write the signed digest: temporary file, fsync, rename (never over a file), fsync dir."""
    data = sign_digest(payload, private_key)
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _O_CLOEXEC, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if path.exists():  # the lock makes this a clock that stepped back within a microsecond
        temporary.unlink()
        raise FileExistsError(f"digest {path} exists already")
    os.rename(temporary, path)
    folder = os.open(path.parent, os.O_RDONLY | _O_CLOEXEC)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return path


# -- checking sealed files -----------------------------------------------------------------


@dataclass(frozen=True)
class SealFinding:
    """What checking the sealed files found, naming the file (or digest)."""

    kind: str
    path: str
    message: str
    failure: bool = True
    """False for notes: a sealed file compressed since, closed files not sealed yet."""


def file_hashes(path: Path) -> FileScan:
    """Size and SHA-256 of ``path`` as stored and of its content (no decoding)."""
    scan = FileScan(path)
    stored, content = hashlib.sha256(), hashlib.sha256()
    with open(path, "rb") as raw:
        while chunk := raw.read(_CHUNK):
            stored.update(chunk)
            scan.size += len(chunk)
    if path.name.endswith(".gz"):
        with gzip.open(path, "rb") as unpacked:
            while chunk := unpacked.read(_CHUNK):
                content.update(chunk)
                scan.content_size += len(chunk)
        scan.content_sha256 = content.hexdigest()
    else:
        scan.content_size, scan.content_sha256 = scan.size, stored.hexdigest()
    scan.sha256, scan.complete = stored.hexdigest(), True
    return scan
