"""Finding the SERVER span of a request, deliberately.

FastAPI's native telemetry (0.16x and later) and opentelemetry-instrumentation-fastapi both
start the server span outside the user middleware stack, so it is current when the audit
middleware starts. But FastAPI also starts operation spans (dependencies, endpoint), and a
user middleware may start spans of its own, so the current span *later* is not necessarily
the server span. The span is therefore captured once, at the outermost point the audit
middleware sees, and kept in the request context.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from starlette.types import Scope


def find_server_span(scope: Scope) -> Span | None:
    """The request's SERVER span, or None when no HTTP tracing is active."""
    # FastAPI's native telemetry keeps its request telemetry (with the span) in the scope.
    native = scope.get("fastapi.telemetry")
    span = getattr(native, "span", None)
    if isinstance(span, Span):
        return span
    current = trace.get_current_span()
    if getattr(current, "kind", None) is SpanKind.SERVER:
        return current
    return None
