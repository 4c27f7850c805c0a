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
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from importlib import resources
from typing import Final, Literal, TypeAlias, get_args

import yaml

from ._errors import AuditConfigError
from ._policy_fields import FIELDS, FieldError, Matcher, normalise

__all__ = ["LEVELS", "Level", "Policy", "Rule", "level_rank", "load_policy"]

Level: TypeAlias = Literal["none", "metadata", "request", "request_response"]
LEVELS: Final[tuple[Level, ...]] = get_args(Level)
"""Every level, from least to most recorded."""

_RANK: Final[dict[str, int]] = {level: rank for rank, level in enumerate(LEVELS)}
_DEFAULT_LEVEL: Final[Level] = "metadata"
_DEFAULT_RESOURCE: Final = "policies/default.yaml"


def level_rank(level: Level) -> int:
    """Position of ``level`` in :data:`LEVELS`: ``none`` is 0, ``request_response`` is 3."""
    try:
        return _RANK[level]
    except KeyError:
        raise AuditConfigError(f"unknown audit level {level!r}; expected one of {LEVELS}") from None


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
    _checks: tuple[tuple[str, Matcher], ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        if not isinstance(self.level, str) or self.level not in _RANK:
            raise FieldError("level", f"{self.level!r} is not one of {', '.join(LEVELS)}")
        checks: list[tuple[str, Matcher]] = []
        for name in FIELDS:
            values = normalise(name, getattr(self, name))
            object.__setattr__(self, name, values)
            if values:
                checks.append((FIELDS[name][0], FIELDS[name][2](values)))
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
            f"{where}.{unknown[0]}: unknown field; expected level or one of {', '.join(FIELDS)}"
        )
    if "level" not in item:
        raise AuditConfigError(f"{where}.level: missing (one of {', '.join(LEVELS)})")
    for name in FIELDS:
        if item.get(name, None) == []:
            raise AuditConfigError(
                f"{where}.{name}: empty list matches nothing; leave the field out to match all"
            )
    try:
        return Rule(**{str(key): value for key, value in item.items()})
    except FieldError as exc:
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
