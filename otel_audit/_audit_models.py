"""What ``audit_router`` answers, as pydantic models so its OpenAPI schema documents them.

:class:`AuditEventRecord` is the contract JSON object of one event, the same as
``otel-audit query --format json`` writes (``otel_audit.query.event_to_dict``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class AuditEventRecord(BaseModel):
    """One audit event, as ``otel-audit query --format json`` prints it."""

    event_name: str = Field(description="`audit.http.request`, `audit.user.created`, ...")
    timestamp: str = Field(description="When it happened: RFC 3339, UTC, nanoseconds.")
    attributes: dict[str, Any] = Field(
        description="The event's attributes: `audit.action`, `audit.outcome`, `user.id`, "
        "`tenant.id`, `http.route`, ..."
    )
    event_id: str | None = Field(description="`audit.event.id`.")
    severity_text: str
    severity_number: int
    body: Any = Field(description="A short human sentence.")
    trace_id: str | None = Field(description="32 hex digits, or null.")
    span_id: str | None = Field(description="16 hex digits, or null.")
    resource: dict[str, Any] = Field(description="`service.name`, `service.instance.id`, ...")
    source: str | None = Field(
        description="`file:line` the event was read from; null from a logs backend, and for "
        "callers limited to their own tenant."
    )


class AuditEventPage(BaseModel):
    """One page of a listing, ordered by (timestamp, event id)."""

    events: list[AuditEventRecord]
    total: int = Field(description="Every record the filter selects, all pages together.")
    next_cursor: str | None = Field(
        description="Pass it back as `cursor` for the next page; null on the last page."
    )


class AuditStatistics(BaseModel):
    """Counts over the selected events; every map is value -> count, largest first."""

    total: int
    bucket: str = Field(description="The width of `over_time`'s buckets (`1h`).")
    first: str | None = Field(description="The earliest event's timestamp, or null.")
    last: str | None = Field(description="The latest event's timestamp, or null.")
    by_action: dict[str, int]
    by_outcome: dict[str, int]
    by_actor: dict[str, int] = Field(description="By `user.id`.")
    by_tenant: dict[str, int] = Field(description="By `tenant.id`.")
    over_time: dict[str, int] = Field(description="Bucket start (RFC 3339) -> count.")
    failed_logins: int
    failed_logins_by_client: dict[str, int]
    failed_logins_by_user: dict[str, int]
    denied: int = Field(description="`access.denied` events and requests answered 401 or 403.")
    denied_by_user: dict[str, int]
    denied_by_route: dict[str, int]


class FailedLogins(AuditEventPage):
    """A page of failed logins (`auth.login_failed`, or `auth.login` that failed), with
    counts over all of them (not only this page)."""

    by_client: dict[str, int] = Field(description="`client.address` -> failed logins.")
    by_user: dict[str, int] = Field(description="`user.id` -> failed logins.")


class ErrorMessage(BaseModel):
    """Why a request was refused."""

    detail: str
