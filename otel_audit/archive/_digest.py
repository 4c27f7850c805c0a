"""Digest files: signed, chained lists of sealed archive files (CloudTrail's digests, and more).

A digest is one JSON object in ``<digests>/digest-<seq, 6 digits>-<UTC stamp>.json``::

    {
      "format": "otel-audit/digest/1",
      "seq": 2,                                  1, 2, 3, ... with no hole
      "created": "2026-11-30T12:00:00.123456Z",
      "key_id": "ed25519:<hex SHA-256 of the raw 32-byte public key>",
      "previous": {"seq": 1, "file": "digest-000001-...json",
                   "sha256": "<hex SHA-256 of that file's bytes>"},       null for seq 1
      "files": [{"path": "../seg-...jsonl",      relative to the digests folder, '/'-separated
                 "size": 1234, "sha256": "<hex>",                   the bytes as stored
                 "content_size": 1234, "content_sha256": "<hex>",   decompressed (= stored
                                                                     for a plain file)
                 "chains": [{"instance_id": "...", "events": 10, "first_seq": 1,
                             "last_seq": 10, "last_hash": "sha256:..."}]}],
      "chains": [{"instance_id": "...", "last_seq": 10, "last_hash": "sha256:..."}],
      "signature": "<base64 Ed25519 signature>"
    }

``chains`` at the top are the heads of every instance's hash chain over all files sealed so
far (this digest and the ones before): the digest signs the trail's content, not only bytes.

The signature is Ed25519 over the *signed bytes*: the object without ``signature``, as
``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)`` writes it
(keys sorted, no whitespace, non-ASCII as ``\\uXXXX``); only strings, integers, lists,
objects and null occur. The file itself is that object with ``signature``, indented; a
digest's ``previous.sha256`` is over the previous file's exact bytes, so the digests form a
chain: none can be removed, replaced or edited without the next one saying so.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "DIGEST_FORMAT",
    "Digest",
    "DigestChain",
    "DigestProblem",
    "digest_name",
    "key_id",
    "load_digests",
    "signed_bytes",
]

DIGEST_FORMAT: Final = "otel-audit/digest/1"
_NAME = re.compile(r"digest-(\d{6,})-\d{8}T\d{6}\.\d{6}Z\.json")


def key_id(public_key: Ed25519PublicKey) -> str:
    """``ed25519:<hex SHA-256 of the raw public key>``: names the key that signs digests."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()


