"""Downloading files that are not notebooks (a ``.csv`` a kernel wrote) by their path.

A user's files are user content: they are only ever sent as attachments of
type ``application/octet-stream``, never sniffed and never rendered, so
nothing in them can run as script in the app's origin.
"""

from __future__ import annotations

import asyncio
import os
import stat
from typing import BinaryIO

from tornado import web

from auth.permissions import Action
from crdt.errors import NotebookNotFound

from .base import attachment
from .notebooks import FilesHandler, api_path

CHUNK = 256 * 1024


class FileDownloadHandler(FilesHandler):
    """GET /api/files/<path>[?download=1]: the bytes of a file that is not a notebook.

    Authorized as ``GET /api/contents/<path>`` is (viewer on the path, which
    for a file means owning its folder); someone without access gets 404.
    Folders and notebooks are refused with 400 (a notebook is downloaded from
    its live document, ``/api/notebooks/<id>?download=1``). Always sent as an
    attachment, whether or not ``download=1`` is given.
    """

    async def get(self, path: str) -> None:
        path = api_path(path)
        await self.authorizer.require(self.user, Action.VIEW, path=path)
        entry = await self.contents.get(path)
        if entry.type == "directory":
            raise web.HTTPError(400, "%s is a folder, not a file", path)
        if entry.type == "notebook":
            raise web.HTTPError(
                400,
                "%s is a notebook: download it from /api/notebooks/%s?download=1",
                path,
                entry.id,
            )
        target = await self.contents.resolve(path)
        file = await asyncio.to_thread(open_regular, target, path)
        try:
            size = os.fstat(file.fileno()).st_size
            self.set_header("Content-Type", "application/octet-stream")
            self.set_header("Content-Disposition", attachment(entry.name))
            self.set_header("X-Content-Type-Options", "nosniff")
            self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
            self.set_header("Cache-Control", "no-store")
            self.set_header("Content-Length", str(size))
            sent = 0
            while sent < size:
                chunk = await asyncio.to_thread(file.read, min(CHUNK, size - sent))
                if not chunk:
                    break  # shortened while we read: Content-Length makes the client notice
                self.write(chunk)
                await self.flush()
                sent += len(chunk)
        finally:
            file.close()
        self.finish()


def open_regular(target: os.PathLike[str], path: str) -> BinaryIO:
    """Open ``target`` (API ``path``) for reading; NotebookNotFound unless it is a regular file.

    Opened without blocking, so a named pipe put there cannot hang the worker thread.
    """
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError) as e:
        raise NotebookNotFound(f"no file {path!r}") from e
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotebookNotFound(f"no file {path!r}")
    return os.fdopen(fd, "rb")
