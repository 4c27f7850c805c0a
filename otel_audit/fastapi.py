"""Wiring otel_audit into a FastAPI (or any Starlette) application."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from opentelemetry import _logs, metrics, trace
from starlette.applications import Starlette
from starlette.middleware import Middleware

from . import _compat
from ._asgi import AuditMiddleware
from ._auditor import Auditor, adopt_as_default
from ._config import AuditConfig
from ._responses import RequestIdEcho

if TYPE_CHECKING:
    from fastapi import APIRouter, params

    from .query._source import SourceSpec

_AUDITOR_ATTRIBUTE = "_otel_audit_auditor"
_AUTOMATIC_ATTRIBUTE = "_otel_audit_automatic"


def instrument_app(
    app: Starlette,
    config: AuditConfig | None = None,
    *,
    logger_provider: _logs.LoggerProvider | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> None:
    """Audit every HTTP request and WebSocket session of ``app``; calling it again is a no-op.

    ``logger_provider`` receives the audit log records (default: the global provider when one
    is configured, else a private OTLP or local-archive provider). ``tracer_provider`` is used
    to trace the app when it has no HTTP tracing of its own, so each event also lands on a
    server span. ``meter_provider`` receives the emitted/dropped counters.
    """
    _instrument(app, config, logger_provider, tracer_provider, meter_provider, automatic=False)


def _instrument(
    app: Starlette,
    config: AuditConfig | None,
    logger_provider: _logs.LoggerProvider | None,
    tracer_provider: trace.TracerProvider | None,
    meter_provider: metrics.MeterProvider | None,
    *,
    automatic: bool,
) -> None:
    """instrument_app(); ``automatic`` marks the zero-code entry point's call."""
    already = getattr(app, _AUDITOR_ATTRIBUTE, None) is not None
    if already and (automatic or not getattr(app, _AUTOMATIC_ATTRIBUTE, False)):
        return
    # Otherwise the app calls instrument_app() itself under opentelemetry-instrument, which
    # already audited it from the environment inside FastAPI(): the app's explicit
    # configuration wins, so the automatic middleware is replaced (below).
    auditor = Auditor(
        config if config is not None else AuditConfig(),
        logger_provider=logger_provider,
        meter_provider=meter_provider,
    )
    # Outermost of the user middlewares, so the server span is still the current one when
    # a request enters; the X-Request-ID echo goes around the whole stack, so the error
    # middleware's 500 carries it too.
    _compat.insert_outermost_user_middleware(
        app, Middleware(AuditMiddleware, auditor=auditor), replacing=_is_audit_middleware
    )
    _compat.wrap_middleware_stack(app, RequestIdEcho)
    previous = getattr(app, _AUDITOR_ATTRIBUTE, None)
    setattr(app, _AUDITOR_ATTRIBUTE, auditor)
    setattr(app, _AUTOMATIC_ATTRIBUTE, automatic)
    adopt_as_default(auditor, replacing=previous)
    if tracer_provider is not None:
        _trace_with(app, tracer_provider, meter_provider)


def audit_router(
    source: SourceSpec,
    *,
    dependencies: Sequence[params.Depends],
    all_tenants_scope: str = "audit:read:all",
    pseudonym_key: bytes | str | None = None,
) -> APIRouter:
    """A read-only FastAPI router over the audit trail in ``source``, isolated by tenant.

    ``source``: archive files or folders, a ``victorialogs+http://HOST:PORT`` URL, or an
    ``otel_audit.query`` source. ``dependencies`` (at least one, else ``ValueError``) are
    the app's auth dependencies; they run first, and one of them (or the instrumented app's
    actor sources) says who calls, with ``set_actor(Actor(id, tenant=..., scopes=...))``.
    Unauthenticated calls get 401; callers see their own tenant's events only unless their
    scopes include ``all_tenants_scope``. Every access is recorded as
    ``audit.audit_log.read``. ``pseudonym_key``: the key that pseudonymised ``user.id`` and
    ``tenant.id`` (default: the instrumented app's, else the environment's). Endpoints:
    ``GET /events``, ``/events/{event_id}``, ``/stats``, ``/security/failed-logins``.
    """
    from ._audit_router import audit_router as make_router

    return make_router(
        source,
        dependencies=dependencies,
        all_tenants_scope=all_tenants_scope,
        pseudonym_key=pseudonym_key,
    )


def auditor_of(app: Starlette) -> Auditor | None:
    """The auditor ``instrument_app`` gave ``app``, if any (its flush, its counters)."""
    auditor = getattr(app, _AUDITOR_ATTRIBUTE, None)
    return auditor if isinstance(auditor, Auditor) else None


def _is_audit_middleware(entry: Middleware) -> bool:
    factory: object = entry.cls
    return factory is AuditMiddleware


def _trace_with(
    app: Starlette,
    tracer_provider: trace.TracerProvider,
    meter_provider: metrics.MeterProvider | None,
) -> None:
    """Give the app server spans from ``tracer_provider`` unless something already traces it."""
    native = _compat.native_telemetry_settings(app)
    if native is not None:
        # FastAPI >= 0.16x: its native telemetry reads this (documented) TelemetryConfig key
        # on every request; an explicit provider given to FastAPI() wins.
        if native.get("tracer_provider") is None:
            native["tracer_provider"] = tracer_provider
        return
    if _compat.instrumented_by_contrib(app):
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,  # type: ignore[arg-type]
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )
