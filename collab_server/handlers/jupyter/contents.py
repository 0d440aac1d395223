"""Jupyter Server's contents API, ``/jupyter/api/contents/<path>``, over our files and notebooks.

Paths are ours (root-relative: ``alice/nb.ipynb``) and models are Jupyter
Server 2's: ``name, path, type, writable, created, last_modified, size,
mimetype, format, content``. ``writable`` is whether the user may change it
(editor or owner). What differs from Jupyter Server, on purpose:

- An open notebook is the live document: GET returns it with the edits not
  yet saved; a PUT whose content differs from it is refused (409), since the
  server saves it continuously and a whole-file write would undo others' edits.
- Checkpoints: GET lists the copies the server kept when the file changed on
  disk; POST makes no copy (the server saves continuously) and answers a
  synthetic checkpoint ``{"id": "live"}`` so that clients which checkpoint
  before saving (JupyterLab) carry on. Restoring or deleting one is not served.
- ``created`` is the last modification time (we keep no creation time).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import mimetypes
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tornado import web

from auth.identity import User
from auth.permissions import Action, Role, renaming
from crdt.contents import NOTEBOOK_SUFFIX, Entry
from crdt.errors import AlreadyExists, NotebookNotFound
from crdt.notebook_io import parse_notebook

from ..base import APIHandler, credentials
from ..files import open_regular
from ..notebooks import FilesHandler, api_path

KINDS = ("directory", "notebook", "file")
MAX_UNTITLED = 10_000  # names tried before giving up on "Untitled<n>"
COPY_SUFFIX = re.compile(r"-Copy\d*$")


def iso(timestamp: float) -> str:
    """Epoch seconds as Jupyter Server writes dates: ISO 8601, UTC, ending in ``Z``."""
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat().replace("+00:00", "Z")


def model(
    entry: Entry,
    writable: bool,
    content: Any = None,
    fmt: str | None = None,
    mimetype: str | None = None,
) -> dict[str, Any]:
    """A Jupyter contents model of ``entry`` (``content`` None: the model without content)."""
    if entry.type == "file" and mimetype is None:
        mimetype = mimetypes.guess_type(entry.name)[0]
    return {
        "name": entry.name,
        "path": entry.path,
        "type": entry.type,
        "writable": writable,
        "created": iso(entry.last_modified),
        "last_modified": iso(entry.last_modified),
        "size": entry.size,
        "mimetype": mimetype,
        "format": fmt,
        "content": content,
    }


def same_notebook(current: bytes, data: bytes) -> bool:
    """Whether ``data`` is the notebook ``current`` is (line lists joined, key order ignored).

    Raises InvalidNotebook if ``data`` is not a valid notebook.
    """
    return parse_notebook(data) == parse_notebook(current)


def read_file(target: Path, path: str, limit: int) -> bytes:
    """Up to ``limit`` bytes of the regular file ``target`` (API ``path``); blocking."""
    with open_regular(target, path) as file:
        return file.read(limit)


def candidates(base: str, ext: str, insert: str) -> list[str]:
    """Jupyter's names for a new item: ``base+ext``, then ``base+insert+1+ext``, ..."""
    return [base + ext] + [f"{base}{insert}{i}{ext}" for i in range(1, MAX_UNTITLED)]


async def jupyter_user(handler: APIHandler) -> User:
    """Who a Jupyter client is: a token header, ``?token=`` (as Jupyter Server takes it) or
    our session cookie (then with our XSRF rule); 401 otherwise."""
    user = await handler.identity.identify(credentials(handler, allow_query_token=True))
    if user is None:
        raise web.HTTPError(401, "authentication required")
    return user


class JupyterFilesHandler(FilesHandler):
    """Our files handlers' services, authenticated as Jupyter clients are."""

    async def prepare(self) -> None:
        self.user = await jupyter_user(self)
        await self.notebooks.ensure_home(self.user)

    async def visible_entry(self, path: str) -> Entry | None:
        """The entry at ``path`` if the user may see it (None if missing or hidden from them)."""
        if path == "" or not await self.authorizer.is_authorized(self.user, Action.VIEW, path=path):
            return None
        try:
            return await self.contents.get(path)
        except NotebookNotFound:
            return None

    def location(self, path: str) -> None:
        self.set_header("Location", "/jupyter/api/contents/" + quote(path))


