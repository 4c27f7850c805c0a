"""Every FastAPI, Starlette and OpenTelemetry SDK internal otel_audit relies on, in one place.

Each function here reads or adapts something the frameworks do not document as public API.
When a release moves one of them, this is the only file to change, and
``tests/test_compat.py`` (run on the oldest and the newest FastAPI that pyproject allows)
is where it shows. Everything degrades to "unknown" rather than raising: an internal that
moved must cost the audit trail a detail, never a request.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from opentelemetry import _logs, trace
from opentelemetry.trace import Span, SpanKind
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Scope

# --- the route template ------------------------------------------------------------------------


def route_template(scope: Scope) -> str | None:
    """The full template of the route that served ``scope`` (``/api/v1/items/{item_id}``).

    It must equal the server span's ``http.route``, whatever the app's layout:

    * FastAPI's native telemetry (0.16x and later) computes it while routing and keeps it on
      the request's telemetry object in the scope: the span's own value, taken as is.
    * FastAPI 0.16x also no longer copies included routes with their prefixes: ``scope["route"]``
      is the route as declared in its router (``/access-token``), and the template with every
      ``include_router`` prefix is on the effective route context it keeps under
      ``scope["fastapi"]``.
    * Older FastAPI copies routes on ``include_router``, so ``scope["route"].path`` already has
      the prefixes.

    A ``Mount`` adds its prefix to ``root_path``; the application's own ``root_path`` (a proxy
    prefix) is not part of the route.
    """
    native = getattr(scope.get("fastapi.telemetry"), "route", None)
    if isinstance(native, str) and native:
        return native
    effective = scope.get("fastapi", {}).get("effective_route_context")
    path = getattr(getattr(effective, "starlette_route", None), "path_format", None) or getattr(
        effective, "path_format", None
    )
    if not isinstance(path, str) or not path:
        path = getattr(scope.get("route"), "path", None)
        if not isinstance(path, str):
            return None
    root_path: str = scope.get("root_path", "")
    app_root: str = scope.get("app_root_path", root_path)
    prefix = root_path[len(app_root) :] if root_path.startswith(app_root) else ""
    return prefix.rstrip("/") + path


# --- the server span ---------------------------------------------------------------------------


def find_server_span(scope: Scope) -> Span | None:
    """The request's SERVER span, or None when no HTTP tracing is active.

    FastAPI's native telemetry and opentelemetry-instrumentation-fastapi both start it
    outside the user middleware stack, so it is current when the audit middleware starts;
    FastAPI's operation spans (dependencies, endpoint) and user middlewares' spans come later,
    which is why it is captured once, here, rather than looked up when an event is emitted.
    """
    native = getattr(scope.get("fastapi.telemetry"), "span", None)
    if isinstance(native, Span):
        return native
    current = trace.get_current_span()
    if getattr(current, "kind", None) is SpanKind.SERVER:
        return current
    return None


def native_telemetry_settings(app: object) -> MutableMapping[str, Any] | None:
    """FastAPI's ``TelemetryConfig`` for ``app`` (0.16x and later), which it reads per request."""
    settings = getattr(app, "_telemetry", None)
    return settings if isinstance(settings, dict) and "tracer_provider" in settings else None


# --- the middleware stack ---------------------------------------------------------------------


def insert_outermost_user_middleware(
    app: Starlette, middleware: Middleware, *, replacing: Callable[[Middleware], bool]
) -> None:
    """Put ``middleware`` first among the app's user middlewares, dropping those ``replacing``.

    First of the user middlewares is inside Starlette's error middleware (an unhandled
    exception is seen before it becomes a 500) and outside any user middleware that starts
    spans. ``middleware_stack`` is reset so Starlette rebuilds the stack on the next request,
    which makes instrumenting an app that already served work too.
    """
    app.user_middleware[:] = [entry for entry in app.user_middleware if not replacing(entry)]
    app.user_middleware.insert(0, middleware)
    app.middleware_stack = None


def wrap_middleware_stack(app: Starlette, wrapper: Callable[[ASGIApp], ASGIApp]) -> None:
    """Wrap whatever ``app`` builds as its middleware stack in ``wrapper``, once per app."""
    if getattr(app, "_otel_audit_wrapped_stack", False):
        return
    build = app.build_middleware_stack

    def build_wrapped() -> ASGIApp:
        return wrap_outside_error_middleware(build(), wrapper)

    app.build_middleware_stack = build_wrapped  # type: ignore[method-assign]
    app._otel_audit_wrapped_stack = True  # type: ignore[attr-defined]
    app.middleware_stack = None


def instrumented_by_contrib(app: object) -> bool:
    """Whether opentelemetry-instrumentation-fastapi already traces ``app``."""
    return bool(getattr(app, "_is_instrumented_by_opentelemetry", False))


def wrap_outside_error_middleware(stack: ASGIApp, wrapper: Callable[[ASGIApp], ASGIApp]) -> ASGIApp:
    """``wrapper(stack)``, still shaped as Starlette builds stacks: a ServerErrorMiddleware outside.

    opentelemetry-instrumentation-fastapi wraps ``build_middleware_stack`` and switches itself
    off ("Skipping FastAPI instrumentation due to unexpected middleware stack") unless the
    stack it gets is a ``ServerErrorMiddleware``; it then moves that middleware's ``app`` inside
    its own tracing middleware. So the wrapped stack goes inside a plain
    ``ServerErrorMiddleware`` (no handler, not debug). It never answers: the application's own
    error middleware inside has always started the 500 before an exception gets out, and a
    started response is only re-raised. Whichever instrumentation is applied first, both work.
    """
    if not isinstance(stack, ServerErrorMiddleware):
        return wrapper(stack)
    return ServerErrorMiddleware(wrapper(stack))


# --- the OpenTelemetry SDK --------------------------------------------------------------------


def logger_provider_delivers(provider: object) -> bool:
    """Whether a logger provider will actually deliver records somewhere.

    The API's proxy and no-op providers do not. Neither does an SDK provider without
    processors, which is what ``opentelemetry-instrument`` installs for
    ``OTEL_LOGS_EXPORTER=none``: sending audit events there would lose them silently. The
    SDK keeps its processors in private attributes; if they move, the provider is trusted.
    """
    from opentelemetry.sdk._logs import LoggerProvider

    if isinstance(provider, _logs.NoOpLoggerProvider) or type(provider).__name__ in {
        "ProxyLoggerProvider",
        "NoOpLoggerProvider",
    }:
        return False
    if isinstance(provider, LoggerProvider):
        multi = getattr(provider, "_multi_log_record_processor", None)
        processors = getattr(multi, "_log_record_processors", None)
        return processors is None or len(processors) > 0
    return True
