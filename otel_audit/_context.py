"""Per-request audit state, carried in a contextvar.

The middleware puts one mutable :class:`RequestContext` into ``_current_request`` when a
request starts. ``set_actor()`` *mutates* that object rather than setting a new contextvar
value: FastAPI runs sync dependencies in a worker thread with a *copy* of the context, and a
value set in a copy never reaches the middleware, but a mutation of the shared object does.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry.trace import Span
from starlette.types import Scope

from ._event import Actor

if TYPE_CHECKING:
    from ._auditor import Auditor
    from ._body import BodyCapture


@dataclass(slots=True, eq=False)
class RequestContext:
    """What the audit trail knows about the request being served."""

    auditor: Auditor
    """The instrumented app's composition root: its events go through its pipeline."""
    scope: Scope
    request_id: str
    method: str
    path: str
    """``url.path`` as received (the redaction stage masks it)."""
    client_address: str | None
    user_agent: str | None
    server_span: Span | None
    """The SERVER span, found once when the request starts (see ``_compat.find_server_span``)."""
    query: str | None = None
    """``url.query`` as received."""
    captured_headers: dict[str, str] = field(default_factory=dict)
    """``http.request.header.<name>`` attributes, as received."""
    content_type: str | None = None
    """The request's ``content-type``, for body capture."""
    request_body: BodyCapture | None = None
    """The request body, captured while the app reads it when the policy may want it."""
    explicit_actor: Actor | None = None
    """Set by ``set_actor()``; wins over every other source."""
    _resolved_actor: Actor | None = None
    _actor_resolved: bool = False

    def actor(self) -> Actor | None:
        """``set_actor()``'s actor, else the first the configured sources yield (cached),
        else the ambient actor of the context."""
        return self.request_actor() or _ambient_actor.get()

    def request_actor(self) -> Actor | None:
        """The actor this request itself established: ``set_actor()`` during the request,
        else the configured sources (cached). Never the ambient actor, so access decisions
        (``audit_router``) cannot inherit an identity set outside the request."""
        if self.explicit_actor is not None:
            return self.explicit_actor
        if not self._actor_resolved:
            self._resolved_actor = self.auditor.actors.resolve(self.scope)
            self._actor_resolved = True
        return self._resolved_actor


_current_request: ContextVar[RequestContext | None] = ContextVar("otel_audit_request", default=None)
# Actor for work outside a request (jobs, scripts, CLI commands).
_ambient_actor: ContextVar[Actor | None] = ContextVar("otel_audit_actor", default=None)


def current_request() -> RequestContext | None:
    """The audited request being served in this context, if any."""
    return _current_request.get()


def set_actor(actor: Actor | None) -> None:
    """Declare who is acting, for the current request or, outside a request, this context.

    Safe from async code, sync dependencies (worker threads) and background tasks.
    """
    if actor is not None and not isinstance(actor, Actor):
        raise TypeError(f"set_actor() takes an Actor or None, got {type(actor).__name__}")
    request = _current_request.get()
    if request is not None:
        request.explicit_actor = actor
    else:
        _ambient_actor.set(actor)


def get_actor() -> Actor | None:
    """The actor the audit trail currently attributes actions to, if known."""
    request = _current_request.get()
    if request is None:
        return _ambient_actor.get()
    return request.actor()
