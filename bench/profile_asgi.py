"""Where otel_audit's per-request microseconds go: cProfile of raw ASGI requests, by function.

``python -m bench.profile_asgi [--factory audited_spool_app] [--requests 3000]``: builds the
app (``bench.apps``; set ``BENCH_SINK_URL`` to a sink, and ``OTEL_AUDIT_SPOOL_DIR`` for the
spool), warms it up, then profiles ``--requests`` sequential ``GET /items/42`` driven as in
``bench/asgi_driver.py``. Prints otel_audit's functions by own time and by inclusive time,
in microseconds per request. cProfile inflates every call by a roughly constant overhead, so
read the shares and the ranking, not the absolute sum; the unprofiled figure is
``--only asgi``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
from typing import Any

from . import apps
from .asgi_driver import _block, _call, _request

_TOP = 30


def _rows(stats: pstats.Stats, requests: int, key: int) -> list[tuple[float, str]]:
    """(us per request, "file:line(function) ncalls") for otel_audit's functions."""
    rows = []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (file, line, name), (_, ncalls, tottime, cumtime, _) in raw.items():
        if "otel_audit" not in file and "bench/" not in file:
            continue
        short = file.split("otel_audit/", 1)[-1] if "otel_audit/" in file else file
        value = (tottime, cumtime)[key]
        rows.append((value / requests * 1e6, f"{short}:{line}({name}) {ncalls / requests:g}/req"))
    return sorted(rows, reverse=True)


async def _run(factory: str, requests: int) -> cProfile.Profile:
    app = getattr(apps, factory)()
    template, body = _request("get")
    await _block(app, template, body, 500)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        await _call(app, template, body)
    profiler.disable()
    return profiler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--factory", default="audited_spool_app")
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    profiler = asyncio.run(_run(args.factory, args.requests))
    stats = pstats.Stats(profiler)
    total = sum(v[2] for v in stats.stats.values()) / args.requests * 1e6  # type: ignore[attr-defined]
    print(f"{args.factory}: {args.requests:,} GET requests, profiled total {total:.0f} us/req")
    for title, key in (("own time", 0), ("inclusive time", 1)):
        print(f"otel_audit functions by {title}, us per request (profiled):")
        for us, name in _rows(stats, args.requests, key)[:_TOP]:
            print(f"  {us:8.1f}  {name}")


if __name__ == "__main__":
    main()
