"""Fault tests with real processes: what survives a crash, a dead backend and a full disk.

One stack (VictoriaLogs, Jaeger, otelcol-audit) is shared by every case of this module;
each case starts its own app under uvicorn (its own ``service.instance.id``), stops it, and
brings back whatever it killed. Every event of a request that got a 2xx answer must reach
the collector's archive, duplicates allowed and counted, no gap in ``audit.seq``
(``verify_events``). The ``sdk`` transport is measured under the same faults (what it loses
is printed as ``fault-figures: {...}``, run with ``-s``); its checks are only that it
recovers.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from examples.stack import BIN, Service
from otel_audit.archive import ArchivedEvent, ArchiveReadError, read_events, verify_events

from .harness import AuditStack, poll
from .traffic import Sent, Traffic, event_id, wait_for_logs

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (BIN / "otelcol-audit").exists() or not (BIN / "victoria-logs").exists(),
        reason="otelcol-audit / victoria-logs not built (make tools)",
    ),
]

PATIENCE = 90.0  # the shipper's and the backend queue's backoff reach 30 s between tries
CLOSED = "audit.transport.closed"
INSTANCE = "service.instance.id"
DROP_REASONS = ("spool_full", "spool_write_error")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditStack]:
    stack = AuditStack(tmp_path_factory.mktemp("faults") / "stack")
    try:
        stack.start_backends()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def backends(shared: AuditStack) -> Iterator[AuditStack]:
    """The shared stack with VictoriaLogs and the collector up; the case's app stopped after."""
    shared.ensure_running("victoria-logs", shared.victoria_logs)
    shared.ensure_running("otelcol-audit", shared.collector)
    try:
        yield shared
    finally:
        if "app" in shared.services:
            shared.services["app"].stop()


def app_env(
    stack: AuditStack, transport: str, spool: Path, *, fail_closed: bool = False
) -> dict[str, str]:
    return {
        "OTEL_AUDIT_TRANSPORT": transport,
        "OTEL_AUDIT_SPOOL_DIR": str(spool),
        # Never the repository's ./otel-audit-archive (the app runs from the repo root).
        "OTEL_AUDIT_ARCHIVE_DIR": str(stack.workdir / "app-archive"),
        "OTEL_AUDIT_FAIL_CLOSED": "true" if fail_closed else "false",
    }


def spool_for(stack: AuditStack, transport: str, tmp_path: Path) -> Path:
    """``spool``: the root the collector reads; ``otlp``: the app's own (the collector's never)."""
    return stack.spool_dir if transport == "spool" else tmp_path / "app-spool"


# --- load and ledger ---------------------------------------------------------------------


class Load:
    """A thread that keeps sending reads and role changes, each remembered with its answer."""

    def __init__(self, base_url: str) -> None:
        self.traffic = Traffic(base_url)
        self.unanswered = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-load", daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        number = 0
        while not self._stop.is_set():
            number += 1
            try:
                if number % 2:
                    self.traffic.request("GET", f"/items/{number}", user="load", tenant="acme")
                else:
                    self.traffic.request(
                        "PUT",
                        "/users/u-1/role",
                        params={"role": "viewer"},
                        user="load",
                        tenant="acme",
                    )
            except (httpx.HTTPError, AssertionError):  # the app was killed mid-request
                self.unanswered += 1
            self._stop.wait(0.005)

    def more(self, count: int) -> None:
        """Wait until ``count`` more requests were answered."""
        target = len(self.traffic.sent) + count
        poll(lambda: len(self.traffic.sent) >= target, timeout=PATIENCE, what=f"{count} requests")


def answered(sent: Sequence[Sent]) -> list[Sent]:
    return [s for s in sent if 200 <= s.status < 300]


@dataclass
class Trail:
    """What the archive holds of some requests: their instances' events, what is missing."""

    events: list[ArchivedEvent]
    missing_requests: set[str]
    missing_events: set[str]
    closings: int

    @property
    def complete(self) -> bool:
        return not self.missing_requests and not self.missing_events


