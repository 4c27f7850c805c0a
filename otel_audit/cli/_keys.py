"""Keys for ``verify``, ``seal`` and ``keygen``: the chain's HMAC key and the Ed25519 pair.

Key files (written by ``otel-audit keygen --out PREFIX``):

* ``PREFIX.key``: the Ed25519 private key, PKCS#8 PEM, unencrypted, mode 0600. It signs
  digests: keep it off the host whose archive it seals if you can, as you would
  CloudTrail's signing key;
* ``PREFIX.pub``: the public key, SubjectPublicKeyInfo PEM (``openssl pkey -pubin`` reads it),
  for ``verify --public-key``.

The chain key is text: ``--key-file`` (surrounding whitespace dropped) or
``OTEL_AUDIT_CHAIN_KEY``, read as the library reads that variable (stripped, UTF-8 bytes).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from ._errors import EXIT_INPUT, EXIT_KEY, CliError

CHAIN_KEY_ENV: Final = "OTEL_AUDIT_CHAIN_KEY"
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def load_chain_key(path: Path | None, env: Mapping[str, str] | None = None) -> bytes | None:
    """The chain key from ``path``, else ``OTEL_AUDIT_CHAIN_KEY``, else None (unkeyed)."""
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise CliError(
                f"cannot read the chain key {path}: {_reason(error)}", EXIT_KEY
            ) from None
        if not text:
            raise CliError(f"the chain key file {path} is empty", EXIT_KEY)
        return text.encode()
    value = (os.environ if env is None else env).get(CHAIN_KEY_ENV, "").strip()
    return value.encode() if value else None


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in the PEM file ``path``."""
    try:
        key = load_pem_private_key(_read_key(path, "private"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise CliError(f"{path} is not a usable PEM private key: {error}", EXIT_KEY) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CliError(f"{path} is not an Ed25519 private key", EXIT_KEY)
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in the PEM file ``path``."""
    try:
        key = load_pem_public_key(_read_key(path, "public"))
    except (ValueError, UnsupportedAlgorithm):
        message = f"{path} is not a PEM public key (otel-audit keygen writes one)"
        raise CliError(message, EXIT_KEY) from None
    if not isinstance(key, Ed25519PublicKey):
        raise CliError(f"{path} is not an Ed25519 public key", EXIT_KEY)
    return key


def _read_key(path: Path, kind: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CliError(f"cannot read the {kind} key {path}: {_reason(error)}", EXIT_KEY) from None
    if b"-----BEGIN" not in data:
        raise CliError(f"{path} is not a PEM {kind} key (otel-audit keygen writes one)", EXIT_KEY)
    return data


def write_key_pair(prefix: Path) -> tuple[Path, Path, Ed25519PublicKey]:
    """Make a key pair and write ``PREFIX.key`` (0600) and ``PREFIX.pub``; never overwrite."""
    private_path = prefix.with_name(prefix.name + ".key")
    public_path = prefix.with_name(prefix.name + ".pub")
    for path in (private_path, public_path):
        if path.exists():
            raise CliError(f"{path} exists: refusing to overwrite a key", EXIT_INPUT)
    private_key = Ed25519PrivateKey.generate()
    public_key = private_key.public_key()
    private_pem = private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    public_pem = public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    _write_new(private_path, private_pem, 0o600)
    try:
        _write_new(public_path, public_pem, 0o644)
    except CliError:
        private_path.unlink()  # no half pair
        raise
    return private_path, public_path, public_key


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` (O_EXCL: never over an existing file), write, fsync."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, mode)
    except FileExistsError:
        raise CliError(f"{path} exists: refusing to overwrite a key", EXIT_INPUT) from None
    except OSError as error:
        raise CliError(f"cannot create {path}: {_reason(error)}", EXIT_INPUT) from None
    try:
        os.fchmod(fd, mode)  # the umask may have taken bits the public key should have
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error)
