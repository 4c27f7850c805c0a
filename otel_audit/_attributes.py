"""Attribute builders shared by request events and ``record()`` events (design schema)."""

from __future__ import annotations

from opentelemetry.util.types import AttributeValue

from . import _compat
from ._context import RequestContext
from ._event import Actor, Outcome, uuid7
from ._redaction import Finding
from ._scrub import Scrubber

Attributes = dict[str, AttributeValue]


def new_event(action: str, outcome: Outcome) -> Attributes:
    """The attributes every event starts with: what, how it ended, and a fresh event id."""
    return {"audit.action": action, "audit.outcome": outcome.value, "audit.event.id": uuid7()}


def add_actor(attributes: Attributes, actor: Actor | None, scrubber: Scrubber) -> None:
    """Who acted: ``user.*``, ``tenant.id``, ``session.id``, ``audit.actor.*``."""
    if actor is None:
        return
    attributes["user.id"] = scrubber.identity(actor.id)
    if actor.tenant is not None:
        attributes["tenant.id"] = scrubber.identity(actor.tenant)
    if actor.roles:
        attributes["user.roles"] = actor.roles
    if actor.scopes:
        attributes["audit.actor.scopes"] = actor.scopes
    if actor.auth_method is not None:
        attributes["audit.actor.auth_method"] = actor.auth_method
    if actor.session_id is not None:
        attributes["session.id"] = scrubber.identity(actor.session_id)


def add_request(attributes: Attributes, request: RequestContext) -> None:
    """Where it came from: request id, method, path, route, client and captured headers."""
    attributes["audit.request.id"] = request.request_id
    attributes["http.request.method"] = request.method
    attributes["url.path"] = request.path
    if request.query:
        attributes["url.query"] = request.query
    route = route_template(request)
    if route is not None:
        attributes["http.route"] = route
    if request.client_address is not None:
        attributes["client.address"] = request.client_address
    if request.user_agent is not None:
        attributes["user_agent.original"] = request.user_agent
    if request.captured_headers:
        attributes.update(request.captured_headers)


def add_findings(attributes: Attributes, findings: list[Finding]) -> None:
    """Where and why values were redacted (never the values), as ``audit.redactions``."""
    if findings:
        attributes["audit.redactions"] = tuple(
            dict.fromkeys(f"{finding.path}:{finding.reason}" for finding in findings)
        )


def route_template(request: RequestContext) -> str | None:
    """The matched route's template (``/items/{item_id}``), including any mount prefix."""
    return _compat.route_template(request.scope)
