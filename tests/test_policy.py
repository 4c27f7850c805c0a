"""Tests for otel_audit.policy: the match matrix, ordering, partial evaluation, validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_audit import AuditConfigError
from otel_audit.policy import LEVELS, Level, Policy, Rule, level_rank, load_policy

DATA = Path(__file__).parent / "data" / "policies"

# An HTTP event as the pipeline sees it once the response is known.
HTTP: dict[str, object] = {
    "audit.action": "http.request",
    "http.request.method": "POST",
    "http.route": "/api/v1/admin/users/{user_id}",
    "user.id": "u-42",
    "user.roles": ("admin", "auditor"),
    "tenant.id": "acme",
    "audit.outcome": "failure",
    "http.response.status_code": 404,
}


def _without(*names: str) -> dict[str, object]:
    return {key: value for key, value in HTTP.items() if key not in names}


# (rule match fields, event attributes, whether the rule matches)
MATRIX: list[tuple[dict[str, Any], dict[str, object], bool]] = [
    ({}, HTTP, True),
    ({}, {}, True),
    ({"methods": ["POST", "PUT"]}, HTTP, True),
    ({"methods": ["post"]}, HTTP, True),
    ({"methods": ["GET"]}, HTTP, False),
    ({"methods": ["POST"]}, _without("http.request.method"), False),
    ({"routes": ["/api/*/admin/**"]}, HTTP, True),
    ({"routes": ["/other", "/api/v1/admin/users/{user_id}"]}, HTTP, True),
    ({"routes": ["/api/*/admin/*"]}, HTTP, False),
    ({"routes": ["/API/**"]}, HTTP, False),
    ({"routes": ["/**"]}, _without("http.route"), False),
    ({"users": ["u-42"]}, HTTP, True),
    ({"users": ["u-4"]}, HTTP, False),
    ({"users": ["u-42"]}, _without("user.id"), False),
    ({"roles": ["viewer", "auditor"]}, HTTP, True),
    ({"roles": ["viewer"]}, HTTP, False),
    ({"roles": ["admin"]}, {**HTTP, "user.roles": ()}, False),
    ({"roles": ["admin"]}, {**HTTP, "user.roles": "admin"}, True),
    ({"roles": ["admin"]}, _without("user.roles"), False),
    ({"tenants": ["acme"]}, HTTP, True),
    ({"tenants": ["globex"]}, HTTP, False),
    ({"tenants": ["acme"]}, _without("tenant.id"), False),
    ({"outcomes": ["failure", "error"]}, HTTP, True),
    ({"outcomes": ["success"]}, HTTP, False),
    ({"outcomes": ["failure"]}, _without("audit.outcome"), False),
    ({"status": ["404"]}, HTTP, True),
    ({"status": [404]}, HTTP, True),
    ({"status": ["4xx"]}, HTTP, True),
    ({"status": ["4XX"]}, HTTP, True),
    ({"status": ["5xx", "403"]}, HTTP, False),
    ({"status": ["2xx"]}, {**HTTP, "http.response.status_code": 204}, True),
    ({"status": ["4xx"]}, _without("http.response.status_code"), False),
    ({"actions": ["http.*"]}, HTTP, True),
    ({"actions": ["user.*"]}, {"audit.action": "user.role_changed"}, True),
    ({"actions": ["user.*"]}, {"audit.action": "users.created"}, False),
    ({"actions": ["websocket.?onnect"]}, {"audit.action": "websocket.connect"}, True),
    ({"actions": ["websocket.connect"]}, {"audit.action": "websocket.disconnect"}, False),
    # every field must match, not any one of them
    ({"methods": ["POST"], "tenants": ["acme"], "status": ["4xx"]}, HTTP, True),
    ({"methods": ["POST"], "tenants": ["globex"], "status": ["4xx"]}, HTTP, False),
    # a record() event outside a request has no route: a route rule cannot match it
    ({"routes": ["/**"], "actions": ["user.*"]}, {"audit.action": "user.created"}, False),
]


@pytest.mark.parametrize(("match", "attributes", "expected"), MATRIX)
def test_rule_matrix(match: dict[str, Any], attributes: dict[str, object], expected: bool) -> None:
    """Each match field matches its attribute, fails on another value and on absence."""
    policy = Policy.from_mapping({"rules": [{"level": "request", **match}]})
    assert policy.rules[0].matches(attributes) is expected
    assert policy.level_for(attributes) == ("request" if expected else "metadata")


# (glob, route, whether it matches): `*` stays in a segment, a `**` segment spans segments.
ROUTE_GLOBS = [
    ("/api/*/admin/*", "/api/v1/admin/users", True),
    ("/api/*/admin/*", "/api/v1/admin/users/{user_id}", False),
    ("/api/*/admin/*", "/api/v1/v2/admin/users", False),
    ("/api/*/admin/**", "/api/v1/admin/users/{user_id}", True),
    ("/internal/**", "/internal", True),
    ("/internal/**", "/internal/jobs/{job_id}/run", True),
    ("/internal/**", "/internals", False),
    ("/internal/*", "/internal/jobs/{job_id}", False),
    ("**/login/**", "/login", True),
    ("**/login/**", "/api/v1/login/access-token", True),
    ("**/login/**", "/api/v1/relogin", False),
    ("/a/**/b", "/a/b", True),
    ("/a/**/b", "/a/x/y/b", True),
    ("/a/**/b", "/a/x/y/bc", False),
    ("/items/{item_id}", "/items/{item_id}", True),
    ("/items/?", "/items/7", True),
    ("/items/?", "/items/72", False),
    ("/v1.0/*", "/v100/x", False),
    ("**", "/anything/at/all", True),
]


@pytest.mark.parametrize(("glob", "route", "expected"), ROUTE_GLOBS)
def test_route_globs(glob: str, route: str, expected: bool) -> None:
    """Route globs follow the documented segment semantics, literally everywhere else."""
    rule = Rule("none", routes=(glob,))
    assert rule.matches({"http.route": route}) is expected


def test_first_match_wins() -> None:
    """The first matching rule decides, even when a later one would record more or less."""
    policy = Policy.from_mapping(
        {
            "rules": [
                {"level": "none", "routes": ["/internal/**"]},
                {"level": "request_response", "methods": ["POST"], "routes": ["/api/*/admin/**"]},
                {"level": "request", "methods": ["POST"]},
                {"level": "metadata"},
                {"level": "request_response"},
            ]
        }
    )
    assert policy.level_for({**HTTP, "http.route": "/internal/x"}) == "none"
    assert policy.level_for(HTTP) == "request_response"
    assert policy.level_for({**HTTP, "http.route": "/api/v1/items"}) == "request"
    assert policy.level_for({**HTTP, "http.request.method": "GET"}) == "metadata"


@pytest.mark.parametrize("level", LEVELS)
def test_each_level_is_returned(level: Level) -> None:
    """Every level is accepted and returned as written."""
    assert (
        Policy((Rule(level, actions=("user.*",)),)).level_for({"audit.action": "user.x"}) == level
    )


def test_no_matching_rule_means_metadata() -> None:
    """An event no rule matches is recorded at metadata, as is any event of an empty policy."""
    assert Policy((Rule("none", tenants=("globex",)),)).level_for(HTTP) == "metadata"
    assert Policy.from_mapping({"rules": []}).level_for(HTTP) == "metadata"


def test_level_rank_orders_levels() -> None:
    """level_rank orders levels from none to request_response and refuses unknown ones."""
    assert [level_rank(level) for level in LEVELS] == [0, 1, 2, 3]
    assert level_rank("request") > level_rank("metadata")
    with pytest.raises(AuditConfigError, match="loud"):
        level_rank("loud")  # type: ignore[arg-type]


def test_needs_bodies() -> None:
    """needs_bodies is true only when some rule records a body."""
    assert not Policy((Rule("none"), Rule("metadata", methods=("GET",)))).needs_bodies
    assert Policy((Rule("request", methods=("POST",)),)).needs_bodies
    assert not Policy((Rule("request"),)).needs_response_bodies
    assert Policy((Rule("request_response", tenants=("acme",)),)).needs_response_bodies


BEFORE_RESPONSE: dict[str, object] = {"audit.action": "http.request", "http.request.method": "POST"}

# (rules, attributes known before the response, may the request body be needed)
PARTIAL: list[tuple[list[dict[str, Any]], dict[str, object], bool]] = [
    ([{"level": "request", "status": ["4xx"]}], {**BEFORE_RESPONSE, "http.route": "/x"}, True),
    ([{"level": "request", "methods": ["GET"]}], {**BEFORE_RESPONSE, "http.route": "/x"}, False),
    ([{"level": "request", "users": ["u-1"]}], BEFORE_RESPONSE, True),
    # a rule surely matching below `request` stops the scan
    ([{"level": "metadata"}, {"level": "request"}], BEFORE_RESPONSE, False),
    ([{"level": "none", "methods": ["POST"]}, {"level": "request"}], BEFORE_RESPONSE, False),
    # a rule that may or may not match does not stop it
    ([{"level": "none", "outcomes": ["error"]}, {"level": "request"}], BEFORE_RESPONSE, True),
    ([{"level": "metadata", "roles": ["bot"]}, {"level": "request"}], BEFORE_RESPONSE, True),
    ([{"level": "request_response", "tenants": ["acme"]}], BEFORE_RESPONSE, True),
    ([{"level": "request", "actions": ["user.*"]}], BEFORE_RESPONSE, False),
    ([{"level": "metadata", "status": ["2xx"]}], BEFORE_RESPONSE, False),
    ([], BEFORE_RESPONSE, False),
]


@pytest.mark.parametrize(("rules", "attributes", "expected"), PARTIAL)
def test_may_capture_request_body(
    rules: list[dict[str, Any]], attributes: dict[str, object], expected: bool
) -> None:
    """Absent attributes count as "may match"; a sure match below `request` ends the scan."""
    policy = Policy.from_mapping({"rules": rules})
    assert policy.may_capture_request_body(attributes) is expected


def test_may_capture_response_body() -> None:
    """The response body is wanted only where a rule could reach request_response."""
    policy = Policy.from_mapping(
        {"rules": [{"level": "request_response", "status": ["5xx"]}, {"level": "request"}]}
    )
    assert policy.may_capture_response_body(BEFORE_RESPONSE)
    assert policy.may_capture_request_body(BEFORE_RESPONSE)
    assert not policy.may_capture_response_body(
        {**BEFORE_RESPONSE, "http.response.status_code": 200}
    )


# Small value sets so random rules and events collide often.
_VALUES: dict[str, tuple[object, ...]] = {
    "audit.action": ("http.request", "user.created"),
    "http.request.method": ("GET", "POST"),
    "http.route": ("/a/b", "/internal/x"),
    "user.id": ("u-1", "u-2"),
    "user.roles": (("admin",), ("viewer",), ()),
    "tenant.id": ("acme", "globex"),
    "audit.outcome": ("success", "failure", "error"),
    "http.response.status_code": (200, 404, 500),
}
_FIELD_VALUES: dict[str, tuple[object, ...]] = {
    "actions": ("http.*", "user.*"),
    "methods": ("GET", "POST"),
    "routes": ("/a/*", "/internal/**"),
    "users": ("u-1", "u-2"),
    "roles": ("admin", "viewer"),
    "tenants": ("acme", "globex"),
    "outcomes": ("success", "failure", "error"),
    "status": ("2xx", "404", "5xx"),
}
_rule_strategy = st.fixed_dictionaries(
    {"level": st.sampled_from(LEVELS)},
    optional={
        name: st.lists(st.sampled_from(values), min_size=1, max_size=2)
        for name, values in _FIELD_VALUES.items()
    },
)
_event_strategy = st.fixed_dictionaries(
    {name: st.sampled_from(values) for name, values in _VALUES.items()}
)


@settings(max_examples=300, deadline=None)
@given(
    rules=st.lists(_rule_strategy, max_size=5),
    event=_event_strategy,
    known=st.sets(st.sampled_from(sorted(_VALUES))),
)
def test_partial_evaluation_is_sound(
    rules: list[dict[str, Any]], event: dict[str, object], known: set[str]
) -> None:
    """If the final level records the request body, the earlier partial answer said so."""
    policy = Policy.from_mapping({"rules": rules})
    partial = {name: value for name, value in event.items() if name in known}
    final = policy.level_for(event)
    if level_rank(final) >= level_rank("request"):
        assert policy.may_capture_request_body(partial)
    if level_rank(final) >= level_rank("request_response"):
        assert policy.may_capture_response_body(partial)
    # with every attribute known, the answer is exact
    assert policy.may_capture_request_body(event) == (level_rank(final) >= level_rank("request"))


# (YAML text, fragments the error message must contain)
BAD_POLICIES: list[tuple[str, tuple[str, ...]]] = [
    ("rules:\n  - level: loud\n", ("rules[0].level", "'loud'", "request_response")),
    ("rules:\n  - methods: [GET]\n", ("rules[0].level", "missing")),
    ("rules:\n  - level: none\n  - level: request\n    verbs: [GET]\n",
     ("rules[1].verbs", "unknown field")),
    ("rules:\n  - {level: none}\n  - {level: none}\n  - {level: none, status: ['6xx']}\n",
     ("rules[2].status", "'6xx' is not a status or class like '404' or '4xx'")),
    ("rules:\n  - {level: none, status: [true]}\n", ("rules[0].status", "True")),
    ("rules:\n  - {level: none, outcomes: [denied]}\n", ("rules[0].outcomes", "'denied'")),
    ("rules:\n  - {level: none, routes: ['api/*']}\n", ("rules[0].routes", "must start with '/'")),
    ("rules:\n  - {level: none, routes: ['/api/v**']}\n", ("rules[0].routes", "whole segment")),
    ("rules:\n  - {level: none, actions: ['User.*']}\n", ("rules[0].actions", "'User.*'")),
    ("rules:\n  - {level: none, actions: ['user.**']}\n", ("rules[0].actions", "'user.**'")),
    ("rules:\n  - {level: none, methods: ['GET /']}\n", ("rules[0].methods", "HTTP method")),
    ("rules:\n  - {level: none, methods: POST}\n", ("rules[0].methods", "list of strings", "str")),
    ("rules:\n  - {level: none, users: [42]}\n", ("rules[0].users", "42")),
    ("rules:\n  - {level: none, tenants: ['']}\n", ("rules[0].tenants", "empty")),
    ("rules:\n  - {level: none, roles: []}\n", ("rules[0].roles", "empty list")),
    ("rules:\n  - {level: none, roles: {admin: 1}}\n", ("rules[0].roles", "dict")),
    ("rules:\n  - level: none\n  - just-a-string\n", ("rules[1]", "must be a mapping")),
    ("rules:\n  level: none\n", ("rules: must be a list", "dict")),
    ("level: none\n", ("unknown top-level key", "level")),
    ("{}\n", ("missing 'rules'",)),
    ("", ("expected a mapping", "empty document")),
    ("- level: none\n", ("expected a mapping", "list")),
    ("rules: [\n  - level: none\n", ("invalid YAML", "line")),
    ("rules:\n  - level: none\n\tbad: tab\n", ("invalid YAML",)),
]  # fmt: skip


@pytest.mark.parametrize(("text", "fragments"), BAD_POLICIES)
def test_bad_policy_files(tmp_path: Path, text: str, fragments: tuple[str, ...]) -> None:
    """Every mistake in a policy file names the file, the rule's index and the field."""
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AuditConfigError) as caught:
        Policy.from_yaml(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, message


def test_unreadable_policy_files(tmp_path: Path) -> None:
    """A missing or non-UTF-8 file is a config error that names the file."""
    missing = tmp_path / "missing.yaml"
    with pytest.raises(AuditConfigError, match=r"missing\.yaml: cannot read policy file"):
        Policy.from_yaml(missing)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"rules:\n  - {level: none, users: ['j\xe9r\xf4me']}\n")
    with pytest.raises(AuditConfigError, match=r"latin\.yaml: cannot read policy file"):
        Policy.from_yaml(latin)


