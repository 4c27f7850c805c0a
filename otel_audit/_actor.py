"""Who is acting in a request: resolver callable, verified JWT, or Starlette's auth scope.

``set_actor()`` always wins and is handled by the request context; this module covers the
sources consulted after it, in order. Every source is failure-isolated: a resolver that
raises or a token that fails verification yields "no actor from this source", never an
exception into the request. Unverified JWT claims are never used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import jwt
from starlette.requests import HTTPConnection
from starlette.types import Scope

from ._config import AuditConfig
from ._event import Actor

_log = logging.getLogger("otel_audit")

# Bearer tokens longer than this are not even parsed: no legitimate JWT is this large and
# decoding is the most expensive thing an attacker could make every request do.
_MAX_TOKEN_LENGTH = 8192


def _load_key(raw: str) -> Any:
    """Parse a PEM public key once, so verification does not re-parse it per request."""
    if not raw.lstrip().startswith("-----BEGIN"):
        return raw
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(raw.encode())


def _claim_strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, Iterable):
        return tuple(str(item) for item in value if isinstance(item, str | int))
    return ()


def _scalar_claim(value: object) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


class ActorResolver:
    """Finds the actor of a request from the sources after ``set_actor()``."""

    def __init__(self, config: AuditConfig, on_error: Callable[[str, BaseException], None]):
        self._resolver = config.actor_resolver
        self._key = _load_key(config.jwt_key) if config.jwt_key else None
        self._algorithms = list(config.jwt_algorithms)
        self._audience = config.jwt_audience
        self._issuer = config.jwt_issuer
        self._subject_claim = config.jwt_subject_claim
        self._tenant_claim = config.jwt_tenant_claim
        self._roles_claim = config.jwt_roles_claim
        self._scopes_claim = config.jwt_scopes_claim
        self._on_error = on_error

    def resolve(self, scope: Scope) -> Actor | None:
        """The first actor any source yields, or None."""
        if self._resolver is not None:
            actor = self._from_resolver(scope)
            if actor is not None:
                return actor
        if self._key is not None:
            actor = self._from_jwt(scope)
            if actor is not None:
                return actor
        return _from_starlette_auth(scope)

    def _from_resolver(self, scope: Scope) -> Actor | None:
        try:
            actor = self._resolver(HTTPConnection(scope)) if self._resolver else None
        except Exception as exc:
            self._on_error("actor_resolver_error", exc)
            return None
        if actor is None or isinstance(actor, Actor):
            return actor
        self._on_error("actor_resolver_error", TypeError(f"returned {type(actor).__name__}"))
        return None

    def _from_jwt(self, scope: Scope) -> Actor | None:
        token = bearer_token(scope)
        if token is None or self._key is None:
            return None
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self._issuer,
                options={"verify_aud": self._audience is not None},
            )
        except jwt.PyJWTError:
            # Expired, forged or malformed: no actor, and nothing from its claims is used.
            return None
        except Exception as exc:
            self._on_error("jwt_error", exc)
            return None
        subject = _scalar_claim(claims.get(self._subject_claim))
        if subject is None:
            return None
        scopes = claims.get(self._scopes_claim)
        if scopes is None and self._scopes_claim == "scope":
            scopes = claims.get("scp")  # Azure AD and Okta spell it "scp".
        return Actor(
            id=subject,
            tenant=_scalar_claim(claims.get(self._tenant_claim)),
            roles=_claim_strings(claims.get(self._roles_claim)),
            scopes=_claim_strings(scopes),
            auth_method="jwt",
            session_id=_scalar_claim(claims.get("sid")),
        )


def bearer_token(scope: Scope) -> str | None:
    """The bearer token of the Authorization header, if there is a plausible one."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() != b"bearer" or not token or len(token) > _MAX_TOKEN_LENGTH:
                return None
            try:
                return str(token.strip().decode("ascii"))
            except UnicodeDecodeError:
                return None
    return None


def _from_starlette_auth(scope: Scope) -> Actor | None:
    """Actor from ``AuthenticationMiddleware``'s ``scope["user"]`` and ``scope["auth"]``."""
    user = scope.get("user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    identity: object = None
    try:
        identity = user.identity
    except (AttributeError, NotImplementedError):
        identity = getattr(user, "display_name", None)
    identifier = _scalar_claim(identity)
    if identifier is None:
        return None
    auth = scope.get("auth")
    return Actor(
        id=identifier,
        scopes=_claim_strings(getattr(auth, "scopes", ())),
        auth_method="session",
    )
