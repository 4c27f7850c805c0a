"""Authentication dependencies: the bearer token names the user, who becomes the actor."""

from __future__ import annotations

import sqlite3
from typing import Annotated

from fastapi import Depends, HTTPException, Query, WebSocketException, status
from fastapi.security import OAuth2PasswordBearer

from otel_audit import Action, Actor, record, set_actor

from . import crud
from .db import SessionDep
from .models import UserPublic
from .security import user_id_from_token

reusable_oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/login/access-token")
TokenDep = Annotated[str, Depends(reusable_oauth2)]


def actor_for(user: UserPublic, auth_method: str) -> Actor:
    """The audit trail's view of an account: its id, tenant and roles, never its email."""
    roles = ("admin",) if user.is_superuser else ("member",)
    return Actor(str(user.id), tenant=user.tenant, roles=roles, auth_method=auth_method)


def _user_for_token(db: sqlite3.Connection, token: str) -> UserPublic | None:
    user_id = user_id_from_token(token)
    user = crud.get_user(db, user_id) if user_id is not None else None
    if user is None or not user.is_active:
        return None
    set_actor(actor_for(user, "jwt"))
    return user


def get_current_user(db: SessionDep, token: TokenDep) -> UserPublic:
    """The active account a valid bearer token names; 401 otherwise."""
    user = _user_for_token(db, token)
    if user is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Could not validate credentials",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


CurrentUser = Annotated[UserPublic, Depends(get_current_user)]


def get_current_active_superuser(user: CurrentUser) -> UserPublic:
    """The caller if they are an admin; 403 (and an ``access.denied`` event) otherwise."""
    if not user.is_superuser:
        record(Action.ACCESS_DENIED, outcome="failure", details={"needed_role": "admin"})
        raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail="Not enough privileges")
    return user


SuperUser = Annotated[UserPublic, Depends(get_current_active_superuser)]


def websocket_user(db: SessionDep, token: Annotated[str, Query()] = "") -> UserPublic:
    """The account for a WebSocket, whose browser clients can only pass the token in the URL."""
    user = _user_for_token(db, token)
    if user is None:
        raise WebSocketException(code=status.WS_1008_POLICY_VIOLATION)
    return user
