"""Which OCSF class and activity an audit event is: the documented rule, as tables.

An event's action is ``resource.verb`` (``user.role_changed``: resource ``user``, verb
``role_changed``); the middleware's own events are ``http.request``,
``websocket.connect`` and ``websocket.disconnect``. The first rule that matches wins:

1. **Authentication (3002)**, logons and logoffs:
   - a verb in :data:`LOGON_VERBS` (``login``, ``logon``, ``sign_in``, each also with a
     ``_failed`` suffix: ``auth.login``, ``auth.login_failed``, ``user.login``...) is a Logon;
     a ``_failed`` verb is a failed one whatever its outcome says;
   - a verb in :data:`LOGOFF_VERBS` (``logout``, ``logoff``, ``sign_out``) is a Logoff;
   - an ``http.request`` to a credential route, a route whose last segment is in
     :data:`LOGON_ROUTE_SEGMENTS` (``/auth/login``, ``/login/access-token``, ``/oauth/token``)
     and whose method is POST, is a Logon, failed when its outcome is not success: an app
     that records no login events of its own still shows its failed logins. (An app that
     does record them shows each attempt twice, once per event, tied by
     ``metadata.correlation_uid``, the request id.) A route ending in a segment of
     :data:`LOGOFF_ROUTE_SEGMENTS` is a Logoff.
2. **Account Change (3001)**, changes to who may do what:
   - any action on a resource in :data:`ACCOUNT_RESOURCES` (``user.created``,
     ``user.deleted``, ``user.role_changed``, ``account.locked``...);
   - the account actions of other resources in :data:`ACCOUNT_ACTIONS`
     (``auth.password_changed``, ``auth.mfa_enabled``, ``permission.granted``...).
   The activity comes from the verb (:data:`ACCOUNT_VERBS`: created -> Create, deleted ->
   Delete, suspended -> Disable, granted -> Attach Policy...); a verb OCSF has no activity
   for (``role_changed``, ``updated``) is Other (99), named after the verb ("Role Changed").
3. **API Activity (6003)**, everything else: HTTP requests (the activity from the method:
   POST Create, GET/HEAD Read, PUT/PATCH Update, DELETE Delete), WebSocket sessions (Other)
   and business events (the activity from the verb, :data:`API_VERBS`; Other otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# Class and category captions and ids, as the OCSF schema names them.
AUTHENTICATION: Final = (3002, "Authentication")
ACCOUNT_CHANGE: Final = (3001, "Account Change")
API_ACTIVITY: Final = (6003, "API Activity")
CATEGORIES: Final = {3: "Identity & Access Management", 6: "Application Activity"}
OTHER: Final = 99

LOGON_VERBS: Final = frozenset(
    verb + suffix for verb in ("login", "logon", "signin", "sign_in") for suffix in ("", "_failed")
)
LOGOFF_VERBS: Final = frozenset({"logout", "logoff", "signout", "sign_out"})
LOGON_ROUTE_SEGMENTS: Final = frozenset(
    {"login", "logon", "signin", "sign-in", "sign_in", "token", "access-token", "access_token"}
)
LOGOFF_ROUTE_SEGMENTS: Final = frozenset({"logout", "logoff", "signout", "sign-out", "sign_out"})

ACCOUNT_RESOURCES: Final = frozenset({"user", "account", "member", "service_account"})
ACCOUNT_ACTIONS: Final = frozenset(
    {
        "auth.password_changed",
        "auth.password_reset",
        "auth.mfa_enabled",
        "auth.mfa_disabled",
        "permission.granted",
        "permission.revoked",
        "role.assigned",
        "role.unassigned",
        "role.granted",
        "role.revoked",
    }
)
# Account Change activities (OCSF 1.8 captions) by verb.
ACCOUNT_VERBS: Final[dict[str, tuple[int, str]]] = {
    **dict.fromkeys(("created", "invited", "registered", "signed_up"), (1, "Create")),
    **dict.fromkeys(("enabled", "activated", "reactivated", "unsuspended"), (2, "Enable")),
    "password_changed": (3, "Password Change"),
    "password_reset": (4, "Password Reset"),
    **dict.fromkeys(("disabled", "deactivated", "suspended"), (5, "Disable")),
    **dict.fromkeys(("deleted", "removed"), (6, "Delete")),
    **dict.fromkeys(("granted", "assigned", "policy_attached"), (7, "Attach Policy")),
    **dict.fromkeys(("revoked", "unassigned", "policy_detached"), (8, "Detach Policy")),
    "locked": (9, "Lock"),
    "mfa_enabled": (10, "MFA Factor Enable"),
    "mfa_disabled": (11, "MFA Factor Disable"),
    "unlocked": (12, "Unlock"),
}
# API Activity activities by verb, then by HTTP method.
API_VERBS: Final[dict[str, tuple[int, str]]] = {
    **dict.fromkeys(("created", "added", "uploaded", "issued", "imported"), (1, "Create")),
    **dict.fromkeys(
        ("read", "viewed", "listed", "searched", "exported", "downloaded", "accessed"),
        (2, "Read"),
    ),
    **dict.fromkeys(
        ("updated", "changed", "modified", "renamed", "edited", "moved"), (3, "Update")
    ),
    **dict.fromkeys(("deleted", "removed", "purged", "revoked"), (4, "Delete")),
}
API_METHODS: Final[dict[str, tuple[int, str]]] = {
    "POST": (1, "Create"),
    "GET": (2, "Read"),
    "HEAD": (2, "Read"),
    "PUT": (3, "Update"),
    "PATCH": (3, "Update"),
    "DELETE": (4, "Delete"),
}


@dataclass(frozen=True)
class OcsfClass:
    """Where an event sits in OCSF: class, category and activity, ids and captions."""

    class_uid: int
    class_name: str
    activity_id: int
    activity_name: str
    failed: bool = False
    """The event says the attempt failed (``auth.login_failed``) whatever its outcome."""

    @property
    def category_uid(self) -> int:
        return self.class_uid // 1000

    @property
    def category_name(self) -> str:
        return CATEGORIES[self.category_uid]

    @property
    def type_uid(self) -> int:
        return self.class_uid * 100 + self.activity_id

    @property
    def type_name(self) -> str:
        """The type's caption: Other's stays "Other" when the activity has its own name."""
        activity = "Other" if self.activity_id == OTHER else self.activity_name
        return f"{self.class_name}: {activity}"


def _other(verb: str) -> tuple[int, str]:
    """Activity Other, named after the verb (``role_changed`` -> "Role Changed")."""
    return OTHER, verb.replace("_", " ").title() or "Other"


def _route_segment(route: str) -> str:
    return route.rstrip("/").rpartition("/")[2].lower()


def _request_class(method: str, route: str, success: bool) -> OcsfClass:
    """An HTTP request: a logon or logoff on a credential route, else API Activity."""
    segment = _route_segment(route)
    if method == "POST" and segment in LOGON_ROUTE_SEGMENTS:
        return OcsfClass(*AUTHENTICATION, 1, "Logon", failed=not success)
    if segment in LOGOFF_ROUTE_SEGMENTS:
        return OcsfClass(*AUTHENTICATION, 2, "Logoff")
    return OcsfClass(*API_ACTIVITY, *API_METHODS.get(method, (OTHER, "Other")))


def classify(action: str, *, method: str = "", route: str = "", success: bool = True) -> OcsfClass:
    """The OCSF class and activity of an event with ``action`` (see the module's rule).

    ``method`` and ``route`` (the template, else the path) matter for ``http.request`` only;
    ``success`` says whether its outcome was success.
    """
    resource, verb = action.partition(".")[0], action.rpartition(".")[2]
    if verb in LOGON_VERBS:
        return OcsfClass(*AUTHENTICATION, 1, "Logon", failed=verb.endswith("_failed"))
    if verb in LOGOFF_VERBS:
        return OcsfClass(*AUTHENTICATION, 2, "Logoff")
    if action == "http.request":
        return _request_class(method.upper(), route, success)
    if resource in ACCOUNT_RESOURCES or action in ACCOUNT_ACTIONS:
        return OcsfClass(*ACCOUNT_CHANGE, *ACCOUNT_VERBS.get(verb, _other(verb)))
    return OcsfClass(*API_ACTIVITY, *API_VERBS.get(verb, _other(verb)))
