"""Notebooks and folders under the root directory, and the stable id of every notebook.

Notebooks are plain ``.ipynb`` files under ``root_dir``. Each one gets an id
(32 hex characters) the first time the server sees it; the id is kept in the
``notebooks`` table and follows the file through renames and moves done
here. A file moved by another program keeps its id too when it is next seen
(listed, or looked up by path) under its new path, recognised by its inode
(an inode belongs to one row at a time). The server's own atomic saves make
a new inode: call :meth:`ContentsManager.record_inode` after one. A file
deleted by another program and a new one that reuses its inode before the
server sees the old path gone cannot be told from a move.

API paths are root-relative and ``/``-separated ("" is the root). Every path
goes through :meth:`ContentsManager.resolve` first, so a refused path never
touches the disk. Names starting with ``.`` are refused and never listed:
checkpoints and temporary files live there.

Concurrency: the operations of one manager are serialized by a lock and run
in worker threads, one database transaction each. Use one manager per root
directory and process. Checks made before a change (does the target exist,
is the path inside the root) can race with other programs changing the same
files at the same moment; the server itself cannot race with itself.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from .errors import AlreadyExists, InvalidNotebook, InvalidPath, NotebookNotFound
from .notebook_io import atomic_write, owner_for, parse_notebook, serialize_notebook

metadata = MetaData()

notebooks = Table(
    "notebooks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("path", String, nullable=False, unique=True),
    Column("inode", BigInteger, nullable=True),
    Column("created_at", Float, nullable=False),
)

EntryType = Literal["directory", "notebook", "file"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

NOTEBOOK_SUFFIX = ".ipynb"
_DETACHED = "/"  # path prefix of rows whose file went away; never a valid API path


@dataclass(frozen=True, slots=True)
class Entry:
    """One file or folder as a user sees it.

    ``path`` is the API path ("" for the root); ``id`` is set for notebooks
    only; ``size`` is None for folders; ``last_modified`` is epoch seconds.
    """

    name: str
    path: str
    type: EntryType
    id: str | None
    size: int | None
    last_modified: float


@dataclass(frozen=True, slots=True)
class MovedNotebook:
    """A notebook whose path changed in a rename: tell its open room."""

    id: str
    path: str
    abs_path: Path


# Longest name and path the file system takes (Linux: NAME_MAX, a margin under PATH_MAX).
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 3072


def new_notebook() -> dict[str, Any]:
    """An empty nbformat 4.5 notebook: one empty code cell, a python3 kernelspec."""
    cell: dict[str, Any] = {
        "id": uuid.uuid4().hex[:8],
        "cell_type": "code",
        "metadata": {},
        "execution_count": None,
        "source": "",
        "outputs": [],
    }
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": kernelspec, "language_info": {"name": "python"}},
        "cells": [cell],
    }


def _serialize(nb: dict[str, Any]) -> bytes:
    """The notebook in nbformat's own layout; InvalidNotebook if it is not one."""
    try:
        data = serialize_notebook(nb)
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise InvalidNotebook(f"not a notebook: {e!r}") from e
    parse_notebook(data)
    return data


def _under(path: str) -> ColumnElement[bool]:
    """Rows at ``path`` or anywhere below it (exact, case-sensitive; "" is every attached row)."""
    if path == "":
        return notebooks.c.path.not_like(_DETACHED + "%")
    prefix = path + "/"
    return or_(notebooks.c.path == path, func.substr(notebooks.c.path, 1, len(prefix)) == prefix)


