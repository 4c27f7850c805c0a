"""Verify throughput: records/s of ``otel-audit verify`` against a plain ``json.loads`` loop.

``python -m bench.verify [--events N] [--rounds R] [--dir D]``.

The archive is written by the library's real spool sink (``SpoolSink``: sealed, encoded and
group-committed as in production; one ``audit.http.request``-shaped event of 14 attributes
per line, the closing record last) into a temporary folder. Then, alternating, best of
``--rounds`` (wall clock):

* ``json.loads`` loop: every line of the same files parsed, nothing else (the baseline: what
  any Python reader of OTLP JSON pays);
* ``read_events`` + ``verify_events``: the library's decode-everything path;
* ``verify_files``: what ``otel-audit verify`` runs (one parse per line, canonical forms from
  the parsed JSON, the exact path only for records that do not verify that way), in this
  process and with ``--jobs`` worker processes (default: one per CPU, up to 8);
* ``otel-audit verify`` as a process (wall clock, start-up included), once.

Figures only, no assertions. Goal (issue 10): verify ≥ 100,000 records/s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from otel_audit._event import AuditEvent, Outcome
from otel_audit._transport._spool_sink import SpoolSink
from otel_audit.archive import iter_archive_files, read_events, verify_events
from otel_audit.archive._scan import verify_files


def write_archive(root: Path, events: int) -> None:
    """``events`` request events and the closing record, through the real spool sink."""
    problems: list[object] = []
    sink = SpoolSink(
        root,
        chain_key=None,
        ship_to=None,
        on_drop=lambda reason, count: problems.append((reason, count)),
        on_error=lambda reason, error: problems.append((reason, error)),
    )
    for n in range(events):
        attributes: dict[str, object] = {
            "audit.action": "http.request",
            "audit.outcome": "success",
            "audit.event.id": str(uuid.uuid4()),
            "audit.request.id": f"r-{n}",
            "user.id": f"u-{n % 50}",
            "tenant.id": f"t-{n % 5}",
            "http.route": "/items/{item_id}",
            "http.request.method": "GET",
            "http.response.status_code": 200,
            "url.path": f"/items/{n}",
            "client.address": "10.0.0.1",
            "user_agent.original": "curl/8.5.0",
            "user.roles": ("admin", "ops"),
            "audit.actor.auth_method": "jwt",
        }
        event = AuditEvent("http.request", Outcome.SUCCESS, attributes, "GET /items/{item_id}")  # type: ignore[arg-type]
        sink.write(event)
        if n % 2000 == 1999:  # the disk may be slower: a refused record is a gap in the trail
            sink.flush(60)
    sink.close(60)
    if problems:
        raise RuntimeError(f"the spool refused events: {problems[:3]}")


def json_loads_loop(root: Path) -> int:
    """Lines of the archive under ``root`` parsed with ``json.loads``, nothing else: the
    baseline any Python reader of OTLP JSON pays."""
    lines = 0
    for file in iter_archive_files(root):
        with open(file, "rb") as stream:
            for line in stream:
                json.loads(line)
                lines += 1
    return lines


def _decode_and_verify(root: Path) -> int:
    report = verify_events(read_events(root, errors=[]))
    assert report.clean
    return report.events


def _line_verifier(jobs: int) -> Callable[[Path], int]:
    def verify(root: Path) -> int:
        report = verify_files([root], jobs=jobs)
        assert report.clean
        return report.events

    return verify


def _best(function: Callable[[Path], int], root: Path) -> tuple[float, int]:
    start = time.perf_counter()
    count = function(root)
    return time.perf_counter() - start, count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.verify", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="where the temporary archive goes")
    parser.add_argument(
        "--jobs", type=int, default=min(len(os.sched_getaffinity(0)), 8), help="worker processes"
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-verify-", dir=args.dir))
    try:
        root = work / "archive"
        started = time.perf_counter()
        write_archive(root, args.events)
        size = sum(f.stat().st_size for f in iter_archive_files(root))
        print(
            f"archive: {args.events + 1:,} events, {size / 2**20:.0f} MiB, written by SpoolSink "
            f"in {time.perf_counter() - started:.1f} s"
        )
        cases = {
            "json.loads loop (baseline)": json_loads_loop,
            "read_events + verify_events": _decode_and_verify,
            "verify_files, in process": _line_verifier(1),
            f"verify_files, --jobs {args.jobs}": _line_verifier(args.jobs),
        }
        best: dict[str, float] = {}
        events = args.events + 1
        for _ in range(args.rounds):
            for name, function in cases.items():
                seconds, _count = _best(function, root)
                best[name] = min(best.get(name, seconds), seconds)
        baseline = best["json.loads loop (baseline)"]
        for name, seconds in best.items():
            print(
                f"  {name:36s} {events / seconds:>10,.0f} records/s "
                f"({seconds:.2f} s, {baseline / seconds:.2f}x the baseline)"
            )
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "otel_audit", "verify", str(root)],
            capture_output=True,
            check=False,
        )
        wall = time.perf_counter() - started
        print(
            f"  {'otel-audit verify (process, wall)':36s} {events / wall:>10,.0f} records/s "
            f"({wall:.2f} s, exit {done.returncode})"
        )
        print("goal: verify >= 100,000 records/s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
