"""Helpers for testing applications that use otel_audit.

``record()`` outside a request goes to the process default auditor: the first app
instrumented in the process (see ``otel_audit._auditor``). A test suite that builds a new
app per test calls :func:`reset_default_auditor` between tests, so each test's events go to
the providers that test set up.
"""

from __future__ import annotations

from ._auditor import reset_default

__all__ = ["reset_default_auditor"]


def reset_default_auditor() -> None:
    """Forget the process default auditor; the next instrumented app becomes it."""
    reset_default()
