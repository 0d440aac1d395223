"""The trash: what a user deleted, to restore or delete for good.

- ``GET /api/trash``: ``{"days", "items": [{"id", "path", "name", "kind",
  "deleted_at", "deleted_by", "purge_at"}]}``, newest first: the items the
  user may restore (those they could have deleted: their own folder's).
- ``POST /api/trash/<id>/restore``: back where it was; ``200`` with its entry,
  ``409`` if that path was taken meanwhile.
- ``DELETE /api/trash/<id>``: delete it for good; ``204``.
"""

from __future__ import annotations

import dataclasses

from auth.permissions import Action
from crdt.trash import TrashedItem

from .notebooks import FilesHandler, entry_json


class TrashHandler(FilesHandler):
    async def get(self) -> None:
        items = await self.notebooks.trash.items(None if self.user.admin else [self.user.name])
        days = self.notebooks.trash_days
        shown = [
            {**dataclasses.asdict(item), "purge_at": item.deleted_at + days * 24 * 3600}
            for item in items
            if await self.authorizer.is_authorized(self.user, Action.DELETE, path=item.path)
        ]
        self.write_json({"days": days, "items": shown})


class TrashedItemHandler(FilesHandler):
    async def item(self, trash_id: str) -> TrashedItem:
        """The item, if the user may restore it (404 as if it were not there otherwise)."""
        item = await self.notebooks.trash.get(trash_id)
        await self.authorizer.require(self.user, Action.DELETE, path=item.path)
        return item


class RestoreHandler(TrashedItemHandler):
    async def post(self, trash_id: str) -> None:
        await self.item(trash_id)
        self.write_json(entry_json(await self.notebooks.restore(trash_id)))


class TrashItemHandler(TrashedItemHandler):
    async def delete(self, trash_id: str) -> None:
        await self.item(trash_id)
        await self.notebooks.delete_for_good(trash_id)
        self.set_status(204)
        self.finish()