def trail_of(stack: AuditStack, sent: Sequence[Sent]) -> Trail:
    """The archive's events of every instance that served ``sent``, and which 2xx are missing."""
    requests = {s.request_id for s in sent}
    business = {i for s in sent for i in s.event_ids}
    archived = stack.archive_events()
    instances = {
        e.resource.get(INSTANCE)
        for e in archived
        if e.attributes.get("audit.request.id") in requests
    }
    events = [e for e in archived if e.resource.get(INSTANCE) in instances]
    seen_requests = {
        e.attributes.get("audit.request.id")
        for e in archived
        if e.event_name == "audit.http.request"
    }
    seen_ids = {e.attributes.get("audit.event.id") for e in archived}
    return Trail(
        events,
        requests - seen_requests,
        business - seen_ids,
        sum(1 for e in events if e.event_name == CLOSED),
    )


def wait_for_trail(stack: AuditStack, sent: Sequence[Sent], closings: int, timeout: float) -> Trail:
    """Poll until every 2xx request's events and ``closings`` closing records are archived.

    Returns what is there at the deadline too: the caller's assertion then names what is lost.
    """
    try:
        return poll(
            lambda: t if (t := trail_of(stack, sent)).complete and t.closings >= closings else None,
            timeout=timeout,
            what="every answered request's events in the archive",
        )
    except AssertionError:
        return trail_of(stack, sent)


def check_trail(trail: Trail, figures: dict[str, object]) -> None:
    """Nothing missing, no gap or damage by ``audit.seq``; duplicates counted in ``figures``."""
    report = verify_events(trail.events)
    bad = [str(f) for f in report.findings if not f.clean]
    figures.update(
        events=report.events,
        duplicates=report.count("duplicate"),
        missing_requests=len(trail.missing_requests),
        missing_events=len(trail.missing_events),
        gaps=[(f.seq, f.seq_end) for f in report.findings if f.kind == "gap"],
    )
    print(f"fault-figures: {json.dumps(figures)}")
    assert bad == [], f"{figures}: {bad}"
    assert trail.complete, figures


def loss_figures(stack: AuditStack, sent: Sequence[Sent], figures: dict[str, object]) -> None:
    """Record how many answered requests' events never reached the archive (sdk transport)."""
    trail = trail_of(stack, sent)
    expected = len(sent) + sum(len(s.event_ids) for s in sent)
    lost = len(trail.missing_requests) + len(trail.missing_events)
    figures.update(expected=expected, lost=lost, lost_pct=round(100 * lost / max(expected, 1), 2))
    print(f"fault-figures: {json.dumps(figures)}")


def recovered(stack: AuditStack, sent: Sequence[Sent]) -> None:
    """The events of ``sent`` (requests after the fault) arrive: the pipeline recovered."""
    poll(lambda: trail_of(stack, sent).complete, timeout=PATIENCE, what="events after the fault")


# --- faults --------------------------------------------------------------------------------


def kill_as_a_segment_is_consumed(stack: AuditStack, spool: Path) -> str:
    """SIGKILL the collector the instant a closed segment disappears (read, or shipped).

    That is when the receiver is handing on its last lines (collector-config/README.md,
    limit 1); returns the segment's name.
    """
    segment = poll(
        lambda: next(iter(sorted(spool.glob("*/seg-*.jsonl"))), None),
        timeout=PATIENCE,
        what="a closed spool segment",
        interval=0.05,
    )
    poll(lambda: not segment.exists(), timeout=PATIENCE, what=f"{segment} consumed", interval=0.001)
    stack.kill("otelcol-audit")
    return segment.name


