"""Archived audit events as OCSF events (``otel-audit query --format ocsf``).

:func:`to_ocsf` maps one :class:`~otel_audit.archive.ArchivedEvent` to an event of the Open
Cybersecurity Schema Framework, version :data:`OCSF_SCHEMA_VERSION` (no profiles): logins
and logoffs to Authentication (3002), changes to users and their rights to Account Change
(3001), every other request and business event to API Activity (6003); the rule is in
``otel_audit._ocsf_classes``. What OCSF has no attribute for stays in ``unmapped``, under
the event's own names (``attributes``, ``resource``, ``trace_id``, ``span_id``), so nothing
of the record is lost. Identifiers are copied as archived: a pseudonymised ``user.id``
stays a pseudonym.

Where each field goes:

========================================  ===========================================
audit event                               OCSF
========================================  ===========================================
timestamp (observed time if unset)        ``time`` (ms)
``audit.event.id``                        ``metadata.uid``
``audit.request.id``                      ``metadata.correlation_uid``, ``http_request.uid``
``audit.action``, ``event_name``          ``metadata.event_code``, ``metadata.log_name``
``audit.seq``                             ``metadata.sequence``
``tenant.id``                             ``metadata.tenant_uid``, ``actor.user.org.uid``
``audit.outcome``                         ``status_id``/``status`` (success: Success,
                                          failure/error: Failure), ``status_detail``
severity (else the outcome)               ``severity_id``/``severity``
``user.id``                               ``actor.user.uid`` (anonymous: name
                                          ``anonymous``, type Unknown)
``session.id``                            ``actor.session.uid``
``client.address``                        ``src_endpoint.ip`` (a host name: ``.name``)
method, ``url.path``, query, user agent   ``http_request``
``http.response.status_code``             ``http_response.code``, ``status_code``
``service.name``, ``service.version``     ``api.service`` (API Activity),
                                          ``service`` (Authentication)
``audit.resource.type``/``.id``           ``resources`` (API Activity), the target
                                          ``user`` (Account Change)
body                                      ``message``
========================================  ===========================================
"""

from __future__ import annotations

import base64
import ipaddress
import json
from collections.abc import Mapping
from typing import Any, Final

from ._ocsf_classes import ACCOUNT_RESOURCES, OcsfClass, classify
from ._version import __version__
from .archive import ArchivedEvent

__all__ = ["OCSF_SCHEMA_VERSION", "PRODUCT_NAME", "to_ocsf"]

OCSF_SCHEMA_VERSION: Final = "1.8.0"
"""The OCSF schema version the events follow (``metadata.version``); tests validate it."""
PRODUCT_NAME: Final = "otel-audit"

# OTel severity number ranges (TRACE, DEBUG, INFO, WARN, ERROR, FATAL) -> OCSF severity.
_SEVERITY: Final = ((17, 3, "Medium"), (13, 2, "Low"), (1, 1, "Informational"))
_FATAL: Final = (21, 6, "Fatal")
_OUTCOME_SEVERITY: Final = {
    "success": (1, "Informational"),
    "failure": (2, "Low"),
    "error": (3, "Medium"),
}
# Attributes the mapping places; the rest go to unmapped.attributes.
_MAPPED: Final = frozenset(
    {
        "audit.event.id",
        "audit.request.id",
        "audit.action",
        "audit.outcome",
        "audit.seq",
        "audit.resource.type",
        "audit.resource.id",
        "user.id",
        "tenant.id",
        "session.id",
        "client.address",
        "http.request.method",
        "url.path",
        "url.query",
        "user_agent.original",
        "http.response.status_code",
    }
)
_MAPPED_RESOURCE: Final = frozenset({"service.name", "service.version"})
# Keys of audit.details that name the account a failed login tried.
_LOGIN_NAME_KEYS: Final = ("username", "user", "login", "email")
_JSON_ATTRIBUTES: Final = frozenset({"audit.changes", "audit.details"})


