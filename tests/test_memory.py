"""Auditing must not make a request's objects outlive it.

Objects in a reference cycle are not freed when the request ends but only by the cyclic
garbage collector, so every cycle per request means more memory held between collections
and collector passes over everything the request touched (spans, scopes, Starlette objects).
"""

from __future__ import annotations

import asyncio
import gc

import pytest
from fastapi import FastAPI, HTTPException
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from starlette.types import Message

from .conftest import Telemetry, Tracing, audited_app, http_scope

_REQUESTS = 50


def _add_routes(app: FastAPI) -> FastAPI:
    @app.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, int]:
        if item_id == 404:
            raise HTTPException(status_code=404, detail="no such item")
        return {"item_id": item_id}

    return app


def _unaudited_app(telemetry: Telemetry, tracing: Tracing) -> FastAPI:
    """The app ``audited_app`` builds, traced the same way, without otel_audit."""
    if tracing == "native":
        provider = telemetry.tracer_provider
        return FastAPI(telemetry={"tracer_provider": provider, "metrics": False, "logs": False})
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})
    FastAPIInstrumentor.instrument_app(app, tracer_provider=telemetry.tracer_provider)
    return app


async def _serve(app: FastAPI, path: str, count: int) -> list[int]:
    statuses: list[int] = []
    for _ in range(count):
        scope = http_scope(path, headers=[(b"host", b"testserver"), (b"user-agent", b"pytest")])

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await app(scope, receive, send)
    return statuses


def _cyclic_garbage_per_request(app: FastAPI, path: str) -> float:
    """Objects only the cycle collector could free, per request, after a warm-up."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_serve(app, path, 5))  # builds the middleware stack, caches
        gc.collect()
        gc.disable()
        try:
            statuses = loop.run_until_complete(_serve(app, path, _REQUESTS))
            garbage = gc.collect()
        finally:
            gc.enable()
    finally:
        loop.close()
    assert len(statuses) == _REQUESTS
    return garbage / _REQUESTS


@pytest.mark.parametrize("path", ["/items/42", "/items/404"])
def test_auditing_adds_no_reference_cycles(
    telemetry: Telemetry, tracing: Tracing, path: str
) -> None:
    audited = _add_routes(audited_app(telemetry, tracing=tracing))
    plain = _add_routes(_unaudited_app(telemetry, tracing))

    audited_garbage = _cyclic_garbage_per_request(audited, path)
    plain_garbage = _cyclic_garbage_per_request(plain, path)

    assert telemetry.audit_records(), "the audited app emitted no audit record"
    assert audited_garbage <= plain_garbage, (
        f"auditing left {audited_garbage - plain_garbage:.1f} extra objects per request "
        "in reference cycles"
    )
