"""The durable log of every document update, with snapshots and compaction.

Each room's document is stored as one snapshot (a full Yjs update) plus the
tail of updates applied since. Updates are appended by one writer thread
with group commit: everything queued while a commit is running goes into the
next transaction, so durability stays cheap at typing rates. A caller awaits
its append before broadcasting the update, so whatever any client has seen
is on disk.

SQLite (the default, in WAL mode) or PostgreSQL, through SQLAlchemy Core.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Self

from sqlalchemy import (
    inspect,
    text,
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)

log = logging.getLogger(__name__)

metadata = MetaData()

documents = Table(
    "ystore_documents",
    metadata,
    Column("room_id", String(64), primary_key=True),
    Column("seed_client_id", BigInteger, nullable=False),
    Column("snapshot", LargeBinary, nullable=False),
    Column("disk_hash", String(64), nullable=True),
    # The hash of a save about to replace the file: recorded before the rename,
    # so after a crash the file is recognised as our own write.
    Column("pending_hash", String(64), nullable=True),
    Column("updated_at", Float, nullable=False),
)

updates = Table(
    "ystore_updates",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("room_id", String(64), nullable=False, index=True),
    Column("data", LargeBinary, nullable=False),
    Column("username", String(255), nullable=True),
    Column("created_at", Float, nullable=False),
)


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A room's document as stored: apply ``snapshot`` then ``tail`` in order."""

    seed_client_id: int
    snapshot: bytes
    tail: list[bytes]
    disk_hash: str | None
    pending_hash: str | None = None

    @property
    def size(self) -> int:
        return len(self.snapshot) + sum(len(u) for u in self.tail)


_Op = Callable[[Connection], Any]
_INSERT_UPDATE = insert(updates)  # compiled once, then cached by SQLAlchemy


class _Append(dict[str, Any]):
    """A queued append: the row's values. Consecutive appends go in one ``executemany``."""


