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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote_plus, unquote_plus

__all__ = ["REDACTED", "Finding", "Redactor"]

REDACTED = "[REDACTED]"
_UNREPRESENTABLE = "<unrepresentable>"
_KEY_MAX_LENGTH = 256
# Text is scanned this far past max_value_length before the cut: later characters are dropped
# anyway, and a secret straddling the cut is still recognised whole instead of half-kept.
_SCAN_MARGIN = 1024
# Nodes per scrub_value call, as a multiple of max_items: depth alone would still let a wide
# cycle or a shared sub-tree cost max_items ** max_depth.
_NODES_PER_ITEM = 64
_MAX_INT_BITS = 14_000  # str() and json.dumps refuse ints beyond ~4300 digits


def _marker(reason: str) -> str:
    return f"{REDACTED[:-1]}:{reason}]"


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


# --- value patterns ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ValuePattern:
    name: str  # regex group name, unique
    reason: str  # Finding.reason and marker text
    regex: str
    check: Callable[[str], bool] | None = None  # None: every regex match is a hit
    # Greedy grouping swallows a neighbouring number ("4111 1111 1111 1111 12"): a rejected
    # candidate is retried cut at these separators, never at invented points inside a digit run.
    separators: str = ""
    value_group: str | None = None  # mask only this group, keeping e.g. "Bearer " readable
    local_part: bool = False  # the hit extends leftwards over an email local part


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _is_card(candidate: str) -> bool:
    digits = candidate.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19:
        return False
    # Issuer prefixes (3 Amex/Diners/JCB, 4 Visa, 5 and 2221-2720 Mastercard, 6 Discover):
    # 13-digit millisecond timestamps start with 1 and would pass Luhn one time in ten.
    if digits[0] not in "3456" and not 2221 <= int(digits[:4]) <= 2720:
        return False
    return _luhn_ok(digits)


_IBAN_COUNTRIES = frozenset(
    "AD AE AL AT AZ BA BE BG BH BR BY CH CR CY CZ DE DK DO EE EG ES FI FO FR GB GE GI GL GR GT HR "  # noqa: SIM905
    "HU IE IL IQ IS IT JO KW KZ LB LC LI LT LU LV LY MC MD ME MK MR MT MU NL NO PK PL PS PT QA RO "
    "RS SA SC SD SE SI SK SM ST SV TL TN TR UA VA VG XK".split()
)