class ContentsManager:
    """Files, folders and notebook ids under ``root_dir``, framework-free.

    The ``notebooks`` table must exist (``metadata.create_all(engine)``).
    Errors: ``InvalidPath`` for a refused path, ``NotebookNotFound`` for a
    missing file, folder or id, ``AlreadyExists`` when a target is taken,
    ``InvalidNotebook`` for content that is not an nbformat 4 notebook.
    """

    def __init__(self, root_dir: Path, engine: Engine) -> None:
        self.root = Path(os.path.realpath(root_dir))
        self.engine = engine
        self._lock = threading.Lock()

    # ---- paths -------------------------------------------------------------

    async def resolve(self, path: str) -> Path:
        """The absolute path for API ``path``; raise InvalidPath, touching nothing, if refused.

        Refused: absolute paths, ``..``, NUL, backslashes, empty segments
        (``a//b``, a trailing ``/``), names starting with ``.``, and paths whose
        real location (following symlinks, also of the parent of a path that
        does not exist yet) is outside the root. The result keeps the
        symlinks of the API path (renaming a link renames the link).
        """
        return await asyncio.to_thread(self._resolve, path)

    def _resolve(self, path: str) -> Path:
        if path == "":
            return self.root
        if "\x00" in path:
            raise InvalidPath("path contains a NUL character")
        if "\\" in path:
            raise InvalidPath(f"path {path!r} contains a backslash; use '/'")
        if path.startswith("/"):
            raise InvalidPath(f"path {path!r} must be relative to the root")
        if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
            raise InvalidPath(f"path is longer than {MAX_PATH_BYTES} bytes")
        for segment in path.split("/"):
            if len(segment.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
                raise InvalidPath(f"name {segment[:40]!r}... is longer than {MAX_NAME_BYTES} bytes")
            if segment == "":
                raise InvalidPath(f"path {path!r} has an empty segment")
            if segment == "..":
                raise InvalidPath(f"path {path!r} refers to a parent folder ('..')")
            if segment.startswith("."):
                raise InvalidPath(f"path {path!r}: names starting with '.' are not allowed")
        candidate = self.root.joinpath(*path.split("/"))
        real = Path(os.path.realpath(candidate))
        if real != self.root and self.root not in real.parents:
            raise InvalidPath(f"path {path!r} leads outside the root folder")
        return candidate

    # ---- reading -------------------------------------------------------------

    async def list_dir(self, path: str = "") -> list[Entry]:
        """The visible entries of a folder: folders first, then by name.

        Hidden names and symlinks leading outside the root are left out.
        Notebooks without an id get one. NotebookNotFound if not a folder.
        """
        return await self._run(self._list_dir, path)

    def _list_dir(self, conn: Connection, path: str) -> list[Entry]:
        folder = self._resolve(path)
        if not folder.is_dir():
            raise NotebookNotFound(f"no folder {path!r}")
        entries: list[Entry] = []
        with os.scandir(folder) as it:
            for item in it:
                child = f"{path}/{item.name}" if path else item.name
                try:
                    self._resolve(child)
                    st = os.stat(item.path)
                except (InvalidPath, OSError):
                    continue  # hidden, unreachable through the API, or a broken link
                entries.append(self._entry(conn, child, st))
        entries.sort(key=lambda e: (e.type != "directory", e.name.casefold(), e.name))
        return entries

    async def get(self, path: str) -> Entry:
        """One file or folder ("" is the root); NotebookNotFound if missing."""
        return await self._run(self._get, path)

    def _get(self, conn: Connection, path: str) -> Entry:
        try:
            st = self._resolve(path).stat()
        except (FileNotFoundError, NotADirectoryError) as e:
            raise NotebookNotFound(f"no file or folder {path!r}") from e
        return self._entry(conn, path, st)

    async def id_for_path(self, path: str) -> str:
        """The id of the notebook at ``path``, assigned now if it has none yet.

        A file moved here by another program gets back the id of the notebook
        whose recorded file is gone and had the same inode. NotebookNotFound
        if there is no ``.ipynb`` file at ``path``.
        """
        return await self._run(self._id_for_path, path)

    def _id_for_path(self, conn: Connection, path: str) -> str:
        entry = self._get(conn, path)
        if entry.id is None:
            raise NotebookNotFound(f"no notebook {path!r}")
        return entry.id

    async def path_for_id(self, notebook_id: str) -> str:
        """The API path of a notebook; NotebookNotFound if the id is unknown or its file is gone."""
        return (await self._run(self._locate, notebook_id))[0]

    async def locate(self, notebook_id: str) -> Path:
        """The absolute path of a notebook's file; errors as :meth:`path_for_id`."""
        return (await self._run(self._locate, notebook_id))[1]

    def _locate(self, conn: Connection, notebook_id: str) -> tuple[str, Path]:
        row = conn.execute(select(notebooks).where(notebooks.c.id == notebook_id)).first()
        if row is None:
            raise NotebookNotFound(f"no notebook with id {notebook_id!r}")
        if row.path.startswith(_DETACHED):
            raise NotebookNotFound(
                f"notebook {notebook_id!r} was moved or deleted by another program"
            )
        abs_path = self._resolve(row.path)
        try:
            st = abs_path.stat()
        except (FileNotFoundError, NotADirectoryError) as e:
            raise NotebookNotFound(f"notebook {row.path!r} was deleted or moved") from e
        if not stat.S_ISREG(st.st_mode):
            raise NotebookNotFound(f"notebook {row.path!r} was replaced by a folder")
        if row.inode != st.st_ino:
            self._set_inode(conn, row.id, st.st_ino)
        return str(row.path), abs_path

    async def record_inode(self, notebook_id: str) -> None:
        """Remember the file's current inode; call after replacing the file by other means.

        An atomic save creates a new inode; recording it lets a later move by
        another program keep the id. Errors as :meth:`path_for_id`.
        """
        await self._run(self._locate, notebook_id)

    async def read_bytes(self, notebook_id: str) -> bytes:
        """The notebook's file as stored; errors as :meth:`path_for_id`."""
        abs_path = await self.locate(notebook_id)
        try:
            return await asyncio.to_thread(abs_path.read_bytes)
        except FileNotFoundError as e:
            raise NotebookNotFound(f"notebook {notebook_id!r} was deleted") from e

    async def notebook_ids_under(self, path: str) -> list[str]:
        """Ids of the notebooks known at ``path`` or below it ("" is all), sorted."""
        return await self._run(self._ids_under, path)

    def _ids_under(self, conn: Connection, path: str) -> list[str]:
        self._resolve(path)
        return sorted(conn.execute(select(notebooks.c.id).where(_under(path))).scalars())

    # ---- changes -------------------------------------------------------------

    async def make_dir(self, path: str) -> Entry:
        """Create a folder; AlreadyExists if taken, NotebookNotFound if the parent is missing."""
        return await self._run(self._make_dir, path)

    def _make_dir(self, conn: Connection, path: str) -> Entry:
        target = self._resolve(path)
        self._check_target(path, target)
        owner = owner_for(target)  # as root: the parent folder's owner
        os.mkdir(target)
        if owner is not None:
            os.chown(target, *owner)
        return self._get(conn, path)

    async def create_notebook(self, path: str, content: dict[str, Any] | None = None) -> Entry:
        """Create a notebook with a new id (``content`` None: :func:`new_notebook`).

        ``content`` is written in nbformat's own layout. InvalidPath unless
        ``path`` ends with ``.ipynb``; InvalidNotebook for invalid content;
        AlreadyExists if taken; NotebookNotFound if the folder is missing.
        Nothing is written when an error is raised.
        """
        data = await asyncio.to_thread(_serialize, new_notebook() if content is None else content)
        return await self._run(self._write_notebook, path, data, False)

    async def upload_notebook(self, path: str, data: bytes, overwrite: bool = False) -> Entry:
        """Store ``data`` byte-for-byte as the notebook at ``path``.

        Overwriting (only if ``overwrite``) keeps the notebook's id; open
        rooms are not told, the caller must reload them. Errors as
        :meth:`create_notebook`; nothing is written when one is raised.
        """
        await asyncio.to_thread(parse_notebook, data)
        return await self._run(self._write_notebook, path, data, overwrite)

    async def upload_file(self, path: str, data: bytes, overwrite: bool = False) -> Entry:
        """Store ``data`` byte for byte as a file that is not a notebook (a .csv, an image).

        Path rules as for notebooks; InvalidPath for a ``.ipynb`` name (use
        :meth:`upload_notebook`); AlreadyExists if taken (unless ``overwrite``
        and it is a file); NotebookNotFound if the folder is missing.
        """
        return await self._run(self._write_file, path, data, overwrite)

    def _write_file(self, conn: Connection, path: str, data: bytes, overwrite: bool) -> Entry:
        target = self._resolve(path)
        if path.endswith(NOTEBOOK_SUFFIX):
            raise InvalidPath(f"{path!r} is a notebook's name: upload it as a notebook")
        if not (overwrite and target.is_file() and not target.is_symlink()):
            self._check_target(path, target)
        atomic_write(target, data)
        return self._get(conn, path)

    def _write_notebook(self, conn: Connection, path: str, data: bytes, overwrite: bool) -> Entry:
        target = self._resolve(path)
        if not path.endswith(NOTEBOOK_SUFFIX):
            raise InvalidPath(f"a notebook's name must end with {NOTEBOOK_SUFFIX}: {path!r}")
        if not (overwrite and target.is_file()):
            self._check_target(path, target)
            self._detach(conn, notebooks.c.path == path)
        atomic_write(target, data)
        row_id = conn.execute(select(notebooks.c.id).where(notebooks.c.path == path)).scalar()
        if row_id is None:
            row_id = uuid.uuid4().hex
            conn.execute(insert(notebooks).values(id=row_id, path=path, created_at=time.time()))
        self._set_inode(conn, row_id, target.stat().st_ino)
        return self._get(conn, path)

    async def rename(self, old_path: str, new_path: str) -> tuple[Entry, list[MovedNotebook]]:
        """Rename or move a file or folder; notebook ids move with the files.

        Returns the new entry and every known notebook whose path changed
        (the caller tells their open rooms). InvalidPath for a refused path,
        the root, a notebook losing its ``.ipynb`` suffix or a folder moved
        into itself; NotebookNotFound if the source or the target's folder is
        missing; AlreadyExists if the target is taken.
        """
        return await self._run(self._rename, old_path, new_path)

    def _rename(self, conn: Connection, old: str, new: str) -> tuple[Entry, list[MovedNotebook]]:
        source, target = self._resolve(old), self._resolve(new)
        if old == "" or new == "":
            raise InvalidPath("the root folder cannot be renamed")
        if not os.path.lexists(source):
            raise NotebookNotFound(f"no file or folder {old!r}")
        is_notebook = old.endswith(NOTEBOOK_SUFFIX) and source.is_file()
        if is_notebook and not new.endswith(NOTEBOOK_SUFFIX):
            raise InvalidPath(f"a notebook's name must end with {NOTEBOOK_SUFFIX}: {new!r}")
        if source.is_dir() and new.startswith(old + "/"):
            raise InvalidPath(f"cannot move folder {old!r} into itself")
        self._check_target(new, target)
        self._detach(conn, _under(new))
        moved = []
        for row in conn.execute(select(notebooks.c.id, notebooks.c.path).where(_under(old))).all():
            moved_path = new + row.path[len(old) :]
            conn.execute(update(notebooks).where(notebooks.c.id == row.id).values(path=moved_path))
            moved.append(MovedNotebook(row.id, moved_path, self.root / moved_path))
        os.rename(source, target)  # if this fails, the transaction is rolled back
        return self._get(conn, new), moved

    async def delete(self, path: str) -> list[str]:
        """Delete a file or a folder with everything in it; return the ids of deleted notebooks.

        The caller closes the rooms of those ids. A symlink is removed, never
        what it points to. InvalidPath for the root; NotebookNotFound if missing.
        """
        return await self._run(self._delete, path)

    def _delete(self, conn: Connection, path: str) -> list[str]:
        target = self._resolve(path)
        if path == "":
            raise InvalidPath("the root folder cannot be deleted")
        if not os.path.lexists(target):
            raise NotebookNotFound(f"no file or folder {path!r}")
        ids = self._ids_under(conn, path)
        conn.execute(delete(notebooks).where(_under(path)))
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            os.unlink(target)
        return ids

    # ---- helpers -------------------------------------------------------------

    async def _run(
        self, op: Callable[Concatenate[Connection, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """Run ``op`` in a worker thread, holding the lock, in one transaction."""

        def in_thread() -> _T:
            with self._lock, self.engine.begin() as conn:
                return op(conn, *args, **kwargs)

        return await asyncio.to_thread(in_thread)

    def _check_target(self, path: str, target: Path) -> None:
        if os.path.lexists(target):
            raise AlreadyExists(f"{path!r} already exists" if path else "the root folder exists")
        if not target.parent.is_dir():
            parent = path.rpartition("/")[0]
            raise NotebookNotFound(f"folder {parent!r} does not exist")

    def _detach(self, conn: Connection, where: ColumnElement[bool]) -> None:
        """Free paths whose files were moved or deleted by another program (nothing is there now).

        The rows stay, under a path no API path can equal, so that a moved
        file can still claim its id by inode.
        """
        for row_id in conn.execute(select(notebooks.c.id).where(where)).scalars().all():
            detached = _DETACHED + row_id
            conn.execute(update(notebooks).where(notebooks.c.id == row_id).values(path=detached))

    def _set_inode(self, conn: Connection, notebook_id: str, inode: int) -> None:
        """Record ``inode`` for one row only, so that a moved file matches at most one row."""
        conn.execute(update(notebooks).where(notebooks.c.inode == inode).values(inode=None))
        conn.execute(update(notebooks).where(notebooks.c.id == notebook_id).values(inode=inode))

    def _notebook_id(self, conn: Connection, path: str, inode: int) -> str:
        """The id at ``path``; else the id of a vanished file with this inode; else a new one."""
        row = conn.execute(select(notebooks).where(notebooks.c.path == path)).first()
        if row is not None:
            if row.inode != inode:
                self._set_inode(conn, row.id, inode)
            return str(row.id)
        old = conn.execute(select(notebooks).where(notebooks.c.inode == inode)).first()
        if old is not None and (
            old.path.startswith(_DETACHED) or not os.path.lexists(self.root / old.path)
        ):
            conn.execute(update(notebooks).where(notebooks.c.id == old.id).values(path=path))
            return str(old.id)
        notebook_id = uuid.uuid4().hex
        conn.execute(insert(notebooks).values(id=notebook_id, path=path, created_at=time.time()))
        self._set_inode(conn, notebook_id, inode)
        return notebook_id

    def _entry(self, conn: Connection, path: str, st: os.stat_result) -> Entry:
        name = path.rpartition("/")[2]
        if stat.S_ISDIR(st.st_mode):
            return Entry(name, path, "directory", None, None, st.st_mtime)
        if stat.S_ISREG(st.st_mode) and name.endswith(NOTEBOOK_SUFFIX):
            notebook_id = self._notebook_id(conn, path, st.st_ino)
            return Entry(name, path, "notebook", notebook_id, st.st_size, st.st_mtime)
        return Entry(name, path, "file", None, st.st_size, st.st_mtime)
