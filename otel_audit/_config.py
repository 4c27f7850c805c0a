"""Audit configuration: one frozen dataclass, overridable from ``OTEL_AUDIT_*`` variables.

Precedence is argument > environment > default. A field left out of the constructor reads
``OTEL_AUDIT_<FIELD>`` (upper-cased field name) when it is set; malformed values raise
:class:`AuditConfigError` naming the variable, so a typo fails at start-up rather than
silently auditing less.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from importlib import import_module
from typing import Any

from ._errors import AuditConfigError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class _Unset:
    """Marks a field the caller did not pass, so the environment may fill it."""

    def __repr__(self) -> str:
        return "<unset>"


# Typed ``Any`` so every field can default to it without widening its declared type.
_UNSET: Any = _Unset()

SPAN_EVENT_DETAILS = frozenset({"full", "minimal"})

DEFAULT_EXCLUDED_URLS = (
    "/health",
    "/healthz",
    "/livez",
    "/readyz",
    "/ping",
    "/metrics",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/favicon.ico",
)


@dataclass(frozen=True)
class AuditConfig:
    """How otel_audit audits an application. Every field has an ``OTEL_AUDIT_<FIELD>`` twin."""

    excluded_urls: tuple[str, ...] = _UNSET
    """Paths never audited; an entry matches the path itself and everything below it.
    Env: comma-separated. Default: health, metrics, docs, redoc and openapi paths."""

    trusted_proxies: tuple[str, ...] = _UNSET
    """CIDRs of reverse proxies whose ``X-Forwarded-For``/``Forwarded`` headers are believed.
    Env: comma-separated CIDRs or addresses. Default: none (the socket peer is the client)."""

    redaction: bool = _UNSET
    """Mask secrets and PII in free-form values before anything leaves the process.
    Env: ``true``/``false``. Default: on."""

    redact_keys: tuple[str, ...] = _UNSET
    """Extra key names (besides password, token, secret, ...) whose values are always masked.
    Env: comma-separated."""

    redact_patterns: tuple[str, ...] = _UNSET
    """Extra regular expressions whose matches are masked in free-form values.
    Env: separated by ``;;`` (regexes often contain commas)."""

    pseudonymization_key: str | None = field(default=_UNSET, repr=False)
    """Key for HMAC-SHA256 pseudonymisation of ``user.id`` (``hmac-sha256:<hex>``).
    Without a key user ids are recorded as given. Env: the key itself."""

    jwt_key: str | None = field(default=_UNSET, repr=False)
    """Key that verifies bearer JWTs (HMAC secret or PEM public key). Unverified tokens never
    name an actor; without a key, JWTs are ignored."""

    jwt_algorithms: tuple[str, ...] = _UNSET
    """Algorithms accepted when verifying JWTs. Env: comma-separated. Default: HS256."""

    jwt_audience: str | None = _UNSET
    """Required ``aud`` claim, when set."""

    jwt_issuer: str | None = _UNSET
    """Required ``iss`` claim, when set."""

    jwt_subject_claim: str = _UNSET
    """Claim that holds the actor id. Default: ``sub``."""

    jwt_tenant_claim: str = _UNSET
    """Claim that holds the tenant id. Default: ``tenant_id``."""

    jwt_roles_claim: str = _UNSET
    """Claim that holds the roles (list or space-separated string). Default: ``roles``."""

    jwt_scopes_claim: str = _UNSET
    """Claim that holds the scopes (list or space-separated string). Default: ``scope``."""

    actor_resolver: Callable[..., Any] | None = _UNSET
    """Callable ``(HTTPConnection) -> Actor | None`` (may be async) consulted after
    :func:`set_actor` and before JWTs. Env: an import path ``package.module:function``."""

    capture_headers: tuple[str, ...] = _UNSET
    """Request headers recorded as ``http.request.header.<name>`` (always redacted).
    Env: comma-separated. Default: none."""

    archive_dir: str = _UNSET
    """Where the embedded exporter writes OTLP JSON lines when no OTLP endpoint is configured.
    Default: ``./otel-audit-archive``."""

    max_attribute_length: int = _UNSET
    """Longest string attribute value kept; longer values are cut with a truncation marker.
    Default: 4096."""

    span_events: bool = _UNSET
    """Also add each audit event to the server span as a span event. Default: on."""

    span_event_detail: str = _UNSET
    """``full``: the span event repeats every attribute of the log record (the default).
    ``minimal``: only the event id, action, outcome, user and tenant, which is enough to find
    the log record; the SDK cleans and encodes each span-event attribute again, so this costs
    less per request."""

    fail_closed: bool = _UNSET
    """When an audit event cannot be emitted, fail the request (HTTP 503) or raise from
    :func:`record` instead of counting a drop and carrying on. Default: off."""

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if value is _UNSET:
                value = _from_env(spec.name)
            object.__setattr__(self, spec.name, _normalise(spec.name, value))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AuditConfig:
        """Build a config from ``env`` (default ``os.environ``) alone."""
        if env is None:
            return cls()
        values = {
            spec.name: _parse(spec.name, env[_env_name(spec.name)])
            if _env_name(spec.name) in env
            else _DEFAULTS[spec.name]
            for spec in fields(cls)
        }
        return cls(**values)  # type: ignore[arg-type]


def _env_name(field_name: str) -> str:
    return f"OTEL_AUDIT_{field_name.upper()}"


def _from_env(field_name: str) -> object:
    raw = os.environ.get(_env_name(field_name))
    if raw is None:
        return _DEFAULTS[field_name]
    return _parse(field_name, raw)


def _split(raw: str, separator: str = ",") -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(separator) if part.strip())


def _parse_bool(raw: str, field_name: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise AuditConfigError(f"{_env_name(field_name)}={raw!r} is not a boolean (use true or false)")


def _parse(field_name: str, raw: str) -> object:
    kind = _KINDS[field_name]
    if kind == "bool":
        return _parse_bool(raw, field_name)
    if kind == "int":
        try:
            return int(raw.strip())
        except ValueError:
            raise AuditConfigError(f"{_env_name(field_name)}={raw!r} is not an integer") from None
    if kind == "list":
        return _split(raw)
    if kind == "patterns":
        return _split(raw, ";;")
    if kind == "callable":
        return _import_callable(raw, field_name)
    return raw.strip() or None if kind == "optional" else raw.strip()


def _import_callable(path: str, field_name: str) -> Callable[..., Any]:
    module_name, _, attribute = path.strip().partition(":")
    if not module_name or not attribute:
        raise AuditConfigError(f"{_env_name(field_name)}={path!r} must look like 'module:callable'")
    try:
        target = import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise AuditConfigError(
            f"{_env_name(field_name)}={path!r} cannot be imported: {exc}"
        ) from exc
    if not callable(target):
        raise AuditConfigError(f"{_env_name(field_name)}={path!r} is not callable")
    return target


def parse_network(value: object) -> IPNetwork:
    """An address or CIDR as a network (``10.0.0.1`` is ``10.0.0.1/32``)."""
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    try:
        return ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError:
        variable = _env_name("trusted_proxies")
        raise AuditConfigError(
            f"trusted_proxies: {value!r} is not an IP address or CIDR ({variable})"
        ) from None


def _normalise(field_name: str, value: object) -> object:
    """Coerce an argument or parsed env value to the field's type, or explain why not."""
    kind = _KINDS[field_name]
    if field_name == "trusted_proxies":
        return tuple(str(parse_network(item)) for item in _as_tuple(field_name, value))
    if kind in {"list", "patterns"}:
        items = _as_tuple(field_name, value)
        if kind == "patterns":
            for pattern in items:
                _check_regex(pattern)
        if field_name == "excluded_urls":
            return tuple(item.rstrip("/") or "/" for item in items)
        if field_name == "jwt_algorithms":
            _check_algorithms(items)
        return items
    if kind == "bool" and not isinstance(value, bool):
        raise AuditConfigError(f"{field_name} must be a bool, got {value!r}")
    if kind == "int" and (not isinstance(value, int) or isinstance(value, bool) or value < 64):
        raise AuditConfigError(f"{field_name} must be an integer >= 64, got {value!r}")
    if kind == "callable" and value is not None and not callable(value):
        raise AuditConfigError(f"{field_name} must be callable, got {value!r}")
    if kind == "optional" and value is not None and not isinstance(value, str):
        raise AuditConfigError(f"{field_name} must be a string or None, got {type(value).__name__}")
    if kind == "str" and not (isinstance(value, str) and value):
        raise AuditConfigError(f"{field_name} must be a non-empty string, got {value!r}")
    if field_name == "span_event_detail" and value not in SPAN_EVENT_DETAILS:
        raise AuditConfigError(
            f"span_event_detail must be one of {sorted(SPAN_EVENT_DETAILS)}, got {value!r}"
            f" ({_env_name(field_name)})"
        )
    return value


