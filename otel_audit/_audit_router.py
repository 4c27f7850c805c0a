"""``audit_router``: the audit trail as a read-only REST API, isolated by tenant.

Endpoints (relative to where the app mounts the router)::

    GET /events                 a page of events: filters, limit, cursor, newest_first
    GET /events/{event_id}      one event
    GET /stats                  counts (by action, outcome, actor, tenant, time; failed
                                logins; denied accesses) with the same filters
    GET /security/failed-logins a page of failed logins, with counts by client and by user

Every request first passes the app's own ``dependencies`` (its authentication), then the
caller is found as :mod:`._audit_access` says and limited to their tenant. Each access,
refused ones included, is recorded as ``audit.audit_log.read`` by :class:`_AuditedRoute`.
The engine (:mod:`otel_audit.query`) reads files or VictoriaLogs synchronously, so every
call runs in a worker thread, off the event loop.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations, and
# the caller dependency is an ``Annotated`` alias local to each router.
import logging
import re
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Annotated, Any, Final, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ._audit_access import ALL_TENANTS_SCOPE, Access, AccessRefused, Reader, caller_of
from ._audit_access import pseudonym_key as resolve_key
from ._audit_models import (
    AuditEventPage,
    AuditEventRecord,
    AuditStatistics,
    ErrorMessage,
    FailedLogins,
)
from ._audit_params import CommonSelection, Cursor, EventSelection, Limit, NewestFirst, Selection
from .query import (
    EventFilter,
    FilterError,
    Source,
    SourceError,
    compute_stats,
    event_to_dict,
    get_event,
    open_source,
    page_events,
    parse_duration,
)
from .query._source import SourceSpec

T = TypeVar("T")

_ACCESS_KEY: Final = "otel_audit.audit_router.access"
_OPTION: Final = re.compile(r"--([a-z][a-z-]*)")
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    status: {"model": ErrorMessage, "description": text}
    for status, text in (
        (400, "A filter value or cursor that cannot be used"),
        (401, "No authenticated caller"),
        (403, "Another tenant's events, without the all-tenants scope"),
        (503, "The audit trail cannot be read right now"),
    )
}
_log = logging.getLogger("otel_audit")


def audit_router(
    source: SourceSpec,
    *,
    dependencies: Sequence[params.Depends],
    all_tenants_scope: str = ALL_TENANTS_SCOPE,
    pseudonym_key: bytes | str | None = None,
) -> APIRouter:
    """A read-only router over the audit trail in ``source`` (see the module docstring)."""
    guards = _checked_dependencies(dependencies)
    sources = _Sources(source)
    explicit_key = pseudonym_key.encode() if isinstance(pseudonym_key, str) else pseudonym_key
    router = APIRouter(
        dependencies=guards, route_class=_AuditedRoute, tags=["audit"], responses=_ERRORS
    )

    async def reader(request: Request) -> Reader:
        """The caller, once the app's dependencies ran; 401 when there is none."""
        access = access_of(request)
        access.actor = caller_of(request.scope)
        access.key = resolve_key(explicit_key)
        if access.actor is None:
            raise HTTPException(401, "authentication required")
        return Reader.of(access.actor, all_tenants_scope, access.key)

    Caller = Annotated[Reader, Depends(reader)]

    @router.get("/events", response_model=AuditEventPage)
    async def list_events(
        request: Request,
        selection: EventSelection,
        caller: Caller,
        *,
        limit: Limit = 100,
        cursor: Cursor = None,
        newest_first: NewestFirst = False,
    ) -> dict[str, Any]:
        """Audit events matching the filters, a page at a time."""
        access = access_of(request)
        flt = _scoped(access, caller, selection)
        page = await _engine(
            lambda: page_events(
                sources.get(), flt, limit=limit, cursor=cursor, newest_first=newest_first
            )
        )
        access.returned, access.total = len(page.events), page.total
        events = [caller.shown(event_to_dict(event)) for event in page.events]
        return {"events": events, "total": page.total, "next_cursor": page.next_cursor}

    @router.get(
        "/events/{event_id}",
        response_model=AuditEventRecord,
        responses={404: {"model": ErrorMessage, "description": "No such event for you"}},
    )
    async def read_event(
        request: Request,
        event_id: Annotated[
            str, Path(min_length=1, max_length=128, description="`audit.event.id`.")
        ],
        caller: Caller,
    ) -> dict[str, Any]:
        """One audit event by its id; another tenant's event is not found (404)."""
        access = access_of(request)
        access.event_id = event_id
        event = await _engine(lambda: get_event(sources.get(), event_id))
        if event is None or not caller.may_see(event.attributes):
            access.returned = 0
            access.reason = "not_found" if event is None else "other_tenant"
            raise HTTPException(404, "no such event")
        access.returned = 1
        return caller.shown(event_to_dict(event))

    @router.get("/stats", response_model=AuditStatistics)
    async def stats(
        request: Request,
        selection: EventSelection,
        caller: Caller,
        bucket: Annotated[
            str, Query(max_length=32, description="Time bucket: 1h, 15m, 1d.")
        ] = "1h",
    ) -> dict[str, Any]:
        """Counts over the audit events matching the filters."""
        access = access_of(request)
        flt = _scoped(access, caller, selection)
        width = _parsed(lambda: parse_duration(bucket, "bucket"))
        counts = await _engine(lambda: compute_stats(sources.get(), flt, bucket=width))
        access.total = counts.total
        return counts.to_dict()

    @router.get("/security/failed-logins", response_model=FailedLogins)
    async def failed_logins(
        request: Request,
        selection: CommonSelection,
        caller: Caller,
        *,
        limit: Limit = 100,
        cursor: Cursor = None,
        newest_first: NewestFirst = False,
    ) -> dict[str, Any]:
        """Failed logins matching the filters, a page at a time, with counts over all of them."""
        access = access_of(request)
        flt = replace(_scoped(access, caller, selection), category="failed-login")

        def query() -> dict[str, Any]:
            source = sources.get()
            page = page_events(source, flt, limit=limit, cursor=cursor, newest_first=newest_first)
            counts = compute_stats(source, flt)
            return {
                "events": [caller.shown(event_to_dict(event)) for event in page.events],
                "total": page.total,
                "next_cursor": page.next_cursor,
                "by_client": counts.failed_logins_by_client,
                "by_user": counts.failed_logins_by_user,
            }

        answer = await _engine(query)
        access.returned, access.total = len(answer["events"]), answer["total"]
        return answer

    return router


