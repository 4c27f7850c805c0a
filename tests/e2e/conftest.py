"""Fixtures for the end-to-end tests: real stacks, and service logs in every failure report."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from .harness import LIVE_SERVICES, AuditStack

LOG_TAIL_LINES = 60


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure, append the tail of every running service's log to the report."""
    report = yield
    if report.failed and LIVE_SERVICES:
        for log, service in sorted(LIVE_SERVICES.items()):
            state = "running" if service.running else f"exited ({_returncode(service)})"
            report.sections.append(
                (
                    f"service log: {service.name} [{state}] {log}",
                    service.log_tail(LOG_TAIL_LINES),
                )
            )
    return report


def _returncode(service: object) -> object:
    process = getattr(service, "process", None)
    return getattr(process, "returncode", None)


@pytest.fixture
def audit_stack(tmp_path: Path) -> Iterator[AuditStack]:
    """VictoriaLogs, Jaeger and otelcol-audit for one test (the test starts the app)."""
    stack = AuditStack(tmp_path / "stack")
    try:
        stack.start_backends()
        yield stack
    finally:
        stack.stop()