@pytest.mark.parametrize("transport", ["spool", "otlp", "sdk"])
def test_collector_killed_twice_mid_stream(
    backends: AuditStack, tmp_path: Path, transport: str
) -> None:
    """Two collector crashes under load lose nothing with spool/otlp (sdk: measured)."""
    spool = spool_for(backends, transport, tmp_path)
    app = backends.start("app", backends.app(app_env(backends, transport, spool)))
    with Load(app.base_url) as load:
        load.more(20)
        for _ in range(2):
            if transport == "sdk":
                backends.kill("otelcol-audit")
            else:
                kill_as_a_segment_is_consumed(backends, spool)
            load.more(40)  # sent while the collector is dead
            backends.start("otelcol-audit", backends.collector())
            load.more(40)
        tail = len(load.traffic.sent)
        load.more(10)
    app.stop()  # cleanly: the spool writes its closing record
    sent = answered(load.traffic.sent)
    figures: dict[str, object] = {
        "fault": "collector SIGKILL x2",
        "transport": transport,
        "answered": len(sent),
    }
    if transport == "sdk":
        recovered(backends, answered(load.traffic.sent[tail:]))
        loss_figures(backends, sent, figures)
        return
    check_trail(wait_for_trail(backends, sent, closings=1, timeout=PATIENCE), figures)


@pytest.mark.parametrize("transport", ["spool", "otlp", "sdk"])
def test_app_killed_under_fail_closed(backends: AuditStack, tmp_path: Path, transport: str) -> None:
    """Every request answered 2xx before the app's SIGKILL is archived (sdk: measured)."""
    spool = spool_for(backends, transport, tmp_path)
    env = app_env(backends, transport, spool, fail_closed=True)
    app = backends.start("app", backends.app(env))
    with Load(app.base_url) as load:
        load.more(60)
        backends.kill("app")
    # The next process on the same spool finalises the dead one's open segment (and, with
    # otlp, ships the dead instance's segments); it is stopped cleanly.
    successor = Traffic(backends.start("app", backends.app(env)).base_url)
    assert successor.request("GET", "/items/7", user="next", tenant="acme").status_code == 200
    backends.services["app"].stop()
    sent = answered(load.traffic.sent)
    figures: dict[str, object] = {
        "fault": "app SIGKILL, fail-closed",
        "transport": transport,
        "answered": len(sent),
        "unanswered": load.unanswered,
    }
    if transport == "sdk":
        recovered(backends, successor.sent)
        loss_figures(backends, sent, figures)
        return
    trail = wait_for_trail(backends, [*sent, *successor.sent], closings=1, timeout=PATIENCE)
    check_trail(trail, figures)


def test_victorialogs_down_then_back(backends: AuditStack, tmp_path: Path) -> None:
    """With VictoriaLogs stopped the archive keeps up; restarted, it gets every event."""
    spool = backends.spool_dir
    app = backends.start("app", backends.app(app_env(backends, "spool", spool)))
    traffic = Traffic(app.base_url)
    backends.services["victoria-logs"].stop()
    for number in range(20):
        changed = traffic.request(
            "PUT", "/users/u-2/role", params={"role": f"r{number}"}, user="vl"
        )
        assert changed.status_code == 200
    trail = wait_for_trail(backends, traffic.sent, closings=0, timeout=PATIENCE)
    assert trail.complete, trail.missing_requests | trail.missing_events
    assert not backends.services["victoria-logs"].running
    archived_before = backends.archive_bytes()

    backends.ensure_running("victoria-logs", backends.victoria_logs)  # same port, same data
    ids = {event_id(e) for e in trail.events}
    logged = wait_for_logs(backends, ids, PATIENCE)
    assert {i: len(logged[i]) for i in ids} == dict.fromkeys(ids, 1)
    assert backends.archive_bytes().startswith(archived_before), "archive was rewritten"
    check_trail(
        trail_of(backends, traffic.sent), {"fault": "VictoriaLogs down", "transport": "spool"}
    )


