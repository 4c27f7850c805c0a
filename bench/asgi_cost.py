"""Per-request cost of the audited app in process, today's tree against an earlier commit.

wrk's run-to-run noise (about ±5%) hides changes of a few percent; this drives the same
apps with raw ASGI calls in one process (``bench/asgi_driver.py``: sequential requests, best
block per case) and reports microseconds per request. Each tree runs in its own child
process pinned to the app core: today's with ``python -m bench.asgi_driver``, the earlier
commit's through ``bench/rev_app.py`` (``otel_audit`` and ``bench.apps`` from its worktree).
Children alternate (now, REV, REV, now, ...) and every case's figure is its best block over
all of its tree's processes. Every child also times the unaudited baseline, so the library's
own cost is ``audited - baseline`` measured in the same process on the same request.

The apps export to the same loopback sink as the HTTP benchmark (on the load core), so the
exporter threads take their share of the GIL as they do in production.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from examples.stack import free_port

from .apps import SINK_URL_ENV
from .http_throughput import sink_argv
from .processes import APP_CORE, child_environment, pinned, python, running, wait_http_ok
from .transport_floor import FLOOR_DIR_ENV, orjson_available
from .worktree import rev_argv, rev_environment, worktree

Case = tuple[str, str, str]  # label, factory, request (get | post)
# Issue 8's comparison: otel_audit's own transport (spool) against the floor, a minimal span
# event plus one OTLP-JSON line appended in batches (bench/transport_floor.py).
SPOOL = "audited, spool transport, GET"
FLOOR = "transport floor (project encoder), GET"
FLOOR_ORJSON = "transport floor (orjson), GET"
_COST_GOAL_US = 70.0
_FLOOR_RATIO_GOAL = 1.2
NOW_CASES: tuple[Case, ...] = (
    ("baseline, GET", "baseline_app", "get"),
    (SPOOL, "audited_spool_app", "get"),
    (FLOOR, "transport_floor_app", "get"),
    ("span event floor, GET", "span_event_floor_app", "get"),
    ("audited (default policy), GET", "audited_otlp_app", "get"),
    ("audited, metadata level, GET", "audited_metadata_app", "get"),
    ("baseline, POST", "baseline_app", "post"),
    ("audited, metadata level, POST", "audited_metadata_app", "post"),
    ("audited, request level, POST", "audited_request_app", "post"),
)
# The earlier tree has one level (metadata) and only these two factories.
REV_CASES: tuple[Case, ...] = (
    ("baseline, GET", "baseline_app", "get"),
    ("audited, GET", "audited_otlp_app", "get"),
    ("baseline, POST", "baseline_app", "post"),
    ("audited, POST", "audited_otlp_app", "post"),
)
# With a REV, today's process also times REV's library loaded as ``otel_audit_rev`` next to
# today's (asgi_driver._rev_package): both in one process, the most precise comparison.
SAME_PROCESS_CASES: tuple[Case, ...] = (
    ("audited @REV, GET", "audited_rev_app", "get"),
    ("audited @REV, POST", "audited_rev_app", "post"),
)
# (now's case, REV's case): the metadata path before and after, on each request.
_PAIRS = (
    ("audited (default policy), GET", "audited, GET"),
    ("audited, metadata level, GET", "audited, GET"),
    ("audited, metadata level, POST", "audited, POST"),
)


@dataclass
class TreeTimes:
    """One tree's blocks, per case and process; ``clock`` is ``wall`` or ``cpu``."""

    name: str  # "now" or the commit
    blocks: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)

    def best(self, label: str, clock: str = "wall") -> float:
        return min(self.process_bests(label, clock))

    def process_bests(self, label: str, clock: str = "wall") -> list[float]:
        return [min(blocks) for blocks in self.blocks[clock][label]]

    def own_cost(self, label: str, clock: str = "wall") -> float:
        """Best audited minus best baseline on the same request, in this tree's processes."""
        baseline = f"baseline, {label.rsplit(', ', 1)[1]}"
        return self.best(label, clock) - self.best(baseline, clock)

    def labels(self) -> list[str]:
        return list(self.blocks.get("wall", {}))

    def add(self, result: dict[str, dict[str, list[float]]]) -> None:
        for label, figures in result.items():
            for clock, key in (("wall", "blocks_us"), ("cpu", "blocks_cpu_us")):
                self.blocks.setdefault(clock, {}).setdefault(label, []).append(figures[key])


