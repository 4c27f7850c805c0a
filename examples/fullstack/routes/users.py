"""``/users``: account management, for the admins of a tenant."""

from __future__ import annotations

import sqlite3

from fastapi import APIRouter, HTTPException

from otel_audit import Action, record

from .. import crud
from ..db import SessionDep
from ..deps import CurrentUser, SuperUser
from ..models import UserCreate, UserPublic, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])


def _tenant_user(db: SessionDep, admin: UserPublic, user_id: int) -> UserPublic:
    user = crud.get_user(db, user_id)
    if user is None or user.tenant != admin.tenant:
        raise HTTPException(status_code=404, detail="User not found")
    return user


@router.get("/")
def read_users(db: SessionDep, admin: SuperUser) -> list[UserPublic]:
    """Every account of the admin's tenant."""
    return crud.list_users(db, admin.tenant)


@router.post("/")
def create_user(db: SessionDep, admin: SuperUser, new: UserCreate) -> UserPublic:
    """Open an account in the admin's tenant."""
    try:
        user = crud.create_user(db, new, admin.tenant)
    except sqlite3.IntegrityError:
        raise HTTPException(status_code=409, detail="Email already registered") from None
    record(
        Action.USER_CREATED,
        resource_type="user",
        resource_id=user.id,
        details={"is_superuser": user.is_superuser},
    )
    return user


@router.get("/me")
def read_user_me(user: CurrentUser) -> UserPublic:
    """The caller's own account."""
    return user


@router.get("/{user_id}")
def read_user(db: SessionDep, admin: SuperUser, user_id: int) -> UserPublic:
    """One account of the admin's tenant."""
    return _tenant_user(db, admin, user_id)


@router.patch("/{user_id}")
def update_user(db: SessionDep, admin: SuperUser, user_id: int, update: UserUpdate) -> UserPublic:
    """Change an account; the event lists each changed field (emails redacted by otel_audit)."""
    user, changes = crud.update_user(db, _tenant_user(db, admin, user_id), update)
    if changes:
        record(Action.USER_UPDATED, resource_type="user", resource_id=user.id, changes=changes)
    if update.password is not None:
        # Its own action: auditors look for password changes by name, never by value.
        record(Action.AUTH_PASSWORD_CHANGED, resource_type="user", resource_id=user.id)
    return user


@router.delete("/{user_id}", status_code=204, response_model=None)
def delete_user(db: SessionDep, admin: SuperUser, user_id: int) -> None:
    """Close an account and delete its items."""
    user = _tenant_user(db, admin, user_id)
    if user.id == admin.id:
        raise HTTPException(status_code=403, detail="Admins cannot delete themselves")
    crud.delete_user(db, user.id)
    record(Action.USER_DELETED, resource_type="user", resource_id=user.id)
