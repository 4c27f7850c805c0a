"""Explicit business events: ``record()`` and the ``@audited`` decorator.

Inside a request an event inherits the request's actor, tenant, request id, route, client
and trace, and goes through that app's pipeline; outside one (jobs, scripts) it goes
through the process default auditor (see ``_auditor``) with the ambient actor from
``set_actor()``. Either way it is built, processed and emitted like every other event.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ParamSpec, TypeVar, cast

from opentelemetry import trace
from opentelemetry.trace import Span

from ._auditor import default_auditor
from ._build import build_event
from ._context import RequestContext, _ambient_actor, current_request
from ._errors import AuditEventError
from ._event import Actor, AuditEvent, Outcome, check_action

P = ParamSpec("P")
R = TypeVar("R")


def _outcome(value: Outcome | str) -> Outcome:
    try:
        return Outcome(value)
    except ValueError:
        raise AuditEventError(
            f"outcome {value!r} must be one of {[o.value for o in Outcome]}"
        ) from None


def _changes(changes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{field: (old, new)}`` (or ``{field: {"old":.., "new":..}}``) as the schema's shape."""
    if not isinstance(changes, Mapping):
        raise AuditEventError(f"changes must map field -> (old, new), got {type(changes).__name__}")
    normalised: dict[str, dict[str, Any]] = {}
    for name, change in changes.items():
        if isinstance(change, Mapping) and set(change) <= {"old", "new"}:
            normalised[str(name)] = {"old": change.get("old"), "new": change.get("new")}
        elif isinstance(change, tuple | list) and len(change) == 2:
            normalised[str(name)] = {"old": change[0], "new": change[1]}
        else:
            raise AuditEventError(f"changes[{name!r}] must be an (old, new) pair, got {change!r}")
    return normalised


def record(
    action: str,
    *,
    resource_type: str | None = None,
    resource_id: str | int | None = None,
    outcome: Outcome | str = Outcome.SUCCESS,
    changes: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
    actor: Actor | None = None,
) -> str | None:
    """Record the business event ``audit.<action>``; returns its event id.

    Returns None when the event was not recorded: the audit policy's level for it is
    ``none``, or it was lost (counted on ``otel_audit.events.dropped``).

    Raises :class:`AuditEventError` for an invalid action, outcome or changes (a programming
    error), and :class:`AuditEmitError` only when ``fail_closed`` is on.
    """
    check_action(action)
    result = _outcome(outcome)
    change_set = _changes(changes) if changes is not None else None
    if actor is not None and not isinstance(actor, Actor):
        raise AuditEventError(f"actor must be an Actor, got {type(actor).__name__}")
    request = current_request()
    auditor = request.auditor if request is not None else default_auditor()
    try:
        event = _build(
            request,
            action=action,
            outcome=result,
            resource_type=resource_type,
            resource_id=resource_id,
            changes=change_set,
            details=details,
            actor=actor,
        )
    except Exception as exc:
        auditor.lost(f"audit event audit.{action}", "build_error", exc)
        return None
    durable = auditor.submit(event)
    if durable is None:
        return None
    auditor.settle(durable)  # under fail-closed: returns once the record is on disk
    return cast(str, event.attributes["audit.event.id"])


def _build(
    request: RequestContext | None,
    *,
    action: str,
    outcome: Outcome,
    resource_type: str | None,
    resource_id: str | int | None,
    changes: dict[str, dict[str, Any]] | None,
    details: Mapping[str, Any] | None,
    actor: Actor | None,
) -> AuditEvent:
    span: Span | None
    if request is not None:
        span = request.server_span
        if actor is None:
            actor = request.actor()
    else:
        current = trace.get_current_span()
        span = current if current.is_recording() else None
        if actor is None:
            actor = _ambient_actor.get()
    target = ""
    if resource_type is not None:
        target = f" on {resource_type}"
    if resource_id is not None:
        target += f" {resource_id}"
    return build_event(
        action,
        outcome,
        body=f"{action}{target} ({outcome.value})",
        request=request,
        actor=actor,
        span=span,
        resource_type=str(resource_type) if resource_type is not None else None,
        resource_id=str(resource_id) if resource_id is not None else None,
        changes=changes,
        details=dict(details) if details is not None else None,
    )


def _failure_outcome(exc: BaseException) -> Outcome:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status < 500:
        return Outcome.FAILURE
    return Outcome.ERROR


def _result_outcome(result: object) -> Outcome:
    status = getattr(result, "status_code", None)
    return Outcome.from_status(status) if isinstance(status, int) else Outcome.SUCCESS


def audited(
    action: str,
    *,
    resource_type: str | None = None,
    resource_id_param: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate an endpoint or function so each call records ``audit.<action>``.

    The outcome comes from the call: ``success`` on return (or the returned response's
    status), ``failure`` for an exception carrying a 4xx ``status_code`` (HTTPException),
    ``error`` for any other exception, which is re-raised unchanged. ``resource_id_param``
    names the argument that holds the resource id.
    """
    check_action(action)

    def decorator(function: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(function)
        if resource_id_param is not None and resource_id_param not in signature.parameters:
            raise AuditEventError(
                f"{function.__qualname__} has no parameter {resource_id_param!r} for resource ids"
            )

        def emit(
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
            outcome: Outcome,
            exc: BaseException | None,
        ) -> None:
            resource_id = None
            if resource_id_param is not None:
                bound = signature.bind_partial(*args, **kwargs).arguments
                resource_id = bound.get(resource_id_param)
            extra = dict(details or {})
            if exc is not None:
                extra["error.type"] = type(exc).__qualname__
            record(
                action,
                resource_type=resource_type,
                resource_id=resource_id,
                outcome=outcome,
                details=extra or None,
            )

        if inspect.iscoroutinefunction(function):
            async_function = cast(Callable[P, Awaitable[Any]], function)

            @functools.wraps(function)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                try:
                    result = await async_function(*args, **kwargs)
                except Exception as exc:
                    emit(args, kwargs, _failure_outcome(exc), exc)
                    raise
                emit(args, kwargs, _result_outcome(result), None)
                return result

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                result = function(*args, **kwargs)
            except Exception as exc:
                emit(args, kwargs, _failure_outcome(exc), exc)
                raise
            emit(args, kwargs, _result_outcome(result), None)
            return result

        return wrapper

    return decorator
