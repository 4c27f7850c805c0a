"""The ``otel-audit`` command: verify, seal, query, tail and summarise an audit trail.

``otel-audit <command> --help`` describes each command. Every command module registers its
subcommand through ``register(subparsers)`` and sets ``func`` (a callable taking the parsed
arguments and returning an exit code); :data:`COMMANDS` lists them in help order.
Expected failures raise :class:`~otel_audit.cli._errors.CliError`: one line on stderr and its
exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .._version import __version__
from ._errors import EXIT_INTERNAL, EXIT_USAGE, CliError

COMMANDS: tuple[str, ...] = ("verify", "seal", "keygen", "query", "tail", "stats")
"""Modules of this package that each add one subcommand (``register(subparsers)``)."""


def build_parser() -> argparse.ArgumentParser:
    """The parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="otel-audit",
        description="Verify, seal, query and summarise otel-audit trails "
        "(archive files and folders, or VictoriaLogs).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (see ``_errors`` for their meaning)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(func(args))
    except CliError as error:
        print(f"otel-audit {args.command}: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `otel-audit query ... | head`
        return 0
    except Exception as error:  # a bug: still one line, and a code of its own
        print(f"otel-audit {args.command}: internal error: {error!r}", file=sys.stderr)
        return EXIT_INTERNAL
