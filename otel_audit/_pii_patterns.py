"""The value patterns of the in-process redaction (see :mod:`otel_audit._redaction`).

One table of patterns, compiled as alternatives of ONE regex so a clean string costs a single
failed search; patterns a regex cannot decide alone carry a check (Luhn for cards, mod-97 for
IBANs, digit counts for phones) that :func:`hit` applies to each candidate.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

REDACTED = "[REDACTED]"


def marker(reason: str) -> str:
    """The text that replaces a masked value: ``[REDACTED:<reason>]``."""
    return f"{REDACTED[:-1]}:{reason}]"


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
# is anchored on "@" (or "%40") and extended over the local part in Python (see masked_span):
# starting at the local part, it would be tried at nearly every character of every clean path.
PATTERNS = (
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
COMBINED = re.compile("|".join(f"{p.regex}(?P<{p.name}>)" for p in PATTERNS), re.ASCII)
# The same patterns one by one, to retry the later ones where an earlier one was rejected.
SINGLE = tuple(re.compile(f"{p.regex}(?P<{p.name}>)", re.ASCII) for p in PATTERNS)
INDEX = {p.name: i for i, p in enumerate(PATTERNS)}
MARKERS = {p.reason: marker(p.reason) for p in PATTERNS}


def masked_span(index: int, match: re.Match[str], floor: int) -> tuple[int, int, str] | None:
    """The span to mask for a match of ``PATTERNS[index]``, or None if its check rejects it."""
    pattern = PATTERNS[index]
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
