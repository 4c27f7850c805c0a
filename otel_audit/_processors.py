"""The processors every audit event passes, in order, between the builder and the emitter.

A processor is a callable taking an :class:`AuditEvent` and returning it (changed in place or
not) or ``None`` to drop it on purpose (the policy said ``none``); structlog's processor
chain is the model. The chain for an app is: policy → redaction → pseudonymisation (and,
later, integrity). Redaction runs before anything leaves the process because a span event
cannot be edited once added.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from opentelemetry.util.types import AttributeValue

from ._body import render_body
from ._event import AuditEvent
from ._pii_patterns import marker
from ._redaction import Finding
from ._scrub import Scrubber
from .policy import Policy, level_rank

Processor = Callable[[AuditEvent], AuditEvent | None]
"""One stage: the event to pass on, or None to drop it (a decision, not a failure)."""

_REQUEST_RANK: Final = level_rank("request")
_RESPONSE_RANK: Final = level_rank("request_response")
_HEADER_PREFIX: Final = "http.request.header."
# Free-form values that repeat across requests (cached scrubbing) and ones that rarely do.
_REPEATED_TEXT: Final = ("url.path", "user_agent.original")
_UNIQUE_TEXT: Final = ("audit.resource.type", "audit.resource.id")
_IDENTITIES: Final = ("user.id", "tenant.id", "session.id")


def run(processors: Sequence[Processor], event: AuditEvent) -> AuditEvent | None:
    """Pass ``event`` through ``processors`` in order; None as soon as one drops it."""
    for processor in processors:
        processed = processor(event)
        if processed is None:
            return None
        event = processed
    return event


class ApplyPolicy:
    """Applies the audit policy's level: drops ``none`` events, and bodies below their level."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy

    def __call__(self, event: AuditEvent) -> AuditEvent | None:
        level = self._policy.level_for(event.attributes)
        if level == "none":
            return None
        rank = level_rank(level)
        if rank < _REQUEST_RANK:
            event.request_body = None
        if rank < _RESPONSE_RANK:
            event.response_body = None
        return event


class Redact:
    """Masks secrets and PII in every free-form part of the event and records where and why.

    Identity fields are left to :class:`Pseudonymise`; fixed-vocabulary ones (method, route
    template, status, ids the library generates) need no scan. With redaction off, values
    are still size-capped.
    """

    def __init__(self, scrubber: Scrubber, *, captures_headers: bool) -> None:
        self._scrubber = scrubber
        self._captures_headers = captures_headers

    def __call__(self, event: AuditEvent) -> AuditEvent:
        scrubber = self._scrubber
        attributes = event.attributes
        findings: list[Finding] = []
        for key in _REPEATED_TEXT:
            value = attributes.get(key)
            if isinstance(value, str):
                attributes[key] = scrubber.repeated_text(value, key, findings)
        query = attributes.get("url.query")
        if isinstance(query, str):
            attributes["url.query"] = scrubber.query(query, "url.query", findings)
        for key in _UNIQUE_TEXT:
            value = attributes.get(key)
            if isinstance(value, str):
                attributes[key] = scrubber.text(value, key, findings)
        if self._captures_headers:
            self._headers(attributes, findings)
        if event.request_body is not None or event.response_body is not None:
            self._bodies(event, findings)
        if event.changes is not None:
            attributes["audit.changes"] = scrubber.json(event.changes, "audit.changes", findings)
        if event.details is not None:
            attributes["audit.details"] = scrubber.json(event.details, "audit.details", findings)
        event.body = scrubber.repeated_text(event.body, "body", findings)
        if findings:
            attributes["audit.redactions"] = tuple(
                dict.fromkeys(f"{finding.path}:{finding.reason}" for finding in findings)
            )
        return event

    def _headers(self, attributes: dict[str, AttributeValue], findings: list[Finding]) -> None:
        scrubber = self._scrubber
        for key in [k for k in attributes if k.startswith(_HEADER_PREFIX)]:
            value = attributes[key]
            if scrubber.is_secret_key(key[len(_HEADER_PREFIX) :]):
                findings.append(Finding(key, "secret_key"))
                attributes[key] = marker("secret_key")
            elif isinstance(value, str):
                attributes[key] = scrubber.text(value, key, findings)

    def _bodies(self, event: AuditEvent, findings: list[Finding]) -> None:
        scrubber = self._scrubber
        attributes = event.attributes
        for capture, key, size_key in (
            (event.request_body, "audit.request.body", "http.request.body.size"),
            (event.response_body, "audit.response.body", "http.response.body.size"),
        ):
            if capture is not None:
                attributes[key] = render_body(capture, scrubber.json, key, findings)
                attributes[size_key] = capture.size


class Pseudonymise:
    """Replaces ``user.id``, ``tenant.id`` and ``session.id`` with keyed HMACs.

    Keyed, because an unkeyed hash of an identifier is reversed by hashing guesses.
    """

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrubber = scrubber

    def __call__(self, event: AuditEvent) -> AuditEvent:
        attributes = event.attributes
        for key in _IDENTITIES:
            value = attributes.get(key)
            if isinstance(value, str):
                attributes[key] = self._scrubber.identity(value)
        return event


def processors_for(
    policy: Policy, scrubber: Scrubber, *, captures_headers: bool, pseudonymise: bool
) -> list[Processor]:
    """The chain for one instrumented app; stages with nothing to do are left out."""
    chain: list[Processor] = []
    if any(rule.level != "metadata" for rule in policy.rules):
        chain.append(ApplyPolicy(policy))
    chain.append(Redact(scrubber, captures_headers=captures_headers))
    if pseudonymise:
        chain.append(Pseudonymise(scrubber))
    return chain
