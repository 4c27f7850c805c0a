"""Reading an ASGI connection scope into a :class:`RequestContext`, once per request.

One pass over the headers picks out what the audit trail needs (request id, user agent,
forwarding headers, content type, captured headers). Values are kept as received: the
redaction stage masks them for every event alike.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from starlette.types import Scope

from ._compat import find_server_span
from ._config import parse_network
from ._context import RequestContext
from ._event import uuid7
from ._forwarding import client_address
from ._redaction import Finding
from ._scrub import Scrubber

if TYPE_CHECKING:
    from ._auditor import Auditor

_REQUEST_ID_RE: Final = re.compile(rb"[A-Za-z0-9._:+/=~-]{1,128}")
_KNOWN_METHODS: Final = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"}
)


class RequestReader:
    """Which requests are audited, and what is read from each (settings fixed per app)."""

    def __init__(self, auditor: Auditor) -> None:
        config = auditor.config
        self._auditor = auditor
        # Precomputed so the per-request check is one set lookup and one startswith call.
        self._excluded_exact = frozenset(config.excluded_urls)
        self._excluded_prefixes = tuple(f"{url}/" for url in config.excluded_urls)
        self._exclude_all = "/" in self._excluded_exact
        self._trusted_proxies = tuple(parse_network(cidr) for cidr in config.trusted_proxies)
        self._captured = {name.lower().encode("latin-1") for name in config.capture_headers}

    def excluded(self, scope: Scope) -> bool:
        """Whether the request's path is one the configuration never audits."""
        path: str = scope.get("path", "")
        return (
            self._exclude_all
            or path in self._excluded_exact
            or path.startswith(self._excluded_prefixes)
        )

    def read(self, scope: Scope) -> RequestContext:
        """The request context for ``scope`` (an HTTP request or a WebSocket handshake)."""
        request_id: str | None = None
        user_agent: bytes | None = None
        content_type: bytes | None = None
        forwarded_for: list[bytes] = []
        forwarded: list[bytes] = []
        captured: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                if request_id is None and _REQUEST_ID_RE.fullmatch(value):
                    request_id = _clean_request_id(value.decode("ascii"), self._auditor.scrubber)
            elif name == b"user-agent":
                user_agent = value
            elif name == b"content-type":
                content_type = value
            elif name == b"x-forwarded-for":
                forwarded_for.append(value)
            elif name == b"forwarded":
                forwarded.append(value)
            if name in self._captured:
                captured[f"http.request.header.{name.decode('latin-1')}"] = value.decode("latin-1")
        method = scope.get("method", "GET" if scope["type"] == "websocket" else "")
        query = scope.get("query_string", b"")
        return RequestContext(
            auditor=self._auditor,
            scope=scope,
            request_id=request_id or uuid7(),
            method=method if method in _KNOWN_METHODS else "_OTHER",
            path=scope.get("path", ""),
            client_address=client_address(
                scope.get("client"), forwarded_for, forwarded, self._trusted_proxies
            ),
            user_agent=user_agent.decode("latin-1") if user_agent is not None else None,
            server_span=find_server_span(scope),
            query=query.decode("latin-1") if query else None,
            captured_headers=captured,
            content_type=content_type.decode("latin-1") if content_type is not None else None,
        )


def _clean_request_id(candidate: str, scrubber: Scrubber) -> str | None:
    """The client's request id, unless it carries something redaction would mask.

    The id is echoed to the client and stored verbatim, so a card number or email sent as
    an X-Request-ID is replaced by a generated id rather than masked.
    """
    unused: list[Finding] = []
    return candidate if scrubber.text(candidate, "audit.request.id", unused) == candidate else None
