"""Script: an app that records audit events at a steady rate until SIGTERM (scale-out tests).

``python -m tests.apps.audit_emitter --ids FILE [--rate N] [--drain S]``

Every event is ``record()``'s, through the library's own transport (``OTEL_AUDIT_TRANSPORT``
and the ``OTEL_EXPORTER_OTLP_*`` endpoint from the environment: ``otlp`` to its agent in the
tests). Nine in ten are recorded inside a span, as an event of a request is (it carries that
trace id), one in ten outside any (no trace id, like a background job): the load balancer
routes the two differently. The id of each recorded event is appended to ``--ids``, one per
line, once ``record()`` returned it. On SIGTERM the loop stops, the trail is closed (closing
record written, spool shipped, for up to ``--drain`` seconds) and the process exits 0; a
``record()`` that returns no id (a lost event) exits 3 at once.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from otel_audit import Actor, instrument_app, record
from otel_audit._auditor import default_auditor

_ACTOR = Actor("user-4711", tenant="acme", roles=("admin",), auth_method="jwt")
_OUTSIDE_A_SPAN_EVERY = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.apps.audit_emitter")
    parser.add_argument("--ids", type=Path, required=True, help="append each event id here")
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to ship at exit")
    args = parser.parse_args(argv)

    stopping = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    # A real SDK tracer (no exporter): record() outside a request takes the current span's
    # trace id, as the audited request's events do.
    tracer = TracerProvider().get_tracer("audit-emitter")
    instrument_app(FastAPI())  # record() outside a request uses this app's auditor
    auditor = default_auditor()
    args.ids.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with args.ids.open("a", buffering=1) as ids:
        sequence = 0
        while not stopping.is_set():
            if sequence % _OUTSIDE_A_SPAN_EVERY == 0:
                event_id = _record(sequence)
            else:
                with tracer.start_as_current_span("PUT /orders/{order_id}"):
                    event_id = _record(sequence)
            if event_id is None:
                print(f"audit_emitter: event {sequence} was not recorded", file=sys.stderr)
                return 3
            ids.write(event_id + "\n")
            sequence += 1
            stopping.wait(max(0.0, start + sequence / args.rate - time.monotonic()))
    auditor.close(args.drain)
    return 0


def _record(sequence: int) -> str | None:
    return record(
        "order.updated",
        resource_type="order",
        resource_id=sequence,
        changes={"status": {"old": "open", "new": "paid"}},
        actor=_ACTOR,
    )


if __name__ == "__main__":
    sys.exit(main())
