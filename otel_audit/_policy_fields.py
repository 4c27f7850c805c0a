"""The match fields of an audit policy rule: how each is validated and how it matches.

One row per field in :data:`FIELDS`: the event attribute it reads, the validator of its
values (normalising them, e.g. method names upper-cased) and the factory of its matcher.
Matchers are built once per rule; matching an event is then a dict lookup and one check per
field the rule sets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeAlias

from ._errors import AuditConfigError

_OUTCOMES: Final = ("success", "failure", "error")
_METHOD_RE: Final = re.compile(r"[A-Z][A-Z0-9_-]*")  # an HTTP token, as written in a request
_ACTION_GLOB_RE: Final = re.compile(r"[a-z0-9_.*?]+")  # action names are dotted lowercase
_STATUS_RE: Final = re.compile(r"([1-5])(xx|[0-9][0-9])", re.IGNORECASE)

# A matcher takes the attribute's value (never None: absence is decided before the call).
Matcher: TypeAlias = Callable[[object], bool]


class FieldError(AuditConfigError):
    """A rule field is invalid; :meth:`Policy.from_mapping` re-words it with source and index."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"Rule.{name}: {detail}")
        self.field = name
        self.detail = detail


def normalise(name: str, values: object) -> tuple[str, ...]:
    """A field's values as a validated, de-duplicated tuple, or :class:`FieldError`."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise FieldError(name, f"must be a list of strings, got {type(values).__name__}")
    if name != "status":
        for value in values:
            if type(value) is not str:
                raise FieldError(name, f"must be a list of strings, got {value!r} in it")
    return tuple(dict.fromkeys(FIELDS[name][1](name, v) for v in values))


def _method(name: str, value: str) -> str:
    if not _METHOD_RE.fullmatch(value.upper()):
        raise FieldError(name, f"{value!r} is not an HTTP method name")
    return value.upper()


def _identifier(name: str, value: str) -> str:
    if not value:
        raise FieldError(name, "an empty string never matches")
    return value


def _outcome(name: str, value: str) -> str:
    if value not in _OUTCOMES:
        raise FieldError(name, f"{value!r} is not one of {', '.join(_OUTCOMES)}")
    return value


def _status(name: str, value: object) -> str:
    # YAML reads an unquoted 404 as an int; accept it as the obvious spelling (not a bool).
    text = str(value) if type(value) is int else value
    if not isinstance(text, str) or not _STATUS_RE.fullmatch(text):
        raise FieldError(name, f"{value!r} is not a status or class like '404' or '4xx'")
    return text.lower()


def _route_glob(name: str, value: str) -> str:
    if not value.startswith(("/", "**")):
        raise FieldError(name, f"{value!r} must start with '/' (routes are full templates)")
    if any("**" in segment and segment != "**" for segment in value.split("/")):
        raise FieldError(name, f"{value!r}: '**' must be a whole segment")
    return value


def _action_glob(name: str, value: str) -> str:
    if not _ACTION_GLOB_RE.fullmatch(value) or "**" in value:
        raise FieldError(name, f"{value!r} is not a glob over dotted lowercase actions (user.*)")
    return value


def _route_regex(glob: str) -> str:
    """Regex source for a route glob; ``**`` segments swallow the slashes around them."""
    segments = glob.split("/")
    last = len(segments) - 1
    parts: list[str] = []
    separator = ""
    for index, segment in enumerate(segments):
        if segment == "**":
            if last == 0:
                parts.append(".*")
            elif index == last:  # "/a/**": "/a" itself or anything below it
                parts.append("(?:/.*)?")
            else:  # "**/b" or "/a/**/b": zero or more whole segments, each with its slash
                parts.append(separator + "(?:.*/)?")
            separator = ""
            continue
        parts.append(separator)
        parts.extend(_GLOB_SEGMENT.get(char, re.escape(char)) for char in segment)
        separator = "/"
    return "".join(parts)


_GLOB_SEGMENT: Final = {"*": "[^/]*", "?": "[^/]"}
_GLOB_ACTION: Final = {"*": ".*", "?": "."}


def _glob_matcher(translate: Callable[[str], str]) -> Callable[[tuple[str, ...]], Matcher]:
    def factory(globs: tuple[str, ...]) -> Matcher:
        # One alternation compiled once per rule: a single fullmatch per event.
        regex = re.compile("|".join(f"(?:{translate(glob)})" for glob in globs))

        def check(value: object) -> bool:
            return isinstance(value, str) and regex.fullmatch(value) is not None

        return check

    return factory


def _action_regex(glob: str) -> str:
    return "".join(_GLOB_ACTION.get(char, re.escape(char)) for char in glob)


def _in_matcher(values: tuple[str, ...]) -> Matcher:
    wanted = frozenset(values)

    def check(value: object) -> bool:
        if isinstance(value, str):
            return value in wanted
        # user.roles is a sequence: any role held matches
        return isinstance(value, Sequence) and any(
            isinstance(item, str) and item in wanted for item in value
        )

    return check


def _status_matcher(patterns: tuple[str, ...]) -> Matcher:
    codes = frozenset(int(p) for p in patterns if p.isdigit())
    classes = frozenset(int(p[0]) for p in patterns if not p.isdigit())

    def check(value: object) -> bool:
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if type(value) is not int:
            return False
        return value in codes or value // 100 in classes

    return check


# field -> (attribute it reads, value validator, matcher factory)
FIELDS: Final[
    dict[str, tuple[str, Callable[[str, Any], str], Callable[[tuple[str, ...]], Matcher]]]
] = {
    "methods": ("http.request.method", _method, _in_matcher),
    "routes": ("http.route", _route_glob, _glob_matcher(_route_regex)),
    "users": ("user.id", _identifier, _in_matcher),
    "roles": ("user.roles", _identifier, _in_matcher),
    "tenants": ("tenant.id", _identifier, _in_matcher),
    "outcomes": ("audit.outcome", _outcome, _in_matcher),
    "status": ("http.response.status_code", _status, _status_matcher),
    "actions": ("audit.action", _action_glob, _glob_matcher(_action_regex)),
}
