"""``make demo``: run the demo service, drive a scripted session, show the audit trail.

Starts the demo app under uvicorn (a real server on loopback), plays a realistic session
(two tenants, logins including failed ones, create/update/delete, a role change, a
forbidden access, a WebSocket session), then prints a summary read back from the local
audit archive. Keeps serving until Ctrl-C, or exits at once with ``--once``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import websockets

from otel_audit.archive import ArchivedEvent, read_events

ROOT = Path(__file__).resolve().parent.parent
ARCHIVE = ROOT / ".cache" / "demo" / "archive"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_app(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OTEL_AUDIT_ARCHIVE_DIR": str(ARCHIVE), "OTEL_SERVICE_NAME": "demo-docs"}
    command = [sys.executable, "-m", "uvicorn", "examples.app:app", "--port", str(port)]
    process = subprocess.Popen([*command, "--log-level", "warning"], env=env, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return process
        except OSError:
            if process.poll() is not None:
                raise SystemExit("the demo app failed to start") from None
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the demo app did not start listening within 30s")


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


def summarise(events: list[ArchivedEvent]) -> str:
    """A readable summary of the archive: counts per event and outcome, then the trail."""
    lines = [f"{len(events)} audit events in {ARCHIVE.relative_to(ROOT)}", ""]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--once", action="store_true", help="run the session and exit")
    parser.add_argument("--port", type=int, default=0, help="port for the demo app (default: free)")
    args = parser.parse_args()
    shutil.rmtree(ARCHIVE, ignore_errors=True)
    port = args.port or _free_port()
    app = _start_app(port)
    base_url = f"http://127.0.0.1:{port}"
    try:
        play_session(base_url)
        if args.once:
            app.send_signal(signal.SIGINT)  # graceful stop flushes the audit queue
            app.wait(30)
        else:
            time.sleep(2)  # the batch processor exports about once a second
        print(summarise(list(read_events(ARCHIVE))))
        if args.once:
            return
        print(f"\nDemo app: {base_url}/docs   archive: {ARCHIVE}")
        print("Serving until Ctrl-C; `otel_audit.archive.read_events` reads the archive.")
        app.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if app.poll() is None:
            app.send_signal(signal.SIGINT)
            app.wait(30)


if __name__ == "__main__":
    main()