def _check_algorithms(algorithms: tuple[str, ...]) -> None:
    from jwt.algorithms import get_default_algorithms

    if not algorithms:
        raise AuditConfigError("jwt_algorithms must name at least one algorithm")
    known = set(get_default_algorithms()) - {"none"}
    unknown = [name for name in algorithms if name not in known]
    if unknown:
        raise AuditConfigError(
            f"jwt_algorithms: {unknown} unknown or unsafe; use some of {sorted(known)}"
        )


def _as_tuple(field_name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        raise AuditConfigError(f"{field_name} takes a sequence of strings, not one string")
    if not isinstance(value, Iterable):
        raise AuditConfigError(f"{field_name} takes a sequence, got {value!r}")
    return tuple(item if isinstance(item, str) else str(item) for item in value)


def _check_regex(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise AuditConfigError(f"redact_patterns: {pattern!r} is not a valid regex: {exc}") from exc


# One row per field: how its environment value is read, and its default.
_KINDS: dict[str, str] = {
    "excluded_urls": "list",
    "trusted_proxies": "list",
    "redaction": "bool",
    "redact_keys": "list",
    "redact_patterns": "patterns",
    "pseudonymization_key": "optional",
    "jwt_key": "optional",
    "jwt_algorithms": "list",
    "jwt_audience": "optional",
    "jwt_issuer": "optional",
    "jwt_subject_claim": "str",
    "jwt_tenant_claim": "str",
    "jwt_roles_claim": "str",
    "jwt_scopes_claim": "str",
    "actor_resolver": "callable",
    "capture_headers": "list",
    "archive_dir": "str",
    "max_attribute_length": "int",
    "span_events": "bool",
    "span_event_detail": "str",
    "fail_closed": "bool",
}

_DEFAULTS: dict[str, object] = {
    "excluded_urls": DEFAULT_EXCLUDED_URLS,
    "trusted_proxies": (),
    "redaction": True,
    "redact_keys": (),
    "redact_patterns": (),
    "pseudonymization_key": None,
    "jwt_key": None,
    "jwt_algorithms": ("HS256",),
    "jwt_audience": None,
    "jwt_issuer": None,
    "jwt_subject_claim": "sub",
    "jwt_tenant_claim": "tenant_id",
    "jwt_roles_claim": "roles",
    "jwt_scopes_claim": "scope",
    "actor_resolver": None,
    "capture_headers": (),
    "archive_dir": "otel-audit-archive",
    "max_attribute_length": 4096,
    "span_events": True,
    "span_event_detail": "full",
    "fail_closed": False,
}
