"""Check the files the digests seal: each still there and unchanged, none left out, chains bound.

``check_sealed`` takes the checked digests (``load_digests``), what reading the archive
learnt about each file (``TrailScanner.scan``: sizes and hashes, computed in the same pass
as the chain), the closed files found, and the chain checker, and names every sealed file
that was deleted, truncated, modified or replaced, every closed file older than sealed ones
that no digest lists (inserted, or its digest removed), and every chain head a digest binds
that the archive no longer holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ._digest import DigestChain
from ._scan import FileScan
from ._seal import SealFinding, file_hashes, sealed_files
from ._verify import ChainChecker

__all__ = ["check_sealed"]


def check_sealed(
    chain: DigestChain,
    scans: Mapping[Path, FileScan],
    closed: Iterable[Path],
    checker: ChainChecker,
) -> list[SealFinding]:
    """Everything wrong (and worth noting) about the sealed files; ``scans`` by resolved path."""
    findings = [SealFinding(p.kind, p.path, p.message) for p in chain.problems]
    sealed = sealed_files(chain)
    for target, (digest, entry) in sealed.items():
        finding = _check_file(target, digest, entry, scans.get(target))
        if finding is not None:
            findings.append(finding)
    findings += _unsealed(closed, sealed)
    findings += _heads(chain, sealed, scans, checker)
    return findings


def _check_file(
    target: Path, digest: Path, entry: dict[str, Any], scan: FileScan | None
) -> SealFinding | None:
    sealed_in = f"sealed in {digest.name}"
    if scan is None:
        try:
            again = _read_again(target, sealed_in, entry)
        except (OSError, EOFError) as error:
            return SealFinding("file_unreadable", str(target), f"{sealed_in}, unreadable: {error}")
        if isinstance(again, SealFinding):
            return again
        scan = again
    if not scan.complete:
        message = f"{sealed_in}, cannot be read to its end"
        return SealFinding("file_unreadable", str(target), message)
    if scan.sha256 == entry["sha256"] and scan.size == entry["size"]:
        return None
    if scan.size < entry["size"]:
        message = (
            f"{sealed_in} with {entry['size']} bytes, now {scan.size}: truncated (or replaced)"
        )
        return SealFinding("file_truncated", str(target), message)
    message = (
        f"{sealed_in} with SHA-256 {entry['sha256'][:16]}…, now {scan.sha256[:16]}… "
        f"({scan.size} bytes, sealed {entry['size']}): modified or replaced"
    )
    return SealFinding("file_modified", str(target), message)


def _read_again(target: Path, sealed_in: str, entry: dict[str, Any]) -> FileScan | SealFinding:
    """A sealed file the verify pass did not read: hash it, or its compressed copy."""
    if target.exists():
        return file_hashes(target)
    copy = target.with_name(target.name + ".gz")
    if not copy.exists():
        return SealFinding("file_deleted", str(target), f"{sealed_in}, now missing")
    if file_hashes(copy).content_sha256 == entry["content_sha256"]:
        message = f"{sealed_in}, compressed since to {copy.name} (same content)"
        return SealFinding("compressed", str(target), message, failure=False)
    message = f"{sealed_in}; its compressed copy {copy.name} holds other content"
    return SealFinding("file_modified", str(copy), message)


def _unsealed(
    closed: Iterable[Path], sealed: Mapping[Path, tuple[Path, dict[str, Any]]]
) -> list[SealFinding]:
    """Closed files in no digest: a failure when older than a sealed file of their folder."""
    by_folder: dict[Path, list[Path]] = {}
    for file in closed:
        resolved = file.resolve()
        if resolved.name.endswith(".gz") and resolved.with_suffix("") in sealed:
            continue  # the compressed copy of a sealed file
        by_folder.setdefault(resolved.parent, []).append(resolved)
    findings = []
    pending = 0
    for files in by_folder.values():
        flags = [file in sealed for file in files]
        last = max((i for i, is_sealed in enumerate(flags) if is_sealed), default=-1)
        for index, file in enumerate(files):
            if flags[index]:
                continue
            if index < last:
                message = (
                    f"closed before {files[last].name}, which is sealed, but in no digest: "
                    "inserted, or the digest that sealed it was removed"
                )
                findings.append(SealFinding("file_unsealed", str(file), message))
            else:
                pending += 1
    if pending:
        message = f"{pending} closed file(s) not sealed yet (otel-audit seal covers them)"
        findings.append(SealFinding("not_sealed_yet", "", message, failure=False))
    return findings


def _heads(
    chain: DigestChain,
    sealed: Mapping[Path, tuple[Path, dict[str, Any]]],
    scans: Mapping[Path, FileScan],
    checker: ChainChecker,
) -> list[SealFinding]:
    """The head digest binds each instance's last sealed seq to its hash: is it still there?"""
    head = chain.head
    if head is None:
        return []
    # Where each bound seq was sealed; checked only when that file was read now.
    holders = {
        (span["instance_id"], span["last_seq"]): target
        for target, (_, entry) in sealed.items()
        for span in entry["chains"]
    }
    findings = []
    for bound in head.chains:
        instance_id, seq, digest = bound["instance_id"], bound["last_seq"], bound["last_hash"]
        holder = holders.get((instance_id, seq))
        if holder is None or holder not in scans:
            continue
        state = checker.instances.get(instance_id)
        found = [e for e in state.entries if e.seq == seq] if state is not None else []
        if any(entry.hash == digest for entry in found):
            continue
        where = f" (has {found[0].hash[:24]}… at {found[0].file}:{found[0].line})" if found else ""
        message = (
            f"{head.path.name} binds seq {seq} of instance {instance_id} to {digest[:24]}…; "
            f"the archive {'holds another hash' if found else 'has no such event'}{where}"
        )
        findings.append(SealFinding("chain_head", str(holder), message))
    return findings
