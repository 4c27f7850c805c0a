"""The endpoints every benchmark app serves, and the request bodies the load sends.

Imports nothing from ``bench`` or ``otel_audit``: the ``--compare-with`` child loads this file
by path next to an older tree's ``bench.apps``, so the app of an earlier commit serves exactly
the same endpoints as today's (that commit's ``apps.py`` has no ``POST /items``).

* ``GET /items/{item_id}``: a small dict, no request body (the benchmark's original request);
* ``POST /items``: a small, realistic JSON body (:data:`NEW_ITEM_BODY`, about 300 bytes) with
  one secret-named field and an email, so an audit policy at ``request`` level has something
  to capture, parse and redact. Answers ``201``.
"""

from __future__ import annotations

import json
from typing import Final

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel

ITEM_ROUTE: Final = "/items/{item_id}"
ITEM_PATH: Final = "/items/42"
CREATE_PATH: Final = "/items"

PLANTED_EMAIL: Final = "jane.doe@example.com"
PLANTED_SECRET: Final = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
NEW_ITEM: Final[dict[str, object]] = {
    "name": "Standing desk",
    "description": "Height-adjustable desk, oak top, 160 x 80 cm, cable tray",
    "price": 549.0,
    "quantity": 3,
    "tags": ["furniture", "office", "ergonomic"],
    "owner_email": PLANTED_EMAIL,
    "api_key": PLANTED_SECRET,
    "warehouse": {"site": "AMS-2", "shelf": "B14", "bin": 7},
}
NEW_ITEM_BODY: Final = json.dumps(NEW_ITEM, separators=(",", ":")).encode()
# What must never reach an exporter in clear: the request level redacts both.
PLANTED: Final = (PLANTED_EMAIL, PLANTED_SECRET)


class Warehouse(BaseModel):
    site: str
    shelf: str
    bin: int


class NewItem(BaseModel):
    name: str
    description: str
    price: float
    quantity: int
    tags: list[str]
    owner_email: str
    api_key: str
    warehouse: Warehouse


async def read_item(item_id: int) -> dict[str, object]:
    return {"item_id": item_id, "name": "widget", "in_stock": True}


async def create_item(item: NewItem) -> dict[str, object]:
    return {"item_id": 43, "name": item.name, "quantity": item.quantity}


def _routed(app: FastAPI, path: str, method: str) -> bool:
    return any(
        isinstance(route, APIRoute) and route.path == path and method in (route.methods or ())
        for route in app.routes
    )


def add_endpoints(app: FastAPI) -> None:
    """Add ``GET /items/{item_id}`` and ``POST /items`` to ``app`` unless it routes them."""
    if not _routed(app, ITEM_ROUTE, "GET"):
        app.get(ITEM_ROUTE)(read_item)
    if not _routed(app, CREATE_PATH, "POST"):
        app.post(CREATE_PATH, status_code=201)(create_item)
