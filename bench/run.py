"""``python -m bench.run``: HTTP throughput, record() cost and collector pipeline, one report.

``--only asgi`` times the audited app in process (raw ASGI calls, microseconds per request),
against ``--compare-with REV`` when given. ``--only spool`` measures the spool writer
(durable lines/s from 8 threads, fail-closed wait latency). ``--only latency`` measures
emit -> archive latency through an agent and two gateways against one gateway alone.
``--only verify`` measures ``otel-audit verify`` (records/s) against a ``json.loads`` loop;
``--only query`` the query engine over 1,000,000 events, against the same loop.

Every number is a ratio against a baseline measured in the same run; nothing here asserts
on time. ``--quick`` is a smoke run (seconds, not minutes); ``--only`` picks one part;
``--profile`` prints profiles (cProfile of ``record()``, py-spy of the apps, pprof of the
collector) instead of timing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from . import (
    asgi_cost,
    http_throughput,
    pipeline,
    profile_http,
    query,
    record_cost,
    scaleout_latency,
    spool,
    verify,
)
from .processes import stop_on_sigterm


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument(
        "--only",
        choices=("http", "asgi", "record", "pipeline", "spool", "latency", "verify", "query"),
        help="run one benchmark",
    )
    parser.add_argument(
        "--compare-with",
        metavar="REV",
        help="http and asgi: also measure the audited app with otel_audit from commit REV"
        " (a git worktree kept in .cache/bench-worktrees/REV)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of timing: cProfile record(), py-spy the apps, pprof the collector",
    )
    http = parser.add_argument_group("http throughput and collector pipeline")
    http.add_argument("--duration", type=float, help="seconds per measured run (10)")
    http.add_argument("--warmup", type=float, help="seconds of warm-up per run (3)")
    http.add_argument("--connections", type=int, help="wrk connections (32)")
    http.add_argument("--rounds", type=int, help="runs per variant, alternating (3)")
    http.add_argument(
        "--variants",
        help="http: comma-separated variant keys (baselines are added); all when unset: "
        + ", ".join(v.key for v in http_throughput.VARIANTS + http_throughput.REV_VARIANTS),
    )
    asgi = parser.add_argument_group("in-process cost (asgi)")
    asgi.add_argument("--asgi-requests", type=int, help="requests per timed block (2000)")
    asgi.add_argument("--asgi-blocks", type=int, help="timed blocks per case and process (7)")
    asgi.add_argument("--asgi-processes", type=int, help="child processes per tree (2)")
    collector = parser.add_argument_group("collector pipeline")
    collector.add_argument("--batch", type=int, help="audit records per OTLP request (500)")
    collector.add_argument(
        "--pipelines",
        help="pipeline: which otelcol-audit pipelines, comma-separated (audit,default,traces)",
    )
    collector.add_argument("--senders", type=int, help="load generator connections (4)")
    collector.add_argument(
        "--latency-rate", type=float, help="records/s for the latency (pipeline 200, latency 100)"
    )
    record = parser.add_argument_group("record() cost")
    record.add_argument("--iterations", type=int, help="calls per timed block (20000)")
    record.add_argument("--repeats", type=int, help="timed blocks per case (5)")
    return parser


def _http_settings(args: argparse.Namespace) -> http_throughput.HttpSettings:
    quick = http_throughput.HttpSettings(seconds=2, warmup_seconds=1, rounds=1)
    base = quick if args.quick else http_throughput.HttpSettings()
    return http_throughput.HttpSettings(
        seconds=args.duration or base.seconds,
        warmup_seconds=args.warmup if args.warmup is not None else base.warmup_seconds,
        connections=args.connections or base.connections,
        rounds=args.rounds or base.rounds,
        variants=tuple(key for key in (args.variants or "").split(",") if key),
        compare_with=args.compare_with,
    )


def _pipeline_settings(args: argparse.Namespace) -> pipeline.PipelineSettings:
    quick = pipeline.PipelineSettings(seconds=2, warmup_seconds=1, rounds=1, latency_seconds=2)
    base = quick if args.quick else pipeline.PipelineSettings()
    return pipeline.PipelineSettings(
        seconds=args.duration or base.seconds,
        warmup_seconds=args.warmup if args.warmup is not None else base.warmup_seconds,
        rounds=args.rounds or base.rounds,
        batch=args.batch or base.batch,
        senders=args.senders or base.senders,
        latency_rate=args.latency_rate or base.latency_rate,
        latency_seconds=base.latency_seconds,
        pipelines=tuple(key for key in (args.pipelines or "").split(",") if key) or base.pipelines,
    )


def _latency_settings(args: argparse.Namespace) -> scaleout_latency.LatencySettings:
    quick = scaleout_latency.LatencySettings(seconds=2, rounds=1, app_seconds=6, batches=4)
    base = quick if args.quick else scaleout_latency.LatencySettings()
    return scaleout_latency.LatencySettings(
        rate=args.latency_rate or base.rate,
        seconds=args.duration or base.seconds,
        rounds=args.rounds or base.rounds,
        app_seconds=base.app_seconds,
        batches=base.batches,
        batch=args.batch or base.batch,
    )


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0912, PLR0915 - one branch per benchmark
    args = _parser().parse_args(argv)
    stop_on_sigterm()
    iterations = args.iterations or (2000 if args.quick else 20000)
    repeats = args.repeats or (2 if args.quick else 5)
    if args.profile:
        if args.only in (None, "record"):
            print("\n".join(record_cost.profile(iterations)))
        if args.only in (None, "http"):
            settings = _http_settings(args)
            for factory in ("baseline_app", "audited_otlp_app"):
                print(
                    "\n".join(profile_http.profile(factory, settings.seconds, settings.connections))
                )
        if args.only in (None, "pipeline"):
            print("\n".join(pipeline.profile(_pipeline_settings(args))))
        return 0
    if (os.cpu_count() or 1) < 2:
        print("warning: fewer than 2 cores; the app and the load generator will share one")
    report: list[str] = []
    if args.only in (None, "http"):
        if shutil.which("wrk") is None:
            print("wrk not found: install it (Debian: apt-get install -y wrk)", file=sys.stderr)
            return 2
        print("http runs:", flush=True)
        report += http_throughput.format_report(http_throughput.measure(_http_settings(args)))
    if args.only in (None, "asgi"):
        print("asgi runs:", flush=True)
        requests = args.asgi_requests or (200 if args.quick else 2000)
        blocks = args.asgi_blocks or (2 if args.quick else 7)
        processes = args.asgi_processes or (1 if args.quick else 2)
        trees = asgi_cost.measure(args.compare_with, requests, blocks, processes)
        report += [""] if report else []
        report += asgi_cost.format_report(trees, requests, blocks)
    if args.only in (None, "record"):
        report += [""] if report else []
        report += record_cost.format_report(record_cost.measure(iterations, repeats))
    if args.only in (None, "pipeline"):
        print("pipeline runs:", flush=True)
        report += [""] if report else []
        report += pipeline.format_report(pipeline.measure(_pipeline_settings(args)))
    if args.only in (None, "spool"):
        print("spool runs:", flush=True)
        report += [""] if report else []
        report += spool.format_report(spool.measure(2.0 if args.quick else 5.0))
    if args.only in (None, "latency"):
        print("scale-out latency runs:", flush=True)
        report += [""] if report else []
        report += scaleout_latency.format_report(scaleout_latency.measure(_latency_settings(args)))
    if args.only in (None, "verify"):
        print("verify runs:", flush=True)
        verify.main(["--events", "10000", "--rounds", "1"] if args.quick else [])
    if args.only in (None, "query"):
        print("query runs:", flush=True)
        query.main(["--events", "10000", "--rounds", "1"] if args.quick else [])
    print()
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
