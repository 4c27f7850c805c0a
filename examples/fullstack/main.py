"""The application object, ``examples.fullstack.main:app``.

Deliberately no ``instrument_app``: run under ``opentelemetry-instrument`` and otel_audit's
entry point audits it, next to the contrib FastAPI instrumentation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .admin import admin_app
from .api import api_router
from .db import init_db

API_V1 = "/api/v1"


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """Create the database (and its first admin) before serving."""
    init_db()
    yield


app = FastAPI(title="Full-stack example", openapi_url=f"{API_V1}/openapi.json", lifespan=lifespan)
app.include_router(api_router, prefix=API_V1)
app.mount("/admin", admin_app)
