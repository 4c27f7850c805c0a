"""What the audit trail says about itself: events emitted, events lost, failures survived.

Every lost event is counted on ``otel_audit.events.dropped`` by reason and logged, at most
once a minute per reason (with how many were suppressed), so a broken exporter cannot flood
the application's logs; failures that lost nothing (a resolver that raised, a span event
that could not be added) go to ``otel_audit.errors``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Final

from opentelemetry import metrics

from ._metrics import LabelledCount
from ._version import __version__

_log = logging.getLogger("otel_audit")
_LOG_INTERVAL_SECONDS: Final = 60.0
SCOPE_NAME: Final = "otel_audit"


class RateLimitedWarnings:
    """Logs a failure reason at most once per interval, with how many were suppressed."""

    def __init__(self, interval: float = _LOG_INTERVAL_SECONDS) -> None:
        self._interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def warn(self, reason: str, exc: BaseException | None) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(reason)
            if last is not None and now - last < self._interval:
                self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
                return
            self._last[reason] = now
            suppressed = self._suppressed.pop(reason, 0)
        _log.warning(
            "otel_audit: %s (%s); %d similar suppressed since last report",
            reason,
            f"{type(exc).__name__}: {exc}" if exc is not None else "no detail",
            suppressed,
        )


class SelfTelemetry:
    """The three counters of one instrumented app, and the rate-limited warnings behind them."""

    def __init__(self, meter_provider: metrics.MeterProvider | None = None) -> None:
        meter = (meter_provider or metrics.get_meter_provider()).get_meter(SCOPE_NAME, __version__)
        self.emitted = LabelledCount(
            meter,
            "otel_audit.events.emitted",
            unit="{event}",
            description="Audit events emitted, by action.",
            label="audit.action",
        )
        self.dropped = LabelledCount(
            meter,
            "otel_audit.events.dropped",
            unit="{event}",
            description="Audit events lost, by reason.",
            label="reason",
        )
        self.errors = LabelledCount(
            meter,
            "otel_audit.errors",
            unit="{error}",
            description="Failures inside auditing that did not lose an event, by reason.",
            label="reason",
        )
        self._warnings = RateLimitedWarnings()

    def drop(self, reason: str, exc: BaseException | None = None) -> None:
        """Count and (rate-limited) log one audit event that was lost."""
        self.dropped.add(reason)
        self._warnings.warn(f"audit event dropped: {reason}", exc)

    def drops(self, reason: str, count: int) -> None:
        """Count and (rate-limited) log ``count`` events an export pipeline lost."""
        self.dropped.add(reason, count)
        self._warnings.warn(f"{count} audit events dropped: {reason}", None)

    def error(self, reason: str, exc: BaseException | None = None) -> None:
        """Count and (rate-limited) log a failure that did not lose an event."""
        self.errors.add(reason)
        self._warnings.warn(reason, exc)
