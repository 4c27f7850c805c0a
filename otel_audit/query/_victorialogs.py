"""VictoriaLogs as a source: LogsQL over its HTTP API, answers read line by line.

``victorialogs+http://HOST:PORT`` (or ``+https``, with an optional path prefix) names the
server. Queries go to ``/select/logsql/query`` (POST, form-encoded), follows to
``/select/logsql/tail``; each answer is JSON lines, read as they arrive. Statistics are
computed by the server (``stats by (...)`` pipes), pages by ``sort`` + ``limit``.

VictoriaLogs flattens an OTLP record (``app/vlinsert/opentelemetry``, v1.43): resource
attributes become stream fields (listed in ``_stream``) and fields, record attributes
fields, the body ``_msg``, the time ``_time`` (RFC 3339, trailing zeros trimmed), the
severity text ``severity``; every value is a string, arrays JSON text, empty values dropped.
:func:`row_to_event` maps a row back: known integer, float and array attributes of the
schema get their type back; the severity number is derived from its text.
"""

from __future__ import annotations

import calendar
import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any, Final

from ..archive import ArchivedEvent
from ._errors import BackendError, SourceError

SCHEME: Final = "victorialogs+"
_TIME: Final = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z")
_STREAM_KEY: Final = re.compile(r'(?:^\{|,)([^=,{}"]+)="(?:[^"\\]|\\.)*"')
_ROW_FIELDS: Final = frozenset(
    {"_time", "_stream", "_stream_id", "_msg", "event_name", "severity", "trace_id", "span_id"}
)
_SCOPE_PREFIX: Final = "scope."
_INTEGERS: Final = frozenset(
    {
        "audit.seq",
        "audit.transport.closed.last_seq",
        "audit.websocket.close.code",
        "audit.websocket.messages.received",
        "audit.websocket.messages.sent",
        "http.request.body.size",
        "http.response.body.size",
        "http.response.status_code",
    }
)
_FLOATS: Final = frozenset({"audit.websocket.duration_s"})
_ARRAYS: Final = frozenset({"user.roles", "audit.actor.scopes", "audit.redactions"})
_SEVERITIES: Final = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}
_SEVERITY: Final = re.compile(r"([A-Za-z]+)([234]?)")
_ERROR_TEXT: Final = 300


def base_url(spec: str) -> str:
    """``victorialogs+http://host:port[/prefix]`` -> ``http://host:port[/prefix]``."""
    if not spec.startswith(SCHEME):
        raise SourceError(f"{spec!r} is not a victorialogs+http(s):// URL")
    url = spec[len(SCHEME) :].rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SourceError(f"{spec!r}: expected victorialogs+http://HOST:PORT")
    return url


def parse_time(value: str) -> int:
    """VictoriaLogs' ``_time`` text as Unix nanoseconds."""
    match = _TIME.fullmatch(value)
    if match is None:
        raise BackendError(f"unexpected _time value {value!r} in VictoriaLogs' answer")
    seconds = calendar.timegm((*map(int, re.split(r"[-T:]", match[1])), 0, 0, 0))
    return seconds * 1_000_000_000 + int((match[2] or "").ljust(9, "0"))


def _typed(key: str, value: str) -> object:
    try:
        if key in _INTEGERS or key.endswith(".count"):
            return int(value)
        if key in _FLOATS:
            return float(value)
        if key in _ARRAYS and value.startswith("["):
            decoded = json.loads(value)
            return decoded if isinstance(decoded, list) else value
    except ValueError:
        pass
    return value


def _severity_number(text: str) -> int:
    match = _SEVERITY.fullmatch(text)
    if match is None or match[1].upper() not in _SEVERITIES:
        return 0
    return _SEVERITIES[match[1].upper()] + (int(match[2]) - 1 if match[2] else 0)


def row_to_event(row: Mapping[str, str]) -> ArchivedEvent:
    """One row of a VictoriaLogs answer as an :class:`ArchivedEvent` (``source`` empty)."""
    stream_keys = set(_STREAM_KEY.findall(row.get("_stream", ""))) - {"event_name"}
    resource: dict[str, object] = {}
    attributes: dict[str, object] = {}
    for key, value in row.items():
        if key in _ROW_FIELDS or key.startswith(_SCOPE_PREFIX):
            continue
        if key in stream_keys:
            resource[key] = value
        else:
            attributes[key] = _typed(key, value)
    severity = row.get("severity", "")
    if severity == "Unspecified":
        severity = ""
    nanos = parse_time(row.get("_time", ""))
    return ArchivedEvent(
        event_name=row.get("event_name", ""),
        timestamp_ns=nanos,
        observed_timestamp_ns=0,
        severity_number=_severity_number(severity),
        severity_text=severity,
        body=row.get("_msg"),
        attributes=attributes,
        resource=resource,
        scope_name=row.get("scope.name", ""),
        trace_id=row.get("trace_id", ""),
        span_id=row.get("span_id", ""),
        source="",
        scope_version=row.get("scope.version", ""),
    )


class LogsQLClient:
    """Runs LogsQL against one VictoriaLogs server; answers are streamed as JSON objects."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self.timeout = timeout

    def query(self, logsql: str, **params: str) -> Iterator[dict[str, Any]]:
        """The rows of ``/select/logsql/query``, one by one as they arrive."""
        return self._lines("/select/logsql/query", logsql, params, self.timeout)

    def tail(self, logsql: str, **params: str) -> Iterator[dict[str, Any]]:
        """The rows of ``/select/logsql/tail`` (live tailing), until the server closes."""
        return self._lines("/select/logsql/tail", logsql, params, None)

    def _lines(
        self, path: str, logsql: str, params: Mapping[str, str], timeout: float | None
    ) -> Iterator[dict[str, Any]]:
        body = urllib.parse.urlencode({"query": logsql, **params}).encode()
        # base_url() admitted http(s) URLs only.
        request = urllib.request.Request(self.url + path, data=body, method="POST")  # noqa: S310
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310
        except urllib.error.HTTPError as error:
            raise BackendError(
                f"VictoriaLogs at {self.url} answered {error.code}: {_error_text(error)}"
            ) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise BackendError(f"cannot reach VictoriaLogs at {self.url}: {reason}") from None
        with response:
            try:
                for line in response:
                    if line.strip():
                        yield _row(line)
            except (OSError, http.client.HTTPException) as error:  # reset, timeout, cut short
                raise BackendError(
                    f"VictoriaLogs at {self.url} broke off its answer: {error}"
                ) from None


def _row(line: bytes) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except ValueError:
        raise BackendError(f"VictoriaLogs answered a non-JSON line: {line[:80]!r}") from None
    if not isinstance(row, dict):
        raise BackendError(f"VictoriaLogs answered a line that is not an object: {line[:80]!r}")
    return row


def _error_text(error: urllib.error.HTTPError) -> str:
    try:
        text = error.read(4096).decode("utf-8", "replace")
    except OSError:
        text = ""
    text = " ".join(text.split()) or str(error.reason)
    return text if len(text) <= _ERROR_TEXT else text[: _ERROR_TEXT - 3] + "..."
