"""In-process redaction of PII and secrets, applied before an audit event leaves the process.

Everything an audit event carries (URL path, query string, headers, ``details``) passes through
a :class:`Redactor`. As in logfire's scrubbing, the redactor records *where* and *why* it masked
something as a :class:`Finding`, never the value; a masked value reads ``[REDACTED:<reason>]``.

A value meets three layers, in this order:

* **Keys.** A value under a secret-named key (``password``, ``X-Auth-Token``, ...) is replaced
  whole, whatever its type. Keys are split into lowercase words (separators and camelCase), so
  one rule covers ``db_password``, ``userPassword`` and ``DB-PASSWORD``. Long needles match as
  substrings; short ones (``pin``, ``auth``, ``pan``) only as whole words, so ``shipping``,
  ``author`` and ``company`` stay readable.
* **Values.** The built-in value patterns are alternatives of ONE compiled regex, so a clean
  string costs a single failed ``search`` and comes back as the same object. Patterns a regex
  cannot decide alone carry an ``accept`` check (Luhn for cards, mod-97 for IBANs, digit counts
  for phones); a rejected candidate falls back to the later patterns at the same position, then
  to the next position, so an order id failing Luhn is kept and a phone number next to it is
  still found. Caller-supplied ``extra_patterns`` run as a second pass with their own regexes,
  because their groups and backreferences cannot be merged safely.
* **Size.** Text is capped at ``max_value_length`` (``truncated``), containers at ``max_items``
  and nesting at ``max_depth`` (``depth``); a per-call node budget bounds cycles and shared
  sub-trees. No input makes the redactor raise: what cannot be rendered becomes
  ``<unrepresentable>``, which fails closed.

Reasons: ``secret_key``, ``email``, ``card_number``, ``jwt``, ``bearer_token``, ``cloud_key``,
``api_key``, ``ssn``, ``iban``, ``phone``, ``custom``, ``truncated``, ``depth``.

Session names: ``session.id``/``session_id``/``sessionId`` (OpenTelemetry's ``session.id``, a
correlation id) are kept; the cookie-style names that carry the credential itself (``session``,
``sessionid``, ``sessid``, ``JSESSIONID``, ``PHPSESSID``) and ``session_token``/``session_key``
are secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote_plus, unquote_plus

from ._pii_patterns import (
    COMBINED,
    INDEX,
    MARKERS,
    PATTERNS,
    REDACTED,
    SINGLE,
    marker,
    masked_span,
)

__all__ = ["REDACTED", "Finding", "Redactor"]

_UNREPRESENTABLE = "<unrepresentable>"
_KEY_MAX_LENGTH = 256
# Text is scanned this far past max_value_length before the cut: later characters are dropped
# anyway, and a secret straddling the cut is still recognised whole instead of half-kept.
_SCAN_MARGIN = 1024
# Nodes per scrub_value call, as a multiple of max_items: depth alone would still let a wide
# cycle or a shared sub-tree cost max_items ** max_depth.
_NODES_PER_ITEM = 64
_MAX_INT_BITS = 14_000  # str() and json.dumps refuse ints beyond ~4300 digits


_SECRET = marker("secret_key")


@dataclass(frozen=True, slots=True)
class Finding:
    """One redaction: where it happened and why; never the value."""

    path: str
    """Dotted location, e.g. ``audit.details.customer.email`` or ``url.query.token``."""
    reason: str
    """Why: ``secret_key``, a value pattern such as ``email``, or ``truncated``/``depth``."""


# --- secret-named keys -------------------------------------------------------------------------

_WORD_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
# Distinctive enough to match anywhere in the joined key: "stripe_secret_key", "X-Auth-Token".
_SUBSTRING_NEEDLES = (
    "password", "passwd", "passphrase", "secret", "token", "authorization", "cookie", "apikey",
    "privatekey", "credential", "signature", "cardnumber", "creditcard", "ccnumber", "mfacode",
    "sessionkey",
)  # fmt: skip
# Short or ambiguous: whole words only, so "shipping", "author", "company", "session_id" pass.
_WORD_NEEDLES = (
    "auth", "pwd", "pass", "pin", "otp", "totp", "hotp", "pan", "cvv", "cvc", "ssn", "jwt",
    "bearer", "sessionid", "sessid", "jsessionid", "phpsessid",
)  # fmt: skip
_EXACT_NEEDLES = frozenset({"session"})
_KEY_CACHE_SIZE = 2048
_KEY_CACHE_MAX_KEY = 128


def _key_words(key: str) -> list[str]:
    return [word.lower() for word in _WORD_RE.findall(key)]


@dataclass(slots=True)
class _Walk:
    """Per-call state of one scrub_value walk (never stored on the shared Redactor)."""

    findings: list[Finding]
    nodes_left: int


def _as_text(value: object) -> str:
    try:
        if isinstance(value, str):
            return str.__str__(value)  # a subclass may override __str__ and friends
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value).decode("utf-8", errors="replace")
        return str(value)
    except Exception:
        return _UNREPRESENTABLE


def _quote(text: str) -> str:
    # Keep "[REDACTED:email]" readable in the archived query; lone surrogates must not raise.
    return quote_plus(text, safe="[]:/", errors="replace")


class Redactor:
    """Masks secrets and PII in audit data; one instance is shared and safe across requests."""

    def __init__(
        self,
        *,
        extra_keys: Iterable[str] = (),
        extra_patterns: Iterable[str] = (),
        max_value_length: int = 4096,
        max_depth: int = 8,
        max_items: int = 256,
    ) -> None:
        limits = {"max_value_length": max_value_length, "max_depth": max_depth}
        for name, limit in {**limits, "max_items": max_items}.items():
            if limit < 1:
                raise ValueError(f"{name} must be at least 1, got {limit}")
        self._max_length = max_value_length
        self._max_depth = max_depth
        self._max_items = max_items
        substrings, words = list(_SUBSTRING_NEEDLES), list(_WORD_NEEDLES)
        for key in extra_keys:
            key_words = _key_words(key)
            compact = "".join(key_words)
            if len(compact) >= 5:
                substrings.append(compact)
            elif compact:
                words.append(" ".join(key_words))
        self._substring_needles = tuple(substrings)
        self._word_needles = tuple(f" {word} " for word in words)
        self._key_cache: dict[str, bool] = {}
        # Map keys that scrub to themselves (field names repeat): whether each is a secret.
        self._clean_keys: dict[str, bool] = {}
        custom = []
        for index, pattern in enumerate(extra_patterns):
            try:
                custom.append(re.compile(pattern))
            except re.error as exc:
                raise ValueError(f"extra_patterns[{index}] is not a valid regex: {exc}") from None
        self._custom = tuple(custom)

    def is_secret_key(self, key: str) -> bool:
        """Whether a value stored under ``key`` is a credential or PII by its name alone."""
        cached = self._key_cache.get(key)
        if cached is not None:
            return cached
        words = _key_words(key)
        compact = "".join(words)
        spaced = f" {' '.join(words)} "
        secret = (
            compact in _EXACT_NEEDLES
            or any(needle in compact for needle in self._substring_needles)
            or any(needle in spaced for needle in self._word_needles)
        )
        if len(key) <= _KEY_CACHE_MAX_KEY:
            if len(self._key_cache) >= _KEY_CACHE_SIZE:
                self._key_cache.clear()  # a cheap bound against attacker-chosen key names
            self._key_cache[key] = secret
        return secret

    def scrub_text(self, text: str, path: str, findings: list[Finding]) -> str:
        """Mask every value-pattern match in ``text``, then cap its length."""
        if len(text) <= self._max_length and not self._custom and COMBINED.search(text) is None:
            return text  # most values: one failed search, nothing else
        dropped = 0
        if len(text) > self._max_length + _SCAN_MARGIN:
            dropped = len(text) - self._max_length - _SCAN_MARGIN
            text = text[: self._max_length + _SCAN_MARGIN]
        masked = self._mask(text, path, findings)
        for regex in self._custom:
            masked = self._mask_custom(regex, masked, path, findings)
        return self._cut(masked, self._max_length, dropped, path, findings)

    def scrub_value(self, value: object, path: str, findings: list[Finding]) -> object:
        """Return a JSON-serialisable, redacted copy of JSON-like ``value``; never raises."""
        if type(value) is str:
            return self.scrub_text(value, path, findings)
        try:
            return self._walk(value, path, _Walk(findings, self._max_items * _NODES_PER_ITEM), 0)
        except Exception:
            return _UNREPRESENTABLE

    def scrub_query(self, query: str, path: str, findings: list[Finding]) -> str:
        """Redact a raw URL query string, keeping untouched pairs byte-for-byte."""
        if not query:
            return ""
        # Without "%" or "+" the raw text is the decoded text: one scan decides for all pairs.
        if (
            "%" not in query
            and "+" not in query
            and COMBINED.search(query) is None
            and not any(regex.search(query) for regex in self._custom)
            and not any(self.is_secret_key(pair.partition("=")[0]) for pair in query.split("&"))
        ):
            return query
        pairs = []
        for pair in query.split("&"):
            raw_key, equals, raw_value = pair.partition("=")
            key, value = unquote_plus(raw_key), unquote_plus(raw_value)
            safe_key = self.scrub_text(key, path, findings)
            safe_key = self._cut(safe_key, _KEY_MAX_LENGTH, 0, path, findings)
            child = f"{path}.{safe_key}"
            if value and self.is_secret_key(key):
                safe_value = _SECRET
                findings.append(Finding(child, "secret_key"))
            else:
                safe_value = self.scrub_text(value, child, findings)
            if safe_key is key and safe_value is value:
                # The decoded pair is clean, but the raw text is what gets stored, and its
                # encoding can read as PII ("+44 20 7946 0958" with raw spaces decodes to an
                # unrecognisable " 44 20 ..."). Keep it verbatim only if it scans clean too;
                # otherwise store the canonical encoding of the clean decoded pair.
                raw_findings: list[Finding] = []
                if self.scrub_text(pair, child, raw_findings) == pair:
                    pairs.append(pair)
                else:
                    pairs.append(_quote(key) + equals + _quote(value))
            else:
                pairs.append(_quote(safe_key) + equals + _quote(safe_value))
        return "&".join(pairs)

    def truncate(self, text: str, path: str, findings: list[Finding]) -> str:
        """Cap ``text`` at ``max_value_length``, saying how many characters were cut."""
        return self._cut(text, self._max_length, 0, path, findings)

    # --- internals -----------------------------------------------------------------------------

    @staticmethod
    def _cut(text: str, limit: int, dropped: int, path: str, findings: list[Finding]) -> str:
        removed = dropped + max(0, len(text) - limit)
        if not removed:
            return text
        findings.append(Finding(path, "truncated"))
        return f"{text[:limit]}…[TRUNCATED {removed} chars]"

    @staticmethod
    def _mask(text: str, path: str, findings: list[Finding]) -> str:
        match = COMBINED.search(text)
        if match is None:
            return text  # the common case: no allocation at all
        pieces: list[str] = []
        reasons: list[str] = []
        last = 0
        while match is not None:
            position = match.start()
            index = INDEX[match.lastgroup or ""]
            hit = masked_span(index, match, last)
            for later in range(index + 1, len(PATTERNS)):
                if hit is not None:
                    break
                retry = SINGLE[later].match(text, position)
                hit = None if retry is None else masked_span(later, retry, last)
            if hit is None:
                match = COMBINED.search(text, position + 1)
                continue
            start, last_end, reason = hit
            pieces += (text[last:start], MARKERS[reason])
            if reason not in reasons:
                reasons.append(reason)
            last = last_end
            match = COMBINED.search(text, last)
        if not pieces:
            return text
        pieces.append(text[last:])
        findings.extend(Finding(path, reason) for reason in reasons)
        return "".join(pieces)

    @staticmethod
    def _mask_custom(regex: re.Pattern[str], text: str, path: str, findings: list[Finding]) -> str:
        if regex.search(text) is None:
            return text
        # Empty matches (e.g. "x*") would otherwise sprinkle markers between all characters.
        masked = regex.sub(lambda m: marker("custom") if m[0] else "", text)
        if masked != text:
            findings.append(Finding(path, "custom"))
        return masked

    def _walk(self, value: object, path: str, state: _Walk, depth: int) -> object:
        if type(value) is str:  # most leaves: no other type test
            return self.scrub_text(value, path, state.findings)
        if value is None or type(value) in (bool, int, float):
            return self._scrub_number(value, path, state.findings)
        # Concrete containers first: the ABC check for Mapping costs more than the rest.
        if not isinstance(value, (dict, list, tuple, Mapping, set, frozenset)):
            return self.scrub_text(_as_text(value), path, state.findings)
        return self._walk_container(value, path, state, depth)

    def _walk_container(
        self, value: Iterable[object], path: str, state: _Walk, depth: int
    ) -> object:
        if depth >= self._max_depth:
            state.findings.append(Finding(path, "depth"))
            return marker("depth")
        try:
            if isinstance(value, dict) or (
                not isinstance(value, (list, tuple)) and isinstance(value, Mapping)
            ):
                return self._walk_mapping(value, path, state, depth + 1)
            return self._walk_items(value, path, state, depth + 1)
        except Exception:  # a broken container must not cost the rest of the event
            return _UNREPRESENTABLE

    def _scrub_number(self, value: object, path: str, findings: list[Finding]) -> object:
        if type(value) is not int:
            return value
        if value.bit_length() > _MAX_INT_BITS:
            return _UNREPRESENTABLE
        if 10**12 <= abs(value) < 10**19:  # long enough to be a card number stored as an int
            text = str(value)
            masked = self._mask(text, path, findings)
            return value if masked is text else masked
        return value

    def _take(self, index: int, path: str, state: _Walk) -> bool:
        """Whether the container item at ``index`` still fits the item and node budgets."""
        state.nodes_left -= 1
        if index < self._max_items and state.nodes_left >= 0:
            return True
        state.findings.append(Finding(path, "truncated"))
        return False

    def _walk_mapping(
        self, value: Mapping[object, object], path: str, state: _Walk, depth: int
    ) -> dict[str, object]:
        out: dict[str, object] = {}
        for index, (raw_key, item) in enumerate(value.items()):
            if not self._take(index, path, state):
                break
            key_text = raw_key if type(raw_key) is str else _as_text(raw_key)
            secret = self._clean_keys.get(key_text)
            if secret is None:
                # An email used as a key must leak neither through the key nor the child's path.
                key = self.scrub_text(key_text, path, state.findings)
                key = self._cut(key, _KEY_MAX_LENGTH, 0, path, state.findings)
                secret = self.is_secret_key(key_text)
                if key is key_text:  # nothing masked or cut: the same answer every time
                    if len(self._clean_keys) >= _KEY_CACHE_SIZE:
                        self._clean_keys.clear()
                    self._clean_keys[key_text] = secret
            else:
                key = key_text
            if key in out:  # two keys masked alike must not overwrite each other
                key = f"{key}~{index}"
            child = f"{path}.{key}" if path else key
            if secret:
                state.findings.append(Finding(child, "secret_key"))
                out[key] = _SECRET
            else:
                out[key] = self._walk(item, child, state, depth)
        return out

    def _walk_items(
        self, value: Iterable[object], path: str, state: _Walk, depth: int
    ) -> list[object]:
        out: list[object] = []
        for index, item in enumerate(value):
            if not self._take(index, path, state):
                break
            out.append(self._walk(item, f"{path}.{index}" if path else str(index), state, depth))
        return out
