"""The notebooks REST API: folders, notebooks, upload, download, checkpoints.

Paths are relative to the server's root folder, whose top-level folders are
the users' own (``alice/...``). Notebooks also have a stable id (it survives
renames) that names their room. Every request is authorized through
:class:`~collab_server.access.Authorizer`; the cascades a rename or delete
starts are in :class:`~collab_server.notebooks.Notebooks`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from tornado import web

from auth.identity import IdentityProvider
from auth.permissions import Action, renaming
from crdt.contents import ContentsManager, Entry

from ..access import Authorizer
from ..export import export
from ..notebooks import Notebooks
from .base import APIHandler, attachment


def entry_json(entry: Entry) -> dict[str, Any]:
    return dataclasses.asdict(entry)


def api_path(path: str) -> str:
    return path.strip("/")


class WhoAmIHandler(APIHandler):
    """GET /api/user: who the request is authenticated as."""

    async def get(self) -> None:
        self.write_json({"name": self.user.name, "admin": self.user.admin})


class FilesHandler(APIHandler):
    def initialize(  # type: ignore[override]
        self,
        identity: IdentityProvider,
        authorizer: Authorizer,
        contents: ContentsManager,
        notebooks: Notebooks,
        checkpoints: Path,
    ) -> None:
        super().initialize(identity)
        self.authorizer = authorizer
        self.contents = contents
        self.notebooks = notebooks
        self.checkpoints = checkpoints

    async def prepare(self) -> None:
        await super().prepare()
        # Like a first login, a first request makes the user's own folder.
        await self.notebooks.ensure_home(self.user)


class ContentsHandler(FilesHandler):
    """/api/contents/<path>: list, create, rename and delete folders and notebooks.

    - GET: a folder's entries (``{"type": "directory", "path", "content": [...]}``)
      or one notebook's entry (with its ``id``). The root lists the folders you own.
    - PUT ``{"type": "directory"}`` creates a folder; ``{"type": "notebook",
      "content": <nbformat JSON or null>}`` creates a notebook. 409 if it exists.
    - PATCH ``{"path": "<new path>"}`` renames or moves.
    - DELETE removes a notebook or a folder with everything in it.
    """

    async def get(self, path: str) -> None:
        path = api_path(path)
        if path == "":
            root = await self.contents.get("")
            listing = [
                e
                for e in await self.contents.list_dir("")
                if await self.authorizer.is_authorized(self.user, Action.VIEW, path=e.path)
            ]
            self.write_json({**entry_json(root), "content": [entry_json(e) for e in listing]})
            return
        await self.authorizer.require(self.user, Action.VIEW, path=path)
        entry = await self.contents.get(path)
        if entry.type == "directory":
            listing = await self.contents.list_dir(path)
            self.write_json({**entry_json(entry), "content": [entry_json(e) for e in listing]})
        else:
            self.write_json(entry_json(entry))

    async def put(self, path: str) -> None:
        path = api_path(path)
        await self.authorizer.require(self.user, Action.CREATE, path=path)
        body = self.json_body()
        kind = body.get("type")
        if kind == "directory":
            entry = await self.contents.make_dir(path)
        elif kind == "notebook":
            content = body.get("content")
            if content is not None and not isinstance(content, dict):
                raise web.HTTPError(400, "content must be a notebook (JSON object) or null")
            entry = await self.contents.create_notebook(path, content)
        else:
            raise web.HTTPError(400, 'type must be "directory" or "notebook"')
        self.write_json(entry_json(entry), status=201)

    async def patch(self, path: str) -> None:
        new_path = self.json_body().get("path")
        if not isinstance(new_path, str):
            raise web.HTTPError(400, 'give the new path as {"path": "..."}')
        old_path, new_path = api_path(path), api_path(new_path)
        action = renaming(old_path, new_path)
        await self.authorizer.require(self.user, action, path=old_path, target=new_path)
        self.write_json(entry_json(await self.notebooks.rename(old_path, new_path)))

    async def delete(self, path: str) -> None:
        path = api_path(path)
        await self.authorizer.require(self.user, Action.DELETE, path=path)
        await self.notebooks.delete(path, self.user.name)
        self.set_status(204)
        self.finish()


class UploadHandler(FilesHandler):
    """PUT /api/upload/<path>[?overwrite=1]: the body is the file, stored byte for byte.

    A ``.ipynb`` must be a valid notebook; any other file is stored as it is.
    """

    async def put(self, path: str) -> None:
        overwrite = self.get_query_argument("overwrite", "0") in ("1", "true")
        path = api_path(path)
        await self.authorizer.require(self.user, Action.CREATE, path=path)
        entry = await self.notebooks.upload(path, self.request.body, overwrite)
        self.write_json(entry_json(entry), status=201)


class NotebookHandler(FilesHandler):
    """GET /api/notebooks/<id>[?download=1][&format=F]: the notebook as it is now.

    An open notebook is read from its live document (including changes not
    yet saved); otherwise from its file. ``format`` is ``ipynb`` (the
    default), ``stripped`` (no outputs or counts), ``script`` or ``html``;
    every format but ``ipynb`` is an attachment, never a page of this site.
    """

    async def get(self, room_id: str) -> None:
        granted = await self.authorizer.require(self.user, Action.VIEW, notebook_id=room_id)
        fmt = self.get_query_argument("format", "ipynb")
        data = await self.notebooks.current_bytes(room_id)
        exported = await asyncio.to_thread(export, data, fmt, granted.path)
        self.set_header("Content-Type", exported.content_type)
        if fmt != "ipynb" or self.get_query_argument("download", "0") in ("1", "true"):
            self.set_header("Content-Disposition", attachment(exported.filename))
            self.set_header("X-Content-Type-Options", "nosniff")
            self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
        self.finish(exported.body)


class CheckpointsHandler(FilesHandler):
    """GET /api/notebooks/<id>/checkpoints: content replaced by changes made on disk."""

    async def get(self, room_id: str) -> None:
        await self.authorizer.require(self.user, Action.VIEW, notebook_id=room_id)
        folder = self.checkpoints / room_id
        names = sorted(p.name for p in folder.glob("*.ipynb")) if folder.is_dir() else []
        self.write_json({"checkpoints": [{"name": n} for n in names]})


class CheckpointHandler(FilesHandler):
    """GET /api/notebooks/<id>/checkpoints/<name>: one checkpoint as .ipynb."""

    async def get(self, room_id: str, name: str) -> None:
        await self.authorizer.require(self.user, Action.VIEW, notebook_id=room_id)
        target = self.checkpoints / room_id / name
        if not target.is_file():
            raise web.HTTPError(404, "no such checkpoint")
        self.set_header("Content-Type", "application/x-ipynb+json")
        self.finish(target.read_bytes())
