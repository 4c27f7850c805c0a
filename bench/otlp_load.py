"""Load generator for the collector benchmark, run as a child pinned to the load core.

Two modes, each printing one JSON object on stdout:

* ``throughput``: ``--senders`` threads, one keep-alive connection each, POST the same
  pre-encoded OTLP/HTTP protobuf export of ``--batch`` items back to back (closed loop) for
  ``--warmup`` then ``--seconds``. ``--payload`` picks the items: audit records (``audit``,
  to ``/v1/logs``), application log records (``default``, to ``/v1/logs``) or spans of
  request traces (``traces``, to ``/v1/traces``); ``--url`` is the matching endpoint.
  Reports the items in requests completed inside the measured window, and every item the
  collector accepted (warm-up and requests still in flight at the end included), for the
  archive check.
* ``latency``: one record per request at ``--rate`` records/s; a thread tails the archive
  file and notes when each record appears. Records are matched on their trace id, which no
  processor touches, not on ``audit.event.id``: the PII processors can alter that value
  (a UUID whose groups happen to be all digits looks like a card number), and the report
  counts the event ids that did not arrive as sent.

Any answer other than 200, or a connection error, exits with status 2 and says why: a
refused export is cheaper than an accepted one and would flatter the numbers.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .audit_payload import (
    EVENT_ID_KEY,
    audit_record,
    batch_body,
    default_batch_body,
    export_request,
    trace_batch_body,
)

_HEADERS = {"Content-Type": "application/x-protobuf", "User-Agent": "otel-audit-bench/1.0"}
_TAIL_POLL_SECONDS = 0.001
_ARRIVAL_TIMEOUT_SECONDS = 15.0


class ExportRefused(RuntimeError):
    """The collector answered an export with something other than 200."""


class _Sender:
    """One keep-alive connection to the collector's OTLP/HTTP receiver."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.path = parts.path
        self.connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)

    def post(self, body: bytes) -> None:
        self.connection.request("POST", self.path, body, _HEADERS)
        response = self.connection.getresponse()
        answer = response.read()
        if response.status != 200:
            raise ExportRefused(f"HTTP {response.status}: {answer[:500]!r}")


@dataclass
class _Throughput:
    """Completion times of every request, per sender thread (no lock needed)."""

    done: list[list[float]]
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)


PAYLOADS = {"audit": batch_body, "default": default_batch_body, "traces": trace_batch_body}


def throughput(
    url: str, batch: int, senders: int, warmup: float, seconds: float, *, payload: str = "audit"
) -> dict[str, Any]:
    body = PAYLOADS[payload](batch)
    state = _Throughput(done=[[] for _ in range(senders)])
    start = time.monotonic()
    measure_from = start + warmup
    stop_at = measure_from + seconds

    def send(index: int) -> None:
        sender = _Sender(url)
        completed = state.done[index]
        try:
            while time.monotonic() < stop_at and not state.errors:
                sent = time.monotonic()
                sender.post(body)
                now = time.monotonic()
                completed.append(now)
                if now >= measure_from:
                    state.latencies.append(now - sent)
        except (OSError, http.client.HTTPException, ExportRefused) as error:
            state.errors.append(f"sender {index}: {error!r}")

    threads = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if state.errors:
        raise ExportRefused("; ".join(state.errors))
    times = [t for completed in state.done for t in completed]
    measured = sum(1 for t in times if measure_from <= t < stop_at)
    if measured == 0:
        raise ExportRefused("no export completed inside the measured window")
    return {
        "accepted_records": len(times) * batch,
        "measured_records": measured * batch,
        "seconds": seconds,
        "request_p50_ms": 1000 * statistics.median(state.latencies),
    }


class _ArchiveTail(threading.Thread):
    """Reads lines appended to the archive; notes when each trace id shows up, and its
    ``audit.event.id`` as archived."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.arrived: dict[str, tuple[float, str]] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.path.exists():
            if self.stopping.wait(_TAIL_POLL_SECONDS):
                return
        with self.path.open("rb") as archive:
            pending = b""
            while not self.stopping.is_set():
                chunk = archive.read()
                if not chunk:
                    time.sleep(_TAIL_POLL_SECONDS)
                    continue
                now = time.monotonic()
                # The exporter writes a line and its newline in two calls: keep the rest.
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    for trace_id, event_id in _records(json.loads(line)):
                        self.arrived[trace_id] = (now, event_id)


def _records(export: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(trace id, audit.event.id) of each log record in one archive line."""
    for resource in export.get("resourceLogs", []):
        for scope in resource.get("scopeLogs", []):
            for record in scope.get("logRecords", []):
                event_id = next(
                    (
                        str(a["value"].get("stringValue"))
                        for a in record.get("attributes", [])
                        if a["key"] == EVENT_ID_KEY
                    ),
                    "",
                )
                yield str(record.get("traceId", "")), event_id


def latency(url: str, archive: Path, rate: float, seconds: float) -> dict[str, Any]:
    rng = random.Random(7)
    tail = _ArchiveTail(archive)
    tail.start()
    sender = _Sender(url)
    sent: dict[str, tuple[float, str]] = {}  # by trace id: send time, audit.event.id
    count = max(1, round(rate * seconds))
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        event_id = str(uuid.uuid4())  # as otel_audit sends them: hyphenated UUIDs
        record = audit_record(rng, pii=i % 20 == 0, event_id=event_id)
        body = export_request([record]).SerializeToString()
        sent[record.trace_id.hex()] = (time.monotonic(), event_id)
        sender.post(body)
    sending = time.monotonic() - start
    deadline = time.monotonic() + _ARRIVAL_TIMEOUT_SECONDS
    while len(sent.keys() & tail.arrived.keys()) < len(sent) and time.monotonic() < deadline:
        time.sleep(0.05)
    tail.stopping.set()
    tail.join()
    arrived = {
        key: (tail.arrived[key], value) for key, value in sent.items() if key in tail.arrived
    }
    if len(arrived) < len(sent):
        raise ExportRefused(f"{len(sent) - len(arrived)} of {len(sent)} records never archived")
    latencies = sorted(archived[0] - sent_at for archived, (sent_at, _) in arrived.values())
    altered = [(ev, archived[1]) for archived, (_, ev) in arrived.values() if archived[1] != ev]
    return {
        "records": len(sent),
        "achieved_rate": len(sent) / sending,
        "event_ids_altered": len(altered),
        "altered_examples": altered[:3],
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, round(0.99 * len(latencies)))],
        "max_ms": 1000 * latencies[-1],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.otlp_load", description=__doc__)
    parser.add_argument("mode", choices=("throughput", "latency"))
    parser.add_argument(
        "--url", required=True, help="the collector's OTLP/HTTP /v1/logs (or /v1/traces) URL"
    )
    parser.add_argument("--payload", choices=sorted(PAYLOADS), default="audit")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--warmup", type=float, default=0.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--archive", type=Path, help="latency: the archive file to tail")
    args = parser.parse_args(argv)
    try:
        if args.mode == "throughput":
            result = throughput(
                args.url, args.batch, args.senders, args.warmup, args.seconds, payload=args.payload
            )
        else:
            if args.archive is None:
                parser.error("latency needs --archive")
            result = latency(args.url, args.archive, args.rate, args.seconds)
    except ExportRefused as error:
        print(f"otlp_load {args.mode}: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
