"""The notebooks REST API: folders, notebooks, upload, download, checkpoints.

Paths are relative to the server's root folder, whose top-level folders are
the users' own (``alice/...``). Notebooks also have a stable id (it survives
renames) that names their room. Every request is authorized through
:class:`Access`: folders belong to their owner, notebooks to whoever they
are shared with.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from tornado import web

from auth.sharing import PermissionDenied, Role, Sharing, owner_name
from crdt.contents import ContentsManager, Entry
from crdt.notebook_io import NotebookWorker, notebook_from_state, serialize_notebook
from crdt.rooms import RoomManager
from kernels.running import NotebookKernels

from ..access import Access
from .base import APIHandler


def entry_json(entry: Entry) -> dict[str, Any]:
    return dataclasses.asdict(entry)


def api_path(path: str) -> str:
    return path.strip("/")


class WhoAmIHandler(APIHandler):
    """GET /api/user: who the request is authenticated as."""

    async def get(self) -> None:
        self.write_json({"name": self.user.name, "admin": self.user.admin})


class FilesHandler(APIHandler):
    contents: ContentsManager
    rooms: RoomManager
    worker: NotebookWorker
    checkpoints: Path
    access: Access
    sharing: Sharing
    kernels: NotebookKernels

    async def prepare(self) -> None:
        await super().prepare()
        # Like a first login, a first request makes the user's own folder.
        await self.access.ensure_home(self.user)

    async def writable_folder(self, path: str) -> None:
        """Creating at ``path`` needs the owner of the folder it is in."""
        self.access.require_folder(self.user, path)


class ContentsHandler(FilesHandler):
    """/api/contents/<path>: list, create, rename and delete folders and notebooks.

    - GET: a folder's entries (``{"type": "directory", "path", "content": [...]}``)
      or one notebook's entry (with its ``id``).
    - PUT ``{"type": "directory"}`` creates a folder; ``{"type": "notebook",
      "content": <nbformat JSON or null>}`` creates a notebook. 409 if it exists.
    - PATCH ``{"path": "<new path>"}`` renames or moves.
    - DELETE removes a notebook or a folder with everything in it.
    """

    async def get(self, path: str) -> None:
        path = api_path(path)
        if path == "" and not self.user.admin:
            # The root lists only the user's own folder.
            root = await self.contents.get("")
            home = await self.contents.get(self.user.name)
            self.write_json({**entry_json(root), "content": [entry_json(home)]})
            return
        await self.access.require_path(self.user, path, Role.VIEWER)
        entry = await self.contents.get(path)
        if entry.type == "directory":
            listing = await self.contents.list_dir(path)
            self.write_json({**entry_json(entry), "content": [entry_json(e) for e in listing]})
        else:
            self.write_json(entry_json(entry))

    async def put(self, path: str) -> None:
        await self.writable_folder(api_path(path))
        body = self.json_body()
        kind = body.get("type")
        if kind == "directory":
            entry = await self.contents.make_dir(api_path(path))
        elif kind == "notebook":
            content = body.get("content")
            if content is not None and not isinstance(content, dict):
                raise web.HTTPError(400, "content must be a notebook (JSON object) or null")
            entry = await self.contents.create_notebook(api_path(path), content)
        else:
            raise web.HTTPError(400, 'type must be "directory" or "notebook"')
        self.write_json(entry_json(entry), status=201)

    async def patch(self, path: str) -> None:
        new_path = self.json_body().get("path")
        if not isinstance(new_path, str):
            raise web.HTTPError(400, 'give the new path as {"path": "..."}')
        old_path = api_path(path)
        await self.require_movable(old_path, api_path(new_path))
        ids = await self.contents.notebook_ids_under(old_path)
        async with self.rooms.holding_files(ids):
            entry, moved = await self.contents.rename(old_path, api_path(new_path))
            for notebook in moved:
                self.rooms.relocated(notebook.id, notebook.abs_path)
                self.kernels.relocated(notebook.id, notebook.path)
        self.write_json(entry_json(entry))

    async def delete(self, path: str) -> None:
        path = api_path(path)
        await self.access.require_path(self.user, path, Role.OWNER)
        if "/" not in path and not self.user.admin:
            raise PermissionDenied("your own folder cannot be deleted")
        for notebook_id in await self.contents.notebook_ids_under(path):
            await self.rooms.notebook_deleted(notebook_id)
            await asyncio.to_thread(self.sharing.forget_notebook, notebook_id)
        await self.contents.delete(path)
        if "/" not in path:
            self.access.forget_home(path)
        self.set_status(204)
        self.finish()

    async def require_movable(self, old_path: str, new_path: str) -> None:
        """Owners move things within the same user's folder; only admins move between users."""
        await self.access.require_path(self.user, old_path, Role.OWNER)
        if self.user.admin:
            return
        if "/" not in old_path:
            raise PermissionDenied("a user's own folder cannot be renamed")
        if owner_name(new_path) != owner_name(old_path):
            raise PermissionDenied("notebooks can only be moved within their owner's folder")


class UploadHandler(FilesHandler):
    """PUT /api/upload/<path>[?overwrite=1]: the body is an .ipynb file, stored byte for byte."""

    async def put(self, path: str) -> None:
        overwrite = self.get_query_argument("overwrite", "0") in ("1", "true")
        path = api_path(path)
        await self.writable_folder(path)
        entry = await self.contents.upload_notebook(path, self.request.body, overwrite=overwrite)
        if overwrite and entry.id is not None and self.rooms.get(entry.id) is not None:
            room = self.rooms.get(entry.id)
            assert room is not None
            async with room.disk_lock:
                await room.load_if_changed_on_disk()
        self.write_json(entry_json(entry), status=201)


class NotebookHandler(FilesHandler):
    """GET /api/notebooks/<id>[?download=1]: the notebook as .ipynb JSON, as it is now.

    An open notebook is read from its live document (including changes not
    yet saved); otherwise from its file.
    """

    async def get(self, room_id: str) -> None:
        path = await self.access.require_notebook(self.user, room_id, Role.VIEWER)
        room = self.rooms.get(room_id)
        if room is not None and not room.closing:
            state = room.doc.get_update()
            nb = await self.worker.run(notebook_from_state, state)
            data = await self.worker.run(serialize_notebook, nb)
        else:
            data = await self.contents.read_bytes(room_id)
        self.set_header("Content-Type", "application/x-ipynb+json")
        if self.get_query_argument("download", "0") in ("1", "true"):
            name = Path(path).name.replace('"', "")
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.finish(data)


class CheckpointsHandler(FilesHandler):
    """GET /api/notebooks/<id>/checkpoints: content replaced by changes made on disk."""

    async def get(self, room_id: str) -> None:
        await self.access.require_notebook(self.user, room_id, Role.VIEWER)
        folder = self.checkpoints / room_id
        names = sorted(p.name for p in folder.glob("*.ipynb")) if folder.is_dir() else []
        self.write_json({"checkpoints": [{"name": n} for n in names]})


class CheckpointHandler(FilesHandler):
    """GET /api/notebooks/<id>/checkpoints/<name>: one checkpoint as .ipynb."""

    async def get(self, room_id: str, name: str) -> None:
        await self.access.require_notebook(self.user, room_id, Role.VIEWER)
        target = self.checkpoints / room_id / name
        if not target.is_file():
            raise web.HTTPError(404, "no such checkpoint")
        self.set_header("Content-Type", "application/x-ipynb+json")
        self.finish(target.read_bytes())
