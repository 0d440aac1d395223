"""Opening, finding and unloading rooms, with no join race.

The first client of a room starts one opening task; every client that
arrives meanwhile awaits that same task, so all of them join the same,
fully loaded room. A room is loaded from the update store when it has been
stored before (never re-seeded from the .ipynb, which would duplicate
cells), and seeded from the .ipynb only the first time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Self

from pycrdt import Doc

from . import notebook_io
from .autosave import Autosaver
from .channel import Connection
from .hooks import Hooks, Unregister
from .room import Room, RoomCounters, RoomSettings
from .store import UpdateStore

log = logging.getLogger(__name__)

Locate = Callable[[str], Awaitable[Path]]


class RoomManager:
    """All open rooms of the server.

    Args:
        store: the durable update log.
        worker: process pool for .ipynb (de)serialization.
        locate: returns the .ipynb path of a notebook id; raises NotebookNotFound.
        settings: per-room settings.
        idle_timeout: seconds a room with no client stays loaded.
        poll_interval: seconds between checks for idle rooms and files changed on disk.
    """

    def __init__(
        self,
        store: UpdateStore,
        worker: notebook_io.NotebookWorker,
        locate: Locate,
        settings: RoomSettings,
        idle_timeout: float = 60.0,
        poll_interval: float = 1.0,
    ) -> None:
        self.store = store
        self.worker = worker
        self.locate = locate
        self.settings = settings
        self.idle_timeout = idle_timeout
        self.poll_interval = poll_interval
        self._rooms: dict[str, asyncio.Task[Room]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._checking_disk = False
        self.autosaver = Autosaver(settings.autosave_share)
        self.counters = RoomCounters()  # shared by every room this manager opens
        # Called with each room once it is open, before anyone joins it.
        self._on_opened: Hooks[Room] = Hooks("room opened")
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick_forever(), name="rooms-ticker")
        await self.autosaver.start()

    async def stop(self) -> None:
        """Close every room (saving it) and stop background work."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
        await self.autosaver.stop()  # each room saves as it closes
        rooms = [r for r in (self.get(i) for i in list(self._rooms)) if r is not None]
        await asyncio.gather(*(r.close(1001, "server shutting down") for r in rooms))
        self._rooms.clear()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def get(self, room_id: str) -> Room | None:
        """The open room of a notebook, if it is loaded."""
        task = self._rooms.get(room_id)
        if task is None or not task.done() or task.cancelled() or task.exception() is not None:
            return None
        return task.result()

    def open_rooms(self) -> list[Room]:
        return [r for r in (self.get(i) for i in list(self._rooms)) if r is not None]

    def connection_count(self) -> int:
        """Clients connected to every open room."""
        return sum(len(room.connections) for room in self.open_rooms())

    async def join(self, room_id: str, conn: Connection) -> Room:
        """Open the room if needed and add ``conn`` to it.

        Raises whatever opening raised (NotebookNotFound, InvalidNotebook, ...).
        """
        return await self._with_open_room(room_id, lambda room: room.join(conn))

    async def hold(self, room_id: str, holder: object) -> Room:
        """Open the room if needed and keep it loaded until ``room.release(holder)``.

        For server-side writers (a running kernel writing outputs) that must
        keep the document open after every client has left. Errors as :meth:`join`.
        """
        return await self._with_open_room(room_id, lambda room: room.hold(holder))

    async def _with_open_room(self, room_id: str, enter: Callable[[Room], None]) -> Room:
        while True:
            task = self._rooms.get(room_id)
            if task is None:
                task = asyncio.create_task(self._open(room_id), name=f"open-{room_id}")
                self._rooms[room_id] = task
            try:
                room = await asyncio.shield(task)
            except Exception:
                if self._rooms.get(room_id) is task:
                    del self._rooms[room_id]
                raise
            if not room.closing:
                enter(room)
                return room
            await room.wait_closed()
            if self._rooms.get(room_id) is task:
                del self._rooms[room_id]

    async def _open(self, room_id: str) -> Room:
        path = await self.locate(room_id)
        stored = await self.store.load(room_id)
        doc: Doc[Any] = Doc()
        if stored is None:
            seed = await self.worker.run(notebook_io.seed_from_file, str(path))
            await self.store.create(room_id, seed.client_id, seed.update, seed.disk_hash)
            doc.apply_update(seed.update)
            room = Room(
                room_id, doc, seed.client_id, path, seed.disk_hash, self.store, self.worker,
                self.settings, self.autosaver, snapshot_bytes=len(seed.update),
                counters=self.counters,
            )
            log.info("room %s: seeded from %s", room_id, path)
            await self._on_opened.run(room)
            return room
        with doc.transaction():
            doc.apply_update(stored.snapshot)
            for update in stored.tail:
                doc.apply_update(update)
        room = Room(
            room_id, doc, stored.seed_client_id, path, stored.disk_hash, self.store, self.worker,
            self.settings, self.autosaver, tail_updates=len(stored.tail),
            snapshot_bytes=len(stored.snapshot), counters=self.counters,
        )
        room.pending_hash = stored.pending_hash
        await asyncio.to_thread(notebook_io.remove_stale_temporaries, str(path))
        # The file may have been changed while the room was not loaded.
        async with room.disk_lock:
            await room.load_if_changed_on_disk()
        log.info("room %s: loaded from the store (%d bytes)", room_id, stored.size)
        await self._on_opened.run(room)
        return room

    def on_opened(self, callback: Callable[[Room], Awaitable[None]]) -> Unregister:
        """Register ``await callback(room)``, called when a room has been loaded."""
        return self._on_opened.register(callback)

    # ---- background upkeep -------------------------------------------------------

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                self._tick()
            except Exception:
                log.exception("room upkeep failed")

    def _tick(self) -> None:
        now = time.monotonic()
        watched: list[Room] = []
        for room in self.open_rooms():
            if room.closing:
                continue
            idle = not room.connections and not room.holders
            if room.failed or (idle and now - room.last_active > self.idle_timeout):
                self._spawn(self._unload(room))
            else:
                room.remove_outdated_presence()
                watched.append(room)
        if watched and not self._checking_disk:
            self._checking_disk = True
            self._spawn(self._check_disks(watched))

    async def _check_disks(self, rooms: list[Room]) -> None:
        """Stat every open room's file in one thread hop; rooms whose file changed look closer.

        A task and a thread hop per room and tick cost a third of a core with 2,000 rooms.
        """
        try:
            paths = [room.path for room in rooms]
            signatures = await asyncio.to_thread(
                lambda: [notebook_io.stat_signature(path) for path in paths]
            )
            for room, signature in zip(rooms, signatures):
                if signature is not None and signature != room.disk_signature and not room.closing:
                    self._spawn(room.check_disk())
        finally:
            self._checking_disk = False

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("room background task failed", exc_info=task.exception())

    async def unload(self, room_id: str) -> None:
        """Save and close a room now (it reopens on the next join)."""
        room = self.get(room_id)
        if room is not None:
            await self._unload(room)

    async def _unload(self, room: Room) -> None:
        await room.close(1001, "room unloaded")
        task = self._rooms.get(room.room_id)
        if task is not None and self.get(room.room_id) is room:
            del self._rooms[room.room_id]
        log.info("room %s: unloaded", room.room_id)

    # ---- changes made through the notebooks API ------------------------------------

    @contextlib.asynccontextmanager
    async def holding_files(self, room_ids: list[str]) -> AsyncIterator[None]:
        """Keep the open rooms among ``room_ids`` from touching their files meanwhile.

        Used around a rename or move; call :meth:`relocated` for each moved
        notebook before leaving the block.
        """
        rooms = [r for r in (self.get(i) for i in sorted(room_ids)) if r is not None]
        async with contextlib.AsyncExitStack() as stack:
            for room in rooms:
                await stack.enter_async_context(room.disk_lock)
            yield

    def relocated(self, room_id: str, new_path: Path) -> None:
        """A notebook's file now lives at ``new_path``."""
        room = self.get(room_id)
        if room is not None:
            room.path = new_path
            room.disk_signature = notebook_io.stat_signature(new_path)

    async def notebook_trashed(self, room_id: str) -> None:
        """Save an open notebook, disconnect everyone (4404) and forget its stored document.

        The file keeps every acknowledged edit; restored, it opens from the file.
        """
        room = self.get(room_id)
        if room is not None:
            await room.close(4404, "notebook moved to the trash", save=True)
            if self.get(room_id) is room:
                del self._rooms[room_id]
        await self.store.delete_room(room_id)

    async def notebook_deleted(self, room_id: str) -> None:
        """Disconnect everyone from a deleted notebook and forget its stored document."""
        room = self.get(room_id)
        if room is not None:
            await room.close(4404, "notebook deleted", save=False)
            if self.get(room_id) is room:
                del self._rooms[room_id]
        await self.store.delete_room(room_id)
