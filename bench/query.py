"""Query throughput: records/s of the query engine over an archive, against ``json.loads``.

``python -m bench.query [--events N] [--rounds R] [--dir D]`` (default 1,000,000 events).

The archive is written by the library's real spool sink (``bench.verify.write_archive``:
sealed, encoded, group-committed; one ``audit.http.request``-shaped event per line, 50 users
in 5 tenants). Then, alternating, best of ``--rounds`` (wall clock), over the same files:

* ``json.loads`` loop: every line parsed, nothing else (the baseline any Python reader pays);
* ``iter_events``, no filter: every event selected and decoded (``otel-audit query`` of all);
* ``iter_events``, ``--user u-7``: a selective filter (2% of events), where the engine's
  line prefilter skips decoding the lines that cannot match;
* ``compute_stats``, no filter: ``otel-audit stats`` of the whole archive.

Figures only, no assertions. Goal (issue 10): query over 1,000,000 events >= 200,000 records/s.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from otel_audit.archive import iter_archive_files
from otel_audit.query import EventFilter, FileSource, compute_stats, iter_events

from .verify import json_loads_loop, write_archive


def _select(flt: EventFilter) -> Callable[[Path], int]:
    def run(root: Path) -> int:
        return sum(1 for _ in iter_events(FileSource([root]), flt))

    return run


def _stats(root: Path) -> int:
    stats = compute_stats(FileSource([root]), EventFilter())
    return stats.total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.query", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dir", type=Path, help="where the temporary archive goes")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-query-", dir=args.dir))
    try:
        root = work / "archive"
        started = time.perf_counter()
        write_archive(root, args.events)
        size = sum(f.stat().st_size for f in iter_archive_files(root))
        print(
            f"archive: {args.events + 1:,} events, {size / 2**20:.0f} MiB, written by SpoolSink "
            f"in {time.perf_counter() - started:.1f} s"
        )
        cases: dict[str, Callable[[Path], int]] = {
            "json.loads loop (baseline)": json_loads_loop,
            "query, every event": _select(EventFilter()),
            "query --user u-7 (2%)": _select(EventFilter(user="u-7")),
            "stats, every event": _stats,
        }
        best: dict[str, float] = {}
        counts: dict[str, int] = {}
        for _ in range(args.rounds):
            for name, function in cases.items():
                start = time.perf_counter()
                counts[name] = function(root)
                seconds = time.perf_counter() - start
                best[name] = min(best.get(name, seconds), seconds)
        events = args.events + 1
        baseline = best["json.loads loop (baseline)"]
        for name, seconds in best.items():
            print(
                f"  {name:30s} {events / seconds:>10,.0f} records/s scanned "
                f"({seconds:.2f} s, {baseline / seconds:.2f}x the baseline, "
                f"{counts[name]:,} selected)"
            )
        print("goal: query over 1,000,000 events >= 200,000 records/s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
