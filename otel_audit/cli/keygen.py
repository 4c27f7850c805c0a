"""``otel-audit keygen``: the Ed25519 key pair that signs and checks digest files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..archive._digest import key_id
from ._keys import write_key_pair

EPILOG = """\
writes PREFIX.key (the private key: PKCS#8 PEM, unencrypted, mode 0600; for `seal
--private-key`) and PREFIX.pub (SubjectPublicKeyInfo PEM; for `verify --public-key`), and
refuses to overwrite either. Keep the private key away from whoever can write the archive.

exit codes: 0 written, 3 a file exists or cannot be created.
"""


def register(subparsers: Any) -> None:
    """Add the ``keygen`` command."""
    parser = subparsers.add_parser(
        "keygen",
        help="make the Ed25519 key pair that signs digests (seal) and checks them (verify)",
        description="Make an Ed25519 key pair for `otel-audit seal` and `verify --public-key`.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--out", required=True, type=Path, metavar="PREFIX", help="write PREFIX.key and PREFIX.pub"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``otel-audit keygen``."""
    private_path, public_path, public_key = write_key_pair(args.out)
    print(f"private key: {private_path} (mode 0600: keep it secret)")
    print(f"public key:  {public_path}")
    print(f"key id:      {key_id(public_key)}")
    return 0
