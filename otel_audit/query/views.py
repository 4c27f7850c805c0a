"""The auditor's view of the trail in VictoriaLogs: ready-made LogsQL and vmui links.

Each :class:`AuditView` answers one common question with a LogsQL query an auditor can open
in VictoriaLogs' web UI (vmui) as a table: the trail itself (time, actor, tenant, action,
resource, outcome, client, route, newest first), a user's activity, a tenant's changes,
failed logins by client address, denied accesses. The filters are those of
``otel-audit query`` (:func:`~otel_audit.query._logsql.to_logsql`), so a view selects what
the same filter selects in the archive files; the pipes (``format``, ``fields``, ``rename``,
``sort``, ``stats``) shape the rows.

How VictoriaLogs (v1.43, OTLP ingestion through the collector) stores an audit record, and
so what the queries name: every attribute and resource attribute is a field of its own dotted
name (``audit.action``, ``user.id``, ``service.name``), numbers as text (``"403"``), arrays
as JSON text; the body is ``_msg``, the event name ``event_name``, the time ``_time``.

vmui (v1.43.1) is a single-page app with a hash router: ``/select/vmui/?#/?query=...`` runs
``query`` on load over the window named by ``g0.relative_time`` (one of
:data:`RELATIVE_TIMES`), returning at most ``limit`` rows (it asks for confirmation above
1000), in the tab ``view`` (``table``); the table's columns are the rows' fields in
alphabetical order, its rows sorted newest first by ``_time`` when there is one.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from .._ocsf_classes import ACCOUNT_VERBS, API_VERBS
from ._filter import EventFilter
from ._logsql import denied, failed_logins, quote, to_logsql

__all__ = [
    "CHANGE_ACTION",
    "RELATIVE_TIMES",
    "TABLE_COLUMNS",
    "AuditView",
    "as_table",
    "common_views",
    "denied_accesses",
    "failed_logins_by_address",
    "tenant_changes",
    "trail",
    "user_activity",
    "vmui_url",
]

# vmui's relative time ids (app/vmui/.../utils/time.ts, relativeTimeOptions) and durations.
RELATIVE_TIMES: Final = {
    "last_5_minutes": "5m",
    "last_15_minutes": "15m",
    "last_30_minutes": "30m",
    "last_1_hour": "1h",
    "last_3_hours": "3h",
    "last_6_hours": "6h",
    "last_12_hours": "12h",
    "last_24_hours": "24h",
    "last_2_days": "2d",
    "last_7_days": "7d",
    "last_30_days": "30d",
    "last_90_days": "90d",
    "last_180_days": "180d",
    "last_1_year": "1y",
}
DEFAULT_RELATIVE_TIME: Final = "last_7_days"
ROW_LIMIT: Final = 1000

# The table's columns: (column, the record's field). ``resource`` is made by a format pipe.
TABLE_COLUMNS: Final = (
    ("_time", "_time"),
    ("actor", "user.id"),
    ("tenant", "tenant.id"),
    ("action", "audit.action"),
    ("resource", "resource"),
    ("outcome", "audit.outcome"),
    ("client", "client.address"),
    ("route", "http.route"),
)
_RESOURCE_PIPES: Final = (
    'format "<audit.resource.type>" as resource skip_empty_results',
    'format if (audit.resource.id:*) "<audit.resource.type>/<audit.resource.id>" as resource',
)

# A change: a business event whose verb OCSF calls Create, Update or Delete (API Activity),
# or any Account Change verb, or a verb ending in _changed / _updated (role_changed).
CHANGE_VERBS: Final = tuple(
    sorted(
        {verb for verb, (activity, _) in API_VERBS.items() if activity in (1, 3, 4)}
        | set(ACCOUNT_VERBS)
    )
)
CHANGE_ACTION: Final = (
    r"\.(?:" + "|".join(map(re.escape, CHANGE_VERBS)) + r"|[a-z0-9_]*_changed|[a-z0-9_]*_updated)$"
)


@dataclass(frozen=True)
class AuditView:
    """One question asked of the trail: a title and the LogsQL that answers it."""

    title: str
    logsql: str

    def url(self, base_url: str, relative_time: str = DEFAULT_RELATIVE_TIME) -> str:
        """The vmui page showing this view's rows as a table (see :func:`vmui_url`)."""
        return vmui_url(base_url, self.logsql, relative_time=relative_time)


