"""Exceptions raised by otel_audit.

    AuditError                  base class of everything otel_audit raises
    ├── AuditConfigError(ValueError)   a configuration argument or OTEL_AUDIT_* variable is wrong
    ├── AuditEventError(ValueError)    record()/audited() was given an invalid action or changes
    └── AuditEmitError                 an event could not be emitted and fail_closed is on

Only the first two are raised in normal (fail-open) operation, and only for programmer
mistakes that would otherwise silently lose audit data.
"""


class AuditError(Exception):
    """Base class of every exception otel_audit raises."""


class AuditConfigError(AuditError, ValueError):
    """A configuration value (argument or environment variable) is invalid."""


class AuditEventError(AuditError, ValueError):
    """An audit event was described with invalid arguments."""


class AuditEmitError(AuditError):
    """An audit event could not be emitted while ``fail_closed`` is enabled."""