@pytest.mark.parametrize("transport", ["spool", "otlp"])
def test_collector_down_when_the_app_starts(
    backends: AuditStack, tmp_path: Path, transport: str
) -> None:
    """Events recorded before the collector first comes up are all archived once it does."""
    spool = spool_for(backends, transport, tmp_path)
    backends.services["otelcol-audit"].stop()
    app = backends.start("app", backends.app(app_env(backends, transport, spool)))
    traffic = Traffic(app.base_url)
    for number in range(20):
        assert (
            traffic.request("PUT", "/users/u-3/role", params={"role": f"r{number}"}).status_code
            == 200
        )
    # Down for at least a segment's life: a closed segment waits for it.
    poll(lambda: list(spool.glob("*/seg-*.jsonl")), timeout=PATIENCE, what="a closed segment")
    backends.start("otelcol-audit", backends.collector())
    for number in range(10):
        assert traffic.request("GET", f"/items/{number}").status_code == 200
    app.stop()
    trail = wait_for_trail(backends, traffic.sent, closings=1, timeout=PATIENCE)
    check_trail(trail, {"fault": "collector down at app start", "transport": transport})


# --- a full disk ---------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs for the app's spool, unmounted afterwards (skipped if mount is refused)."""
    mount = tmp_path / "small-spool"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> None:
    """Write ``path`` until the file system has no block left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)


def on_disk(spool: Path, request_ids: set[str]) -> set[str]:
    """Which of ``request_ids`` have their request event in the spool (open segments too)."""
    errors: list[ArchiveReadError] = []  # a torn last line while the disk is full
    found = {str(e.attributes.get("audit.request.id")) for e in read_events(spool, errors=errors)}
    return request_ids & found


def drops(client: httpx.Client) -> int:
    """``otel_audit.events.dropped`` for the spool's reasons, read from the app."""
    answer = client.get("/metrics/audit", params=[("reason", r) for r in DROP_REASONS])
    answer.raise_for_status()
    return sum(answer.json()["dropped"].values())


def get(client: httpx.Client, number: int) -> tuple[str, httpx.Response]:
    request_id = f"disk-{uuid.uuid4().hex}"
    return request_id, client.get(f"/items/{number}", headers={"x-request-id": request_id})


@pytest.mark.parametrize("fail_closed", [False, True], ids=["fail-open", "fail-closed"])
def test_full_disk(backends: AuditStack, small_disk: Path, fail_closed: bool) -> None:
    """A full spool disk: counted drops, 2xx (fail-open) or 503 (fail-closed); freed, it flows."""
    env = app_env(backends, "spool", small_disk, fail_closed=fail_closed)
    app: Service = backends.start("app", backends.app(env))
    try:
        with httpx.Client(base_url=app.base_url, timeout=10) as client:
            before = {get(client, n)[0] for n in range(3)}
            poll(
                lambda: on_disk(small_disk, before) == before,
                timeout=PATIENCE,
                what="events on disk",
            )
            fill(small_disk / "filler")

            answers = [get(client, n) for n in range(40)]
            statuses = [response.status_code for _, response in answers]
            if fail_closed:
                assert set(statuses) <= {200, 503}, statuses
                # The last page of the open segment may take a few more lines; then it is refused.
                assert statuses[-10:] == [503] * 10, statuses
                assert answers[-1][1].json() == {"detail": "audit trail unavailable"}
                # A 2xx was only sent for an event on disk.
                ok = {rid for rid, response in answers if response.status_code == 200}
                assert on_disk(small_disk, ok) == ok
            else:
                assert statuses == [200] * 40
            sent = {rid for rid, _ in answers}
            # Every event not on disk is counted as dropped (the writer counts after the fact).
            poll(
                lambda: drops(client) == len(sent - on_disk(small_disk, sent)) > 0,
                timeout=PATIENCE,
                what="drops counted for every event not on disk",
            )
            assert "cannot write audit spool at" in app.log.read_text(errors="replace")

            (small_disk / "filler").unlink()
            after = {
                rid
                for rid, response in (get(client, n) for n in range(5))
                if response.status_code == 200
            }
            assert len(after) == 5
            poll(
                lambda: on_disk(small_disk, after) == after,
                timeout=PATIENCE,
                what="events after space freed",
            )
    finally:
        app.stop()  # before the tmpfs is unmounted: it holds the spool open
