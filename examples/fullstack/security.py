"""Password hashing (stdlib scrypt) and HS256 access tokens (PyJWT)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from datetime import datetime, timedelta, timezone

import jwt

from .config import settings

ALGORITHM = "HS256"
# RFC 7914 interactive-login parameters: 16 MiB of memory per hash.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    """A salted scrypt hash, ``salt$digest`` in base64."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"{base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches ``hashed``, compared in constant time."""
    salt, _, digest = hashed.partition("$")
    candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), **_SCRYPT)
    return hmac.compare_digest(candidate, base64.b64decode(digest))


def create_access_token(user_id: int) -> str:
    """A signed token naming the user, valid for the configured minutes."""
    expires = datetime.now(timezone.utc) + timedelta(minutes=settings.token_minutes)
    return jwt.encode({"sub": str(user_id), "exp": expires}, settings.secret_key, ALGORITHM)


def user_id_from_token(token: str) -> int | None:
    """The user id a valid token names; None for a forged, expired or malformed one."""
    try:
        claims = jwt.decode(token, settings.secret_key, algorithms=[ALGORITHM])
        return int(claims["sub"])
    except (jwt.PyJWTError, KeyError, ValueError):
        return None
