"""The versioned API: every resource router, included under one router."""

from __future__ import annotations

from fastapi import APIRouter

from .routes import items, live, login, users

api_router = APIRouter()
api_router.include_router(login.router)
api_router.include_router(users.router)
api_router.include_router(items.router)
api_router.include_router(live.router)