def test_rule_validates_when_built_in_python() -> None:
    """Rules built in code are validated and normalised like rules read from a file."""
    with pytest.raises(AuditConfigError, match=r"^Rule\.status: '600'"):
        Rule("none", status=("600",))
    with pytest.raises(AuditConfigError, match=r"^Rule\.level"):
        Rule("loud")  # type: ignore[arg-type]
    with pytest.raises(AuditConfigError, match=r"^Rule\.routes: must be a list"):
        Rule("none", routes="/internal/**")  # type: ignore[arg-type]
    rule = Rule("request", methods=("post", "POST"), status=("4XX",))
    assert rule.methods == ("POST",)
    assert rule.status == ("4xx",)
    with pytest.raises(AuditConfigError, match="sequence of Rule"):
        Policy(({"level": "none"},))  # type: ignore[arg-type]


def test_policy_file_from_disk_and_the_contract_example() -> None:
    """The issue's contract example loads and behaves as its comments say."""
    policy = Policy.from_yaml(DATA / "contract.yaml")
    assert [rule.level for rule in policy.rules] == [
        "none",
        "request_response",
        "request",
        "metadata",
    ]
    assert policy.level_for({**HTTP, "http.route": "/internal/jobs"}) == "none"
    assert policy.level_for({**HTTP, "http.route": "/api/v1/admin/users"}) == "request_response"
    assert policy.level_for({"audit.action": "user.role_changed"}) == "request"
    assert policy.level_for({"audit.action": "tenant.created"}) == "metadata"


