"""Where an audited request spends its time: py-spy against the uvicorn app under wrk.

Samples only the thread holding the GIL (``--gil``): the app is one process on one core,
so whatever holds the GIL is what limits throughput, whether it is the request path or an
exporter thread encoding a batch. Needs ``pip install py-spy`` (not a project dependency:
it is a profiler, not part of the measurement).
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

from examples.stack import free_port

from .apps import SINK_URL_ENV
from .http_throughput import uvicorn_argv
from .processes import (
    LOAD_CORE,
    child_environment,
    pinned,
    python,
    running,
    wait_http_ok,
)
from .wrk import run_wrk

_LINE_NUMBER = re.compile(r":\d+\)$")
# Frames that name a layer of the request path or an exporter, for the inclusive table.
_LAYERS = (
    "AuditMiddleware.__call__",
    "AuditMiddleware._emit_http",
    "AuditMiddleware._begin",
    "AuditEmitter.emit",
    "Logger.emit",
    "Span.add_event",
    "OpenTelemetryMiddleware.__call__",
    "RequestResponseCycle.run_asgi",
    "BatchProcessor._export",
    "PeriodicExportingMetricReader._receive_metrics",
    "read_item",
)


def profile(factory: str, seconds: float, connections: int, top: int = 25) -> list[str]:
    """Sample ``bench.apps:<factory>`` for ``seconds`` under wrk load; top functions."""
    # The virtualenv's bin folder first: the harness may run as .venv/bin/python off PATH.
    search = os.pathsep.join([str(Path(python()).parent), os.environ.get("PATH", "")])
    spy = shutil.which("py-spy", path=search)
    if spy is None:
        return ["py-spy not found: pip install py-spy (into the project's virtualenv)"]
    sink_port, app_port = free_port(), free_port()
    sink_url = f"http://127.0.0.1:{sink_port}"
    url = f"http://127.0.0.1:{app_port}/items/42"
    sink_argv = pinned(LOAD_CORE, [python(), "-m", "bench.sink", "--port", str(sink_port)])
    app_argv = uvicorn_argv(factory, app_port)
    with (
        tempfile.TemporaryDirectory() as folder,
        running("sink", sink_argv, child_environment()) as sink,
    ):
        wait_http_ok(sink, f"{sink_url}/stats")
        env = child_environment({SINK_URL_ENV: sink_url, "OTEL_AUDIT_ARCHIVE_DIR": folder})
        with running(factory, app_argv, env, signal.SIGINT) as app:
            wait_http_ok(app, url)
            run_wrk(url, seconds=2, connections=connections)  # warm-up
            # Load runs a little longer than sampling, so every sample is under load.
            load = threading.Thread(
                target=run_wrk,
                args=(url,),
                kwargs={"seconds": seconds + 2, "connections": connections},
            )
            load.start()
            raw = Path(folder) / "py-spy.txt"
            subprocess.run(
                pinned(LOAD_CORE, [spy, "record", "--pid", str(app.pid), "--gil", "--rate", "250",
                       "--duration", str(round(seconds)), "--format", "raw", "-o", str(raw)]),
                check=True, capture_output=True,
            )  # fmt: skip
            load.join()
            return _summary(raw.read_text(), factory, top)


def _summary(raw: str, factory: str, top: int) -> list[str]:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        frames = [_LINE_NUMBER.sub(")", frame) for frame in stack.split(";")]
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    lines = [f"py-spy --gil of {factory} under wrk: {total:,} samples", "  self time:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines.append("  inclusive, by layer:")
    layers = [f for f in inclusive if any(f.startswith(layer + " ") for layer in _LAYERS)]
    for frame in sorted(layers, key=lambda f: -inclusive[f]):
        lines.append(f"  {100 * inclusive[frame] / total:5.1f}%  {frame}")
    return lines
