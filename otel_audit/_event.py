"""The audit event model: who (Actor), what (action), how it ended (Outcome).

An :class:`AuditEvent` is made in one place (``_build``), passes the processors
(``_processors``: policy, redaction, pseudonymisation) and is emitted by the emitter, the one
place that turns it into a log record and a span event.
"""

from __future__ import annotations

import enum
import random
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import Span
from opentelemetry.util.types import AttributeValue

from ._errors import AuditEventError

if TYPE_CHECKING:
    from ._body import BodyCapture


class Outcome(str, enum.Enum):
    """How an audited action ended."""

    SUCCESS = "success"
    """It did what was asked."""
    FAILURE = "failure"
    """It was refused: bad input, not found, unauthenticated, forbidden (HTTP 4xx)."""
    ERROR = "error"
    """It broke: an exception or HTTP 5xx."""

    @classmethod
    def from_status(cls, status: int) -> Outcome:
        """Map an HTTP status code to an outcome."""
        if status >= 500:
            return cls.ERROR
        if status >= 400:
            return cls.FAILURE
        return cls.SUCCESS


SEVERITY: Final[dict[Outcome, tuple[SeverityNumber, str]]] = {
    Outcome.SUCCESS: (SeverityNumber.INFO, "INFO"),
    Outcome.FAILURE: (SeverityNumber.WARN, "WARN"),
    Outcome.ERROR: (SeverityNumber.ERROR, "ERROR"),
}


def _as_str_tuple(values: Iterable[str] | str | None) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        # A single space-separated string, as OAuth "scope" claims are.
        return tuple(values.split())
    return tuple(str(value) for value in values)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who performed an action: a user, a service account or an API client."""

    id: str
    """Stable identifier (never an email address unless the deployment allows it)."""
    tenant: str | None = None
    """Tenant (organisation, workspace) the actor acted in."""
    roles: Sequence[str] = ()
    """Roles held at the time of the action (stored as a tuple)."""
    scopes: Sequence[str] = ()
    """OAuth scopes or permissions granted to the credential used; a space-separated string
    (an OAuth ``scope`` claim) is split. Stored as a tuple."""
    auth_method: str | None = None
    """How the actor authenticated: ``jwt``, ``api_key``, ``session``, ..."""
    session_id: str | None = None
    """Session identifier, when known (not a session token)."""

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise AuditEventError(f"Actor.id must be a non-empty string, got {self.id!r}")
        object.__setattr__(self, "roles", _as_str_tuple(self.roles))
        object.__setattr__(self, "scopes", _as_str_tuple(self.scopes))


class Action:
    """Names for common audited actions (``resource.verb``); any such name works too."""

    AUTH_LOGIN: Final = "auth.login"
    AUTH_LOGIN_FAILED: Final = "auth.login_failed"
    AUTH_LOGOUT: Final = "auth.logout"
    AUTH_PASSWORD_RESET: Final = "auth.password_reset"  # noqa: S105 - an action name, not a secret
    AUTH_PASSWORD_CHANGED: Final = "auth.password_changed"  # noqa: S105 - an action name, not a secret
    AUTH_MFA_ENABLED: Final = "auth.mfa_enabled"
    AUTH_MFA_DISABLED: Final = "auth.mfa_disabled"
    AUTH_TOKEN_ISSUED: Final = "auth.token_issued"  # noqa: S105 - an action name, not a secret
    AUTH_TOKEN_REVOKED: Final = "auth.token_revoked"  # noqa: S105 - an action name, not a secret
    ACCESS_DENIED: Final = "access.denied"
    USER_CREATED: Final = "user.created"
    USER_UPDATED: Final = "user.updated"
    USER_DELETED: Final = "user.deleted"
    USER_ROLE_CHANGED: Final = "user.role_changed"
    USER_INVITED: Final = "user.invited"
    USER_SUSPENDED: Final = "user.suspended"
    TENANT_CREATED: Final = "tenant.created"
    TENANT_UPDATED: Final = "tenant.updated"
    TENANT_DELETED: Final = "tenant.deleted"
    SETTINGS_UPDATED: Final = "settings.updated"
    API_KEY_CREATED: Final = "api_key.created"
    API_KEY_REVOKED: Final = "api_key.revoked"
    DATA_EXPORTED: Final = "data.exported"
    DATA_DELETED: Final = "data.deleted"
    PERMISSION_GRANTED: Final = "permission.granted"
    PERMISSION_REVOKED: Final = "permission.revoked"


# Event names for the events the middleware records (contract).
HTTP_REQUEST: Final = "http.request"
WEBSOCKET_CONNECT: Final = "websocket.connect"
WEBSOCKET_DISCONNECT: Final = "websocket.disconnect"

_ACTION_RE: Final = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")


def check_action(action: str) -> str:
    """Return ``action`` if it is a dotted lowercase ``resource.verb`` name, else raise."""
    if not isinstance(action, str) or len(action) > 128 or not _ACTION_RE.fullmatch(action):
        raise AuditEventError(
            f"audit action {action!r} must be dotted lowercase 'resource.verb' "
            "(letters, digits, underscores), e.g. 'user.role_changed'"
        )
    return action


def uuid7() -> str:
    """A time-ordered UUIDv7 string (RFC 9562), so event ids sort by creation time.

    The random bits make ids unique, not secret, so the per-process PRNG (reseeded in forked
    workers) serves; ``os.urandom`` is a system call per id on the request path.
    """
    millis = time.time_ns() // 1_000_000
    random_bits = random.getrandbits(80)
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | random_bits
    # Set the version (7) and the RFC 4122 variant bits.
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


@dataclass(slots=True, eq=False)
class AuditEvent:
    """One audit event on its way through the pipeline (built, processed, then emitted).

    The builder fills it with what was captured, as captured; the processors decide whether
    it is kept and at which level, then redact and pseudonymise it in place. Only what is in
    ``attributes`` and ``body`` when it reaches the emitter leaves the process.
    """

    action: str
    """Action name without the ``audit.`` prefix (``http.request``, ``user.created``)."""
    outcome: Outcome
    attributes: dict[str, AttributeValue]
    """OTel attributes following the design schema; redacted once the processors ran."""
    body: str
    """A short human sentence (redacted with the attributes)."""
    timestamp_ns: int = field(default_factory=time.time_ns)
    span: Span | None = None
    """The span that also gets this event (the request's SERVER span), if any."""
    changes: Mapping[str, Any] | None = None
    """``record(changes=...)`` as ``{field: {"old", "new"}}``; becomes ``audit.changes``."""
    details: Mapping[str, Any] | None = None
    """``record(details=...)``; becomes ``audit.details``."""
    request_body: BodyCapture | None = None
    """The request body as captured, when the policy may want it."""
    response_body: BodyCapture | None = None
    """The response body as captured, when the policy may want it."""

    @property
    def name(self) -> str:
        """The OTel event name (``audit.<action>``)."""
        return "audit." + self.action
