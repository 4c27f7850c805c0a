"""The composition root: one :class:`Auditor` per instrumented app.

It owns what the app's audit trail is made of (configuration, policy, scrubber, actor
sources, the processor chain, the emitter and the self-telemetry) and is the one path every
event takes: build → processors → emit, with each loss counted and, under ``fail_closed``,
raised.

``record()`` inside a request uses the request's auditor. Outside a request (a job, a
script, start-up code) it uses the **process default**: the auditor of the first app
instrumented in this process, or, before any, one configured from the environment alone.
The first app, not the last, so a sub-application or a second app built later cannot
silently take the process's events. Tests start afresh with
:func:`otel_audit.testing.reset_default_auditor`.
"""

from __future__ import annotations

import threading

from opentelemetry import _logs, metrics

from ._actor import ActorResolver
from ._config import AuditConfig
from ._emitter import AuditEmitter
from ._errors import AuditEmitError
from ._event import AuditEvent
from ._processors import Processor, processors_for, run
from ._scrub import Scrubber
from ._selftelemetry import SelfTelemetry
from .policy import Policy, load_policy


class Auditor:
    """Everything one instrumented app's audit trail is made of, and the path of its events."""

    def __init__(
        self,
        config: AuditConfig,
        *,
        logger_provider: _logs.LoggerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self.config = config
        self.telemetry = SelfTelemetry(meter_provider)
        self.policy: Policy = load_policy(config.policy)
        self.scrubber = Scrubber(config)
        self.actors = ActorResolver(config, self.telemetry.error)
        self.processors: list[Processor] = processors_for(
            self.policy,
            self.scrubber,
            captures_headers=bool(config.capture_headers),
            pseudonymise=config.pseudonymization_key is not None,
        )
        self.emitter = AuditEmitter(
            logger_provider=logger_provider,
            archive_dir=config.archive_dir,
            span_events=config.span_events,
            span_event_detail=config.span_event_detail,
            on_pipeline_drop=self.telemetry.drops,
            on_span_error=self.telemetry.error,
        )

    def submit(self, event: AuditEvent, *, may_raise: bool = True) -> bool:
        """Process and emit ``event``; False if the policy dropped it or it was lost.

        A loss is counted; with ``fail_closed`` (and ``may_raise``) it raises
        :class:`AuditEmitError` instead of returning.
        """
        try:
            processed = run(self.processors, event)
        except Exception as exc:
            self.lost(event.name, "process_error", exc, may_raise=may_raise)
            return False
        if processed is None:
            return False
        try:
            self.emitter.emit(processed)
        except Exception as exc:
            self.lost(event.name, "export_error", exc, may_raise=may_raise)
            return False
        self.telemetry.emitted.add(processed.action)
        return True

    def lost(self, what: str, reason: str, exc: BaseException, *, may_raise: bool = True) -> None:
        """Count a lost event; with ``fail_closed`` (and ``may_raise``) raise instead."""
        self.telemetry.drop(reason, exc)
        if may_raise and self.config.fail_closed:
            raise AuditEmitError(f"{what} was lost: {reason}") from exc

    def flush(self, timeout_millis: int = 10_000) -> bool:
        """Export every queued audit event now (blocking); False if that did not finish."""
        try:
            return self.emitter.flush(timeout_millis)
        except Exception as exc:
            self.telemetry.error("flush_error", exc)
            return False


_default_lock = threading.Lock()
_default: Auditor | None = None
_default_from_app = False


def adopt_as_default(auditor: Auditor, *, replacing: Auditor | None = None) -> None:
    """Make an instrumented app's auditor the process default, unless an app's already is.

    ``replacing`` is the auditor this one takes over from on the same app (an explicit
    ``instrument_app`` after the zero-code one): if it was the default, this one is now.
    """
    global _default, _default_from_app
    with _default_lock:
        if not _default_from_app or (replacing is not None and _default is replacing):
            _default, _default_from_app = auditor, True


def default_auditor() -> Auditor:
    """The auditor for events outside a request (see the module docstring)."""
    global _default  # noqa: PLW0603
    auditor = _default
    if auditor is None:
        with _default_lock:
            if _default is None:
                _default = Auditor(AuditConfig())
            auditor = _default
    return auditor


def reset_default() -> None:
    """Forget the process default; the next app instrumented (or the environment) sets it."""
    global _default, _default_from_app
    with _default_lock:
        _default, _default_from_app = None, False
