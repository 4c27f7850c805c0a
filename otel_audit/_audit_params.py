"""The query parameters of ``audit_router``'s listings, as FastAPI dependencies.

They mirror ``otel-audit query``'s filters (``--user`` is ``user``, ``--resource-type`` is
``resource_type``); the values are handed to :meth:`otel_audit.query.EventFilter.parse` as
text, so the API and the command accept the same values.
"""

# No ``from __future__ import annotations``: FastAPI evaluates these annotations.
from dataclasses import asdict, dataclass, replace
from typing import Annotated, Any, Final, Literal

from fastapi import Depends, Query

from .query import EventFilter

MAX_LIMIT: Final = 1000
"""The largest page ``limit`` accepted."""


@dataclass(frozen=True)
class Selection:
    """The filter query parameters as given (text)."""

    user: str | None = None
    tenant: str | None = None
    action: str | None = None
    outcome: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    route: str | None = None
    client: str | None = None
    trace_id: str | None = None
    category: str | None = None
    since: str | None = None
    until: str | None = None

    def params(self) -> dict[str, str | None]:
        return asdict(self)

    def filter(self) -> EventFilter:
        """The engine's filter (:class:`FilterError` for values it cannot use)."""
        return EventFilter.parse(
            user=self.user,
            tenant=self.tenant,
            action=self.action,
            outcome=self.outcome,
            resource_type=self.resource_type,
            resource_id=self.resource_id,
            route=self.route,
            client=self.client,
            trace_id=self.trace_id,
            category=self.category,
            since=self.since,
            until=self.until,
        )


def text(description: str) -> Any:
    return Query(min_length=1, max_length=512, description=description)


def common_selection(
    *,
    user: Annotated[str | None, text("`user.id`: the raw id (its pseudonym matches too).")] = None,
    tenant: Annotated[
        str | None, text("`tenant.id`: your own, unless you may read all tenants.")
    ] = None,
    action: Annotated[str | None, text("`audit.action` glob: `user.*`, `auth.login*`.")] = None,
    outcome: Literal["success", "failure", "error"] | None = None,
    resource_type: Annotated[str | None, text("`audit.resource.type`.")] = None,
    resource_id: Annotated[str | None, text("`audit.resource.id`.")] = None,
    route: Annotated[str | None, text("`http.route` template: `/items/{item_id}`.")] = None,
    client: Annotated[str | None, text("`client.address`.")] = None,
    trace_id: Annotated[
        str | None, Query(pattern="^[0-9a-fA-F]{32}$", description="Trace id, 32 hex digits.")
    ] = None,
    since: Annotated[
        str | None, text("At or after: RFC 3339 or relative (`30m`, `24h`, `7d`).")
    ] = None,
    until: Annotated[str | None, text("Before: RFC 3339 or relative.")] = None,
) -> Selection:
    return Selection(
        user=user,
        tenant=tenant,
        action=action,
        outcome=outcome,
        resource_type=resource_type,
        resource_id=resource_id,
        route=route,
        client=client,
        trace_id=trace_id,
        since=since,
        until=until,
    )


CommonSelection = Annotated[Selection, Depends(common_selection)]


def event_selection(
    selection: CommonSelection,
    category: Annotated[
        Literal["failed-login", "denied"] | None,
        Query(description="Failed logins, or denied accesses (access.denied, HTTP 401/403)."),
    ] = None,
) -> Selection:
    return replace(selection, category=category)


EventSelection = Annotated[Selection, Depends(event_selection)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Events per page.")]
Cursor = Annotated[str | None, Query(max_length=512, description="A page's next_cursor.")]
NewestFirst = Annotated[bool, Query(description="Newest events first.")]
