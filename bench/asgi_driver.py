"""In-process timing of the bench apps: raw ASGI calls, best block per case.

The child half of ``bench/asgi_cost.py``. It imports nothing from ``bench`` (nor
``otel_audit``) at module level: ``bench/rev_app.py`` loads this file by path to time the apps
of an earlier tree, and the same code must then drive them. Run directly
(``python -m bench.asgi_driver --cases JSON``) it times today's ``bench.apps``.

Each case is an app factory and a request (``get``: ``GET /items/42``; ``post``:
``POST /items`` with the JSON body of ``bench/endpoints.py``). Every factory is built once;
requests are awaited one after another on one event loop (no server, no sockets, no
concurrency), so a block's time per request is the app's own cost plus what its exporter
threads take from it. Each block is timed twice: wall clock, and the CPU time of the request
thread alone (``time.thread_time``): the request path with the hand-off to the SDK's batch
queues, without the exporter threads' encoding (it varies from block to block with how full
the queues are, and the HTTP benchmark counts it) and without the time other processes of a
shared machine take. After a warm-up per case, blocks
alternate between cases (forward, then backward) with ``gc.collect()`` before each; the
best block per case is the figure
(the least disturbed by the rest of the machine, as ``timeit`` recommends). Any response
other than 2xx fails the run. The result is one JSON object on the last line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from types import ModuleType
from typing import Any

App = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]
_USER_AGENT = b"otel-audit-bench/1.0 (asgi)"
_WARMUP = 300


def _endpoints() -> ModuleType:
    """Today's ``bench/endpoints.py``, by path (``bench`` may be an earlier tree's)."""
    name = "bench_head_endpoints"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "endpoints.py")
    if spec is None or spec.loader is None:
        raise RuntimeError("cannot load bench/endpoints.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _request(kind: str) -> tuple[dict[str, Any], bytes]:
    """The ASGI scope (a template, copied per call) and body of a ``get`` or ``post``."""
    endpoints = _endpoints()
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", _USER_AGENT), (b"accept", b"*/*")]
    if kind == "get":
        method, path, body = "GET", endpoints.ITEM_PATH, b""
    elif kind == "post":
        method, path, body = "POST", endpoints.CREATE_PATH, endpoints.NEW_ITEM_BODY
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
    else:
        raise ValueError(f"unknown request kind {kind!r}; expected 'get' or 'post'")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    return scope, body


async def _call(app: App, template: Mapping[str, Any], body: bytes) -> int:
    scope = dict(template)
    scope["headers"] = list(template["headers"])
    scope["state"] = {}
    status = 0
    delivered = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _block(
    app: App, template: Mapping[str, Any], body: bytes, requests: int
) -> tuple[float, float]:
    """Microseconds per request over ``requests`` sequential calls: wall, request-thread CPU."""
    gc.collect()
    started, cpu_started = time.perf_counter_ns(), time.thread_time_ns()
    for _ in range(requests):
        status = await _call(app, template, body)
        if not 200 <= status < 300:
            raise RuntimeError(f"{template['method']} {template['path']} answered {status}")
    cpu = time.thread_time_ns() - cpu_started
    return (time.perf_counter_ns() - started) / requests / 1000, cpu / requests / 1000


async def _measure(
    factories: Mapping[str, Callable[[], Any]],
    cases: list[tuple[str, str, str]],
    requests: int,
    blocks: int,
) -> dict[str, list[tuple[float, float]]]:
    apps: dict[str, App] = {}
    for _, factory, _ in cases:
        if factory not in factories:
            raise SystemExit(f"asgi_driver: no factory {factory!r} in {sorted(factories)}")
        if factory not in apps:
            apps[factory] = factories[factory]()
    requests_of = {label: _request(kind) for label, _, kind in cases}
    for label, factory, _ in cases:
        await _block(apps[factory], *requests_of[label], _WARMUP)
    times: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in cases}
    for number in range(blocks):
        order = cases if number % 2 == 0 else list(reversed(cases))
        for label, factory, _ in order:
            times[label].append(await _block(apps[factory], *requests_of[label], requests))
    return times


def child_main(factories: Mapping[str, Callable[[], Any]], argv: list[str]) -> None:
    """Time ``--cases`` (JSON ``[[label, factory, get|post], ...]``); print the result."""
    parser = argparse.ArgumentParser(prog="asgi_driver")
    parser.add_argument("--cases", required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--blocks", type=int, default=7)
    args = parser.parse_args(argv)
    cases = [
        (str(label), str(factory), str(kind)) for label, factory, kind in json.loads(args.cases)
    ]
    times = asyncio.run(_measure(factories, cases, args.requests, args.blocks))
    result = {
        label: {
            "best_us": min(wall for wall, _ in ts),
            "median_us": statistics.median(wall for wall, _ in ts),
            "blocks_us": [wall for wall, _ in ts],
            "blocks_cpu_us": [cpu for _, cpu in ts],
        }
        for label, ts in times.items()
    }
    print(json.dumps(result), flush=True)


def _rev_package(tree: Path) -> ModuleType:
    """``otel_audit`` of another tree as the package ``otel_audit_rev``, next to today's.

    Its modules import each other relatively only, so both versions live in one process and
    the comparison is free of the differences between processes.
    """
    folder = tree / "otel_audit"
    spec = importlib.util.spec_from_file_location(
        "otel_audit_rev", folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"asgi_driver: no otel_audit package in {tree}")
    package = importlib.util.module_from_spec(spec)
    sys.modules["otel_audit_rev"] = package
    spec.loader.exec_module(package)
    if folder.resolve() not in Path(package.__file__ or "").resolve().parents:
        raise SystemExit(f"asgi_driver: otel_audit_rev came from {package.__file__}")
    return package


def _main() -> None:
    import os

    from bench import apps

    names = (
        "baseline_app",
        "audited_otlp_app",
        "audited_metadata_app",
        "audited_request_app",
        "audited_spool_app",
        "span_event_floor_app",
        "transport_floor_app",
        "transport_floor_orjson_app",
    )
    factories: dict[str, Callable[[], Any]] = {name: getattr(apps, name) for name in names}
    tree = os.environ.get("BENCH_REV_TREE")
    if tree is not None:
        rev = _rev_package(Path(tree))

        def audited_rev_app() -> Any:
            """REV's audited_otlp_app (bench/apps.py is unchanged since) with REV's library."""
            app, meter_provider = apps._traced_app()
            rev.instrument_app(
                app, logger_provider=apps._otlp_logger_provider(), meter_provider=meter_provider
            )
            return app

        factories["audited_rev_app"] = audited_rev_app
    child_main(factories, sys.argv[1:])


if __name__ == "__main__":
    _main()
