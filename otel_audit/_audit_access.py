"""Who reads the audit trail through ``audit_router``, what they may see, and the record of it.

The caller is the actor *this request* established: ``set_actor()`` called by the app's
auth dependency (or earlier in the request), else the instrumented app's configured actor
sources (actor resolver, verified JWT, Starlette's ``scope["user"]``). Outside an
instrumented app only ``scope["user"]`` (``AuthenticationMiddleware``) counts: an ambient
``set_actor()`` is not tied to the request, so it never authenticates one.

Tenant isolation: a caller whose scopes do not include the all-tenants scope
(``audit:read:all``) sees only events whose ``tenant.id`` is their own tenant (or its
pseudonym); asking for another tenant is refused (403) and an event of another tenant is
"not found" (404). Such callers also get no ``source`` (``file:line``) and no
``audit.seq`` / ``audit.chain.*`` attributes: line numbers and sequence numbers count the
events of every tenant written before theirs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Final

from starlette.types import Scope

from ._actor import _from_starlette_auth
from ._context import current_request
from ._event import Actor, Outcome
from ._record import record
from .query import EventFilter, load_pseudonym_key, pseudonym

ALL_TENANTS_SCOPE: Final = "audit:read:all"
READ_ACTION: Final = "audit_log.read"
"""Recorded as ``audit.audit_log.read`` for every access to the router."""
RESOURCE_TYPE: Final = "audit_log"
_PSEUDONYM_PREFIX: Final = "hmac-sha256:"
_HIDDEN_PREFIXES: Final = ("audit.seq", "audit.chain.")

_log = logging.getLogger("otel_audit")


class AccessRefused(Exception):
    """The caller may not have what they asked for; ``status`` is the HTTP answer."""

    def __init__(self, status: int, detail: str, reason: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.reason = reason


def caller_of(scope: Scope) -> Actor | None:
    """The actor this request established (see the module docstring), or None."""
    request = current_request()
    if request is not None:
        return request.request_actor()
    _warn_not_instrumented()
    return _from_starlette_auth(scope)


_warned = False


def _warn_not_instrumented() -> None:
    global _warned  # noqa: PLW0603 - one warning per process is enough
    if not _warned:
        _warned = True
        _log.warning(
            "audit_router: the app is not instrumented (instrument_app), so only "
            'scope["user"] identifies callers; set_actor() in an auth dependency is not seen'
        )


def pseudonym_key(explicit: bytes | None) -> bytes | None:
    """The key that pseudonymised ``user.id`` and ``tenant.id``: the router's own, else the
    instrumented app's, else ``OTEL_AUDIT_PSEUDONYMIZATION_KEY``."""
    if explicit is not None:
        return explicit
    request = current_request()
    if request is not None:
        key = request.auditor.config.pseudonymization_key
        return key.encode() if key else None
    return load_pseudonym_key()


@dataclass(frozen=True)
class Reader:
    """A caller and what they may see."""

    actor: Actor
    all_tenants: bool
    """Whether they may read every tenant's events."""
    key: bytes | None

    @classmethod
    def of(cls, actor: Actor, all_tenants_scope: str, key: bytes | None) -> Reader:
        return cls(actor, all_tenants_scope in actor.scopes, key)

    def scoped(self, flt: EventFilter) -> EventFilter:
        """``flt`` limited to what this reader may see (with the key for pseudonyms)."""
        flt = flt.with_key(self.key)
        if self.all_tenants:
            return flt
        tenant = self.actor.tenant
        if tenant is None:
            raise AccessRefused(403, "your identity has no tenant", "no_tenant")
        if flt.tenant is not None and flt.tenant != tenant:
            raise AccessRefused(403, "you may read your own tenant's events only", "other_tenant")
        return replace(flt, tenant=tenant)

    def may_see(self, attributes: dict[str, object]) -> bool:
        """Whether an event with these attributes belongs to what this reader may see."""
        if self.all_tenants:
            return True
        if self.actor.tenant is None:
            return False
        own = EventFilter(tenant=self.actor.tenant, pseudonym_key=self.key).tenant_ids()
        return attributes.get("tenant.id") in own

    def shown(self, event: dict[str, Any]) -> dict[str, Any]:
        """The contract object of an event as this reader gets it (see the module docstring)."""
        if self.all_tenants:
            return event
        attributes = {
            name: value
            for name, value in event["attributes"].items()
            if not name.startswith(_HIDDEN_PREFIXES)
        }
        return {**event, "attributes": attributes, "source": None}


@dataclass
class Access:
    """One access to the router, filled in as the request is served, then recorded."""

    endpoint: str
    scope: Scope = field(repr=False)
    actor: Actor | None = None
    key: bytes | None = None
    selection: dict[str, str] = field(default_factory=dict)
    """The filter as asked (query parameters), with the tenant it was limited to."""
    event_id: str | None = None
    returned: int | None = None
    total: int | None = None
    reason: str | None = None

    def select(self, params: dict[str, str | None], flt: EventFilter) -> None:
        """Note the filter: the parameters given, and the tenant ``flt`` is limited to."""
        given = {name: value for name, value in params.items() if value is not None}
        if flt.tenant is not None:
            given["tenant"] = flt.tenant
        for name in ("user", "tenant"):
            value = given.get(name)
            # Recorded as it is stored: a pseudonymised trail keeps raw ids out of details.
            if (
                value is not None
                and self.key is not None
                and not value.startswith(_PSEUDONYM_PREFIX)
            ):
                given[name] = pseudonym(value, self.key)
        self.selection = given

    def record(self, status: int) -> None:
        """Record ``audit.audit_log.read`` for this access, answered with ``status``."""
        outcome = Outcome.from_status(status)
        details: dict[str, Any] = {"endpoint": self.endpoint, "status": status}
        if self.selection:
            details["filter"] = self.selection
        if self.returned is not None:
            details["returned"] = self.returned
        if self.total is not None:
            details["total"] = self.total
        if outcome is not Outcome.SUCCESS:
            details["reason"] = self.reason or _REASONS.get(status, f"http_{status}")
        record(
            READ_ACTION,
            resource_type=RESOURCE_TYPE,
            resource_id=self.event_id,
            outcome=outcome,
            details=details,
            # Refused before the router looked (the app's own dependencies, validation):
            # whoever the request itself established, if anyone.
            actor=self.actor or caller_of(self.scope),
        )


_REASONS: Final = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    422: "invalid_request",
    503: "source_unavailable",
}
