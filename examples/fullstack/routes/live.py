"""``/ws``: a WebSocket that pushes the caller's item count whenever asked."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect

from .. import crud
from ..db import SessionDep
from ..deps import websocket_user
from ..models import UserPublic

router = APIRouter(prefix="/ws", tags=["live"])


@router.websocket("/items")
async def item_feed(
    websocket: WebSocket, db: SessionDep, user: Annotated[UserPublic, Depends(websocket_user)]
) -> None:
    """Answer each message with the caller's current item count, until they hang up."""
    await websocket.accept()
    try:
        while True:
            await websocket.receive_text()
            await websocket.send_json({"items": len(crud.list_items(db, user.id))})
    except WebSocketDisconnect:
        return
