"""Exit codes scripts can rely on, and the one exception commands raise for expected failures."""

from __future__ import annotations

from typing import Final

EXIT_OK: Final = 0
"""Success (for ``verify``: the trail is clean)."""
EXIT_FINDINGS: Final = 1
"""``verify`` found the trail not clean (gaps, tampering, bad digests...)."""
EXIT_USAGE: Final = 2
"""Bad command line: unknown option, bad filter value (argparse uses 2 as well)."""
EXIT_INPUT: Final = 3
"""Unreadable input: a missing or unreadable file, a line that is not OTLP JSON."""
EXIT_BACKEND: Final = 4
"""A backend (VictoriaLogs) could not be reached or answered an error."""
EXIT_KEY: Final = 5
"""A key is missing, unreadable or wrong (signing, verifying digests, HMAC, pseudonyms)."""
EXIT_INTERNAL: Final = 70
"""A bug in otel-audit (EX_SOFTWARE)."""


class CliError(Exception):
    """An expected failure: its message is printed as one line, its code is the exit code."""

    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code
