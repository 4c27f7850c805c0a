"""The endpoints every benchmark app serves, and the request bodies the load sends.

Imports nothing from ``bench`` or ``otel_audit``: the ``--compare-with`` child loads this file
by path next to an older tree's ``bench.apps``, so the app of an earlier commit serves exactly
the same endpoints as today's (that commit's ``apps.py`` has no ``POST /items``).

* ``GET /items/{item_id}``: a small dict, no request body (the benchmark's original request);
* ``POST /items``: a small, realistic JSON body (:data:`NEW_ITEM_BODY`, about 300 bytes) with
  one secret-named field and an email, so an audit policy at ``request`` level has something
  to capture, parse and redact. Answers ``201``;
* ``GET /db/items/{sku}``: one indexed ``SELECT`` in a sqlite3 file of :data:`DB_ROWS` rows
  (:func:`create_database`, path in ``BENCH_DB_PATH``), the connection opened once per worker
  process on first use: a realistic endpoint doing a little I/O-bound work.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Final

from fastapi import FastAPI, HTTPException
from fastapi.routing import APIRoute
from pydantic import BaseModel

ITEM_ROUTE: Final = "/items/{item_id}"
ITEM_PATH: Final = "/items/42"
CREATE_PATH: Final = "/items"
DB_ROUTE: Final = "/db/items/{sku}"
DB_PATH_ENV: Final = "BENCH_DB_PATH"
DB_ROWS: Final = 5000
DB_ITEM_PATH: Final = "/db/items/SKU-03141"

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


def create_database(path: Path, rows: int = DB_ROWS) -> None:
    """A sqlite3 file of ``rows`` items with an index on ``sku`` (what the endpoint selects on)."""
    connection = sqlite3.connect(path)
    try:
        connection.execute(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, sku TEXT NOT NULL, name TEXT NOT NULL,"
            " price REAL NOT NULL, quantity INTEGER NOT NULL, warehouse TEXT NOT NULL)"
        )
        connection.execute("CREATE UNIQUE INDEX items_sku ON items (sku)")
        connection.executemany(
            "INSERT INTO items (sku, name, price, quantity, warehouse) VALUES (?, ?, ?, ?, ?)",
            (
                (f"SKU-{n:05d}", f"item {n}", round(1 + n * 0.37, 2), n % 97, f"AMS-{n % 5}")
                for n in range(rows)
            ),
        )
        connection.commit()
    finally:
        connection.close()


_connection: sqlite3.Connection | None = None


def _database() -> sqlite3.Connection:
    """This worker's connection, opened on first use (after uvicorn or gunicorn forked it)."""
    global _connection  # noqa: PLW0603 - one connection per process
    if _connection is None:
        # The endpoint is async: every query runs on the event loop's thread.
        _connection = sqlite3.connect(os.environ[DB_PATH_ENV], check_same_thread=False)
    return _connection


async def read_db_item(sku: str) -> dict[str, object]:
    query = "SELECT id, sku, name, price, quantity, warehouse FROM items WHERE sku = ?"
    row = _database().execute(query, (sku,)).fetchone()
    if row is None:
        raise HTTPException(status_code=404, detail="no such item")
    keys = ("id", "sku", "name", "price", "quantity", "warehouse")
    return dict(zip(keys, row, strict=True))


def _routed(app: FastAPI, path: str, method: str) -> bool:
    return any(
        isinstance(route, APIRoute) and route.path == path and method in (route.methods or ())
        for route in app.routes
    )


def add_endpoints(app: FastAPI) -> None:
    """Add the three endpoints above to ``app``, each unless it routes it already."""
    if not _routed(app, ITEM_ROUTE, "GET"):
        app.get(ITEM_ROUTE)(read_item)
    if not _routed(app, CREATE_PATH, "POST"):
        app.post(CREATE_PATH, status_code=201)(create_item)
    if not _routed(app, DB_ROUTE, "GET"):
        app.get(DB_ROUTE)(read_db_item)