class UpdateStore:
    """Durable per-room update log.

    Use ``async with UpdateStore(engine):`` or ``start()``/``stop()``; ``stop``
    commits everything queued before it returns. All methods must be called
    from the event loop that started the store.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ystore")
        self._queue: list[tuple[_Op | _Append, asyncio.Future[Any]]] = []
        self._conn: Connection | None = None  # the writer thread's own, kept open
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # time.monotonic() when the oldest operation queued / being committed was submitted
        self._queued_since: float | None = None
        self._committing_since: float | None = None

    def write_lag(self) -> float:
        """Seconds the oldest operation not yet committed has waited (0 when all is written)."""
        oldest = self._committing_since
        if oldest is None:
            oldest = self._queued_since
        return 0.0 if oldest is None else time.monotonic() - oldest

    async def start(self) -> None:
        await self._run(metadata.create_all)
        await self._run(_add_pending_hash)
        self._task = asyncio.create_task(self._writer(), name="ystore-writer")

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close_connection)
        self._executor.shutdown(wait=True)

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _run(self, fn: Callable[[Connection], Any]) -> Any:
        def in_thread() -> Any:
            with self.engine.begin() as conn:
                return fn(conn)

        return await asyncio.get_running_loop().run_in_executor(self._executor, in_thread)

    def _submit(self, op: _Op | _Append) -> asyncio.Future[Any]:
        if self._stopping:
            raise RuntimeError("update store is stopped")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self._queue:
            self._queued_since = time.monotonic()
        self._queue.append((op, future))
        self._wakeup.set()
        return future

    async def _writer(self) -> None:
        while True:
            if not self._queue:
                if self._stopping:
                    return
                await self._wakeup.wait()
            self._wakeup.clear()
            batch, self._queue = self._queue, []
            if batch:
                self._committing_since, self._queued_since = self._queued_since, None
                try:
                    await self._commit(batch)
                finally:
                    self._committing_since = None

    async def _commit(self, batch: list[tuple[_Op | _Append, asyncio.Future[Any]]]) -> None:
        def in_thread() -> list[Any]:
            # One connection for the writer's life: a checkout and a statement
            # compilation per commit cost more than the commit itself.
            if self._conn is None:
                self._conn = self.engine.connect()
            try:
                with self._conn.begin():
                    return self._execute(self._conn, [op for op, _ in batch])
            except Exception:
                self._close_connection()  # a broken connection is not reused
                raise

        try:
            results = await asyncio.get_running_loop().run_in_executor(self._executor, in_thread)
        except Exception as e:
            log.exception("update store commit of %d operations failed", len(batch))
            for _, future in batch:
                if not future.done():
                    future.set_exception(e)
            return
        for (_, future), result in zip(batch, results):
            if not future.done():
                future.set_result(result)

    @staticmethod
    def _execute(conn: Connection, ops: list[_Op | _Append]) -> list[Any]:
        results: list[Any] = []
        rows: list[_Append] = []
        for op in ops:
            if isinstance(op, _Append):
                rows.append(op)
                results.append(None)
                continue
            if rows:
                conn.execute(_INSERT_UPDATE, rows)
                rows = []
            results.append(op(conn))
        if rows:
            conn.execute(_INSERT_UPDATE, rows)
        return results

    # ---- operations ---------------------------------------------------------

    async def load(self, room_id: str) -> StoredDocument | None:
        """The stored document of a room, or None if it has never been stored."""

        def read(conn: Connection) -> StoredDocument | None:
            row = conn.execute(
                select(
                    documents.c.seed_client_id,
                    documents.c.snapshot,
                    documents.c.disk_hash,
                    documents.c.pending_hash,
                ).where(documents.c.room_id == room_id)
            ).first()
            if row is None:
                return None
            tail = conn.execute(
                select(updates.c.data).where(updates.c.room_id == room_id).order_by(updates.c.id)
            ).scalars()
            return StoredDocument(
                row.seed_client_id, row.snapshot, list(tail), row.disk_hash, row.pending_hash
            )

        result: StoredDocument | None = await self._submit(read)
        return result

    def create(self, room_id: str, seed_client_id: int, snapshot: bytes, disk_hash: str | None) -> asyncio.Future[None]:
        """Store a newly seeded document, replacing anything stored for the room."""

        def write(conn: Connection) -> None:
            conn.execute(delete(updates).where(updates.c.room_id == room_id))
            conn.execute(delete(documents).where(documents.c.room_id == room_id))
            conn.execute(
                insert(documents).values(
                    room_id=room_id,
                    seed_client_id=seed_client_id,
                    snapshot=snapshot,
                    disk_hash=disk_hash,
                    updated_at=time.time(),
                )
            )

        return self._submit(write)

    def append(self, room_id: str, update_bytes: bytes, username: str | None) -> asyncio.Future[None]:
        """Append one update; the future resolves once it is committed."""
        return self._submit(
            _Append(room_id=room_id, data=update_bytes, username=username, created_at=time.time())
        )

    def compact(self, room_id: str, state: bytes) -> asyncio.Future[None]:
        """Replace the snapshot by ``state`` and drop the tail.

        ``state`` must include every update appended for this room before this
        call (the writer runs operations in the order they were queued).
        """

        def write(conn: Connection) -> None:
            conn.execute(delete(updates).where(updates.c.room_id == room_id))
            conn.execute(
                update(documents)
                .where(documents.c.room_id == room_id)
                .values(snapshot=state, updated_at=time.time())
            )

        return self._submit(write)

    def set_disk_hash(self, room_id: str, disk_hash: str) -> asyncio.Future[None]:
        """Record the hash of the .ipynb content the document was last saved to or loaded from."""

        def write(conn: Connection) -> None:
            conn.execute(
                update(documents)
                .where(documents.c.room_id == room_id)
                .values(disk_hash=disk_hash, pending_hash=None)
            )

        return self._submit(write)

    def set_pending_hash(self, room_id: str, pending_hash: str) -> asyncio.Future[None]:
        """Record the hash of a save about to replace the file (await it before the rename)."""

        def write(conn: Connection) -> None:
            conn.execute(
                update(documents)
                .where(documents.c.room_id == room_id)
                .values(pending_hash=pending_hash)
            )

        return self._submit(write)

    def barrier(self) -> asyncio.Future[None]:
        """Resolves once everything queued before it is committed."""
        return self._submit(lambda conn: None)

    def delete_room(self, room_id: str) -> asyncio.Future[None]:
        def write(conn: Connection) -> None:
            conn.execute(delete(updates).where(updates.c.room_id == room_id))
            conn.execute(delete(documents).where(documents.c.room_id == room_id))

        return self._submit(write)

    async def size(self, room_id: str) -> int:
        """Bytes stored for a room: snapshot plus tail."""

        def read(conn: Connection) -> int:
            snap = conn.execute(
                select(func.length(documents.c.snapshot)).where(documents.c.room_id == room_id)
            ).scalar()
            tail = conn.execute(
                select(func.coalesce(func.sum(func.length(updates.c.data)), 0)).where(
                    updates.c.room_id == room_id
                )
            ).scalar()
            return int(snap or 0) + int(tail or 0)

        result: int = await self._submit(read)
        return result


def _add_pending_hash(conn: Connection) -> None:
    """Stores made before ``pending_hash`` existed get the column."""
    columns = {c["name"] for c in inspect(conn).get_columns("ystore_documents")}
    if "pending_hash" not in columns:
        conn.execute(text("ALTER TABLE ystore_documents ADD COLUMN pending_hash VARCHAR(64)"))
