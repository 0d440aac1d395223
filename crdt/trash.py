"""The trash: deleted files and folders kept for a while, to restore or delete for good.

Deleting through the server moves the file or folder into a hidden ``.trash``
folder of its home (``alice/.trash/<trash id>/<name>``; the root's own for
top-level files), on the same file system, so the move is one rename and a
notebook keeps its inode. Its notebooks keep their ids, under a path no API
path can equal; restoring puts everything back where it was, ids and all (so
shares and the execution history find it again). Items older than the
retention are deleted for good by :meth:`Trash.purge`, which returns their
notebook ids for the caller to forget elsewhere (shares).

The ``trash`` table lives beside ``notebooks`` (``contents.metadata``).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import Column, Connection, Float, String, Table, delete, insert, select, update

from .contents import _DETACHED, ContentsManager, _under, metadata, notebooks
from .errors import AlreadyExists, InvalidPath, NotebookNotFound

trash = Table(
    "trash",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("path", String, nullable=False),  # where it was, and goes back to
    Column("home", String, nullable=False),  # whose trash: the path's first folder, or ""
    Column("kind", String(16), nullable=False),  # "directory", "notebook" or "file"
    Column("deleted_at", Float, nullable=False),
    Column("deleted_by", String, nullable=False),
)

TRASH_FOLDER = ".trash"
_TRASHED = _DETACHED + "trash/"  # path prefix of notebook rows whose file is in the trash


@dataclass(frozen=True, slots=True)
class TrashedItem:
    id: str
    path: str
    name: str
    kind: str
    deleted_at: float
    deleted_by: str


def home_of(path: str) -> str:
    """Whose trash an item goes to: its first folder ("" for a top-level file)."""
    return path.split("/", 1)[0] if "/" in path else ""


class Trash:
    """Moving to, listing, restoring from and emptying the trash, through ``contents``."""

    def __init__(self, contents: ContentsManager) -> None:
        self.contents = contents

    def _folder(self, home: str, trash_id: str) -> str:
        """The item's folder in the trash, relative to the root (hidden from the API)."""
        return f"{home}/{TRASH_FOLDER}/{trash_id}" if home else f"{TRASH_FOLDER}/{trash_id}"

    async def move_in(self, path: str, deleted_by: str) -> TrashedItem:
        """Move the file or folder at ``path`` to the trash.

        InvalidPath for the root or a home folder (they are not deleted);
        NotebookNotFound if missing. The caller closes open rooms first.
        """
        return await self.contents._run(self._move_in, path, deleted_by)

    def _move_in(self, conn: Connection, path: str, deleted_by: str) -> TrashedItem:
        source = self.contents._resolve(path)
        home = home_of(path)
        if path == "" or (home == "" and source.is_dir()):
            raise InvalidPath("a home folder cannot be moved to the trash")
        if not os.path.lexists(source):
            raise NotebookNotFound(f"no file or folder {path!r}")
        entry = self.contents._get(conn, path)
        trash_id = uuid.uuid4().hex
        folder = self.contents.root / self._folder(home, trash_id)
        os.makedirs(folder.parent, mode=0o700, exist_ok=True)
        os.mkdir(folder, 0o700)
        name = path.rsplit("/", 1)[-1]
        for row in conn.execute(select(notebooks.c.id, notebooks.c.path).where(_under(path))):
            hidden = f"{_TRASHED}{trash_id}/{name}{row.path[len(path):]}"
            conn.execute(update(notebooks).where(notebooks.c.id == row.id).values(path=hidden))
        now = time.time()
        conn.execute(
            insert(trash).values(
                id=trash_id,
                path=path,
                home=home,
                kind=entry.type,
                deleted_at=now,
                deleted_by=deleted_by,
            )
        )
        os.rename(source, folder / name)  # if this fails, the transaction is rolled back
        return TrashedItem(trash_id, path, name, entry.type, now, deleted_by)

    async def items(self, homes: list[str] | None) -> list[TrashedItem]:
        """What is in the trash of ``homes`` (None: everyone's), newest first."""
        return await self.contents._run(self._items, homes)

    def _items(self, conn: Connection, homes: list[str] | None) -> list[TrashedItem]:
        query = select(trash).order_by(trash.c.deleted_at.desc())
        if homes is not None:
            query = query.where(trash.c.home.in_(homes))
        return [_item(row) for row in conn.execute(query)]

    async def get(self, trash_id: str) -> TrashedItem:
        """One item; NotebookNotFound if it is not (or no longer) in the trash."""
        return await self.contents._run(self._get, trash_id)

    def _get(self, conn: Connection, trash_id: str) -> TrashedItem:
        row = conn.execute(select(trash).where(trash.c.id == trash_id)).first()
        if row is None:
            raise NotebookNotFound(f"nothing in the trash has id {trash_id!r}")
        return _item(row)

    async def restore(self, trash_id: str) -> str:
        """Put an item back where it was; return its path.

        AlreadyExists if something else took the path meanwhile (rename that
        first); NotebookNotFound if its folder is gone.
        """
        return await self.contents._run(self._restore, trash_id)

    def _restore(self, conn: Connection, trash_id: str) -> str:
        item = self._get(conn, trash_id)
        target = self.contents._resolve(item.path)
        if os.path.lexists(target):
            raise AlreadyExists(f"{item.path!r} exists again: rename it, then restore")
        if not target.parent.is_dir():
            parent = item.path.rpartition("/")[0]
            raise NotebookNotFound(f"folder {parent!r} no longer exists: create it, then restore")
        folder = self.contents.root / self._folder(home_of(item.path), trash_id)
        if not os.path.lexists(folder / item.name):
            raise NotebookNotFound(f"the trashed copy of {item.path!r} is gone from the disk")
        hidden = f"{_TRASHED}{trash_id}/{item.name}"
        for row in conn.execute(select(notebooks.c.id, notebooks.c.path).where(
            (notebooks.c.path == hidden) | notebooks.c.path.startswith(hidden + "/")
        )):
            back = item.path + row.path[len(hidden):]
            conn.execute(update(notebooks).where(notebooks.c.id == row.id).values(path=back))
        conn.execute(delete(trash).where(trash.c.id == trash_id))
        os.rename(folder / item.name, target)
        os.rmdir(folder)
        return item.path

    async def delete(self, trash_id: str) -> list[str]:
        """Delete one item for good; return the ids of its notebooks."""
        return await self.contents._run(self._delete, trash_id)

    def _delete(self, conn: Connection, trash_id: str) -> list[str]:
        item = self._get(conn, trash_id)
        prefix = f"{_TRASHED}{trash_id}/"
        ids = list(conn.execute(
            select(notebooks.c.id).where(notebooks.c.path.startswith(prefix))
        ).scalars())
        conn.execute(delete(notebooks).where(notebooks.c.path.startswith(prefix)))
        conn.execute(delete(trash).where(trash.c.id == trash_id))
        shutil.rmtree(self.contents.root / self._folder(home_of(item.path), trash_id),
                      ignore_errors=True)
        return ids

    async def purge(self, older_than: float) -> list[str]:
        """Delete for good what was trashed before ``older_than`` (epoch seconds); notebook ids."""
        stale = await self.contents._run(
            lambda conn: list(conn.execute(
                select(trash.c.id).where(trash.c.deleted_at < older_than)
            ).scalars())
        )
        ids: list[str] = []
        for trash_id in stale:
            ids += await self.delete(trash_id)
        return ids


def _item(row: object) -> TrashedItem:
    path = str(row.path)  # type: ignore[attr-defined]
    return TrashedItem(
        id=str(row.id),  # type: ignore[attr-defined]
        path=path,
        name=path.rsplit("/", 1)[-1],
        kind=str(row.kind),  # type: ignore[attr-defined]
        deleted_at=float(row.deleted_at),  # type: ignore[attr-defined]
        deleted_by=str(row.deleted_by),  # type: ignore[attr-defined]
    )