def _child(
    argv: list[str], env: dict[str, str], cwd: Path | None
) -> dict[str, dict[str, list[float]]]:
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{argv} exited with {done.returncode}:\n{done.stderr[-3000:]}")
    result: dict[str, dict[str, list[float]]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(rev: str | None, requests: int, blocks: int, processes: int) -> list[TreeTimes]:
    trees = [TreeTimes("now")] + ([TreeTimes(rev)] if rev is not None else [])
    tree = worktree(rev) if rev is not None else None
    sink_port = free_port()
    sink_url = f"http://127.0.0.1:{sink_port}"
    timing = ["--requests", str(requests), "--blocks", str(blocks)]
    # orjson is not a dependency: its floor is timed only where it is installed.
    orjson_case = (FLOOR_ORJSON, "transport_floor_orjson_app", "get")
    now_cases = NOW_CASES + ((orjson_case,) if orjson_available() else ())
    with (
        running("sink", sink_argv(sink_port), child_environment()) as sink,
        tempfile.TemporaryDirectory(prefix="otel-audit-asgi-") as workdir,
    ):
        wait_http_ok(sink, f"{sink_url}/stats")
        extra = {
            SINK_URL_ENV: sink_url,
            FLOOR_DIR_ENV: workdir,
            "OTEL_AUDIT_SPOOL_DIR": str(Path(workdir) / "spool"),
            "OTEL_AUDIT_ARCHIVE_DIR": str(Path(workdir) / "spool"),
        }
        for number in range(processes):
            order = trees if number % 2 == 0 else list(reversed(trees))
            for times in order:
                if times.name == "now":
                    cases = json.dumps(now_cases + (SAME_PROCESS_CASES if tree else ()))
                    argv = pinned(
                        APP_CORE, [python(), "-m", "bench.asgi_driver", "--cases", cases, *timing]
                    )
                    env = rev_environment(tree, extra) if tree else child_environment(extra)
                    if tree:
                        env["PYTHONPATH"] = child_environment()["PYTHONPATH"]  # today's tree
                    result = _child(argv, env, None)
                elif tree is not None:
                    cases = json.dumps(REV_CASES)
                    argv = rev_argv("asgi-cost", ["--cases", cases, *timing])
                    result = _child(argv, rev_environment(tree, extra), tree)
                print(f"  asgi process {number + 1} ({times.name}) done", flush=True)
                times.add(result)
    return trees


def format_report(trees: list[TreeTimes], requests: int, blocks: int) -> list[str]:
    processes = len(trees[0].blocks["wall"][trees[0].labels()[0]])
    lines = [
        f"in-process cost per request (raw ASGI, sequential; best of {blocks} blocks of"
        f" {requests:,} requests, {processes} process(es) per tree; wall clock, and CPU time"
        " of the request thread)"
    ]
    for times in trees:
        lines.append(f"  {times.name}:")
        for label in times.labels():
            per_process = ", ".join(f"{t:.0f}" for t in times.process_bests(label))
            line = (
                f"    {label:<40} wall {times.best(label):>6.1f} us (per process {per_process})"
                f"  cpu {times.best(label, 'cpu'):>6.1f} us"
            )
            if not label.startswith("baseline"):
                line += (
                    f"  audited - baseline: wall {times.own_cost(label):+.1f},"
                    f" cpu {times.own_cost(label, 'cpu'):+.1f} us"
                )
            lines.append(line)
    lines += _floor_lines(trees[0])
    if len(trees) == 2:
        now, before = trees
        lines.append(f"  metadata path, now vs {before.name} in one process (audited - baseline):")
        for now_label, rev_label in _PAIRS:
            same = rev_label.replace("audited,", "audited @REV,")
            parts = []
            for clock in ("wall", "cpu"):
                a, b = now.own_cost(now_label, clock), now.own_cost(same, clock)
                whole = now.best(now_label, clock) / now.best(same, clock)
                parts.append(f"{clock} {a:+.1f} vs {b:+.1f} us ({a - b:+.1f}; whole {whole:.3f}x)")
            lines.append(f"    {now_label:<32} " + "; ".join(parts))
        lines.append(f"  metadata path, now vs {before.name} in separate processes:")
        for now_label, rev_label in _PAIRS:
            parts = []
            for clock in ("wall", "cpu"):
                a, b = now.own_cost(now_label, clock), before.own_cost(rev_label, clock)
                whole = now.best(now_label, clock) / before.best(rev_label, clock)
                parts.append(f"{clock} {a:+.1f} vs {b:+.1f} us ({a - b:+.1f}; whole {whole:.3f}x)")
            lines.append(f"    {now_label:<32} " + "; ".join(parts))
    return lines


def _floor_lines(now: TreeTimes) -> list[str]:
    """otel_audit's cost per request (spool transport) beside the transport floor's."""
    labels = now.labels()
    if SPOOL not in labels or FLOOR not in labels:
        return []
    lines = [
        f"  audit cost per request (audited - baseline), otel_audit (spool) vs the floor"
        f" (goals: <= {_FLOOR_RATIO_GOAL}x the floor, <= {_COST_GOAL_US:g} us):"
    ]
    for floor in (FLOOR, FLOOR_ORJSON):
        if floor not in labels:
            continue
        for clock in ("wall", "cpu"):
            ours, least = now.own_cost(SPOOL, clock), now.own_cost(floor, clock)
            ratio = f"{ours / least:.2f}x" if least > 0 else "n/a (floor <= 0)"
            lines.append(
                f"    {clock:<4} otel_audit {ours:+6.1f} us, {floor.rsplit(',', 1)[0]}"
                f" {least:+6.1f} us: {ratio}"
            )
    return lines
