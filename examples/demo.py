"""``make demo``: the whole stack, a scripted session, and the audit trail read back.

Starts VictoriaLogs, Jaeger, the otelcol-audit collector and the demo app under
``opentelemetry-instrument`` (real processes on loopback), plays a realistic session (two
tenants, logins including failed ones, create/update/delete, a role change, a forbidden
access, a WebSocket session), then prints a summary read back from the collector's archive,
the Jaeger trace of each audited request and where to look. Keeps running until Ctrl-C, SIGTERM or
SIGHUP, or exits at once with ``--once``; either way every process it started is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import httpx
import websockets

from examples.stack import ROOT, Service, Stack, free_port
from otel_audit.archive import ArchivedEvent, read_events
from otel_audit.query.views import common_views

WORKDIR = ROOT / ".cache" / "demo"
SERVICE_NAME = "demo-docs"
# Whose activity and which tenant's changes the printed views show (examples/app.py's alice).
DEMO_USER, DEMO_TENANT = "u-alice", "acme"


def _app_service(stack: Stack, port: int) -> Service:
    """The demo app, zero-code instrumented, exporting logs and traces to the collector."""
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    command = [str(instrument), sys.executable, "-m", "uvicorn", "examples.app:app"]
    return Service(
        "demo-app",
        [*command, "--port", str(port), "--log-level", "warning"],
        f"http://127.0.0.1:{port}/docs",
        stack.workdir / "logs" / "demo-app.log",
        env=stack.app_env(SERVICE_NAME),
    )


def _login(client: httpx.Client, username: str, password: str) -> dict[str, str]:
    response = client.post("/auth/login", json={"username": username, "password": password})
    if response.status_code != 200:
        return {}
    return {"authorization": f"Bearer {response.json()['access_token']}"}


def play_session(base_url: str) -> None:
    """The scripted session: every step is a real HTTP or WebSocket call."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        _login(client, "alice", "wrong-password")
        _login(client, "mallory@evil.example", "guess123")
        alice = _login(client, "alice", "alice-pass-1")
        bob = _login(client, "bob", "bob-pass-1")
        carol = _login(client, "carol", "carol-pass-1")
        dave = _login(client, "dave", "dave-pass-1")
        document = client.post("/documents", json={"title": "Q3 plan"}, headers=alice).json()
        client.patch(
            f"/documents/{document['id']}",
            json={"title": "Q3 plan v2", "body": "ok"},
            headers=alice,
        )
        client.post("/documents", json={"title": "not allowed"}, headers=bob)  # viewer: 403
        client.get("/admin/settings", headers=bob)  # forbidden
        client.patch(  # another tenant's document: 404
            f"/documents/{document['id']}", json={"title": "mine now"}, headers=carol
        )
        globex_doc = client.post("/documents", json={"title": "Globex memo"}, headers=dave).json()
        client.delete(f"/documents/{globex_doc['id']}", headers=carol)
        client.put("/users/bob/role", json={"role": "editor"}, headers=alice)
        client.get("/documents", headers=bob)
        client.get("/documents")  # no token: 401
    asyncio.run(_websocket_session(base_url, alice["authorization"].removeprefix("Bearer ")))


async def _websocket_session(base_url: str, token: str) -> None:
    ws_url = base_url.replace("http://", "ws://") + "/ws/notifications"
    async with websockets.connect(f"{ws_url}?token={token}") as websocket:
        for text in ("hello", "status?"):
            await websocket.send(text)
            await websocket.recv()
        await websocket.send("bye")
        await websocket.wait_closed()
    try:
        async with websockets.connect(f"{ws_url}?token=forged") as websocket:
            await websocket.recv()
    except (websockets.ConnectionClosed, websockets.InvalidStatus):
        pass  # denied before accept (uvicorn answers HTTP 403), as intended


def summarise(events: list[ArchivedEvent], archive: Path) -> str:
    """A readable summary of the archive: counts per event and outcome, then the trail."""
    shown = archive.relative_to(ROOT) if archive.is_relative_to(ROOT) else archive
    lines = [f"{len(events)} audit events in {shown}", ""]
    counts = collections.Counter(
        (e.event_name, str(e.attributes.get("audit.outcome"))) for e in events
    )
    for (name, outcome), count in sorted(counts.items()):
        lines.append(f"  {count:3d}  {name:32s} {outcome}")
    lines += ["", "  time          actor      tenant   outcome  event"]
    for event in events:
        attributes = event.attributes
        actor = str(attributes.get("user.id", "-"))
        tenant = str(attributes.get("tenant.id", "-"))
        outcome = str(attributes.get("audit.outcome"))
        when = f"{event.timestamp:%H:%M:%S.%f}"[:-3]
        lines.append(f"  {when}  {actor:10s} {tenant:8s} {outcome:8s} {event.body}")
    return "\n".join(lines)


def _wait_for_archive(
    archive: Path, settle: float = 2.0, timeout: float = 30
) -> list[ArchivedEvent]:
    """The archived events once the archive has stopped growing for ``settle`` seconds."""
    deadline = time.monotonic() + timeout
    events: list[ArchivedEvent] = []
    last_change = time.monotonic()
    while time.monotonic() < deadline:
        current = list(read_events(archive)) if archive.exists() else []
        if len(current) != len(events):
            events, last_change = current, time.monotonic()
        elif events and time.monotonic() - last_change >= settle:
            break
        time.sleep(0.25)
    return events


