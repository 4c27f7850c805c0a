"""The public API is exactly what ``__all__`` lists, sorted (httpx's convention)."""

from __future__ import annotations

import types

import otel_audit

PUBLIC_API = {
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
}


def test_all_is_exactly_the_public_api() -> None:
    """__all__ names the public API: nothing missing, nothing extra."""
    assert set(otel_audit.__all__) == PUBLIC_API


def test_all_is_sorted() -> None:
    """__all__ stays sorted so additions are easy to review."""
    assert otel_audit.__all__ == sorted(otel_audit.__all__)


def test_every_public_name_is_importable_and_public_modules_say_so() -> None:
    """Every name in __all__ exists, and public names declare otel_audit as their module."""
    for name in otel_audit.__all__:
        member = getattr(otel_audit, name)
        if name != "__version__":
            assert member.__module__.startswith("otel_audit"), name
    public_attributes = {
        name
        for name in dir(otel_audit)
        if not name.startswith("_") and not isinstance(getattr(otel_audit, name), types.ModuleType)
    }
    assert public_attributes <= PUBLIC_API
