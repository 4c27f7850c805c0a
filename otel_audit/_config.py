"""Audit configuration: one table of parameters, overridable from the environment.

Each field of :class:`AuditConfig` is one row: its name and type (the annotation), and in
:func:`param` its environment variable (``OTEL_AUDIT_<FIELD>`` unless named), its default
and its documentation. How an environment value is read and how an argument is checked
follow from the type (``bool``, ``int``, ``str``, ``str | None``, ``tuple[str, ...]``, a
``Literal`` of fixed values, a callable, a policy), plus a per-row check where a type is not
enough (a CIDR, a regex). Precedence is argument > environment > default. A malformed value
raises :class:`AuditConfigError` naming the variable or the field, so a typo fails at
start-up rather than silently auditing less.
"""

from __future__ import annotations

import ipaddress
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import Field, dataclass, field, fields
from functools import cache
from importlib import import_module
from typing import Any, Literal

from ._errors import AuditConfigError
from .policy import Policy, load_policy

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

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


class _Unset:
    """Marks a field the caller did not pass, so the environment may fill it."""

    def __repr__(self) -> str:
        return "<unset>"


# Typed ``Any`` so every field can default to it without widening its declared type.
_UNSET: Any = _Unset()


@dataclass(frozen=True)
class Param:
    """One configuration parameter: where it is read from, its default and what it means."""

    default: object
    doc: str
    env: str | None = None
    """The environment variable; ``OTEL_AUDIT_<FIELD>`` when None."""
    separator: str = ","
    """Between the items of a list in the environment."""
    check: Callable[[str, Any], Any] | None = None
    """Extra validation and normalisation of the typed value: ``(field, value) -> value``."""


def param(
    default: object,
    doc: str,
    *,
    env: str | None = None,
    separator: str = ",",
    check: Callable[[str, Any], Any] | None = None,
    secret: bool = False,
) -> Any:
    """A field of :class:`AuditConfig`: its row of the parameter table."""
    row = Param(default, doc, env, separator, check)
    return field(default=_UNSET, repr=not secret, metadata={"param": row})


