"""``/login``: the OAuth2 password flow that issues access tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.security import OAuth2PasswordRequestForm

from otel_audit import Action, record, set_actor

from .. import crud
from ..db import SessionDep
from ..deps import CurrentUser, actor_for
from ..models import Token, UserPublic
from ..security import create_access_token

router = APIRouter(prefix="/login", tags=["login"])


@router.post("/access-token")
def login_access_token(
    db: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> Token:
    """Exchange an email and password for a bearer token."""
    user = crud.authenticate(db, form.username, form.password)
    if user is None or not user.is_active:
        # Never the attempted login name: it is an email address (PII), and often a password
        # typed into the wrong field. The event carries the client address instead.
        reason = "bad_credentials" if user is None else "inactive"
        record(Action.AUTH_LOGIN_FAILED, outcome="failure", details={"reason": reason})
        raise HTTPException(status_code=400, detail="Incorrect email or password")
    set_actor(actor_for(user, "password"))
    record(Action.AUTH_LOGIN, resource_type="user", resource_id=user.id)
    return Token(access_token=create_access_token(user.id))


@router.post("/test-token")
def test_token(user: CurrentUser) -> UserPublic:
    """Who the presented token belongs to."""
    return user
