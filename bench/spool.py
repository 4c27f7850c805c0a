"""Spool writer: sustained durable events/s from 8 threads, and fail-closed wait latency.

``python -m bench.run --only spool`` (or ``python -m bench.spool [--seconds S] [--dir D]``).

* Throughput: 8 threads append ~600-byte OTLP/JSON lines as fast as they can, with fsync
  group commit; a refused append (pending memory full) waits for the thread's last commit
  and retries, so every line counted is on disk. Rate = lines / time until the final
  ``flush``. Goal ≥ 50,000/s.
* Latency: one caller issues one durable event at a time (``append(...).wait()``, what a
  fail-closed request waits for) while 7 threads load the same writer; p50 and p99 of that
  wait. Goal p99 ≤ 10 ms. Twice: with the load paced to ``--load-rate`` (50,000/s, the
  throughput goal: a busy but keeping-up spool) and with saturating load, where the wait
  is the queue ahead of the caller (up to ``max_pending_bytes``) divided by the disk's
  write rate: that figure is about the disk, not the writer.

The spool goes to a temporary folder on the disk holding ``--dir`` (default: the system's
temporary folder); fsync costs what that disk's fsync costs. Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from otel_audit._transport._spool import Commit, SpoolWriter

THREADS = 8


def _line(thread: int, seq: int) -> bytes:
    record = {
        "timeUnixNano": str(time.time_ns()),
        "severityNumber": 9,
        "eventName": "audit.http.request",
        "body": {"stringValue": "GET /items/{item_id} 200"},
        "attributes": [
            {"key": "audit.seq", "value": {"intValue": str(seq)}},
            {"key": "thread", "value": {"intValue": str(thread)}},
            {"key": "audit.event.id", "value": {"stringValue": "0" * 36}},
            {"key": "user_agent.original", "value": {"stringValue": "x" * 160}},
        ],
    }
    request = {"resourceLogs": [{"resource": {}, "scopeLogs": [{"logRecords": [record]}]}]}
    return json.dumps(request, separators=(",", ":")).encode() + b"\n"


@dataclass
class SpoolFigures:
    """What one run measured."""

    lines: int
    seconds: float
    batches: int
    refused: int
    line_bytes: int
    latency_ms: list[float]
    load_lines: int
    load_rate: float


def _appender(
    writer: SpoolWriter, thread: int, stop: threading.Event, counts: list[int], rate: float
) -> Callable[[], None]:
    def run() -> None:
        line = _line(thread, 0)  # the same bytes: the benchmark times the writer, not json
        last: Commit | None = None
        n = 0
        began = time.perf_counter()
        while not stop.is_set():
            if rate and n >= (time.perf_counter() - began) * rate:
                time.sleep(0.001)  # paced: ahead of schedule
                continue
            commit = writer.append(line)
            if commit is None:
                if last is not None:
                    last.wait(10)
                continue
            last = commit
            n += 1
        counts[thread] = n

    return run


def _run(directory: Path, seconds: float, *, latency: bool, load_rate: float = 0) -> SpoolFigures:
    batches: list[int] = []
    refused: list[int] = []
    root = Path(tempfile.mkdtemp(prefix="bench-spool-", dir=directory))
    writer = SpoolWriter(
        root,
        "bench",
        on_drop=lambda _reason, n: refused.append(n),
        on_batch=lambda lines, _nbytes: batches.append(lines),
    )
    stop = threading.Event()
    loaders = THREADS - 1 if latency else THREADS
    counts = [0] * THREADS
    threads = [
        threading.Thread(target=_appender(writer, t, stop, counts, load_rate / loaders))
        for t in range(loaders)
    ]
    latencies: list[float] = []
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    try:
        if latency:
            line = _line(THREADS - 1, 0)
            deadline = start + seconds
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                commit = writer.append(line)
                if commit is not None and commit.wait(10):
                    latencies.append((time.perf_counter() - began) * 1000)
        else:
            time.sleep(seconds)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        writer.flush(60)
        elapsed = time.perf_counter() - start
        writer.close()
        shutil.rmtree(root, ignore_errors=True)
    return SpoolFigures(
        lines=sum(counts) + len(latencies),
        seconds=elapsed,
        batches=len(batches),
        refused=sum(refused),
        line_bytes=len(_line(0, 0)),
        latency_ms=latencies,
        load_lines=sum(counts),
        load_rate=load_rate,
    )


def measure(
    seconds: float = 5.0, directory: str | None = None, load_rate: float = 50_000
) -> list[SpoolFigures]:
    """The throughput run, then latency under paced load and under saturating load."""
    where = Path(directory or tempfile.gettempdir())
    return [
        _run(where, seconds, latency=False),
        _run(where, seconds, latency=True, load_rate=load_rate),
        _run(where, seconds, latency=True),
    ]


def format_report(figures: list[SpoolFigures]) -> list[str]:
    """Printable lines for the two runs."""
    throughput, *latencies = figures
    lines = [
        f"spool writer ({throughput.line_bytes}-byte lines, fsync group commit):",
        f"  throughput, {THREADS} threads: {throughput.lines / throughput.seconds:,.0f} durable "
        f"lines/s (goal >= 50,000); {throughput.lines / max(throughput.batches, 1):,.0f} "
        f"lines per fsync; {throughput.refused:,} appends refused (pending full, retried)",
    ]
    for latency in latencies:
        waits = sorted(latency.latency_ms)
        if len(waits) < 2:
            continue
        p50 = statistics.median(waits)
        p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))]
        load = f"paced to {latency.load_rate:,.0f}/s" if latency.load_rate else "saturating"
        lines.append(
            f"  append().wait() beside {THREADS - 1} threads' load ({load}, measured "
            f"{latency.load_lines / latency.seconds:,.0f} lines/s): p50 {p50:.2f} ms, "
            f"p99 {p99:.2f} ms (goal <= 10 ms), {len(waits):,} waits"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.spool", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per run (5)")
    parser.add_argument("--dir", help="put the spool under this folder (its disk is measured)")
    parser.add_argument("--load-rate", type=float, default=50_000, help="paced load (50000/s)")
    args = parser.parse_args(argv)
    print("\n".join(format_report(measure(args.seconds, args.dir, args.load_rate))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
