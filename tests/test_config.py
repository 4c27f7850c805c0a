"""AuditConfig: argument > OTEL_AUDIT_* environment > default, with clear errors."""

from __future__ import annotations

import pytest

from otel_audit import AuditConfig, AuditConfigError
from otel_audit._config import DEFAULT_EXCLUDED_URLS


def resolver_for_tests(connection: object) -> None:
    """An importable resolver for the environment test."""


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no arguments and no environment, the documented defaults apply."""
    for name in list(__import__("os").environ):
        if name.startswith("OTEL_AUDIT_"):
            monkeypatch.delenv(name)
    config = AuditConfig()
    assert config.excluded_urls == DEFAULT_EXCLUDED_URLS
    assert config.redaction is True
    assert config.trusted_proxies == ()
    assert config.jwt_algorithms == ("HS256",)
    assert config.archive_dir == "otel-audit-archive"
    assert config.fail_closed is False


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every kind of field can be set from its OTEL_AUDIT_* variable."""
    monkeypatch.setenv("OTEL_AUDIT_REDACTION", "false")
    monkeypatch.setenv("OTEL_AUDIT_EXCLUDED_URLS", "/a, /b/")
    monkeypatch.setenv("OTEL_AUDIT_TRUSTED_PROXIES", "10.0.0.0/8,::1")
    monkeypatch.setenv("OTEL_AUDIT_REDACT_PATTERNS", r"ORD-\d+;;x{2,3}")
    monkeypatch.setenv("OTEL_AUDIT_MAX_ATTRIBUTE_LENGTH", "256")
    monkeypatch.setenv("OTEL_AUDIT_JWT_KEY", "k")
    monkeypatch.setenv("OTEL_AUDIT_ACTOR_RESOLVER", "tests.test_config:resolver_for_tests")
    config = AuditConfig()
    assert config.redaction is False
    assert config.excluded_urls == ("/a", "/b")
    assert config.trusted_proxies == ("10.0.0.0/8", "::1/128")
    assert config.redact_patterns == (r"ORD-\d+", "x{2,3}")
    assert config.max_attribute_length == 256
    assert config.jwt_key == "k"
    assert config.actor_resolver is resolver_for_tests


def test_arguments_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit argument wins over the environment."""
    monkeypatch.setenv("OTEL_AUDIT_REDACTION", "false")
    monkeypatch.setenv("OTEL_AUDIT_ARCHIVE_DIR", "/from/env")
    config = AuditConfig(redaction=True)
    assert config.redaction is True
    assert config.archive_dir == "/from/env"


def test_from_env_reads_only_the_given_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    """from_env(mapping) ignores os.environ, for reproducible configuration."""
    monkeypatch.setenv("OTEL_AUDIT_REDACTION", "false")
    config = AuditConfig.from_env({"OTEL_AUDIT_FAIL_CLOSED": "true"})
    assert config.fail_closed is True
    assert config.redaction is True


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("OTEL_AUDIT_REDACTION", "maybe", "OTEL_AUDIT_REDACTION='maybe' is not a boolean"),
        ("OTEL_AUDIT_MAX_ATTRIBUTE_LENGTH", "lots", "is not an integer"),
        ("OTEL_AUDIT_MAX_ATTRIBUTE_LENGTH", "3", ">= 64"),
        ("OTEL_AUDIT_TRUSTED_PROXIES", "10.0.0.0/33", "not an IP address or CIDR"),
        ("OTEL_AUDIT_REDACT_PATTERNS", "([unclosed", "not a valid regex"),
        ("OTEL_AUDIT_ACTOR_RESOLVER", "no_colon_here", "module:callable"),
        ("OTEL_AUDIT_ACTOR_RESOLVER", "os:no_such_function", "cannot be imported"),
        ("OTEL_AUDIT_JWT_ALGORITHMS", " , ", "at least one algorithm"),
        ("OTEL_AUDIT_JWT_ALGORITHMS", "HS256,none", "unknown or unsafe"),
        ("OTEL_AUDIT_SPAN_EVENT_DETAIL", "some", "span_event_detail must be one of"),
    ],
)
def test_bad_environment_values_raise_clear_errors(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    """A malformed variable raises AuditConfigError naming what is wrong."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(AuditConfigError, match=message):
        AuditConfig()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"excluded_urls": "/health"}, "sequence of strings"),
        ({"redaction": "yes"}, "must be a bool"),
        ({"actor_resolver": 42}, "must be callable"),
        ({"archive_dir": ""}, "non-empty string"),
        ({"trusted_proxies": ["not-an-ip"]}, "not an IP address"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs: dict[str, object], message: str) -> None:
    """A wrongly typed argument raises AuditConfigError (a ValueError)."""
    with pytest.raises(AuditConfigError, match=message):
        AuditConfig(**kwargs)  # type: ignore[arg-type]


def test_secrets_are_not_in_repr() -> None:
    """The JWT and pseudonymisation keys never appear in the config's repr."""
    text = repr(AuditConfig(jwt_key="jwt-secret-value", pseudonymization_key="pseudo-secret"))
    assert "jwt-secret-value" not in text and "pseudo-secret" not in text


def test_every_parameter_is_documented_in_the_readme() -> None:
    """The README's configuration table names every field and its environment variable."""
    from pathlib import Path

    from otel_audit._config import parameters

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme[readme.index("## Configuration") : readme.index("## Audit policy")]
    for name, variable, _, doc in parameters():
        assert f"`{name}`" in table, name
        assert f"`{variable}`" in table, variable
        assert doc, name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"span_event_detail": "verbose"}, "span_event_detail must be one of"),
        ({"max_body_size": 10}, "max_body_size must be an integer >= 64"),
        ({"max_body_size": "big"}, "max_body_size must be an integer"),
        ({"policy": 42}, "policy must be a Policy or a YAML file path"),
        ({"policy": "/no/such/policy.yaml"}, r"policy\.yaml"),
    ],
)
def test_new_rows_are_checked_by_their_type(kwargs: dict[str, object], message: str) -> None:
    """Literal choices, integer bounds and policies are checked from the field's type."""
    with pytest.raises(AuditConfigError, match=message):
        AuditConfig(**kwargs)  # type: ignore[arg-type]


def test_policy_variable_is_named_as_the_contract_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy is read from OTEL_AUDIT_POLICY_FILE, not OTEL_AUDIT_POLICY."""
    from otel_audit._config import parameters

    assert ("policy", "OTEL_AUDIT_POLICY_FILE") in [(row[0], row[1]) for row in parameters()]
    monkeypatch.setenv("OTEL_AUDIT_POLICY_FILE", "/no/such/file.yaml")
    with pytest.raises(AuditConfigError, match=r"file\.yaml"):
        AuditConfig()