class ContentsHandler(JupyterFilesHandler):
    """GET, PUT, POST (new untitled or copy), PATCH (rename), DELETE on ``<path>``."""

    async def get(self, path: str) -> None:
        path = api_path(path)
        want_content = self.get_query_argument("content", "1") not in ("0", "false")
        kind = self.get_query_argument("type", "") or None
        fmt = self.get_query_argument("format", "") or None
        if path == "":
            role: Role | None = None
        else:
            role = (await self.authorizer.require(self.user, Action.VIEW, path=path)).role
        entry = await self.contents.get(path)
        if kind is not None and kind != entry.type:
            raise web.HTTPError(400, "%s is a %s, not a %s", path, entry.type, kind)
        writable = role is not None and role >= Role.EDITOR
        if not want_content:
            self.write_json(model(entry, writable))
        elif entry.type == "directory":
            self.write_json(model(entry, writable, await self.listing(path, role), "json"))
        elif entry.type == "notebook":
            assert entry.id is not None
            data = await self.notebooks.current_bytes(entry.id)
            nb = await asyncio.to_thread(parse_notebook, data)  # sources as strings, as Jupyter
            self.write_json({**model(entry, writable, nb, "json"), "size": len(data)})
        else:
            self.write_json(await self.file_model(entry, writable, fmt))

    async def listing(self, path: str, role: Role | None) -> list[dict[str, Any]]:
        """A folder's entries as models without content; the root: the folders one may see."""
        if path != "":
            writable = role is not None and role >= Role.EDITOR
            return [model(e, writable) for e in await self.contents.list_dir(path)]
        shown = []
        for e in await self.contents.list_dir(""):
            if await self.authorizer.is_authorized(self.user, Action.VIEW, path=e.path):
                mine = await self.authorizer.is_authorized(self.user, Action.EDIT, path=e.path)
                shown.append(model(e, mine))
        return shown

    async def file_model(self, entry: Entry, writable: bool, fmt: str | None) -> dict[str, Any]:
        if fmt not in (None, "text", "base64"):
            raise web.HTTPError(400, 'format must be "text" or "base64"')
        data = await self.file_bytes(entry.path)
        if fmt != "base64":
            try:
                text = data.decode("utf-8")
                mimetype = mimetypes.guess_type(entry.name)[0] or "text/plain"
                return model(entry, writable, text, "text", mimetype)
            except UnicodeDecodeError:
                if fmt == "text":
                    raise web.HTTPError(400, "%s is not UTF-8 text", entry.path) from None
        mimetype = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
        return model(entry, writable, base64.b64encode(data).decode(), "base64", mimetype)

    async def file_bytes(self, path: str) -> bytes:
        """The bytes of the file at ``path``; 413 beyond our upload limit."""
        limit = self.notebooks.max_upload_bytes
        target = await self.contents.resolve(path)
        data = await asyncio.to_thread(read_file, target, path, limit + 1)
        if len(data) > limit:
            raise web.HTTPError(
                413, "%s is over %d bytes: download it from /api/files/%s", path, limit, path
            )
        return data

    async def put(self, path: str) -> None:
        path = api_path(path)
        body = self.json_body()
        kind = body.get("type")
        if kind not in KINDS:
            raise web.HTTPError(400, 'type must be "notebook", "file" or "directory"')
        existing = await self.visible_entry(path)
        action = Action.EDIT if existing is not None else Action.CREATE
        await self.authorizer.require(self.user, action, path=path)
        if existing is not None and existing.type != kind:
            raise web.HTTPError(400, "%s is a %s, not a %s", path, existing.type, kind)
        if kind == "directory":
            entry = existing or await self.contents.make_dir(path)
        elif existing is None and body.get("content") is None and kind == "notebook":
            entry = await self.contents.create_notebook(path, None)
        else:
            data = self.body_bytes(kind, body)
            if existing is not None and await self.live(existing, data):
                entry = existing  # the same as the live document: nothing to write
            else:
                entry = await self.notebooks.upload(path, data, overwrite=existing is not None)
        if existing is None:
            self.location(path)
        self.write_json(model(entry, True), status=200 if existing is not None else 201)

    def body_bytes(self, kind: str, body: dict[str, Any]) -> bytes:
        """What a PUT writes: the notebook as .ipynb, or the file's bytes."""
        content = body.get("content")
        if kind == "notebook":
            if not isinstance(content, dict):
                raise web.HTTPError(400, "a notebook's content must be its nbformat JSON object")
            return (json.dumps(content, indent=1, ensure_ascii=False) + "\n").encode()
        if content is None:
            return b""
        if not isinstance(content, str):
            raise web.HTTPError(400, "a file's content must be a string")
        fmt = body.get("format")
        if fmt == "text":
            return content.encode()
        if fmt == "base64":
            try:
                return base64.b64decode(content, validate=True)
            except binascii.Error as e:
                raise web.HTTPError(400, "content is not valid base64: %s", e) from None
        raise web.HTTPError(400, 'a file\'s format must be "text" or "base64"')

    async def live(self, entry: Entry, data: bytes) -> bool:
        """Whether ``entry`` is an open notebook; 409 if ``data`` differs from its live document."""
        room = self.notebooks.rooms.get(entry.id) if entry.id is not None else None
        if entry.id is None or room is None or room.closing:
            return False
        current = await self.notebooks.current_bytes(entry.id)
        if not await asyncio.to_thread(same_notebook, current, data):
            raise web.HTTPError(
                409,
                "this notebook is open and edited live; the server saves it continuously. "
                "Edit it through the collaborative document instead of saving the whole file.",
            )
        return True

    async def post(self, path: str) -> None:
        folder = api_path(path)
        await self.authorizer.require(self.user, Action.CREATE, path=folder)
        if (await self.contents.get(folder)).type != "directory":
            raise web.HTTPError(400, "%s is not a folder", folder)
        body = self.json_body()
        copy_from = body.get("copy_from")
        if copy_from is not None:
            if not isinstance(copy_from, str):
                raise web.HTTPError(400, "copy_from must be a path")
            entry = await self.copy(api_path(copy_from), folder)
        else:
            kind, ext = body.get("type") or "file", body.get("ext") or ""
            entry = await self.new_untitled(folder, kind, ext)
        self.location(entry.path)
        self.write_json(model(entry, True), status=201)

    async def new_untitled(self, folder: str, kind: object, ext: object) -> Entry:
        if kind not in KINDS or not isinstance(ext, str):
            raise web.HTTPError(400, 'type must be "notebook", "file" or "directory"; ext a string')
        if kind == "notebook":
            names = candidates("Untitled", NOTEBOOK_SUFFIX, "")
        elif kind == "directory":
            names = candidates("Untitled Folder", "", " ")
        else:
            names = candidates("untitled", ext, "")
        for name in names:
            target = f"{folder}/{name}".strip("/")
            try:
                if kind == "notebook":
                    return await self.contents.create_notebook(target, None)
                if kind == "directory":
                    return await self.contents.make_dir(target)
                return await self.contents.upload_file(target, b"", overwrite=False)
            except AlreadyExists:
                continue
        raise AlreadyExists(f"every untitled name is taken in {folder!r}")

    async def copy(self, source: str, folder: str) -> Entry:
        """A copy of ``source`` in ``folder``, ``<name>-Copy1<ext>``...; a notebook as it is now."""
        await self.authorizer.require(self.user, Action.VIEW, path=source)
        entry = await self.contents.get(source)
        if entry.type == "directory":
            raise web.HTTPError(400, "folders cannot be copied")
        if entry.id is not None:
            data = await self.notebooks.current_bytes(entry.id)
        else:
            data = await self.file_bytes(source)
        stem, dot, suffix = entry.name.rpartition(".")
        base, ext = (stem, dot + suffix) if stem else (entry.name, "")
        for name in candidates(COPY_SUFFIX.sub("", base), ext, "-Copy")[1:]:
            try:
                return await self.notebooks.upload(f"{folder}/{name}".strip("/"), data, False)
            except AlreadyExists:
                continue
        raise AlreadyExists(f"every copy name of {entry.name!r} is taken in {folder!r}")

    async def patch(self, path: str) -> None:
        new_path = self.json_body().get("path")
        if not isinstance(new_path, str):
            raise web.HTTPError(400, 'give the new path as {"path": "..."}')
        old_path, new_path = api_path(path), api_path(new_path)
        action = renaming(old_path, new_path)
        await self.authorizer.require(self.user, action, path=old_path, target=new_path)
        self.write_json(model(await self.notebooks.rename(old_path, new_path), True))

    async def delete(self, path: str) -> None:
        path = api_path(path)
        await self.authorizer.require(self.user, Action.DELETE, path=path)
        await self.notebooks.delete(path, self.user.name)
        self.set_status(204)
        self.finish()


class CheckpointsHandler(JupyterFilesHandler):
    """``<path>/checkpoints``: GET the copies kept on disk changes; POST makes none (see above)."""

    async def get(self, path: str) -> None:
        path = api_path(path)
        await self.authorizer.require(self.user, Action.VIEW, path=path)
        entry = await self.contents.get(path)
        if entry.id is None:
            self.write_json([])
            return
        folder = self.checkpoints / entry.id
        files = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
        self.write_json([{"id": f.stem, "last_modified": iso(f.stat().st_mtime)} for f in files])

    async def post(self, path: str) -> None:
        path = api_path(path)
        await self.authorizer.require(self.user, Action.EDIT, path=path)
        entry = await self.contents.get(path)
        now = max(entry.last_modified, time.time())
        self.write_json({"id": "live", "last_modified": iso(now)}, status=201)