def signed_bytes(payload: dict[str, Any]) -> bytes:
    """The bytes a digest's signature covers: ``payload`` without ``signature``, canonical."""
    unsigned = {name: value for name, value in payload.items() if name != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sign(payload: dict[str, Any], private_key: Ed25519PrivateKey) -> bytes:
    """``payload`` with its ``signature``, as the digest file's bytes."""
    signature = private_key.sign(signed_bytes(payload))
    signed = {**payload, "signature": base64.b64encode(signature).decode("ascii")}
    return (json.dumps(signed, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode()


def digest_name(seq: int, stamp: str) -> str:
    """The file name of digest ``seq`` made at ``stamp`` (``YYYYmmddTHHMMSS.ffffffZ``)."""
    return f"digest-{seq:06d}-{stamp}.json"


@dataclass(frozen=True)
class Digest:
    """One digest file whose signature verified."""

    path: Path
    sha256: str
    """Of the file's bytes (what the next digest's ``previous.sha256`` names)."""
    payload: dict[str, Any]

    @property
    def seq(self) -> int:
        return int(self.payload["seq"])

    @property
    def files(self) -> list[dict[str, Any]]:
        return list(self.payload["files"])

    @property
    def chains(self) -> list[dict[str, Any]]:
        return list(self.payload["chains"])


@dataclass(frozen=True)
class DigestProblem:
    """Something wrong with the digests themselves, naming the digest file."""

    kind: str
    """``digest_invalid`` (unreadable, not a digest, bad signature), ``digest_foreign_key``
    (signed by another key), ``digest_missing`` (a seq absent), ``digest_replaced`` (the
    next digest names other bytes)."""
    path: str
    message: str


@dataclass(frozen=True)
class DigestChain:
    """The digests of a folder, checked: the valid ones in seq order, and what is wrong."""

    directory: Path
    digests: tuple[Digest, ...]
    problems: tuple[DigestProblem, ...]
    foreign_only: bool
    """Every digest is signed by another key than the one given (a wrong key?)."""

    @property
    def head(self) -> Digest | None:
        """The last valid digest."""
        return self.digests[-1] if self.digests else None


def load_digests(directory: Path, public_key: Ed25519PublicKey) -> DigestChain:
    """Read and check every digest in ``directory``: signatures, seqs, links.

    Raises ``OSError`` when the folder cannot be listed.
    """
    expected_key = key_id(public_key)
    problems: list[DigestProblem] = []
    valid: list[Digest] = []
    names = sorted(p.name for p in directory.iterdir() if p.name.startswith("digest-"))
    foreign = 0
    for name in names:
        path = directory / name
        digest, problem = _load_one(path, public_key, expected_key)
        if problem is not None:
            problems.append(problem)
            foreign += problem.kind == "digest_foreign_key"
        if digest is not None:
            valid.append(digest)
    valid.sort(key=lambda d: d.seq)
    problems += _links(valid)
    return DigestChain(
        directory, tuple(valid), tuple(problems), foreign_only=bool(names) and foreign == len(names)
    )


def _load_one(
    path: Path, public_key: Ed25519PublicKey, expected_key: str
) -> tuple[Digest | None, DigestProblem | None]:
    try:
        data = path.read_bytes()
        payload, signature = _parse(data)
    except OSError as error:
        return None, DigestProblem("digest_invalid", str(path), f"cannot read it: {error}")
    except ValueError as error:
        return None, DigestProblem("digest_invalid", str(path), f"{error}: altered?")
    if payload["key_id"] != expected_key:
        message = f"signed by {payload['key_id']}, not by the public key given ({expected_key})"
        return None, DigestProblem("digest_foreign_key", str(path), message)
    try:
        public_key.verify(signature, signed_bytes(payload))
    except InvalidSignature:
        message = "the signature does not verify: the digest was altered"
        return None, DigestProblem("digest_invalid", str(path), message)
    digest = Digest(path, hashlib.sha256(data).hexdigest(), payload)
    name = _NAME.fullmatch(path.name)
    if name is None or int(name[1]) != payload["seq"]:
        # The signed content decides; a renamed file is still worth saying.
        message = f"renamed: its content says seq {payload['seq']}"
        return digest, DigestProblem("digest_invalid", str(path), message)
    return digest, None


def _parse(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The payload and signature of a digest file; ValueError when it is not one."""
    try:
        payload = json.loads(data)
        if not isinstance(payload, dict) or payload.get("format") != DIGEST_FORMAT:
            raise ValueError(f"not an {DIGEST_FORMAT} digest")
        signature = base64.b64decode(str(payload["signature"]), validate=True)
        _check_shape(payload)
    except (KeyError, TypeError, AttributeError, binascii.Error) as error:
        raise ValueError(f"not a well-formed digest ({error!r})") from None
    return payload, signature


def _check_shape(payload: dict[str, Any]) -> None:
    """Raise ValueError unless ``payload`` has every field a digest has, of the right type."""
    if type(payload["seq"]) is not int or payload["seq"] < 1:
        raise ValueError("seq must be a positive integer")
    for name in ("created", "key_id"):
        if not isinstance(payload[name], str):
            raise ValueError(f"{name} must be a string")
    previous = payload["previous"]
    if previous is not None and not (
        isinstance(previous, dict)
        and type(previous.get("seq")) is int
        and isinstance(previous.get("sha256"), str)
        and isinstance(previous.get("file"), str)
    ):
        raise ValueError("previous must be null or {seq, file, sha256}")
    for entry in payload["files"]:
        if not (isinstance(entry.get("path"), str) and type(entry.get("size")) is int):
            raise ValueError("each file needs a path and a size")
        for name in ("sha256", "content_sha256"):
            if not isinstance(entry.get(name), str):
                raise ValueError(f"each file needs its {name}")
        if type(entry.get("content_size")) is not int or not isinstance(entry.get("chains"), list):
            raise ValueError("each file needs content_size and chains")
    if not isinstance(payload["chains"], list):
        raise ValueError("chains must be a list")


def _links(digests: list[Digest]) -> list[DigestProblem]:
    """Seqs 1..n with no hole or repeat, each naming the exact bytes of the one before."""
    problems: list[DigestProblem] = []
    by_seq: dict[int, Digest] = {}
    for digest in digests:
        other = by_seq.setdefault(digest.seq, digest)
        if other is not digest:
            problems.append(
                DigestProblem(
                    "digest_replaced",
                    str(digest.path),
                    f"a second digest with seq {digest.seq} (also {other.path.name})",
                )
            )
    for seq, digest in sorted(by_seq.items()):
        previous = digest.payload["previous"]
        before = by_seq.get(seq - 1)
        if seq == 1:
            if previous is not None:
                problems.append(
                    DigestProblem("digest_invalid", str(digest.path), "seq 1 names a previous one")
                )
            continue
        if previous is None or previous["seq"] != seq - 1:
            problems.append(
                DigestProblem("digest_invalid", str(digest.path), "does not name digest seq-1")
            )
        elif before is None:
            if digest.path.with_name(previous["file"]).exists():
                continue  # present but not valid: reported as such already
            problems.append(
                DigestProblem(
                    "digest_missing",
                    str(digest.path.with_name(previous["file"])),
                    f"digest seq {seq - 1} is missing (removed?); digest seq {seq} "
                    f"({digest.path.name}) names it",
                )
            )
        elif previous["sha256"] != before.sha256:
            problems.append(
                DigestProblem(
                    "digest_replaced",
                    str(before.path),
                    f"digest seq {seq} ({digest.path.name}) names other bytes for it: "
                    "replaced or re-signed after the next one was written",
                )
            )
    return problems
