"""Database reads and writes for users and items; endpoints never write SQL themselves."""

from __future__ import annotations

import sqlite3
from typing import Any

from .models import ItemCreate, ItemPublic, ItemUpdate, UserCreate, UserPublic, UserUpdate
from .security import hash_password, verify_password

_USER_COLUMNS = "id, email, full_name, tenant, is_active, is_superuser"


def _user(row: sqlite3.Row | None) -> UserPublic | None:
    return None if row is None else UserPublic(**dict(row))


def get_user(db: sqlite3.Connection, user_id: int) -> UserPublic | None:
    """The account with this id, if any."""
    row = db.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone()
    return _user(row)


def list_users(db: sqlite3.Connection, tenant: str) -> list[UserPublic]:
    """Every account of a tenant."""
    rows = db.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE tenant = ?", (tenant,))
    return [UserPublic(**dict(row)) for row in rows]


def authenticate(db: sqlite3.Connection, email: str, password: str) -> UserPublic | None:
    """The account these credentials open, or None (unknown email or wrong password)."""
    row = db.execute(
        f"SELECT {_USER_COLUMNS}, hashed_password FROM users WHERE email = ?", (email,)
    ).fetchone()
    if row is None or not verify_password(password, row["hashed_password"]):
        return None
    return get_user(db, row["id"])


def create_user(db: sqlite3.Connection, new: UserCreate, tenant: str) -> UserPublic:
    """Insert an account; raises sqlite3.IntegrityError if the email is taken."""
    cursor = db.execute(
        "INSERT INTO users (email, hashed_password, full_name, tenant, is_superuser)"
        " VALUES (?, ?, ?, ?, ?)",
        (new.email, hash_password(new.password), new.full_name, tenant, new.is_superuser),
    )
    user = get_user(db, int(cursor.lastrowid or 0))
    if user is None:  # pragma: no cover - the row was just inserted in this transaction
        raise RuntimeError("inserted user vanished")
    return user


def update_user(
    db: sqlite3.Connection, user: UserPublic, update: UserUpdate
) -> tuple[UserPublic, dict[str, tuple[Any, Any]]]:
    """Apply ``update``; returns the account and ``{field: (old, new)}`` for what changed.

    The password is stored hashed and reported by name only, never by value.
    """
    fields = update.model_dump(exclude_unset=True, exclude={"password"})
    changes = {k: (getattr(user, k), v) for k, v in fields.items() if getattr(user, k) != v}
    columns = dict(fields)
    if update.password is not None:
        columns["hashed_password"] = hash_password(update.password)
    if columns:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        db.execute(f"UPDATE users SET {assignments} WHERE id = ?", (*columns.values(), user.id))
    updated = get_user(db, user.id)
    if updated is None:  # pragma: no cover - same transaction
        raise RuntimeError("updated user vanished")
    return updated, changes


def delete_user(db: sqlite3.Connection, user_id: int) -> None:
    """Delete an account and, by cascade, its items."""
    db.execute("DELETE FROM users WHERE id = ?", (user_id,))


def _item(row: sqlite3.Row | None) -> ItemPublic | None:
    return None if row is None else ItemPublic(**dict(row))


def get_item(db: sqlite3.Connection, item_id: int) -> ItemPublic | None:
    """The item with this id, if any."""
    row = db.execute(
        "SELECT id, title, description, owner_id FROM items WHERE id = ?", (item_id,)
    ).fetchone()
    return _item(row)


def list_items(db: sqlite3.Connection, owner_id: int) -> list[ItemPublic]:
    """The items one account owns."""
    rows = db.execute(
        "SELECT id, title, description, owner_id FROM items WHERE owner_id = ?", (owner_id,)
    )
    return [ItemPublic(**dict(row)) for row in rows]


def create_item(db: sqlite3.Connection, new: ItemCreate, owner_id: int) -> ItemPublic:
    """Insert an item owned by ``owner_id``."""
    cursor = db.execute(
        "INSERT INTO items (title, description, owner_id) VALUES (?, ?, ?)",
        (new.title, new.description, owner_id),
    )
    item = get_item(db, int(cursor.lastrowid or 0))
    if item is None:  # pragma: no cover - same transaction
        raise RuntimeError("inserted item vanished")
    return item


def update_item(db: sqlite3.Connection, item: ItemPublic, update: ItemUpdate) -> ItemPublic:
    """Apply ``update`` to an item."""
    fields = update.model_dump(exclude_unset=True)
    if fields:
        assignments = ", ".join(f"{name} = ?" for name in fields)
        db.execute(f"UPDATE items SET {assignments} WHERE id = ?", (*fields.values(), item.id))
    return item.model_copy(update=fields)


def delete_item(db: sqlite3.Connection, item_id: int) -> None:
    """Delete an item."""
    db.execute("DELETE FROM items WHERE id = ?", (item_id,))
