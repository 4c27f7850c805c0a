"""The 100,000-event trail, generated once per session, and its brute-force oracle."""

from __future__ import annotations

import fnmatch
import gc
import gzip
import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from otel_audit.archive import ArchivedEvent, ArchiveReadError, iter_archive_files
from otel_audit.archive._otlp_json import decode_logs_request

from .trail import Written, pseudonym, write_trail

TRAIL_EVENTS = 100_000


@dataclass(frozen=True)
class Trail:
    """The generated archive: its folders, what was written, and every line decoded once."""

    root: Path
    now_ns: int
    records: list[Written]
    lines: list[tuple[bytes, list[ArchivedEvent]]]
    """Every archive line's raw bytes and its events, for checking the line prefilter."""

    @property
    def paths(self) -> list[Path]:
        return [self.root / "collector", self.root / "library", self.root / "spool"]


@pytest.fixture(scope="session")
def trail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trail]:
    """100,000 audit events (plus copies) in the collector, library and spool layouts."""
    root = tmp_path_factory.mktemp("trail")
    now_ns = time.time_ns()
    records = write_trail(root, TRAIL_EVENTS, now_ns)
    lines = []
    for folder in ("collector", "library", "spool"):
        for file in iter_archive_files(root / folder):
            opener: Any = gzip.open if file.name.endswith(".gz") else open
            with opener(file, "rb") as stream:
                for number, raw in enumerate(stream, 1):
                    request = json.loads(raw)
                    lines.append(
                        (raw, decode_logs_request(request, f"{file}:{number}", _unexpected))
                    )
    # Millions of long-lived objects: keep the cyclic GC from walking them in every test.
    gc.collect()
    gc.freeze()
    try:
        yield Trail(root, now_ns, records, lines)
    finally:
        gc.unfreeze()


def _unexpected(error: ArchiveReadError) -> None:
    pytest.fail(f"the generated trail has an unreadable record: {error}")


def keys(events: Iterable[ArchivedEvent | Written]) -> Counter[tuple[int, str]]:
    """The (timestamp, event id) of each record, with multiplicity."""
    return Counter((e.timestamp_ns, str(e.attributes.get("audit.event.id"))) for e in events)


def oracle(  # noqa: PLR0911 - one plain check per filter field, on purpose
    record: Written,
    *,
    user: str | None = None,
    tenant: str | None = None,
    keyed: bool = False,
    action: str | None = None,
    outcome: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    route: str | None = None,
    client: str | None = None,
    trace_id: str | None = None,
    category: str | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> bool:
    """Whether ``record`` is selected, decided from what the generator wrote."""
    attributes: dict[str, Any] = record.attributes
    if not record.event_name.startswith("audit."):
        return False
    for key, wanted in (("user.id", user), ("tenant.id", tenant)):
        if wanted is not None:
            accepted = {wanted, pseudonym(wanted)} if keyed else {wanted}
            if attributes.get(key) not in accepted:
                return False
    if action is not None and not fnmatch.fnmatchcase(
        str(attributes.get("audit.action", "")), action.replace("[", "[[]")
    ):
        return False
    for key, wanted in (
        ("audit.outcome", outcome),
        ("audit.resource.type", resource_type),
        ("audit.resource.id", resource_id),
        ("http.route", route),
        ("client.address", client),
    ):
        if wanted is not None and attributes.get(key) != wanted:
            return False
    if trace_id is not None and record.trace_id != trace_id.lower():
        return False
    act, status = attributes.get("audit.action"), attributes.get("http.response.status_code")
    failed = attributes["audit.outcome"] == "failure"
    if category == "failed-login" and not (
        act == "auth.login_failed" or (act == "auth.login" and failed)
    ):
        return False
    if category == "denied" and not (act == "access.denied" or status in (401, 403)):
        return False
    if since_ns is not None and record.timestamp_ns < since_ns:
        return False
    return not (until_ns is not None and record.timestamp_ns >= until_ns)
