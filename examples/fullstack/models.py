"""Request and response bodies; the database rows map onto the ``*Public`` models."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Token(BaseModel):
    """What the login route returns (OAuth2 password flow)."""

    access_token: str
    token_type: str = "bearer"


class UserCreate(BaseModel):
    """A new account; it joins the creating admin's tenant."""

    email: str = Field(max_length=255)
    password: str = Field(min_length=8, max_length=128)
    full_name: str | None = None
    is_superuser: bool = False


class UserUpdate(BaseModel):
    """Fields an admin may change; unset ones stay as they are."""

    email: str | None = Field(default=None, max_length=255)
    password: str | None = Field(default=None, min_length=8, max_length=128)
    full_name: str | None = None
    is_active: bool | None = None
    is_superuser: bool | None = None


class UserPublic(BaseModel):
    """An account as the API shows it (never the password hash)."""

    id: int
    email: str
    full_name: str | None
    tenant: str
    is_active: bool
    is_superuser: bool


class ItemCreate(BaseModel):
    """A new item, owned by the caller."""

    title: str = Field(min_length=1, max_length=255)
    description: str | None = None


class ItemUpdate(BaseModel):
    """Item fields to change; unset ones stay as they are."""

    title: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = None


class ItemPublic(BaseModel):
    """An item as the API shows it."""

    id: int
    title: str
    description: str | None
    owner_id: int
