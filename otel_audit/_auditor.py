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

import anyio.to_thread
from opentelemetry import _logs, metrics

from ._actor import ActorResolver
from ._config import AuditConfig
from ._emitter import AuditEmitter, RecordSink
from ._errors import AuditEmitError
from ._event import AuditEvent
from ._processors import Processor, processors_for, run
from ._scrub import Scrubber
from ._selftelemetry import SelfTelemetry
from ._transport import Durable, choose_transport
from ._transport._sdk import SdkSink
from ._transport._spool import SpoolError
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
        self.transport = choose_transport(
            config.transport, explicit_provider=logger_provider is not None
        )
        self.emitter = AuditEmitter(
            self._sink(logger_provider),
            span_events=config.span_events,
            span_event_detail=config.span_event_detail,
            on_span_error=self.telemetry.error,
        )

    def _sink(self, logger_provider: _logs.LoggerProvider | None) -> RecordSink:
        config = self.config
        if self.transport == "sdk":
            return SdkSink(logger_provider, config.archive_dir, self.telemetry.drops)
        from ._transport._shipper import OtlpTarget
        from ._transport._spool_sink import sink_for

        return sink_for(
            config.spool_dir or config.archive_dir,
            chain_key=config.chain_key,
            ship_to=OtlpTarget.from_env() if self.transport == "otlp" else None,
            on_drop=self.telemetry.drops,
            on_error=self.telemetry.error,
        )

    def submit(self, event: AuditEvent, *, may_raise: bool = True) -> Durable | None:
        """Process and emit ``event``: what to wait on for it to be durable, None if not kept.

        None when the policy dropped it or it was lost. A loss is counted; with
        ``fail_closed`` (and ``may_raise``) it raises :class:`AuditEmitError` instead.
        """
        try:
            processed = run(self.processors, event)
        except Exception as exc:
            self.lost(event.name, "process_error", exc, may_raise=may_raise)
            return None
        if processed is None:
            return None
        try:
            durable = self.emitter.emit(processed)
        except SpoolError as exc:
            # The spool counted it (spool_full, spool_write_error) where it happened.
            if may_raise and self.config.fail_closed:
                raise AuditEmitError(f"{event.name} was lost: {exc}") from exc
            return None
        except Exception as exc:
            self.lost(event.name, "export_error", exc, may_raise=may_raise)
            return None
        self.telemetry.emitted.add(processed.action)
        return durable if durable is not None else HANDED_OVER

    def settle(self, durable: Durable | None) -> None:
        """Under ``fail_closed``, return only once ``durable`` is on disk, else raise."""
        if durable is None or not self.config.fail_closed:
            return
        try:
            on_disk = durable.wait(_DURABLE_TIMEOUT)
        except Exception as exc:
            raise AuditEmitError(f"audit event could not be made durable: {exc}") from exc
        if not on_disk:
            self.telemetry.error("durable_timeout")
            raise AuditEmitError(f"audit event not on disk after {_DURABLE_TIMEOUT:g} s")

    async def settle_async(self, durable: Durable | None) -> None:
        """:meth:`settle` for the event loop: the wait runs in a worker thread (anyio's, so
        asyncio and trio apps alike), never on the loop."""
        if durable is None or not self.config.fail_closed:
            return
        await anyio.to_thread.run_sync(self.settle, durable)

    def lost(self, what: str, reason: str, exc: BaseException, *, may_raise: bool = True) -> None:
        """Count a lost event; with ``fail_closed`` (and ``may_raise``) raise instead."""
        self.telemetry.drop(reason, exc)
        if may_raise and self.config.fail_closed:
            raise AuditEmitError(f"{what} was lost: {reason}") from exc

    def flush(self, timeout: float = 10.0) -> bool:
        """Deliver every queued audit record now (blocking); False if that did not finish."""
        try:
            return self.emitter.sink.flush(timeout)
        except Exception as exc:
            self.telemetry.error("flush_error", exc)
            return False

    def close(self, timeout: float = 10.0) -> None:
        """End this app's trail cleanly (the spool writes its closing record)."""
        try:
            self.emitter.sink.close(timeout)
        except Exception as exc:
            self.telemetry.error("close_error", exc)


class _HandedOver:
    """A record handed to a pipeline that owns it from then on (the ``sdk`` transport)."""

    def wait(self, timeout: float | None = None) -> bool:
        return True


HANDED_OVER: Durable = _HandedOver()
# How long fail-closed waits for a record to reach the disk before refusing the request.
_DURABLE_TIMEOUT = 5.0


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
