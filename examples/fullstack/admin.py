"""The admin console: a separate FastAPI application mounted under ``/admin``."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, HTTPException

from .db import SessionDep
from .deps import SuperUser

router = APIRouter(prefix="/tenants", tags=["admin"])


@router.get("/{tenant}/stats")
def tenant_stats(db: SessionDep, admin: SuperUser, tenant: str) -> dict[str, int]:
    """How many accounts and items a tenant has; admins see their own tenant only."""
    if tenant != admin.tenant:
        raise HTTPException(status_code=403, detail="Not your tenant")
    users = db.execute("SELECT count(*) FROM users WHERE tenant = ?", (tenant,)).fetchone()[0]
    items = db.execute(
        "SELECT count(*) FROM items JOIN users ON users.id = items.owner_id WHERE tenant = ?",
        (tenant,),
    ).fetchone()[0]
    return {"users": int(users), "items": int(items)}


admin_app = FastAPI(title="Admin console", docs_url=None, redoc_url=None, openapi_url=None)
admin_app.include_router(router)