def _urls(_name: str, urls: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(url.rstrip("/") or "/" for url in urls)


def _networks(_name: str, values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(str(parse_network(value)) for value in values)


def _regexes(name: str, patterns: tuple[str, ...]) -> tuple[str, ...]:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise AuditConfigError(f"{name}: {pattern!r} is not a valid regex: {exc}") from exc
    return patterns


def _algorithms(name: str, algorithms: tuple[str, ...]) -> tuple[str, ...]:
    from jwt.algorithms import get_default_algorithms

    if not algorithms:
        raise AuditConfigError(f"{name} must name at least one algorithm")
    known = set(get_default_algorithms()) - {"none"}
    unknown = [item for item in algorithms if item not in known]
    if unknown:
        raise AuditConfigError(f"{name}: {unknown} unknown or unsafe; use some of {sorted(known)}")
    return algorithms


def _at_least_64(name: str, value: int) -> int:
    if value < 64:
        raise AuditConfigError(f"{name} must be an integer >= 64, got {value!r}")
    return value


@dataclass(frozen=True)
class AuditConfig:
    """How otel_audit audits an application (see each field, or the README's table)."""

    excluded_urls: tuple[str, ...] = param(
        DEFAULT_EXCLUDED_URLS,
        "Paths never audited; an entry matches the path itself and everything below it.",
        check=_urls,
    )
    trusted_proxies: tuple[str, ...] = param(
        (),
        "CIDRs of reverse proxies whose X-Forwarded-For/Forwarded headers are believed; "
        "otherwise client.address is the socket peer.",
        check=_networks,
    )
    redaction: bool = param(
        True,
        "Mask secrets and PII in free-form values before anything leaves the process "
        "(false leaves the collector as the only PII layer).",
    )
    redact_keys: tuple[str, ...] = param(
        (), "Extra key names (besides password, token, secret, ...) whose values are masked."
    )
    redact_patterns: tuple[str, ...] = param(
        (),
        "Extra regular expressions whose matches are masked (env: separated by ';;').",
        separator=";;",
        check=_regexes,
    )
    pseudonymization_key: str | None = param(
        None,
        "Key for HMAC-SHA256 pseudonymisation of user.id, tenant.id and session.id; "
        "without one they are recorded as given.",
        secret=True,
    )
    jwt_key: str | None = param(
        None,
        "HMAC secret or PEM public key that verifies bearer JWTs; without it JWTs are ignored "
        "(unverified tokens never name an actor).",
        secret=True,
    )
    jwt_algorithms: tuple[str, ...] = param(
        ("HS256",), "Algorithms accepted when verifying JWTs (none is refused).", check=_algorithms
    )
    jwt_audience: str | None = param(None, "Required aud claim, when set.")
    jwt_issuer: str | None = param(None, "Required iss claim, when set.")
    jwt_subject_claim: str = param("sub", "Claim that holds the actor id.")
    jwt_tenant_claim: str = param("tenant_id", "Claim that holds the tenant id.")
    jwt_roles_claim: str = param("roles", "Claim with the roles (list or space-separated).")
    jwt_scopes_claim: str = param(
        "scope", "Claim with the scopes (list or space-separated); scp is read too."
    )
    actor_resolver: Callable[..., Any] | None = param(
        None,
        "Callable (HTTPConnection) -> Actor | None (may be async), consulted after set_actor() "
        "and before JWTs (env: an import path module:function).",
    )
    capture_headers: tuple[str, ...] = param(
        (), "Request headers recorded as http.request.header.<name>, always redacted."
    )
    archive_dir: str = param(
        "otel-audit-archive",
        "Where the library's own local archive (OTLP JSON lines) is written when no logger "
        "provider or OTLP endpoint is configured.",
    )
    max_attribute_length: int = param(
        4096,
        "Longest string attribute kept; longer values are cut with a truncation marker.",
        check=_at_least_64,
    )
    policy: Policy | str | os.PathLike[str] | None = param(
        None,
        "Audit policy: a Policy, or the path of a YAML policy file (loaded and checked at "
        "once; the field then holds the Policy); unset means the shipped default "
        "(otel_audit/policies/default.yaml).",
        env="OTEL_AUDIT_POLICY_FILE",
    )
    max_body_size: int = param(
        8192,
        "Bytes of a request or response body kept for the policy's request and "
        "request_response levels; a longer body is recorded as truncated, never parsed.",
        check=_at_least_64,
    )
    transport: Literal["spool", "otlp", "sdk"] | None = param(
        None,
        "How audit records leave the process: spool (a durable local spool of OTLP JSON, read "
        "by a same-host collector; with nothing reading it, the local archive), otlp (the "
        "spool shipped by the library to the OTEL_EXPORTER_OTLP_* endpoint), sdk (the "
        "application's LoggerProvider). Unset: sdk when instrument_app() is given a "
        "logger_provider, otlp when an OTLP endpoint is set, else spool.",
    )
    spool_dir: str | None = param(
        None,
        "The spool's folder (one subfolder per process); unset: archive_dir, so that with "
        "nothing consuming it the spool is the library's local archive.",
    )
    chain_key: str | None = param(
        None,
        "Key for the events' hash chain (keyed HMAC-SHA256); without one the chain is a plain "
        "SHA-256 chain, which detects damage and gaps but not a rewrite by whoever holds the "
        "trail.",
        secret=True,
    )
    span_events: bool = param(True, "Also add each audit event to the server span.")
    span_event_detail: Literal["full", "minimal"] = param(
        "minimal",
        "minimal: the span event carries the event id, action, outcome, user and tenant, enough "
        "to find the record; full: it repeats every attribute of the record.",
    )
    fail_closed: bool = param(
        False,
        "When an audit event cannot be emitted, answer 503 or raise from record() instead of "
        "counting a drop and carrying on.",
    )

    def __post_init__(self) -> None:
        kinds = _kinds()
        for spec in fields(self):
            row = _row(spec)
            value = getattr(self, spec.name)
            if value is _UNSET:
                raw = os.environ.get(env_name(spec))
                value = row.default if raw is None else _parse(spec, kinds[spec.name], raw)
            object.__setattr__(self, spec.name, _normalise(spec, kinds[spec.name], value))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AuditConfig:
        """Build a config from ``env`` (default ``os.environ``) alone."""
        if env is None:
            return cls()
        kinds = _kinds()
        values: dict[str, Any] = {
            spec.name: _parse(spec, kinds[spec.name], env[env_name(spec)])
            if env_name(spec) in env
            else _row(spec).default
            for spec in fields(cls)
        }
        return cls(**values)


def _row(spec: Field[Any]) -> Param:
    row: Param = spec.metadata["param"]
    return row


def env_name(spec: Field[Any]) -> str:
    """The environment variable of a field."""
    return _row(spec).env or f"OTEL_AUDIT_{spec.name.upper()}"


def parameters() -> list[tuple[str, str, object, str]]:
    """The table: (field, environment variable, default, doc) for every parameter."""
    return [
        (spec.name, env_name(spec), _row(spec).default, _row(spec).doc)
        for spec in fields(AuditConfig)
    ]


# --- casting, driven by the field's type -------------------------------------------------------

_Kind = tuple[str, tuple[str, ...]]
"""(kind, choices): bool, int, str, optional, list, choice, optional_choice, callable, policy."""


@cache
def _kinds() -> dict[str, _Kind]:
    hints = typing.get_type_hints(AuditConfig)
    return {name: _kind_of(hint) for name, hint in hints.items()}


def _kind_of(hint: Any) -> _Kind:  # noqa: PLR0911 - one return per kind
    origin = typing.get_origin(hint)
    arguments = typing.get_args(hint)
    if hint is bool or hint is int or hint is str:
        return hint.__name__, ()
    if origin is Literal:
        return "choice", tuple(str(argument) for argument in arguments)
    if origin is tuple:
        return "list", ()
    if origin in (typing.Union, types.UnionType):
        present = [argument for argument in arguments if argument is not type(None)]
        if present == [str]:
            return "optional", ()
        if Policy in present:
            return "policy", ()
        if len(present) == 1 and typing.get_origin(present[0]) is Literal:
            return "optional_choice", tuple(str(a) for a in typing.get_args(present[0]))
        return "callable", ()
    raise TypeError(f"no casting rule for {hint!r}")  # a new field of a new type needs one


def _parse(spec: Field[Any], kind: _Kind, raw: str) -> object:  # noqa: PLR0911 - one per kind
    """An environment value as the field's type, or an error naming the variable."""
    variable = env_name(spec)
    name = kind[0]
    if name == "bool":
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise AuditConfigError(f"{variable}={raw!r} is not a boolean (use true or false)")
    if name == "int":
        try:
            return int(raw.strip())
        except ValueError:
            raise AuditConfigError(f"{variable}={raw!r} is not an integer") from None
    if name == "list":
        separator = _row(spec).separator
        return tuple(part.strip() for part in raw.split(separator) if part.strip())
    if name == "callable":
        return _import_callable(raw, variable)
    if name in ("optional", "policy", "optional_choice"):
        return raw.strip() or None
    return raw.strip()


def _normalise(spec: Field[Any], kind: _Kind, value: object) -> object:
    """Check an argument or parsed environment value against the field's type."""
    name, choices = kind
    where = spec.name
    if name == "list":
        value = _as_tuple(where, value)
    elif name == "bool" and not isinstance(value, bool):
        raise AuditConfigError(f"{where} must be a bool, got {value!r}")
    elif name == "int" and (not isinstance(value, int) or isinstance(value, bool)):
        raise AuditConfigError(f"{where} must be an integer, got {value!r}")
    elif name == "str" and not (isinstance(value, str) and value):
        raise AuditConfigError(f"{where} must be a non-empty string, got {value!r}")
    elif name == "optional" and value is not None and not isinstance(value, str):
        raise AuditConfigError(f"{where} must be a string or None, got {type(value).__name__}")
    elif name == "optional_choice" and value is not None and value not in choices:
        raise AuditConfigError(
            f"{where} must be one of {sorted(choices)} or unset, got {value!r} ({env_name(spec)})"
        )
    elif name == "choice" and value not in choices:
        raise AuditConfigError(
            f"{where} must be one of {sorted(choices)}, got {value!r} ({env_name(spec)})"
        )
    elif name == "callable" and value is not None and not callable(value):
        raise AuditConfigError(f"{where} must be callable, got {value!r}")
    elif name == "policy" and value is not None:
        if not isinstance(value, Policy | str | os.PathLike):
            raise AuditConfigError(f"{where} must be a Policy or a YAML file path, got {value!r}")
        value = load_policy(value)  # validated now: a bad policy fails at start-up
    check = _row(spec).check
    return check(where, value) if check is not None else value


def _as_tuple(where: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        raise AuditConfigError(f"{where} takes a sequence of strings, not one string")
    if not isinstance(value, Iterable):
        raise AuditConfigError(f"{where} takes a sequence, got {value!r}")
    return tuple(item if isinstance(item, str) else str(item) for item in value)


def _import_callable(path: str, variable: str) -> Callable[..., Any]:
    module_name, _, attribute = path.strip().partition(":")
    if not module_name or not attribute:
        raise AuditConfigError(f"{variable}={path!r} must look like 'module:callable'")
    try:
        target = import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise AuditConfigError(f"{variable}={path!r} cannot be imported: {exc}") from exc
    if not callable(target):
        raise AuditConfigError(f"{variable}={path!r} is not callable")
    return target


def parse_network(value: object) -> IPNetwork:
    """An address or CIDR as a network (``10.0.0.1`` is ``10.0.0.1/32``)."""
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    try:
        return ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError:
        raise AuditConfigError(
            f"trusted_proxies: {value!r} is not an IP address or CIDR (OTEL_AUDIT_TRUSTED_PROXIES)"
        ) from None
