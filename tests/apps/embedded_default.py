"""Script: instrument_app() with nothing configured, a few requests, then a normal exit.

Run as a subprocess by the tests: the events must be in the local archive after exit.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from otel_audit import Actor, instrument_app, record, set_actor

app = FastAPI()
instrument_app(app)


@app.get("/items/{item_id}")
async def read_item(item_id: int) -> dict[str, int]:
    set_actor(Actor("user-1", tenant="acme"))
    record("item.viewed", resource_type="item", resource_id=item_id)
    return {"item_id": item_id}


if __name__ == "__main__":
    client = TestClient(app)
    for item_id in range(5):
        assert client.get(f"/items/{item_id}").status_code == 200
