"""An app that configures otel_audit itself, for running under opentelemetry-instrument."""

from __future__ import annotations

from fastapi import FastAPI

from otel_audit import AuditConfig, instrument_app

app = FastAPI()
# Under opentelemetry-instrument this app is audited automatically first; this explicit
# configuration (here: an extra excluded path) must be the one that applies.
instrument_app(app, AuditConfig(excluded_urls=("/private",)))


@app.get("/private")
async def private() -> str:
    return "not audited"


@app.get("/public")
async def public() -> str:
    return "audited"
