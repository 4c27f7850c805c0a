"""Actor resolution: set_actor, resolver, verified JWT, Starlette auth; never unverified claims."""

from __future__ import annotations

import time
from typing import Annotated, Any

import jwt
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection

from otel_audit import Actor, AuditConfig, record, set_actor

from .conftest import Telemetry, audited_app

KEY = "test-signing-key-that-is-long-enough-for-hs256"


def _token(claims: dict[str, Any], key: str = KEY, algorithm: str = "HS256") -> str:
    return jwt.encode({"exp": int(time.time()) + 300, **claims}, key, algorithm=algorithm)


def _actor_app(telemetry: Telemetry, config: AuditConfig | None = None) -> FastAPI:
    app = audited_app(telemetry, config)

    @app.get("/whoami")
    async def whoami() -> str:
        return "ok"

    return app


def _user_attributes(telemetry: Telemetry) -> dict[str, Any]:
    attributes = dict(telemetry.one_record("audit.http.request").attributes)
    return {
        k: v
        for k, v in attributes.items()
        if k.startswith(("user.", "tenant.", "audit.actor", "session."))
    }


def test_set_actor_in_async_dependency(telemetry: Telemetry) -> None:
    """An actor declared in an async dependency is recorded on the request event."""
    app = audited_app(telemetry)

    async def authenticate() -> None:
        set_actor(
            Actor(
                "u-1", tenant="acme", roles=("admin",), scopes="read write", auth_method="api_key"
            )
        )

    @app.get("/x", dependencies=[Depends(authenticate)])
    async def endpoint() -> str:
        return "ok"

    TestClient(app).get("/x")
    assert _user_attributes(telemetry) == {
        "user.id": "u-1",
        "tenant.id": "acme",
        "user.roles": ("admin",),
        "audit.actor.scopes": ("read", "write"),
        "audit.actor.auth_method": "api_key",
    }


def _sync_authenticate() -> str:
    set_actor(Actor("u-sync", tenant="t-9"))
    return "u-sync"


def test_set_actor_in_sync_dependency_running_in_a_worker_thread(telemetry: Telemetry) -> None:
    """A sync dependency runs in a thread with a copied context; its actor still counts."""
    app = audited_app(telemetry)

    @app.get("/x")
    def endpoint(user: Annotated[str, Depends(_sync_authenticate)]) -> str:
        record("report.viewed")
        return user

    assert TestClient(app).get("/x").status_code == 200
    assert _user_attributes(telemetry)["user.id"] == "u-sync"
    assert telemetry.one_record("audit.report.viewed").attributes["user.id"] == "u-sync"


def test_resolver_is_used_after_set_actor(telemetry: Telemetry) -> None:
    """The configured resolver names the actor when set_actor was not called."""

    def resolver(connection: HTTPConnection) -> Actor | None:
        key = connection.headers.get("x-api-key")
        return Actor("svc-" + key, auth_method="api_key") if key else None

    client = TestClient(_actor_app(telemetry, AuditConfig(actor_resolver=resolver)))
    client.get("/whoami", headers={"x-api-key": "billing"})
    assert _user_attributes(telemetry)["user.id"] == "svc-billing"


def test_failing_resolver_does_not_break_the_request(telemetry: Telemetry) -> None:
    """A resolver that raises leaves the event actor-less and counts the error."""

    def resolver(connection: HTTPConnection) -> Actor | None:
        raise LookupError("user store down")

    client = TestClient(_actor_app(telemetry, AuditConfig(actor_resolver=resolver)))
    assert client.get("/whoami").status_code == 200
    assert _user_attributes(telemetry) == {}
    assert telemetry.counter("otel_audit.errors", reason="actor_resolver_error") == 1


def test_verified_jwt_names_the_actor(telemetry: Telemetry) -> None:
    """A bearer JWT verified with the configured key yields subject, tenant, roles, scopes."""
    client = TestClient(_actor_app(telemetry, AuditConfig(jwt_key=KEY)))
    token = _token(
        {"sub": "alice-id", "tenant_id": "acme", "roles": ["editor"], "scope": "a b", "sid": "s1"}
    )
    client.get("/whoami", headers={"authorization": f"Bearer {token}"})
    assert _user_attributes(telemetry) == {
        "user.id": "alice-id",
        "tenant.id": "acme",
        "user.roles": ("editor",),
        "audit.actor.scopes": ("a", "b"),
        "audit.actor.auth_method": "jwt",
        "session.id": "s1",
    }


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(
            _token({"sub": "mallory"}, key="some-other-key-of-sufficient-length!!"), id="forged"
        ),
        pytest.param(_token({"sub": "mallory", "exp": int(time.time()) - 60}), id="expired"),
        pytest.param(jwt.encode({"sub": "mallory"}, key="", algorithm="none"), id="alg-none"),
        pytest.param("not.a.jwt", id="malformed"),
        pytest.param("eyJhbGciOiJIUzI1NiJ9." + "A" * 10_000 + ".sig", id="huge"),
        pytest.param(_token({"name": "no subject"}), id="no-subject"),
    ],
)
def test_unverifiable_jwt_never_names_an_actor(telemetry: Telemetry, token: str) -> None:
    """Forged, expired, unsigned, malformed or subject-less tokens give no actor."""
    client = TestClient(_actor_app(telemetry, AuditConfig(jwt_key=KEY)))
    assert client.get("/whoami", headers={"authorization": f"Bearer {token}"}).status_code == 200
    assert _user_attributes(telemetry) == {}