def _is_iban(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34 or compact[:2] not in _IBAN_COUNTRIES:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _is_ssn(candidate: str) -> bool:
    area, group, serial = candidate.split("-")
    # Never issued: area 000, 666 and 900-999, group 00, serial 0000.
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _is_phone(candidate: str) -> bool:
    return 8 <= sum(char.isdigit() for char in candidate) <= 15  # E.164 allows at most 15


def _is_credential(candidate: str) -> bool:
    # "Basic information" must survive; real tokens are long or carry digits/base64 punctuation.
    return len(candidate) >= 24 or any(c.isdigit() or c in "+/=_-~" for c in candidate)


def _first(char: str, not_after: str) -> str:
    """``char`` not preceded by ``not_after``, with the lookbehind *after* the character.

    The regex engine skips an alternative in one step when it starts with a plain character or
    class; trying every alternative at every position is what a clean URL path would pay for.
    """
    return f"{char}(?<!{not_after}{char})"


_WORD = "[A-Za-z0-9_]"
_NUM = "[A-Za-z0-9_.+-]"  # before a number: not the tail of a longer number, version or id
_NUM_END = r"(?![A-Za-z0-9_]|[.-][0-9])"
_ASSIGNED = r"[\"']?[ \t]*[:=][ \t]*[\"']?"  # key=value, "key": "value"
_ASSIGNED_VALUE = r"(?!\[REDACTED)[^\s&\"',;<>]"  # (?!...) keeps re-scrubbing idempotent
_EMAIL_LOCAL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")

_P = _ValuePattern
# Order matters only between patterns that can start at the same character. The email pattern
# is anchored on "@" (or "%40") and extended over the local part in Python (see _hit): starting
# at the local part, it would be tried at nearly every character of every clean path.
_PATTERNS = (
    _P("bearer", "bearer_token", _first("[Bb]", _WORD) + r"(?i:earer|asic)[ \t]+"
       r"(?P<bearer_value>[A-Za-z0-9._~+/=-]{8,})", _is_credential, value_group="bearer_value"),
    _P("jwt", "jwt", _first("e", "[A-Za-z0-9_-]")
       + r"yJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    _P("aws_google_key", "cloud_key", _first("A", _WORD)
       + r"(?:(?:KIA|SIA)[A-Z0-9]{16}|Iza[A-Za-z0-9_-]{35})(?![A-Za-z0-9_-])"),
    _P("github_key", "cloud_key", _first("g", _WORD)
       + r"(?:h[pousr]_[A-Za-z0-9]{36,255}|ithub_pat_[A-Za-z0-9_]{22,255})(?![A-Za-z0-9_])"),
    _P("stripe_key", "cloud_key", _first("[rs]", _WORD)
       + r"k_(?:live|test)_[A-Za-z0-9]{10,255}(?![A-Za-z0-9_])"),
    _P("slack_key", "cloud_key", _first("x", _WORD)
       + r"ox[abposr]-[A-Za-z0-9-]{10,255}(?![A-Za-z0-9_])"),
    _P("api_key", "api_key", rf"[Aa](?i:pi[_-]?key){_ASSIGNED}"
       rf"(?P<api_key_value>{_ASSIGNED_VALUE}{{4,}})", value_group="api_key_value"),
    _P("secret_assignment", "secret_key", r"[PpSsTt](?i:(?<=p)ass(?:w(?:or)?d|phrase)"
       rf"|(?<=s)ecret|(?<=t)oken)(?:[_-]?[A-Za-z]+)?{_ASSIGNED}"
       rf"(?P<secret_value>{_ASSIGNED_VALUE}+)", value_group="secret_value"),
    _P("email", "email", r"[@%](?:(?<=@)|(?<=%)40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
       r"\.[A-Za-z]{2,24}(?![A-Za-z0-9-])", local_part=True),
    _P("iban", "iban", _first("[A-Z]", "[A-Za-z0-9]") + r"[A-Z][0-9]{2}"
       r"(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?(?![A-Za-z0-9])",
       _is_iban, " "),
    _P("card", "card_number", _first("[0-9]", _NUM) + rf"(?:[ -]?[0-9]){{12,18}}{_NUM_END}",
       _is_card, " -"),
    _P("ssn", "ssn", _first("[0-9]", _NUM) + rf"[0-9]{{2}}-[0-9]{{2}}-[0-9]{{4}}{_NUM_END}",
       _is_ssn),
    # "+" plus a country code is a strong signal, even glued to a word ("0+1-202-..." is a
    # query's "0 +1-202-..."), so only a doubled "+" rules it out.
    _P("phone_intl", "phone", _first(r"\+", "[+]") + r"[1-9][0-9]{0,2}(?:[0-9]{5,12}"
       rf"|(?:[ .-]?\([0-9]{{1,4}}\)|[ .-][0-9]{{1,5}}){{2,6}}){_NUM_END}",
       _is_phone, " .-"),
    _P("phone_us_paren", "phone", _first(r"\(", _NUM)
       + rf"[2-9][0-9]{{2}}\)[ ]?[2-9][0-9]{{2}}[-.][0-9]{{4}}{_NUM_END}"),
    _P("phone_us_trunk", "phone", _first("1", "[A-Za-z0-9_.+(-]") + r"[-. ][2-9][0-9]{2}"
       rf"(?P<trunk_sep>[-.])[2-9][0-9]{{2}}(?P=trunk_sep)[0-9]{{4}}{_NUM_END}"),
    _P("phone_us", "phone", _first("[2-9]", "[A-Za-z0-9_.+(-]")
       + rf"[0-9]{{2}}(?P<phone_sep>[-.])[2-9][0-9]{{2}}(?P=phone_sep)[0-9]{{4}}{_NUM_END}"),
)  # fmt: skip
# Each alternative ends in an empty named group: it closes last, so ``match.lastgroup`` names
# the pattern, while the alternative itself still begins with a plain character (see _first).
_COMBINED = re.compile("|".join(f"{p.regex}(?P<{p.name}>)" for p in _PATTERNS), re.ASCII)
# The same patterns one by one, to retry the later ones where an earlier one was rejected.
_SINGLE = tuple(re.compile(f"{p.regex}(?P<{p.name}>)", re.ASCII) for p in _PATTERNS)
_INDEX = {p.name: i for i, p in enumerate(_PATTERNS)}
_MARKERS = {p.reason: _marker(p.reason) for p in _PATTERNS}
_SECRET = _marker("secret_key")


def _hit(index: int, match: re.Match[str], floor: int) -> tuple[int, int, str] | None:
    """The span to mask for a match of ``_PATTERNS[index]``, or None if its check rejects it."""
    pattern = _PATTERNS[index]
    start, end = match.span(pattern.value_group or 0)
    if pattern.local_part:
        text, anchor = match.string, start
        while start > floor and text[start - 1] in _EMAIL_LOCAL:
            start -= 1
        if start == anchor:
            return None  # "@example.com" alone is a handle or a decorator, not an address
    elif pattern.check is not None:
        text = match.string
        while end > start and not pattern.check(text[start:end]):
            end = max((text.rfind(sep, start, end) for sep in pattern.separators), default=-1)
    return (start, end, pattern.reason) if end > start else None


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
            and _COMBINED.search(query) is None
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
        match = _COMBINED.search(text)
        if match is None:
            return text  # the common case: no allocation at all
        pieces: list[str] = []
        reasons: list[str] = []
        last = 0
        while match is not None:
            position = match.start()
            index = _INDEX[match.lastgroup or ""]
            hit = _hit(index, match, last)
            for later in range(index + 1, len(_PATTERNS)):
                if hit is not None:
                    break
                retry = _SINGLE[later].match(text, position)
                hit = None if retry is None else _hit(later, retry, last)
            if hit is None:
                match = _COMBINED.search(text, position + 1)
                continue
            start, last_end, reason = hit
            pieces += (text[last:start], _MARKERS[reason])
            if reason not in reasons:
                reasons.append(reason)
            last = last_end
            match = _COMBINED.search(text, last)
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
        masked = regex.sub(lambda m: _marker("custom") if m[0] else "", text)
        if masked != text:
            findings.append(Finding(path, "custom"))
        return masked

    def _walk(self, value: object, path: str, state: _Walk, depth: int) -> object:
        if value is None or type(value) in (bool, int, float):
            return self._scrub_number(value, path, state.findings)
        if not isinstance(value, (Mapping, list, tuple, set, frozenset)):
            return self.scrub_text(_as_text(value), path, state.findings)
        if depth >= self._max_depth:
            state.findings.append(Finding(path, "depth"))
            return _marker("depth")
        try:
            if isinstance(value, Mapping):
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
            # An email used as a key must leak neither through the key nor the child's path.
            key = self.scrub_text(key_text, path, state.findings)
            key = self._cut(key, _KEY_MAX_LENGTH, 0, path, state.findings)
            if key in out:  # two keys masked alike must not overwrite each other
                key = f"{key}~{index}"
            child = f"{path}.{key}" if path else key
            if self.is_secret_key(key_text):
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