def vmui_url(
    base_url: str,
    logsql: str,
    *,
    relative_time: str = DEFAULT_RELATIVE_TIME,
    view: str = "table",
) -> str:
    """The vmui page at ``base_url`` (``http://host:9428``) that runs ``logsql`` on load.

    ``relative_time`` is one of :data:`RELATIVE_TIMES`; ``view`` a vmui tab (``table``,
    ``group``, ``json``).
    """
    if relative_time not in RELATIVE_TIMES:
        raise ValueError(
            f"relative_time {relative_time!r} is not one of vmui's: {', '.join(RELATIVE_TIMES)}"
        )
    state = {
        "query": logsql,
        "view": view,
        "g0.range_input": RELATIVE_TIMES[relative_time],
        "g0.relative_time": relative_time,
        # vmui asks before fetching more than 1000 rows; its default is 50.
        "limit": str(ROW_LIMIT),
    }
    query = urllib.parse.urlencode(state, quote_via=urllib.parse.quote)
    return f"{base_url.rstrip('/')}/select/vmui/?#/?{query}"


def as_table(logsql: str) -> str:
    """``logsql`` (a filter) with the pipes that make each event one row of the columns."""
    renames = ", ".join(
        f"{field} as {column}" for column, field in TABLE_COLUMNS if column != field
    )
    fields = ", ".join(field for _, field in TABLE_COLUMNS)
    return " | ".join(
        [logsql, *_RESOURCE_PIPES, f"fields {fields}", f"rename {renames}", "sort by (_time desc)"]
    )


def trail(flt: EventFilter | None = None) -> AuditView:
    """Every audit event (that ``flt`` selects), one row each."""
    return AuditView("Audit trail", as_table(to_logsql(flt or EventFilter())))


def user_activity(
    user: str, *, pseudonym_key: bytes | None = None, since: timedelta | None = None
) -> AuditView:
    """What ``user`` did (with ``pseudonym_key``, their pseudonymised events too)."""
    flt = EventFilter(user=user, since=since, pseudonym_key=pseudonym_key)
    return AuditView(f"Activity of user {user}", as_table(to_logsql(flt)))


def tenant_changes(
    tenant: str, *, pseudonym_key: bytes | None = None, since: timedelta | None = None
) -> AuditView:
    """What was changed in ``tenant``: its successful business events that create, update or
    delete something, and every change to accounts (roles, users, passwords)."""
    flt = EventFilter(tenant=tenant, outcome="success", since=since, pseudonym_key=pseudonym_key)
    changes = f"{to_logsql(flt)} AND audit.action:~{quote(CHANGE_ACTION)}"
    return AuditView(f"Changes in tenant {tenant}", as_table(changes))


def failed_logins_by_address(since: timedelta | None = None) -> AuditView:
    """Failed logins counted by client address, most first, with the first and last seen."""
    logsql = " | ".join(
        [
            f"{to_logsql(EventFilter(since=since))} AND {failed_logins()}",
            "stats by (client.address) count() as failed_logins, "
            "min(_time) as first_seen, max(_time) as last_seen",
            "sort by (failed_logins desc, client.address)",
        ]
    )
    return AuditView("Failed logins by client address", logsql)


def denied_accesses(since: timedelta | None = None) -> AuditView:
    """Refused accesses (``access.denied`` events, requests answered 401 or 403)."""
    return AuditView(
        "Denied accesses", as_table(f"{to_logsql(EventFilter(since=since))} AND {denied()}")
    )


def common_views(user: str, tenant: str) -> list[AuditView]:
    """The ready-made views ``make demo`` prints and the README lists, for one user/tenant."""
    return [
        trail(),
        user_activity(user),
        tenant_changes(tenant),
        failed_logins_by_address(),
        denied_accesses(),
    ]