def test_jwt_is_ignored_without_a_key(telemetry: Telemetry) -> None:
    """Without a verification key, even a well-formed token's claims are not trusted."""
    client = TestClient(_actor_app(telemetry))
    client.get("/whoami", headers={"authorization": f"Bearer {_token({'sub': 'alice'})}"})
    assert _user_attributes(telemetry) == {}


def test_jwt_audience_is_enforced(telemetry: Telemetry) -> None:
    """With jwt_audience set, a token for another audience gives no actor."""
    client = TestClient(_actor_app(telemetry, AuditConfig(jwt_key=KEY, jwt_audience="orders")))
    client.get(
        "/whoami", headers={"authorization": f"Bearer {_token({'sub': 'a', 'aud': 'billing'})}"}
    )
    client.get(
        "/whoami", headers={"authorization": f"Bearer {_token({'sub': 'b', 'aud': 'orders'})}"}
    )
    users = [r.attributes.get("user.id") for r in telemetry.audit_records()]
    assert users == [None, "b"]


class _HeaderBackend(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        user = conn.headers.get("x-user")
        return (AuthCredentials(["orders:read"]), SimpleUser(user)) if user else None


def test_starlette_authentication_scope_user(telemetry: Telemetry) -> None:
    """Starlette's AuthenticationMiddleware user and scopes are used as the last source."""
    app = _actor_app(telemetry)
    app.add_middleware(AuthenticationMiddleware, backend=_HeaderBackend())
    TestClient(app).get("/whoami", headers={"x-user": "bob"})
    assert _user_attributes(telemetry) == {
        "user.id": "bob",
        "audit.actor.scopes": ("orders:read",),
        "audit.actor.auth_method": "session",
    }


def test_set_actor_wins_over_every_other_source(telemetry: Telemetry) -> None:
    """set_actor() takes precedence over the resolver and a verified JWT."""
    config = AuditConfig(jwt_key=KEY, actor_resolver=lambda connection: Actor("from-resolver"))
    app = audited_app(telemetry, config)

    @app.get("/x")
    async def endpoint() -> str:
        set_actor(Actor("explicit"))
        return "ok"

    TestClient(app).get("/x", headers={"authorization": f"Bearer {_token({'sub': 'from-jwt'})}"})
    assert _user_attributes(telemetry)["user.id"] == "explicit"


def test_user_and_tenant_ids_are_pseudonymised_with_a_key(telemetry: Telemetry) -> None:
    """With a pseudonymisation key, user.id and tenant.id are keyed HMACs, stable per input."""
    app = audited_app(telemetry, AuditConfig(pseudonymization_key="k1"))

    @app.get("/x")
    async def endpoint() -> str:
        set_actor(Actor("alice", tenant="acme"))
        return "ok"

    client = TestClient(app)
    client.get("/x")
    client.get("/x")
    first, second = (r.attributes for r in telemetry.audit_records())
    assert str(first["user.id"]).startswith("hmac-sha256:")
    assert "alice" not in str(first["user.id"]) and "acme" not in str(first["tenant.id"])
    assert first["user.id"] == second["user.id"]
    assert first["user.id"] != first["tenant.id"]


def test_different_keys_give_unlinkable_pseudonyms(telemetry: Telemetry) -> None:
    """The same user id under two keys gives two unrelated pseudonyms."""
    pseudonyms = []
    for key in ("key-one", "key-two"):
        app = audited_app(telemetry, AuditConfig(pseudonymization_key=key))

        @app.get("/x")
        async def endpoint() -> str:
            set_actor(Actor("alice"))
            return "ok"

        TestClient(app).get("/x")
        pseudonyms.append(telemetry.audit_records()[-1].attributes["user.id"])
    assert pseudonyms[0] != pseudonyms[1]


@pytest.mark.parametrize("bad", ["", None, 42])
def test_actor_requires_a_non_empty_string_id(bad: Any) -> None:
    """Actor ids must be non-empty strings; anything else is a clear error."""
    with pytest.raises(ValueError, match=r"Actor\.id"):
        Actor(bad)
