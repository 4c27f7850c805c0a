"""Everything free-form passes through a :class:`Scrubber` before it becomes an attribute.

With redaction on, values are masked by the :class:`~otel_audit._redaction.Redactor`; with it
off (``OTEL_AUDIT_REDACTION=false``, leaving the collector as the only PII layer), values
are still size-capped. Identity fields (``user.id``, ``tenant.id``) are never pattern-masked:
they are pseudonymised with a keyed HMAC when a key is configured, because an unkeyed hash
of an identifier can be reversed by guessing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Final

from ._config import AuditConfig
from ._redaction import Finding, Redactor

_PSEUDONYM_CACHE_SIZE: Final = 4096
# Bounded so unique values (ids in paths) cannot grow it without limit; cleared when full.
_REPEATED_CACHE_SIZE: Final = 2048
_CACHEABLE_LENGTH: Final = 512


class Scrubber:
    """Redaction, size caps and pseudonymisation, configured once per app (by its auditor)."""

    def __init__(self, config: AuditConfig) -> None:
        self.enabled = config.redaction
        self._redactor = Redactor(
            extra_keys=config.redact_keys,
            extra_patterns=config.redact_patterns,
            max_value_length=config.max_attribute_length,
        )
        self._key = config.pseudonymization_key.encode() if config.pseudonymization_key else None
        self._pseudonyms: dict[str, str] = {}
        self._repeated: dict[tuple[str, str], tuple[str, tuple[Finding, ...]]] = {}

    def text(self, value: str, path: str, findings: list[Finding]) -> str:
        """Mask secrets and PII in one string, then cap its length."""
        if self.enabled:
            return self._redactor.scrub_text(value, path, findings)
        return self._redactor.truncate(value, path, findings)

    def repeated_text(self, value: str, path: str, findings: list[Finding]) -> str:
        """:meth:`text` for values that repeat across requests (paths, user agents): cached."""
        key = (path, value)
        cached = self._repeated.get(key)
        if cached is None:
            own: list[Finding] = []
            cached = (self.text(value, path, own), tuple(own))
            if len(value) <= _CACHEABLE_LENGTH:
                if len(self._repeated) >= _REPEATED_CACHE_SIZE:
                    self._repeated.clear()
                self._repeated[key] = cached
        findings.extend(cached[1])
        return cached[0]

    def query(self, value: str, path: str, findings: list[Finding]) -> str:
        """Mask secret parameters and PII in a raw URL query string."""
        if self.enabled:
            return self._redactor.scrub_query(value, path, findings)
        return self._redactor.truncate(value, path, findings)

    def json(self, value: object, path: str, findings: list[Finding]) -> str:
        """Scrub a JSON-like structure and serialise it (``audit.changes``, ``audit.details``)."""
        if self.enabled:
            value = self._redactor.scrub_value(value, path, findings)
        encoded = json.dumps(value, default=_fallback, ensure_ascii=False, separators=(",", ":"))
        return self._redactor.truncate(encoded, path, findings)

    def is_secret_key(self, key: str) -> bool:
        """Whether a key or header name always holds a secret."""
        return self.enabled and self._redactor.is_secret_key(key)

    def identity(self, value: str) -> str:
        """Pseudonymise an identifier when a key is set; otherwise return it as given."""
        if self._key is None:
            return value
        cached = self._pseudonyms.get(value)
        if cached is None:
            digest = hmac.new(self._key, value.encode("utf-8", "surrogatepass"), hashlib.sha256)
            cached = "hmac-sha256:" + digest.hexdigest()
            if len(self._pseudonyms) >= _PSEUDONYM_CACHE_SIZE:
                self._pseudonyms.clear()
            self._pseudonyms[value] = cached
        return cached


def _fallback(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return "<unrepresentable>"
