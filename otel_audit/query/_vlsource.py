"""VictoriaLogs as a source: the same answers as the files, computed by the server."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from ..archive import ArchivedEvent
from ._filter import EventFilter, format_duration
from ._logsql import AUDIT_EVENTS, denied, exact, failed_logins, field_name, to_logsql
from ._page import Page, after, check_limit, decode_cursor, make_page, unique_sorted
from ._shape import (
    ACTION,
    CLIENT,
    EVENT_ID,
    OUTCOME,
    ROUTE,
    TENANT_ID,
    USER_ID,
    format_timestamp,
    sort_key,
)
from ._stats import DEFAULT_BUCKET, AuditStats, format_bucket, ranked
from ._victorialogs import LogsQLClient, base_url, parse_time, row_to_event


def resolved(flt: EventFilter, now: datetime) -> EventFilter:
    """``flt`` with relative times made absolute against ``now`` (one instant per query)."""
    return replace(
        flt,
        since=now - flt.since if isinstance(flt.since, timedelta) else flt.since,
        until=now - flt.until if isinstance(flt.until, timedelta) else flt.until,
    )


class VictoriaLogsSource:
    """A VictoriaLogs server (``victorialogs+http://HOST:PORT``) holding the audit trail."""

    def __init__(self, spec: str, *, timeout: float = 30.0) -> None:
        self.spec = spec
        self.client = LogsQLClient(base_url(spec), timeout=timeout)

    def __repr__(self) -> str:
        return f"VictoriaLogsSource({self.spec!r})"

    def _logsql(self, flt: EventFilter, now: datetime | None) -> str:
        return to_logsql(resolved(flt, now or datetime.now(timezone.utc)))

    def _events(self, logsql: str) -> Iterator[ArchivedEvent]:
        for row in self.client.query(logsql):
            yield row_to_event(row)

    def events(self, flt: EventFilter, *, now: datetime | None = None) -> Iterator[ArchivedEvent]:
        """Every selected record, oldest first (sorted by the server), streamed."""
        return self._events(self._logsql(flt, now) + " | sort by (_time)")

    def follow(self, flt: EventFilter) -> Iterator[ArchivedEvent]:
        """Records as they arrive (``/select/logsql/tail``), until interrupted."""
        for row in self.client.tail(to_logsql(resolved(flt, datetime.now(timezone.utc)))):
            yield row_to_event(row)

    def get(self, event_id: str) -> ArchivedEvent | None:
        """The record whose ``audit.event.id`` is ``event_id``, or None."""
        if not event_id:
            return None
        logsql = f"{AUDIT_EVENTS} AND {exact(EVENT_ID, [event_id])} | limit 1"
        return next(self._events(logsql), None)

    def count(self, logsql: str) -> int:
        """How many records ``logsql`` selects."""
        for row in self.client.query(f"{logsql} | stats count() as n"):
            return int(row.get("n", 0))
        return 0

    def page(
        self,
        flt: EventFilter,
        *,
        limit: int = 100,
        cursor: str | None = None,
        newest_first: bool = False,
        now: datetime | None = None,
    ) -> Page:
        """One page by ``(timestamp, event id)``, as the files would give it.

        The server sorts by ``_time`` and cuts at ``limit``; ties on the boundary instants
        (the cursor's and the page's last) are fetched whole and ordered here, so the event
        id breaks ties exactly as for the files.
        """
        check_limit(limit)
        base = self._logsql(flt, now)
        start = decode_cursor(cursor, newest_first) if cursor is not None else None
        total = self.count(base)
        at_start: list[ArchivedEvent] = []
        beyond = base
        if start is not None:
            instant = format_timestamp(start[0])
            at_start = [
                e
                for e in self._events(f"{base} AND _time:[{instant}, {instant}]")
                if after(sort_key(e), start, newest_first)
            ]
            beyond = f"{base} AND _time:{'<' if newest_first else '>'}{instant}"
        order = "desc" if newest_first else ""
        keep = limit + 1
        while True:
            fetched = list(self._events(f"{beyond} | sort by (_time) {order} limit {keep}"))
            complete = len(fetched) < keep
            if not complete:  # the cut may split an instant: take that instant whole
                edge = fetched[-1].timestamp_ns
                instant = format_timestamp(edge)
                fetched = [e for e in fetched if e.timestamp_ns != edge]
                fetched += self._events(f"{base} AND _time:[{instant}, {instant}]")
            unique = unique_sorted(at_start + fetched, newest_first)
            if len(unique) > limit or complete:
                return make_page(unique, total, limit, newest_first, more=not complete)
            keep *= 2

    def stats(
        self,
        flt: EventFilter,
        *,
        bucket: timedelta = DEFAULT_BUCKET,
        now: datetime | None = None,
    ) -> AuditStats:
        """The same counts as :meth:`FileSource.stats`, by ``stats`` pipes on the server."""
        base = self._logsql(flt, now)
        step = format_duration(bucket)
        result = AuditStats(bucket=step)
        for row in self.client.query(
            f"{base} | stats count() as n, min(_time) as first, max(_time) as last"
        ):
            result.total = int(row.get("n", 0))
            if result.total:
                result.first = format_timestamp(parse_time(row["first"]))
                result.last = format_timestamp(parse_time(row["last"]))
        if not result.total:
            return result
        result.by_action = self._counts(base, ACTION)
        result.by_outcome = self._counts(base, OUTCOME)
        result.by_actor = self._counts(base, USER_ID)
        result.by_tenant = self._counts(base, TENANT_ID)
        times = {
            parse_time(row["_time"]): int(row["n"])
            for row in self.client.query(f"{base} | stats by (_time:{step}) count() as n")
        }
        result.over_time = {format_bucket(start): n for start, n in sorted(times.items())}
        failed = f"{base} AND {failed_logins()}"
        result.failed_logins_by_client = self._counts(failed, CLIENT)
        result.failed_logins_by_user = self._counts(failed, USER_ID)
        result.failed_logins = sum(result.failed_logins_by_client.values())
        refused = f"{base} AND {denied()}"
        result.denied_by_user = self._counts(refused, USER_ID)
        result.denied_by_route = self._counts(refused, ROUTE)
        result.denied = sum(result.denied_by_user.values())
        return result

    def _counts(self, logsql: str, key: str) -> dict[str, int]:
        rows = self.client.query(f"{logsql} | stats by ({field_name(key)}) count() as n")
        return ranked({str(row.get(key, "")): int(row["n"]) for row in rows})
