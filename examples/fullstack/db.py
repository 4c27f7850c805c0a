"""The SQLite database: schema, first-start seeding and the per-request connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends

from .config import settings
from .security import hash_password

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    email TEXT NOT NULL UNIQUE,
    hashed_password TEXT NOT NULL,
    full_name TEXT,
    tenant TEXT NOT NULL,
    is_active INTEGER NOT NULL DEFAULT 1,
    is_superuser INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    description TEXT,
    owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE
);
"""


def connect() -> sqlite3.Connection:
    """A connection to the database file; rows read as mappings, foreign keys enforced."""
    # Sync dependencies and endpoints may run on different worker threads of one request.
    connection = sqlite3.connect(settings.database, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA foreign_keys = ON")
    return connection


def init_db() -> None:
    """Create the tables and, on first start, the admin account named by the settings."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    connection = connect()
    try:
        with connection:
            connection.executescript(SCHEMA)
            seeded = connection.execute(
                "SELECT 1 FROM users WHERE email = ?", (settings.first_superuser,)
            ).fetchone()
            if seeded is None:
                connection.execute(
                    "INSERT INTO users (email, hashed_password, full_name, tenant, is_superuser)"
                    " VALUES (?, ?, ?, ?, 1)",
                    (
                        settings.first_superuser,
                        hash_password(settings.first_superuser_password),
                        "Administrator",
                        settings.tenant,
                    ),
                )
    finally:
        connection.close()


def get_db() -> Iterator[sqlite3.Connection]:
    """One connection per request: committed when the endpoint returns, rolled back if not."""
    connection = connect()
    try:
        with connection:
            yield connection
    finally:
        connection.close()


SessionDep = Annotated[sqlite3.Connection, Depends(get_db)]