def to_ocsf(event: ArchivedEvent) -> dict[str, Any]:
    """The OCSF event (a JSON-ready dict) for one archived audit event."""
    attributes = event.attributes
    outcome = _text(attributes.get("audit.outcome"))
    action = _text(attributes.get("audit.action")) or event.event_name.removeprefix("audit.")
    method = _text(attributes.get("http.request.method"))
    route = _text(attributes.get("http.route")) or _text(attributes.get("url.path"))
    kind = classify(action, method=method, route=route, success=outcome == "success")
    ocsf: dict[str, Any] = {
        "class_uid": kind.class_uid,
        "class_name": kind.class_name,
        "category_uid": kind.category_uid,
        "category_name": kind.category_name,
        "activity_id": kind.activity_id,
        "activity_name": kind.activity_name,
        "type_uid": kind.type_uid,
        "type_name": kind.type_name,
        "time": (event.timestamp_ns or event.observed_timestamp_ns) // 1_000_000,
        "metadata": _metadata(event, action),
        **_severity(event.severity_number, outcome),
        **_status(outcome, kind, attributes),
        "actor": _actor(attributes),
        "src_endpoint": _src_endpoint(attributes, event.resource),
    }
    if isinstance(event.body, str) and event.body:
        ocsf["message"] = event.body
    ocsf.update(_http(attributes))
    ocsf.update(_class_fields(kind, action, attributes, event.resource))
    ocsf["unmapped"] = _unmapped(event)
    return ocsf


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _metadata(event: ArchivedEvent, action: str) -> dict[str, Any]:
    attributes = event.attributes
    metadata: dict[str, Any] = {
        "product": {
            "name": PRODUCT_NAME,
            "vendor_name": PRODUCT_NAME,
            "version": event.scope_version or __version__,
        },
        "version": OCSF_SCHEMA_VERSION,
        "event_code": action,
        "log_name": event.event_name,
    }
    optional = {
        "uid": _text(attributes.get("audit.event.id")),
        "correlation_uid": _text(attributes.get("audit.request.id")),
        "tenant_uid": _text(attributes.get("tenant.id")),
    }
    metadata.update({key: value for key, value in optional.items() if value})
    seq = attributes.get("audit.seq")
    if isinstance(seq, int) and not isinstance(seq, bool):
        metadata["sequence"] = seq
    if event.observed_timestamp_ns:
        metadata["logged_time"] = event.observed_timestamp_ns // 1_000_000
    return metadata


def _severity(severity_number: int, outcome: str) -> dict[str, Any]:
    """From the record's severity number; from the outcome when the producer set none."""
    if severity_number >= _FATAL[0]:
        return {"severity_id": _FATAL[1], "severity": _FATAL[2]}
    for lowest, uid, name in _SEVERITY:
        if severity_number >= lowest:
            return {"severity_id": uid, "severity": name}
    uid, name = _OUTCOME_SEVERITY.get(outcome, (0, "Unknown"))
    return {"severity_id": uid, "severity": name}


def _status(outcome: str, kind: OcsfClass, attributes: Mapping[str, object]) -> dict[str, Any]:
    if kind.failed or outcome in ("failure", "error"):
        status: dict[str, Any] = {"status_id": 2, "status": "Failure"}
    elif outcome == "success":
        status = {"status_id": 1, "status": "Success"}
    else:
        status = {"status_id": 0, "status": "Unknown"}
    if outcome:
        status["status_detail"] = outcome
    code = attributes.get("http.response.status_code")
    if isinstance(code, int):
        status["status_code"] = str(code)
    return status


def _actor(attributes: Mapping[str, object]) -> dict[str, Any]:
    user_id = _text(attributes.get("user.id"))
    if user_id:
        user: dict[str, Any] = {"uid": user_id, "type_id": 1, "type": "User"}
        tenant = _text(attributes.get("tenant.id"))
        if tenant:
            user["org"] = {"uid": tenant}
    else:
        user = {"name": "anonymous", "type_id": 0, "type": "Unknown"}
    actor: dict[str, Any] = {"user": user}
    session = _text(attributes.get("session.id"))
    if session:
        actor["session"] = {"uid": session}
    return actor


def _src_endpoint(
    attributes: Mapping[str, object], resource: Mapping[str, object]
) -> dict[str, Any]:
    """The client; for events outside a request (jobs), the service that recorded them."""
    address = _text(attributes.get("client.address"))
    if address:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            return {"name": address}
        return {"ip": address}
    return {"svc_name": _text(resource.get("service.name")) or "unknown_service"}


