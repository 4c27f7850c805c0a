"""Where the shipper sends: the OTLP logs endpoint named by the standard environment variables.

Precedence follows the OpenTelemetry exporter specification: a ``..._LOGS_...`` variable wins
over its generic ``OTEL_EXPORTER_OTLP_...`` twin, which wins over the default.

* endpoint: ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`` is used as is; ``OTEL_EXPORTER_OTLP_ENDPOINT``
  gets ``/v1/logs`` appended for HTTP; gRPC takes ``host:port`` from either (an ``http``
  scheme means plaintext, ``https`` TLS, no scheme asks ``..._INSECURE``);
* protocol: ``http/protobuf`` (default), ``http/json`` or ``grpc``;
* headers: ``k=v,k2=v2``, keys and values URL-decoded;
* timeout: milliseconds (default 10000);
* insecure: ``true``/``false`` (gRPC without a scheme only).

A bad value raises :class:`OtlpConfigError` naming the variable: a shipper that silently
sends the audit trail somewhere else, or nowhere, is worse than one that refuses to start.
"""

from __future__ import annotations

import math
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

Protocol = Literal["http/protobuf", "http/json", "grpc"]
PROTOCOLS: Final[tuple[Protocol, ...]] = ("http/protobuf", "http/json", "grpc")
DEFAULT_TIMEOUT_MS: Final = 10_000.0
_PREFIX: Final = "OTEL_EXPORTER_OTLP_"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


class OtlpConfigError(ValueError):
    """An ``OTEL_EXPORTER_OTLP_*`` variable holds a value the shipper cannot use."""

    def __init__(self, variable: str, value: str, problem: str) -> None:
        super().__init__(f"{variable}={value!r}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class OtlpTarget:
    """One OTLP logs endpoint and how to talk to it."""

    protocol: Protocol
    """Wire format: ``http/protobuf``, ``http/json`` or ``grpc``."""
    endpoint: str
    """The full URL for HTTP (``.../v1/logs``); ``host:port`` for gRPC."""
    headers: tuple[tuple[str, str], ...] = ()
    """Extra request headers (gRPC metadata), e.g. an authorization token."""
    timeout: float = DEFAULT_TIMEOUT_MS / 1000
    """Seconds one export may take before it counts as failed (and is retried)."""
    insecure: bool = False
    """Plaintext (no TLS): an ``http://`` URL, or a gRPC target asked to be insecure."""

    def __repr__(self) -> str:
        # Headers usually carry a credential: never print their values.
        names = ", ".join(name for name, _ in self.headers)
        return (
            f"OtlpTarget(protocol={self.protocol!r}, endpoint={self.endpoint!r}, "
            f"headers=[{names}], timeout={self.timeout!r}, insecure={self.insecure!r})"
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OtlpTarget | None:
        """The target the environment names, or None when no endpoint is set."""
        environ = os.environ if env is None else env

        def lookup(name: str) -> tuple[str, str] | None:
            for variable in (f"{_PREFIX}LOGS_{name}", f"{_PREFIX}{name}"):
                value = environ.get(variable, "").strip()
                if value:
                    return variable, value
            return None

        protocol = _protocol(lookup("PROTOCOL"))
        specific = f"{_PREFIX}LOGS_ENDPOINT"
        endpoint = lookup("ENDPOINT")
        if endpoint is None:
            return None
        variable, url = endpoint
        if protocol == "grpc":
            address, insecure = _grpc_address(variable, url, lookup("INSECURE"))
        else:
            address = url if variable == specific else _append_logs_path(url)
            insecure = _http_url(variable, address)
        return cls(
            protocol=protocol,
            endpoint=address,
            headers=_headers(lookup("HEADERS")),
            timeout=_timeout(lookup("TIMEOUT")),
            insecure=insecure,
        )


def _protocol(setting: tuple[str, str] | None) -> Protocol:
    if setting is None:
        return "http/protobuf"
    variable, value = setting
    if value not in PROTOCOLS:
        raise OtlpConfigError(variable, value, f"expected one of {', '.join(PROTOCOLS)}")
    return value  # checked against PROTOCOLS above


def _append_logs_path(url: str) -> str:
    # The spec: the generic endpoint is a base URL; the signal path goes after its path.
    return url.rstrip("/") + "/v1/logs"


def _http_url(variable: str, url: str) -> bool:
    """Check an HTTP endpoint URL; True when it is plaintext."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as error:
        raise OtlpConfigError(variable, url, f"not a URL ({error})") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise OtlpConfigError(variable, url, "expected an http:// or https:// URL with a host")
    return parts.scheme == "http"


def _grpc_address(
    variable: str, url: str, insecure_setting: tuple[str, str] | None
) -> tuple[str, bool]:
    """``host:port`` and plaintext-or-not for a gRPC endpoint."""
    has_scheme = "://" in url
    try:
        parts = urllib.parse.urlsplit(url if has_scheme else f"//{url}")
        port = parts.port
    except ValueError as error:
        raise OtlpConfigError(variable, url, f"not a host:port or URL ({error})") from None
    if has_scheme and parts.scheme not in _DEFAULT_PORTS:
        raise OtlpConfigError(variable, url, "expected http://, https:// or host:port")
    if not parts.hostname:
        raise OtlpConfigError(variable, url, "no host")
    if has_scheme:
        insecure = parts.scheme == "http"
    elif insecure_setting is None:
        insecure = False
    else:
        insecure = _boolean(*insecure_setting)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port if port is not None else 4317}", insecure


def _boolean(variable: str, value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise OtlpConfigError(variable, value, "expected true or false")
    return lowered == "true"


def _headers(setting: tuple[str, str] | None) -> tuple[tuple[str, str], ...]:
    if setting is None:
        return ()
    variable, value = setting
    headers: list[tuple[str, str]] = []
    for item in value.split(","):
        if not item.strip():
            continue
        name, equals, content = item.partition("=")
        name = urllib.parse.unquote(name.strip())
        if not equals or not name:
            # Say which entry, not its value: it may hold a credential.
            raise OtlpConfigError(
                variable, "<hidden>", f"entry {len(headers) + 1} is not key=value"
            )
        headers.append((name, urllib.parse.unquote(content.strip())))
    return tuple(headers)


def _timeout(setting: tuple[str, str] | None) -> float:
    if setting is None:
        return DEFAULT_TIMEOUT_MS / 1000
    variable, value = setting
    try:
        milliseconds = float(value)
    except ValueError:
        raise OtlpConfigError(variable, value, "expected milliseconds (a number)") from None
    if not math.isfinite(milliseconds) or milliseconds <= 0:
        raise OtlpConfigError(variable, value, "expected a positive number of milliseconds")
    return milliseconds / 1000
