"""The auditor's ready-made views: their LogsQL and vmui links, without a backend.

tests/e2e/test_audit_views.py runs them against a real VictoriaLogs fed by the real stack
and opens one in Chromium; here: what the links carry, quoting, and which actions count as
a tenant's changes.
"""

from __future__ import annotations

import re
import urllib.parse

import pytest

from otel_audit.query._filter import pseudonym
from otel_audit.query.views import (
    CHANGE_ACTION,
    RELATIVE_TIMES,
    TABLE_COLUMNS,
    common_views,
    failed_logins_by_address,
    tenant_changes,
    user_activity,
    vmui_url,
)


def vmui_state(url: str) -> dict[str, str]:
    """The query string after vmui's ``#/?``, decoded as vmui's ``qs.parse`` does."""
    base, _, fragment = url.partition("#/?")
    assert base.endswith("/select/vmui/?"), url
    state = urllib.parse.parse_qs(fragment, keep_blank_values=True, strict_parsing=True)
    return {key: value for key, (value,) in state.items()}


def test_link_carries_the_query_time_window_and_table_view() -> None:
    """The LogsQL comes back byte for byte, with the table tab and a vmui relative time."""
    view = user_activity('o"brien\\x & co #1')
    state = vmui_state(view.url("http://127.0.0.1:9428/", relative_time="last_24_hours"))
    assert state["query"] == view.logsql
    assert state["view"] == "table"
    assert (state["g0.relative_time"], state["g0.range_input"]) == ("last_24_hours", "24h")
    assert int(state["limit"]) <= 1000  # vmui asks for confirmation above 1000


def test_values_are_quoted_as_logsql_string_literals() -> None:
    """A quote or backslash in an id cannot end the literal or change the query."""
    logsql = user_activity('o"brien\\x').logsql
    assert 'user.id:="o\\"brien\\\\x"' in logsql


def test_unknown_relative_time_is_refused() -> None:
    """vmui ignores an id it does not know; the link says so instead of showing 5 minutes."""
    with pytest.raises(ValueError, match="last_7_days"):
        vmui_url("http://localhost:9428", "*", relative_time="last_week")


def test_table_views_name_the_columns_an_auditor_reads() -> None:
    """Trail-shaped views keep exactly the table's columns, newest first."""
    columns = [column for column, _ in TABLE_COLUMNS]
    assert columns == [
        "_time",
        "actor",
        "tenant",
        "action",
        "resource",
        "outcome",
        "client",
        "route",
    ]
    for view in common_views("u-alice", "acme"):
        if "| stats " in view.logsql:
            continue
        assert "| fields _time, user.id, tenant.id, audit.action, resource," in view.logsql
        assert view.logsql.endswith("| sort by (_time desc)")


def test_failed_logins_are_counted_by_client_address() -> None:
    """The failed-login view is a stats pipe by client address."""
    logsql = failed_logins_by_address().logsql
    assert "| stats by (client.address) count() as failed_logins" in logsql
    assert 'audit.action:="auth.login_failed"' in logsql


def test_pseudonymised_users_are_found_by_their_raw_id() -> None:
    """With the pseudonymisation key, the view matches the raw id and its pseudonym."""
    logsql = user_activity("u-alice", pseudonym_key=b"k" * 32).logsql
    assert f'user.id:in("u-alice", "{pseudonym("u-alice", b"k" * 32)}")' in logsql


@pytest.mark.parametrize(
    ("action", "is_change"),
    [
        ("user.role_changed", True),
        ("user.created", True),
        ("user.deleted", True),
        ("document.updated", True),
        ("settings.updated", True),
        ("tenant.plan_changed", True),
        ("permission.granted", True),
        ("auth.password_reset", True),
        ("http.request", False),
        ("auth.login", False),
        ("auth.login_failed", False),
        ("document.viewed", False),
        ("data.exported", False),
        ("access.denied", False),
        ("websocket.connect", False),
    ],
)
def test_a_tenants_changes_are_create_update_delete_and_account_actions(
    action: str, is_change: bool
) -> None:
    """The action pattern of the tenant-changes view (RE2 and Python agree on it)."""
    assert bool(re.search(CHANGE_ACTION, action)) is is_change
    assert 'tenant.id:="acme" AND audit.outcome:="success"' in tenant_changes("acme").logsql


def test_relative_times_are_vmuis() -> None:
    """Ids as vmui derives them from its option titles ("Last 7 days" -> last_7_days)."""
    assert all(re.fullmatch(r"last_\d+_(minutes|hours?|days|year)", key) for key in RELATIVE_TIMES)