def _http(attributes: Mapping[str, object]) -> dict[str, Any]:
    method = _text(attributes.get("http.request.method"))
    path = _text(attributes.get("url.path"))
    if not (method or path):
        return {}
    request: dict[str, Any] = {}
    if method:
        request["http_method"] = method
    if path:
        url: dict[str, Any] = {"path": path}
        query = _text(attributes.get("url.query"))
        if query:
            url["query_string"] = query
        request["url"] = url
    for source, target in (("user_agent.original", "user_agent"), ("audit.request.id", "uid")):
        value = _text(attributes.get(source))
        if value:
            request[target] = value
    fields: dict[str, Any] = {"http_request": request}
    code = attributes.get("http.response.status_code")
    if isinstance(code, int):
        fields["http_response"] = {"code": code}
    return fields


def _service(resource: Mapping[str, object]) -> dict[str, Any]:
    service = {"name": _text(resource.get("service.name")) or "unknown_service"}
    version = _text(resource.get("service.version"))
    if version:
        service["version"] = version
    return service


def _class_fields(
    kind: OcsfClass, action: str, attributes: Mapping[str, object], resource: Mapping[str, object]
) -> dict[str, Any]:
    """What each class adds: the API call, the authenticated or changed user, the service."""
    if kind.class_uid == 3002:
        return {"user": _login_subject(attributes), "service": _service(resource)}
    if kind.class_uid == 3001:
        return {"user": _changed_user(action, attributes)}
    route = _text(attributes.get("http.route")) or _text(attributes.get("url.path"))
    method = _text(attributes.get("http.request.method"))
    operation = f"{method} {route}" if action == "http.request" and method else action
    api: dict[str, Any] = {"operation": operation, "service": _service(resource)}
    request_id = _text(attributes.get("audit.request.id"))
    if request_id:
        api["request"] = {"uid": request_id}
    fields: dict[str, Any] = {"api": api}
    resource_id = _text(attributes.get("audit.resource.id"))
    if resource_id:
        target = {"uid": resource_id}
        resource_type = _text(attributes.get("audit.resource.type"))
        if resource_type:
            target["type"] = resource_type
        fields["resources"] = [target]
    return fields


def _login_subject(attributes: Mapping[str, object]) -> dict[str, Any]:
    """Who logged in (the actor), or who a failed login tried to be, as the app recorded it."""
    user_id = _text(attributes.get("user.id"))
    if user_id:
        return {"uid": user_id, "type_id": 1, "type": "User"}
    details = _json(attributes.get("audit.details"))
    if isinstance(details, dict):
        for key in _LOGIN_NAME_KEYS:
            name = details.get(key)
            if isinstance(name, str) and name:
                return {"name": name}
    if _text(attributes.get("audit.resource.type")) in ACCOUNT_RESOURCES:
        resource_id = _text(attributes.get("audit.resource.id"))
        if resource_id:
            return {"uid": resource_id}
    return {"name": "unknown", "type_id": 0, "type": "Unknown"}


def _changed_user(action: str, attributes: Mapping[str, object]) -> dict[str, Any]:
    """The account changed: the event's user resource, else the actor (a change to oneself)."""
    resource_id = _text(attributes.get("audit.resource.id"))
    resource_type = _text(attributes.get("audit.resource.type"))
    account_action = action.partition(".")[0] in ACCOUNT_RESOURCES and not resource_type
    if resource_id and (resource_type in ACCOUNT_RESOURCES or account_action):
        return {"uid": resource_id}
    user_id = _text(attributes.get("user.id"))
    if user_id:
        return {"uid": user_id}
    return {"name": "unknown", "type_id": 0, "type": "Unknown"}


def _json(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _plain(value: object) -> object:
    """``value`` with bytes as base64 text, so the OCSF event is JSON."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


def _unmapped(event: ArchivedEvent) -> dict[str, Any]:
    attributes = {
        key: _plain(_json(value) if key in _JSON_ATTRIBUTES else value)
        for key, value in event.attributes.items()
        if key not in _MAPPED
    }
    resource = {
        key: _plain(value) for key, value in event.resource.items() if key not in _MAPPED_RESOURCE
    }
    unmapped: dict[str, Any] = {}
    for key, value in (
        ("attributes", attributes),
        ("resource", resource),
        ("trace_id", event.trace_id),
        ("span_id", event.span_id),
    ):
        if value:
            unmapped[key] = value
    return unmapped
