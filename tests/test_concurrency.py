"""Hundreds of concurrent requests: every event carries its own request's actor."""

from __future__ import annotations

import asyncio
import random
from typing import Annotated

import httpx
from fastapi import Depends, Header

from otel_audit import Actor, record, set_actor

from .conftest import Telemetry, Tracing, audited_app

REQUESTS = 300


async def _async_actor(x_user: Annotated[str, Header()]) -> str:
    await asyncio.sleep(random.random() / 200)  # interleave requests at every await
    set_actor(Actor(x_user, tenant="tenant-" + x_user))
    return x_user


def _sync_actor(x_user: Annotated[str, Header()]) -> str:
    set_actor(Actor(x_user, tenant="tenant-" + x_user))  # runs in a worker thread
    return x_user


async def test_concurrent_requests_keep_their_own_actor(
    telemetry: Telemetry, tracing: Tracing
) -> None:
    """300 interleaved async and threaded requests never see another request's actor."""
    app = audited_app(telemetry, tracing=tracing)

    @app.get("/async/{n}")
    async def async_endpoint(n: int, user: Annotated[str, Depends(_async_actor)]) -> str:
        await asyncio.sleep(random.random() / 200)
        record("item.viewed", resource_id=n)
        return user

    @app.get("/sync/{n}")
    def sync_endpoint(n: int, user: Annotated[str, Depends(_sync_actor)]) -> str:
        record("item.viewed", resource_id=n)
        return user

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        responses = await asyncio.gather(
            *(
                client.get(f"/{'sync' if n % 2 else 'async'}/{n}", headers={"x-user": f"user-{n}"})
                for n in range(REQUESTS)
            )
        )
    assert all(r.status_code == 200 for r in responses)
    request_ids = {r.headers["x-request-id"]: f"user-{n}" for n, r in enumerate(responses)}
    records = telemetry.audit_records()
    assert len(records) == 2 * REQUESTS
    for log_record in records:
        attributes = log_record.attributes
        expected_user = request_ids[str(attributes["audit.request.id"])]
        assert attributes["user.id"] == expected_user
        assert attributes["tenant.id"] == "tenant-" + expected_user
        if log_record.event_name == "audit.item.viewed":
            assert attributes["audit.resource.id"] == expected_user.removeprefix("user-")
    assert len({r.attributes["audit.event.id"] for r in records}) == 2 * REQUESTS
