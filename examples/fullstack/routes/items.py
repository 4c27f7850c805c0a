"""``/items``: each account's own items."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from otel_audit import record

from .. import crud
from ..db import SessionDep
from ..deps import CurrentUser
from ..models import ItemCreate, ItemPublic, ItemUpdate, UserPublic

router = APIRouter(prefix="/items", tags=["items"])


def _own_item(db: SessionDep, user: UserPublic, item_id: int) -> ItemPublic:
    item = crud.get_item(db, item_id)
    if item is None or (item.owner_id != user.id and not user.is_superuser):
        raise HTTPException(status_code=404, detail="Item not found")
    return item


@router.get("/")
def read_items(db: SessionDep, user: CurrentUser) -> list[ItemPublic]:
    """The caller's items."""
    return crud.list_items(db, user.id)


@router.post("/")
def create_item(db: SessionDep, user: CurrentUser, new: ItemCreate) -> ItemPublic:
    """Create an item owned by the caller."""
    item = crud.create_item(db, new, user.id)
    record("item.created", resource_type="item", resource_id=item.id)
    return item


@router.get("/{item_id}")
def read_item(db: SessionDep, user: CurrentUser, item_id: int) -> ItemPublic:
    """One of the caller's items."""
    return _own_item(db, user, item_id)


@router.patch("/{item_id}")
def update_item(db: SessionDep, user: CurrentUser, item_id: int, update: ItemUpdate) -> ItemPublic:
    """Change one of the caller's items."""
    old = _own_item(db, user, item_id)
    item = crud.update_item(db, old, update)
    changes = {k: (getattr(old, k), v) for k, v in update.model_dump(exclude_unset=True).items()}
    record("item.updated", resource_type="item", resource_id=item.id, changes=changes)
    return item


@router.delete("/{item_id}", status_code=204, response_model=None)
def delete_item(db: SessionDep, user: CurrentUser, item_id: int) -> None:
    """Delete one of the caller's items."""
    crud.delete_item(db, _own_item(db, user, item_id).id)
    record("item.deleted", resource_type="item", resource_id=item_id)
