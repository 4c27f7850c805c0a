"""In-process timing of the bench apps: raw ASGI calls, best block per case.

The child half of ``bench/asgi_cost.py``. It imports nothing from ``bench`` (nor
``otel_audit``) at module level: ``bench/rev_app.py`` loads this file by path to time the apps
of an earlier tree, and the same code must then drive them. Run directly
(``python -m bench.asgi_driver --cases JSON``) it times today's ``bench.apps``.

Each case is an app factory and a request (``get``: ``GET /items/42``; ``post``:
``POST /items`` with the JSON body of ``bench/endpoints.py``). Every factory is built once;
requests are awaited one after another on one event loop (no server, no sockets, no
concurrency), so a block's time per request is the app's own cost plus what its exporter
threads take from it. After a warm-up per case, blocks alternate between cases (forward,
then backward) with ``gc.collect()`` before each; the best block per case is the figure
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


async def _block(app: App, template: Mapping[str, Any], body: bytes, requests: int) -> float:
    """Microseconds per request over ``requests`` sequential calls."""
    gc.collect()
    started = time.perf_counter_ns()
    for _ in range(requests):
        status = await _call(app, template, body)
        if not 200 <= status < 300:
            raise RuntimeError(f"{template['method']} {template['path']} answered {status}")
    return (time.perf_counter_ns() - started) / requests / 1000


async def _measure(
    factories: Mapping[str, Callable[[], Any]],
    cases: list[tuple[str, str, str]],
    requests: int,
    blocks: int,
) -> dict[str, list[float]]:
    apps: dict[str, App] = {}
    for _, factory, _ in cases:
        if factory not in factories:
            raise SystemExit(f"asgi_driver: no factory {factory!r} in {sorted(factories)}")
        if factory not in apps:
            apps[factory] = factories[factory]()
    requests_of = {label: _request(kind) for label, _, kind in cases}
    for label, factory, _ in cases:
        await _block(apps[factory], *requests_of[label], _WARMUP)
    times: dict[str, list[float]] = {label: [] for label, _, _ in cases}
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
        label: {"best_us": min(ts), "median_us": statistics.median(ts), "blocks_us": ts}
        for label, ts in times.items()
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    from bench import apps

    names = ("baseline_app", "audited_otlp_app", "audited_metadata_app", "audited_request_app")
    child_main({name: getattr(apps, name) for name in names}, sys.argv[1:])