class _AuditedRoute(APIRoute):
    """A route whose every call, refused or not, is recorded as ``audit.audit_log.read``.

    Wrapping the route's handler (rather than a dependency) also sees the refusals of the
    app's own dependencies and of request validation, which run before any endpoint code.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        endpoint = self.name

        async def audited(request: Request) -> Response:
            access = Access(endpoint, request.scope)
            request.scope[_ACCESS_KEY] = access
            try:
                response = await handle(request)
            except StarletteHTTPException as refused:
                access.record(refused.status_code)
                raise
            except RequestValidationError:
                access.record(422)
                raise
            except Exception:
                access.reason = "exception"
                access.record(500)
                raise
            access.record(response.status_code)
            return response

        return audited


def access_of(request: Request) -> Access:
    """The access being served (made by :class:`_AuditedRoute`)."""
    access = request.scope.get(_ACCESS_KEY)
    if not isinstance(access, Access):  # pragma: no cover - every route is an _AuditedRoute
        raise RuntimeError("audit_router endpoints run under _AuditedRoute only")
    return access


def _checked_dependencies(dependencies: object) -> list[params.Depends]:
    """The app's auth dependencies; refusing to serve the trail without any."""
    if isinstance(dependencies, (str, bytes)) or not isinstance(dependencies, Sequence):
        raise TypeError(
            "audit_router(dependencies=...) takes a list of fastapi.Depends(...), "
            f"got {type(dependencies).__name__}"
        )
    guards = list(dependencies)
    if not guards:
        raise ValueError(
            "audit_router needs at least one auth dependency, e.g. "
            "dependencies=[Depends(require_auditor)]: the audit trail is never served "
            "to unauthenticated callers"
        )
    for guard in guards:
        if not isinstance(guard, params.Depends) or guard.dependency is None:
            raise TypeError(
                f"audit_router dependencies must be fastapi.Depends(callable), got {guard!r}"
            )
    return guards


class _Sources:
    """The source, opened at creation when it can be; an archive folder that does not
    exist yet (nothing written so far) is opened on each request until it does."""

    def __init__(self, spec: SourceSpec) -> None:
        self._spec = spec
        self._source: Source | None = None
        try:
            self._source = open_source(spec)
        except SourceError as error:
            if isinstance(spec, str) and "://" in spec:  # a URL that can never work
                raise ValueError(f"audit_router source: {error}") from None

    def get(self) -> Source:
        return self._source if self._source is not None else open_source(self._spec)


def _api_message(error: Exception) -> str:
    """The engine's message with query parameter names instead of command-line options."""
    return _OPTION.sub(lambda m: m.group(1).replace("-", "_"), str(error))


def _parsed(parse: Callable[[], T]) -> T:
    try:
        return parse()
    except FilterError as error:
        raise HTTPException(400, _api_message(error)) from None


def _scoped(access: Access, caller: Reader, selection: Selection) -> EventFilter:
    """The filter asked for, limited to what ``caller`` may see; noted on ``access``."""
    flt = _parsed(selection.filter)
    try:
        flt = caller.scoped(flt)
    except AccessRefused as refused:
        access.select(selection.params(), flt)
        access.reason = refused.reason
        raise HTTPException(refused.status, refused.detail) from None
    access.select(selection.params(), flt)
    return flt


async def _engine(call: Callable[[], T]) -> T:
    """``call()`` in a worker thread; engine errors as HTTP answers (no traceback)."""
    try:
        return await run_in_threadpool(call)
    except FilterError as error:
        raise HTTPException(400, _api_message(error)) from None
    except (SourceError, OSError) as error:
        _log.warning("audit_router: cannot read the audit trail: %s", error)
        raise HTTPException(503, "the audit trail cannot be read right now") from None
