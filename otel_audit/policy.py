"""Audit policy: which events are recorded, and with how much of the request and response.

Modelled on the Kubernetes audit policy: an ordered list of :class:`Rule`\\ s, the first rule
that matches an event decides its :data:`Level`, and an event no rule matches is recorded at
``metadata``. Levels, from least to most:

* ``none``: no event at all;
* ``metadata``: the event with its attributes (who, what, where, outcome), no bodies;
* ``request``: also the request body, parsed and redacted field by field;
* ``request_response``: also the response body.

A rule matches when every match field it sets matches (any one value of a field will do); a
rule without match fields matches everything. Fields and the attributes they read:
``methods`` (``http.request.method``), ``routes`` (``http.route``, the full template),
``users`` (``user.id``, before pseudonymisation), ``roles`` (``user.roles``, any role held),
``tenants`` (``tenant.id``), ``outcomes`` (``audit.outcome``: ``success``, ``failure``,
``error``), ``status`` (``http.response.status_code``: ``404`` or a class ``4xx``) and
``actions`` (``audit.action``: ``http.request``, ``websocket.connect``, ``user.created``).
A field whose attribute the event lacks does not match: ``routes`` never matches a
``record()`` event made outside a request, ``status`` never matches a WebSocket event.

Globs are case-sensitive. In ``routes``, ``*`` matches within one path segment (never a
``/``), ``?`` one character of a segment, and a whole segment ``**`` any number of segments,
including none: ``/api/*/admin/*`` matches ``/api/v1/admin/users`` but not
``/api/v1/admin/users/{user_id}``, which ``/api/*/admin/**`` matches, as ``/internal/**``
matches ``/internal`` and everything below it. Segment-bounded stars are deliberate: a rule at
``none`` drops events, and a star that silently spans segments would drop more than its author
read. In ``actions`` (dotted names, no ``/``), ``*`` matches any run of characters, dots
included: ``user.*`` matches ``user.role_changed``. Everything else is literal, so a template
such as ``/items/{item_id}`` can be written as it is.

A policy file is YAML (``rules:`` then a list of rules, see ``policies/default.yaml``) and is
validated when loaded: any mistake raises :class:`~otel_audit.AuditConfigError` naming the
file, the rule's index and the field, e.g. ``policy.yaml: rules[2].status: '6xx' is not a
status or class like '404' or '4xx'``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cache
from importlib import resources
from typing import Any, Final, Literal, TypeAlias, get_args

import yaml

from ._errors import AuditConfigError

__all__ = ["LEVELS", "Level", "Policy", "Rule", "level_rank", "load_policy"]

Level: TypeAlias = Literal["none", "metadata", "request", "request_response"]
LEVELS: Final[tuple[Level, ...]] = get_args(Level)
"""Every level, from least to most recorded."""

_RANK: Final[dict[str, int]] = {level: rank for rank, level in enumerate(LEVELS)}
_DEFAULT_LEVEL: Final[Level] = "metadata"
_OUTCOMES: Final = ("success", "failure", "error")
_METHOD_RE: Final = re.compile(r"[A-Z][A-Z0-9_-]*")  # an HTTP token, as written in a request
_ACTION_GLOB_RE: Final = re.compile(r"[a-z0-9_.*?]+")  # action names are dotted lowercase
_STATUS_RE: Final = re.compile(r"([1-5])(xx|[0-9][0-9])", re.IGNORECASE)
_DEFAULT_RESOURCE: Final = "policies/default.yaml"


def level_rank(level: Level) -> int:
    """Position of ``level`` in :data:`LEVELS`: ``none`` is 0, ``request_response`` is 3."""
    try:
        return _RANK[level]
    except KeyError:
        raise AuditConfigError(f"unknown audit level {level!r}; expected one of {LEVELS}") from None


class _FieldError(AuditConfigError):
    """A rule field is invalid; :meth:`Policy.from_mapping` re-words it with source and index."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"Rule.{name}: {detail}")
        self.field = name
        self.detail = detail


