"""otel_audit: compliance-grade audit trails for FastAPI, on OpenTelemetry.

``instrument_app(app)`` audits every request and WebSocket session; ``record()`` and
``@audited`` add business events; ``set_actor()`` says who is acting. Events are OTel log
records named ``audit.*`` (never sampled) plus span events on the server span. A
:class:`Policy` (``AuditConfig(policy=...)``) decides which events are kept and with how much
of the request and response. ``audit_router()`` serves the trail back, read-only and
isolated by tenant.
"""

from ._config import AuditConfig
from ._context import get_actor, set_actor
from ._errors import AuditConfigError, AuditEmitError, AuditError, AuditEventError
from ._event import Action, Actor, Outcome
from ._record import audited, record
from ._version import __version__
from .fastapi import audit_router, instrument_app
from .policy import Policy, Rule

__all__ = [
    "Action",
    "Actor",
    "AuditConfig",
    "AuditConfigError",
    "AuditEmitError",
    "AuditError",
    "AuditEventError",
    "Outcome",
    "Policy",
    "Rule",
    "__version__",
    "audit_router",
    "audited",
    "get_actor",
    "instrument_app",
    "record",
    "set_actor",
]