def test_load_policy() -> None:
    """load_policy takes a Policy, a path (str or PathLike) or None, and nothing else."""
    policy = Policy((Rule("none"),))
    assert load_policy(policy) is policy
    assert load_policy(None) == Policy.default()
    path = DATA / "contract.yaml"
    assert load_policy(path) == load_policy(str(path)) == Policy.from_yaml(path)
    with pytest.raises(AuditConfigError, match="got int"):
        load_policy(3)  # type: ignore[arg-type]
    with pytest.raises(AuditConfigError, match="empty path"):
        load_policy("")


# (event, level under the shipped default policy)
DEFAULT_CASES: list[tuple[dict[str, object], Level]] = [
    ({**HTTP, "http.route": "/items/{item_id}", "http.request.method": "POST"}, "request"),
    ({**HTTP, "http.route": "/items/{item_id}", "http.request.method": "PUT"}, "request"),
    ({**HTTP, "http.route": "/items/{item_id}", "http.request.method": "PATCH"}, "request"),
    ({**HTTP, "http.route": "/items/{item_id}", "http.request.method": "DELETE"}, "request"),
    ({**HTTP, "http.route": "/items/{item_id}", "http.request.method": "GET"}, "metadata"),
    ({**HTTP, "http.route": "/api/v1/login/access-token"}, "metadata"),
    ({**HTTP, "http.route": "/token"}, "metadata"),
    ({**HTTP, "http.route": "/users/{user_id}/password"}, "metadata"),
    ({**HTTP, "http.route": "/auth/reset-password"}, "metadata"),
    ({**HTTP, "http.route": "/api/oauth2/authorize"}, "metadata"),
    ({**HTTP, "http.route": "/me/mfa/enroll"}, "metadata"),
    ({**HTTP, "http.route": "/signup"}, "metadata"),
    ({"audit.action": "websocket.connect", "http.route": "/ws"}, "metadata"),
    ({"audit.action": "user.role_changed", "http.request.method": "PUT"}, "metadata"),
    ({"audit.action": "auth.login_failed"}, "metadata"),
]


@pytest.mark.parametrize(("event", "level"), DEFAULT_CASES)
def test_default_policy(event: dict[str, object], level: Level) -> None:
    """The shipped default records request bodies of changes, except credential exchanges."""
    assert Policy.default().level_for(event) == level


def test_default_policy_is_conservative() -> None:
    """The default never drops an event and never records a response body."""
    default = Policy.default()
    assert all(rule.level != "none" for rule in default.rules)
    assert default.needs_bodies
    assert not default.needs_response_bodies
    assert default.rules[-1] == Rule("metadata")
    get = {"audit.action": "http.request", "http.request.method": "GET", "http.route": "/items"}
    assert not default.may_capture_request_body(get)
    assert default.may_capture_request_body({**get, "http.request.method": "POST"})
    assert not default.may_capture_request_body(
        {**get, "http.request.method": "POST", "http.route": "/login"}
    )
