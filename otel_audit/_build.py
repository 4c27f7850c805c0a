"""The one place an audit event is made, for HTTP requests, WebSocket sessions and record().

The builder writes what was captured, as captured, in the design's schema; it neither
redacts nor decides whether the event is kept: the processors that follow do, the same way
for every kind of event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from . import _compat
from ._context import RequestContext
from ._event import Actor, AuditEvent, Outcome, uuid7

Attributes = dict[str, AttributeValue]


def build_event(
    action: str,
    outcome: Outcome,
    *,
    body: str,
    request: RequestContext | None = None,
    route: str | None = None,
    actor: Actor | None = None,
    span: Span | None = None,
    extra: Attributes | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    changes: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """An event with the schema's attributes for what was captured; nothing redacted yet.

    ``route`` is the request's route template when the caller already looked it up.
    """
    attributes: Attributes = {
        "audit.action": action,
        "audit.outcome": outcome.value,
        "audit.event.id": uuid7(),
    }
    if request is not None:
        _add_request(attributes, request, route or _compat.route_template(request.scope))
    if extra:
        attributes.update(extra)
    if actor is not None:
        _add_actor(attributes, actor)
    if resource_type is not None:
        attributes["audit.resource.type"] = resource_type
    if resource_id is not None:
        attributes["audit.resource.id"] = resource_id
    return AuditEvent(
        action, outcome, attributes, body, span=span, changes=changes, details=details
    )


def build_request_event(
    action: str,
    outcome: Outcome,
    request: RequestContext,
    *,
    extra: Attributes,
    describe: Callable[[str], str],
) -> AuditEvent:
    """The event of a request or WebSocket session itself: its actor, its span, its route.

    ``describe`` makes the body sentence from the route template (or "unmatched route").
    """
    route = _compat.route_template(request.scope)
    return build_event(
        action,
        outcome,
        body=describe(route or "unmatched route"),
        request=request,
        route=route,
        actor=request.actor(),
        span=request.server_span,
        extra=extra,
    )


def _add_actor(attributes: Attributes, actor: Actor) -> None:
    """Who acted: ``user.*``, ``tenant.id``, ``session.id``, ``audit.actor.*``."""
    attributes["user.id"] = actor.id
    if actor.tenant is not None:
        attributes["tenant.id"] = actor.tenant
    if actor.roles:
        attributes["user.roles"] = actor.roles
    if actor.scopes:
        attributes["audit.actor.scopes"] = actor.scopes
    if actor.auth_method is not None:
        attributes["audit.actor.auth_method"] = actor.auth_method
    if actor.session_id is not None:
        attributes["session.id"] = actor.session_id


def _add_request(attributes: Attributes, request: RequestContext, route: str | None) -> None:
    """Where it came from: request id, method, path, route, client and captured headers."""
    attributes["audit.request.id"] = request.request_id
    attributes["http.request.method"] = request.method
    attributes["url.path"] = request.path
    if request.query:
        attributes["url.query"] = request.query
    if route is not None:
        attributes["http.route"] = route
    if request.client_address is not None:
        attributes["client.address"] = request.client_address
    if request.user_agent is not None:
        attributes["user_agent.original"] = request.user_agent
    if request.captured_headers:
        attributes.update(request.captured_headers)