# A matcher takes the attribute's value (never None: absence is decided before the call).
_Matcher: TypeAlias = Callable[[object], bool]


@dataclass(frozen=True)
class Rule:
    """One policy rule: a level and the conditions an event must meet to get it.

    Every match field is a tuple; an empty tuple means "any". Values are validated and
    normalised on construction (method names upper-cased, status codes as strings).
    """

    level: Level
    """What to record for events this rule matches first."""
    methods: tuple[str, ...] = ()
    """HTTP methods, e.g. ``("POST", "DELETE")``."""
    routes: tuple[str, ...] = ()
    """Globs over the full route template, e.g. ``/api/*/admin/**``."""
    users: tuple[str, ...] = ()
    """Actor ids (``user.id`` as resolved, before pseudonymisation)."""
    roles: tuple[str, ...] = ()
    """Roles; the rule matches an actor holding any of them."""
    tenants: tuple[str, ...] = ()
    """Tenant ids."""
    outcomes: tuple[str, ...] = ()
    """``success``, ``failure`` and/or ``error``."""
    status: tuple[str, ...] = ()
    """Response status codes (``"404"``) or classes (``"4xx"``)."""
    actions: tuple[str, ...] = ()
    """Globs over ``audit.action``: ``http.request``, ``websocket.*``, ``user.*``."""
    _checks: tuple[tuple[str, _Matcher], ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        if not isinstance(self.level, str) or self.level not in _RANK:
            raise _FieldError("level", f"{self.level!r} is not one of {', '.join(LEVELS)}")
        checks: list[tuple[str, _Matcher]] = []
        for name in _FIELDS:
            values = _normalise(name, getattr(self, name))
            object.__setattr__(self, name, values)
            if values:
                checks.append((_FIELDS[name][0], _FIELDS[name][2](values)))
        object.__setattr__(self, "_checks", tuple(checks))

    def matches(self, attributes: Mapping[str, object]) -> bool:
        """Whether every match field of this rule matches the event's attributes."""
        for attribute, check in self._checks:
            value = attributes.get(attribute)
            if value is None or not check(value):
                return False
        return True

    def may_match(self, attributes: Mapping[str, object]) -> bool | None:
        """``True`` if it surely matches, ``None`` if it could once absent attributes are known,
        ``False`` if no value of them can make it match."""
        sure = True
        for attribute, check in self._checks:
            value = attributes.get(attribute)
            if value is None:
                sure = False
            elif not check(value):
                return False
        return True if sure else None


def _normalise(name: str, values: object) -> tuple[str, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise _FieldError(name, f"must be a list of strings, got {type(values).__name__}")
    if name != "status":
        for value in values:
            if type(value) is not str:
                raise _FieldError(name, f"must be a list of strings, got {value!r} in it")
    return tuple(dict.fromkeys(_FIELDS[name][1](name, v) for v in values))


def _method(name: str, value: str) -> str:
    if not _METHOD_RE.fullmatch(value.upper()):
        raise _FieldError(name, f"{value!r} is not an HTTP method name")
    return value.upper()


def _identifier(name: str, value: str) -> str:
    if not value:
        raise _FieldError(name, "an empty string never matches")
    return value


def _outcome(name: str, value: str) -> str:
    if value not in _OUTCOMES:
        raise _FieldError(name, f"{value!r} is not one of {', '.join(_OUTCOMES)}")
    return value


def _status(name: str, value: object) -> str:
    # YAML reads an unquoted 404 as an int; accept it as the obvious spelling (not a bool).
    text = str(value) if type(value) is int else value
    if not isinstance(text, str) or not _STATUS_RE.fullmatch(text):
        raise _FieldError(name, f"{value!r} is not a status or class like '404' or '4xx'")
    return text.lower()


def _route_glob(name: str, value: str) -> str:
    if not value.startswith(("/", "**")):
        raise _FieldError(name, f"{value!r} must start with '/' (routes are full templates)")
    if any("**" in segment and segment != "**" for segment in value.split("/")):
        raise _FieldError(name, f"{value!r}: '**' must be a whole segment")
    return value


def _action_glob(name: str, value: str) -> str:
    if not _ACTION_GLOB_RE.fullmatch(value) or "**" in value:
        raise _FieldError(name, f"{value!r} is not a glob over dotted lowercase actions (user.*)")
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


def _glob_matcher(translate: Callable[[str], str]) -> Callable[[tuple[str, ...]], _Matcher]:
    def factory(globs: tuple[str, ...]) -> _Matcher:
        # One alternation compiled once per rule: a single fullmatch per event.
        regex = re.compile("|".join(f"(?:{translate(glob)})" for glob in globs))

        def check(value: object) -> bool:
            return isinstance(value, str) and regex.fullmatch(value) is not None

        return check

    return factory


def _action_regex(glob: str) -> str:
    return "".join(_GLOB_ACTION.get(char, re.escape(char)) for char in glob)


def _in_matcher(values: tuple[str, ...]) -> _Matcher:
    wanted = frozenset(values)

    def check(value: object) -> bool:
        if isinstance(value, str):
            return value in wanted
        # user.roles is a sequence: any role held matches
        return isinstance(value, Sequence) and any(
            isinstance(item, str) and item in wanted for item in value
        )

    return check


def _status_matcher(patterns: tuple[str, ...]) -> _Matcher:
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
_FIELDS: Final[
    dict[str, tuple[str, Callable[[str, Any], str], Callable[[tuple[str, ...]], _Matcher]]]
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


@dataclass(frozen=True)
class Policy:
    """Ordered rules; the first rule matching an event decides its level (else ``metadata``)."""

    rules: tuple[Rule, ...] = ()
    source: str = field(default="<policy>", compare=False)
    """Where the rules came from (a file name), for messages."""
    needs_bodies: bool = field(init=False, compare=False, default=False)
    """Whether any rule records bodies: if not, no request pays for capturing one."""
    needs_response_bodies: bool = field(init=False, compare=False, default=False)
    """Whether any rule is at ``request_response``."""

    def __post_init__(self) -> None:
        rules = self.rules
        if not isinstance(rules, (list, tuple)) or not all(isinstance(r, Rule) for r in rules):
            raise AuditConfigError(f"{self.source}: Policy.rules must be a sequence of Rule")
        object.__setattr__(self, "rules", tuple(rules))
        ranks = [_RANK[rule.level] for rule in rules]
        object.__setattr__(self, "needs_bodies", any(r >= _RANK["request"] for r in ranks))
        object.__setattr__(
            self, "needs_response_bodies", any(r >= _RANK["request_response"] for r in ranks)
        )

    def level_for(self, attributes: Mapping[str, object]) -> Level:
        """The level of the first rule matching the event's attributes, else ``metadata``."""
        for rule in self.rules:
            if rule.matches(attributes):
                return rule.level
        return _DEFAULT_LEVEL

    def may_capture_request_body(self, attributes: Mapping[str, object]) -> bool:
        """Whether the request body could be recorded, judged before the response exists.

        ``attributes`` holds what is known when the body is read (action, method, route);
        attributes it lacks count as "could match". Pass only values that will not change:
        ``True`` means "buffer the body, the final level may want it", ``False`` is a promise
        that :meth:`level_for` will return less than ``request`` whatever the rest turns out.
        """
        return self._may_reach(attributes, _RANK["request"])

    def may_capture_response_body(self, attributes: Mapping[str, object]) -> bool:
        """:meth:`may_capture_request_body` for ``request_response`` (the response body)."""
        return self._may_reach(attributes, _RANK["request_response"])

    def _may_reach(self, attributes: Mapping[str, object], rank: int) -> bool:
        if not (self.needs_response_bodies if rank > _RANK["request"] else self.needs_bodies):
            return False
        for rule in self.rules:
            verdict = rule.may_match(attributes)
            if verdict is False:
                continue
            if _RANK[rule.level] >= rank:
                return True
            if verdict:  # surely the first match, and below the level asked about
                return False
        return _RANK[_DEFAULT_LEVEL] >= rank

    @classmethod
    def from_mapping(cls, data: object, source: str = "<mapping>") -> Policy:
        """Build a policy from parsed YAML/JSON (``{"rules": [...]}``), validating every rule."""
        if not isinstance(data, Mapping):
            got = "an empty document" if data is None else type(data).__name__
            raise AuditConfigError(f"{source}: expected a mapping with a 'rules' list, got {got}")
        unknown = sorted(str(key) for key in data if key != "rules")
        if unknown:
            raise AuditConfigError(f"{source}: unknown top-level key(s) {', '.join(unknown)}")
        if "rules" not in data:
            raise AuditConfigError(f"{source}: missing 'rules' (a list of rules)")
        rules = data["rules"]
        if not isinstance(rules, list):
            got = type(rules).__name__
            raise AuditConfigError(f"{source}: rules: must be a list of rules, got {got}")
        return cls(
            tuple(_rule(item, f"{source}: rules[{i}]") for i, item in enumerate(rules)), source
        )

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> Policy:
        """Read and validate a YAML policy file."""
        source = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as stream:
                data = yaml.safe_load(stream)
        except (OSError, UnicodeDecodeError) as exc:
            raise AuditConfigError(f"{source}: cannot read policy file: {exc}") from exc
        except yaml.YAMLError as exc:
            raise AuditConfigError(f"{source}: invalid YAML: {_yaml_problem(exc)}") from exc
        return cls.from_mapping(data, source)

    @classmethod
    def default(cls) -> Policy:
        """The shipped default policy (``otel_audit/policies/default.yaml``)."""
        return _default_policy()


def _rule(item: object, where: str) -> Rule:
    if not isinstance(item, Mapping):
        raise AuditConfigError(f"{where}: must be a mapping with a 'level', got {item!r:.60}")
    known = {f.name for f in fields(Rule) if f.init}
    unknown = sorted(str(key) for key in item if key not in known)
    if unknown:
        raise AuditConfigError(
            f"{where}.{unknown[0]}: unknown field; expected level or one of {', '.join(_FIELDS)}"
        )
    if "level" not in item:
        raise AuditConfigError(f"{where}.level: missing (one of {', '.join(LEVELS)})")
    for name in _FIELDS:
        if item.get(name, None) == []:
            raise AuditConfigError(
                f"{where}.{name}: empty list matches nothing; leave the field out to match all"
            )
    try:
        return Rule(**{str(key): value for key, value in item.items()})
    except _FieldError as exc:
        raise AuditConfigError(f"{where}.{exc.field}: {exc.detail}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{problem} at line {mark.line + 1}" if mark is not None else str(problem)


@cache
def _default_policy() -> Policy:
    resource = resources.files("otel_audit").joinpath(_DEFAULT_RESOURCE)
    data = yaml.safe_load(resource.read_text(encoding="utf-8"))
    return Policy.from_mapping(data, f"otel_audit/{_DEFAULT_RESOURCE}")


def load_policy(value: Policy | str | os.PathLike[str] | None) -> Policy:
    """A :class:`Policy` as given, read from a YAML path, or the default for ``None``."""
    if value is None:
        return Policy.default()
    if isinstance(value, Policy):
        return value
    if isinstance(value, (str, os.PathLike)):
        if not os.fspath(value):
            raise AuditConfigError("policy: an empty path; leave it unset for the default")
        return Policy.from_yaml(value)
    raise AuditConfigError(
        f"policy must be a Policy, a path to a YAML file or None, got {type(value).__name__}"
    )
