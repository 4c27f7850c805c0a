"""Demo service: a small multi-tenant document store audited with otel_audit.

Authentication issues HS256 JWTs; otel_audit verifies the same tokens (``jwt_key``) to name
the actor of every request, and the endpoints add business events with ``record()``.
Run it with ``make demo`` (see examples/demo.py), or ``uvicorn examples.app:app``.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, Header, HTTPException, WebSocket, WebSocketDisconnect
from pydantic import BaseModel

from otel_audit import Action, Actor, AuditConfig, instrument_app, record, set_actor

# Demo-only signing key; a real deployment reads it from a secret store.
SIGNING_KEY = os.environ.get("DEMO_SIGNING_KEY", "demo-signing-key-not-for-production-use!")

USERS: dict[str, dict[str, Any]] = {
    # username -> account; passwords are demo fixtures, never logged (redaction proves it).
    "alice": {"id": "u-alice", "tenant": "acme", "role": "admin", "password": "alice-pass-1"},
    "bob": {"id": "u-bob", "tenant": "acme", "role": "viewer", "password": "bob-pass-1"},
    "carol": {"id": "u-carol", "tenant": "globex", "role": "admin", "password": "carol-pass-1"},
    "dave": {"id": "u-dave", "tenant": "globex", "role": "editor", "password": "dave-pass-1"},
}
DOCUMENTS: dict[str, dict[str, Any]] = {}
_document_ids = itertools.count(1)

app = FastAPI(title="otel-audit demo")
instrument_app(app, AuditConfig(jwt_key=SIGNING_KEY, jwt_tenant_claim="tenant"))


class Login(BaseModel):
    username: str
    password: str


class DocumentIn(BaseModel):
    title: str
    body: str = ""


class RoleChange(BaseModel):
    role: str


def _token(account: dict[str, Any]) -> str:
    claims = {
        "sub": account["id"],
        "tenant": account["tenant"],
        "roles": [account["role"]],
        "exp": int(time.time()) + 3600,
    }
    return jwt.encode(claims, SIGNING_KEY, algorithm="HS256")


def current_account(authorization: Annotated[str, Header()] = "") -> dict[str, Any]:
    """The caller's account, from a bearer token this service issued."""
    scheme, _, token = authorization.partition(" ")
    try:
        claims = jwt.decode(token, SIGNING_KEY, algorithms=["HS256"]) if scheme == "Bearer" else {}
    except jwt.PyJWTError:
        claims = {}
    account = next((a for a in USERS.values() if a["id"] == claims.get("sub")), None)
    if account is None:
        raise HTTPException(status_code=401, detail="not authenticated")
    return account


Account = Annotated[dict[str, Any], Depends(current_account)]


def require_role(account: dict[str, Any], *roles: str) -> None:
    if account["role"] not in roles:
        record(Action.ACCESS_DENIED, outcome="failure", details={"needed": list(roles)})
        raise HTTPException(status_code=403, detail="forbidden")


@app.post("/auth/login")
async def login(body: Login) -> dict[str, str]:
    account = USERS.get(body.username)
    if account is None or account["password"] != body.password:
        # The attempted username may be an email address: redaction masks it.
        record(Action.AUTH_LOGIN_FAILED, outcome="failure", details={"username": body.username})
        raise HTTPException(status_code=401, detail="bad credentials")
    actor = Actor(account["id"], tenant=account["tenant"], roles=(account["role"],))
    set_actor(actor)
    record(Action.AUTH_LOGIN, resource_type="session", details={"method": "password"})
    return {"access_token": _token(account), "token_type": "bearer"}


@app.get("/documents")
async def list_documents(account: Account) -> list[dict[str, Any]]:
    return [d for d in DOCUMENTS.values() if d["tenant"] == account["tenant"]]


@app.post("/documents", status_code=201)
async def create_document(body: DocumentIn, account: Account) -> dict[str, Any]:
    require_role(account, "admin", "editor")
    document = {
        "id": f"doc-{next(_document_ids)}",
        "tenant": account["tenant"],
        **body.model_dump(),
    }
    DOCUMENTS[document["id"]] = document
    record("document.created", resource_type="document", resource_id=document["id"])
    return document


def _owned(document_id: str, account: dict[str, Any]) -> dict[str, Any]:
    document = DOCUMENTS.get(document_id)
    if document is None or document["tenant"] != account["tenant"]:
        raise HTTPException(status_code=404, detail="no such document")
    return document


@app.patch("/documents/{document_id}")
async def update_document(document_id: str, body: DocumentIn, account: Account) -> dict[str, Any]:
    require_role(account, "admin", "editor")
    document = _owned(document_id, account)
    changes = {k: (document[k], v) for k, v in body.model_dump().items() if document[k] != v}
    document.update(body.model_dump())
    record("document.updated", resource_type="document", resource_id=document_id, changes=changes)
    return document


@app.delete("/documents/{document_id}", status_code=204, response_model=None)
async def delete_document(document_id: str, account: Account) -> None:
    require_role(account, "admin")
    _owned(document_id, account)
    del DOCUMENTS[document_id]
    record("document.deleted", resource_type="document", resource_id=document_id)


@app.put("/users/{username}/role")
async def change_role(username: str, body: RoleChange, account: Account) -> dict[str, str]:
    require_role(account, "admin")
    target = USERS.get(username)
    if target is None or target["tenant"] != account["tenant"]:
        raise HTTPException(status_code=404, detail="no such user")
    old, target["role"] = target["role"], body.role
    record(
        Action.USER_ROLE_CHANGED,
        resource_type="user",
        resource_id=target["id"],
        changes={"role": (old, body.role)},
    )
    return {"user": target["id"], "role": body.role}


@app.get("/admin/settings")
async def admin_settings(account: Account) -> dict[str, str]:
    require_role(account, "admin")
    return {"retention": "400d"}


@app.websocket("/ws/notifications")
async def notifications(websocket: WebSocket) -> None:
    try:
        account = current_account(f"Bearer {websocket.query_params.get('token', '')}")
    except HTTPException:
        await websocket.close(code=1008)
        return
    # The token came in the query string, where otel_audit does not look for one.
    set_actor(Actor(account["id"], tenant=account["tenant"], roles=(account["role"],)))
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive_text()
            if message == "bye":
                await websocket.close(code=1000)
                return
            await websocket.send_json({"tenant": account["tenant"], "echo": message})
    except WebSocketDisconnect:
        return