def _wait_for_traces(stack: Stack, trace_ids: set[str], timeout: float = 15) -> set[str]:
    """The ``trace_ids`` Jaeger holds, waiting up to ``timeout`` for all of them."""
    deadline = time.monotonic() + timeout
    found: set[str] = set()
    while True:
        for trace_id in trace_ids - found:
            with contextlib.suppress(OSError):
                if stack.jaeger_trace_raw(trace_id, api="v1") is not None:
                    found.add(trace_id)
        if found == trace_ids or time.monotonic() >= deadline:
            return found
        time.sleep(0.25)


def request_traces(stack: Stack, events: list[ArchivedEvent]) -> str:
    """One line per audited HTTP request: method, route, outcome and its trace in Jaeger."""
    requests = [e for e in events if e.event_name == "audit.http.request" and e.trace_id]
    found = _wait_for_traces(stack, {e.trace_id for e in requests})
    lines = [
        f"Traces in Jaeger, one per audited request ({len(found)} of {len(requests)} arrived;",
        "the span event on each server span carries the audit event id, action, outcome,",
        "user and tenant):",
    ]
    for event in requests:
        attributes = event.attributes
        method = str(attributes.get("http.request.method", "-"))
        route = str(attributes.get("http.route", attributes.get("url.path", "-")))
        outcome = str(attributes.get("audit.outcome"))
        missing = "" if event.trace_id in found else "  (not in Jaeger yet)"
        url = stack.jaeger_trace_url(event.trace_id)
        lines.append(f"  {method:6s} {route:24s} {outcome:8s} {url}{missing}")
    return "\n".join(lines)


def auditor_views(stack: Stack) -> str:
    """The ready-made VictoriaLogs views (vmui tables) for the session's alice and acme."""
    lines = ["VictoriaLogs UI, the trail as tables (each link runs its LogsQL, last 7 days):"]
    for view in common_views(DEMO_USER, DEMO_TENANT):
        lines += [f"  {view.title}:", f"    {view.url(stack.logs_url)}"]
    return "\n".join(lines)


def _where_to_look(stack: Stack, app_port: int) -> str:
    return "\n".join(
        [
            auditor_views(stack),
            "",
            f"Demo app (OpenAPI UI):  http://127.0.0.1:{app_port}/docs",
            # The Go module has no UI assets (a placeholder page); the official image has them.
            f"Jaeger API:             {stack.jaeger_url}/api/traces?service={SERVICE_NAME}",
            "Jaeger UI:              `docker compose up`, then http://127.0.0.1:16686/trace/<id>",
            f"Collector archive:      {stack.archive_dir}",
        ]
    )


# Ctrl-C; `kill`, `timeout`, make passing on its SIGTERM, a service manager; a closed terminal.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """Turns the first stop signal into KeyboardInterrupt, Ctrl-C's clean shutdown path.

    Python's defaults end the process at once on SIGTERM and SIGHUP, skipping the ``finally``
    that stops the backends, the collector and the app (they run in their own sessions, so
    no signal reaches them otherwise). A signal during the shutdown is only remembered:
    ``timeout`` and make may both send SIGTERM, and the second must not cut it short.
    """

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self.stopping = False

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            return
        self.received = signal.Signals(signum)
        if not self.stopping:
            raise KeyboardInterrupt

    def shutting_down(self) -> None:
        """From now on a stop signal is only remembered: the shutdown is already under way."""
        self.stopping = True

    def exit_as_signalled(self) -> None:
        """End the process by the signal that stopped it, so a shell or make knows why."""
        if self.received is None:
            return
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(self.received, signal.SIG_DFL)
        os.kill(os.getpid(), self.received)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--once", action="store_true", help="run the session and exit")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=WORKDIR,
        help=f"folder for data and logs, wiped first (default: {WORKDIR.relative_to(ROOT)})",
    )
    args = parser.parse_args()
    workdir: Path = args.workdir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    stack = Stack(workdir)
    app_port = free_port()
    app = _app_service(stack, app_port)
    stop_signals = StopSignals()
    stop_signals.install()
    try:
        stack.start(["victoria-logs", "jaeger", "otelcol-audit"])
        app.start()
        play_session(f"http://127.0.0.1:{app_port}")
        # The app exports in the background; the collector writes the archive as it goes.
        events = _wait_for_archive(stack.archive_dir)
        print(summarise(events, stack.archive_dir))
        print()
        print(request_traces(stack, events))
        print()
        print(_where_to_look(stack, app_port))
        if not args.once:
            # Flushed: whoever watches the output (a pipe, a test) knows the demo is up.
            print("\nRunning until Ctrl-C (or SIGTERM, SIGHUP).", flush=True)
            while app.running:
                time.sleep(1)
    except KeyboardInterrupt:
        name = stop_signals.received.name if stop_signals.received else "SIGINT"
        print(f"\n{name}: stopping the demo app, the collector and the backends.", flush=True)
    finally:
        stop_signals.shutting_down()
        try:
            app.stop(signal.SIGINT)
        finally:
            stack.stop()
    stop_signals.exit_as_signalled()


if __name__ == "__main__":
    main()
