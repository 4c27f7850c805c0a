"""A FastAPI app with no otel_audit code at all, for the zero-code tests."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException

app = FastAPI()


@app.get("/items/{item_id}")
async def read_item(item_id: int) -> dict[str, int]:
    if item_id == 403:
        raise HTTPException(status_code=403, detail="forbidden")
    return {"item_id": item_id}
