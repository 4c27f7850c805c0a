"""One export of spool lines over OTLP, and what the answer means for those lines.

Every answer falls in one of three outcomes:

* :class:`Accepted` (HTTP 2xx, gRPC OK): the lines are the collector's; a partial-success
  answer says how many records it still threw away (counted, never retried: resending the
  same data would be refused the same way);
* :class:`Retry` (connection errors, timeouts, HTTP 408/429/5xx, the retryable gRPC codes,
  and the answers that say the *setup* is wrong rather than the data: 401/403/404/405/407 and
  their gRPC twins): the same lines go again later, with ``Retry-After``/``RetryInfo`` honoured.
  An audit trail waits for a fixed token or route rather than throwing segments aside;
* :class:`Refused` (every other 4xx, gRPC INVALID_ARGUMENT and friends, or a line that is not
  OTLP JSON): the collector will never take these lines; the caller sets them aside.
"""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass
from typing import Any, Final, Protocol

import grpc  # type: ignore[import-untyped]
import requests
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from ._shipper_proto import to_protobuf
from ._shipper_target import OtlpTarget

# Answers about the setup, not the data: keep the data and wait for the setup to be fixed.
_RETRY_STATUSES: Final = frozenset({401, 403, 404, 405, 407, 408, 429})
_REFUSE_CODES: Final = frozenset(
    {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION}
)
_JSON_HEAD: Final = b'{"resourceLogs":['
_JSON_TAIL: Final = b"]}"
# A server asking for hours of silence is wrong; waiting that long would look like a hang.
MAX_RETRY_AFTER: Final = 300.0


class ExportError(Exception):
    """An export that did not succeed: the status (or the transport error) in one line."""


@dataclass(frozen=True)
class Accepted:
    rejected: int = 0
    """Records the collector accepted the request for but still threw away (partial success)."""
    message: str = ""


@dataclass(frozen=True)
class Retry:
    error: BaseException
    after: float | None = None
    """Seconds the server asked us to wait (``Retry-After``, gRPC ``RetryInfo``)."""


@dataclass(frozen=True)
class Refused:
    error: BaseException


Outcome = Accepted | Retry | Refused


class Sender(Protocol):
    def send(self, lines: list[bytes]) -> Outcome: ...
    def close(self) -> None: ...


def make_sender(target: OtlpTarget) -> Sender:
    """The sender speaking the target's protocol."""
    if target.protocol == "grpc":
        return GrpcSender(target)
    return HttpSender(target)


def json_body(lines: list[bytes]) -> bytes:
    """The lines as one OTLP/JSON request: their ``resourceLogs`` arrays joined, in order."""
    if len(lines) == 1:
        return lines[0]
    inner = []
    for line in lines:
        if line.startswith(_JSON_HEAD) and line.endswith(_JSON_TAIL):
            part = line[len(_JSON_HEAD) : -len(_JSON_TAIL)]
        else:  # not in the encoder's exact shape: go the long way
            text = json.dumps(json.loads(line)["resourceLogs"], separators=(",", ":"))
            part = text[1:-1].encode()
        if part:
            inner.append(part)
    return _JSON_HEAD + b",".join(inner) + _JSON_TAIL


def protobuf_request(lines: list[bytes]) -> ExportLogsServiceRequest:
    """The lines as one protobuf request."""
    return to_protobuf(json.loads(line) for line in lines)


class HttpSender:
    """OTLP/HTTP, protobuf or JSON, over one keep-alive session."""

    def __init__(self, target: OtlpTarget) -> None:
        self._target = target
        self._json = target.protocol == "http/json"
        self._session = requests.Session()
        self._session.headers.update(dict(target.headers))
        content_type = "application/json" if self._json else "application/x-protobuf"
        self._session.headers["Content-Type"] = content_type

    def send(self, lines: list[bytes]) -> Outcome:
        try:
            body = json_body(lines) if self._json else protobuf_request(lines).SerializeToString()
        except (ValueError, KeyError, TypeError) as error:  # JSON and Unicode errors included
            return Refused(ExportError(f"not an OTLP JSON logs request: {error}"))
        try:
            response = self._session.post(
                self._target.endpoint, data=body, timeout=self._target.timeout
            )
        except requests.RequestException as error:
            return Retry(error)
        status = response.status_code
        if 200 <= status < 300:
            return self._accepted(response.content)
        problem = ExportError(f"HTTP {status} from {self._target.endpoint}: {_snippet(response)}")
        if status in _RETRY_STATUSES or status >= 500 or status < 400:
            return Retry(problem, _retry_after(response.headers.get("Retry-After")))
        return Refused(problem)

    def _accepted(self, content: bytes) -> Accepted:
        # A malformed or empty answer to a 2xx still means accepted (the spec: full success).
        try:
            if self._json:
                partial = json.loads(content or b"{}").get("partialSuccess") or {}
                return Accepted(
                    int(partial.get("rejectedLogRecords", 0)), str(partial.get("errorMessage", ""))
                )
            answer = ExportLogsServiceResponse.FromString(content)
        except (ValueError, AttributeError, TypeError, DecodeError):
            return Accepted()
        return Accepted(
            answer.partial_success.rejected_log_records, answer.partial_success.error_message
        )

    def close(self) -> None:
        self._session.close()


def _snippet(response: requests.Response) -> str:
    return response.text[:200].strip() or response.reason or ""


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value) if value.isdigit() else _date_delay(value)
    except (TypeError, ValueError):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _date_delay(value: str) -> float:
    return email.utils.parsedate_to_datetime(value).timestamp() - time.time()


class GrpcSender:
    """OTLP/gRPC over one channel."""

    def __init__(self, target: OtlpTarget) -> None:
        self._target = target
        if target.insecure:
            self._channel = grpc.insecure_channel(target.endpoint)
        else:
            self._channel = grpc.secure_channel(target.endpoint, grpc.ssl_channel_credentials())
        self._stub: Any = logs_service_pb2_grpc.LogsServiceStub(self._channel)  # type: ignore[no-untyped-call]
        # gRPC metadata keys must be lowercase.
        self._metadata = tuple((name.lower(), value) for name, value in target.headers)

    def send(self, lines: list[bytes]) -> Outcome:
        try:
            request = protobuf_request(lines)
        except (ValueError, KeyError, TypeError) as error:
            return Refused(ExportError(f"not an OTLP JSON logs request: {error}"))
        try:
            answer = self._stub.Export(
                request, metadata=self._metadata, timeout=self._target.timeout
            )
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
            problem = ExportError(
                f"gRPC {code.name} from {self._target.endpoint}: "
                f"{error.details() if isinstance(error, grpc.Call) else error}"
            )
            if code in _REFUSE_CODES:
                return Refused(problem)
            return Retry(problem, _retry_info(error))
        partial = answer.partial_success
        return Accepted(partial.rejected_log_records, partial.error_message)

    def close(self) -> None:
        self._channel.close()


def _retry_info(error: grpc.RpcError) -> float | None:
    """The delay a ``google.rpc.RetryInfo`` in the error's trailers asks for, if any."""
    if not isinstance(error, grpc.Call):
        return None
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.RetryInfo()
                if detail.Unpack(info):
                    seconds = float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
                    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
        except DecodeError:
            return None
    return None
