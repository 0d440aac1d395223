"""One open notebook: its Yjs document, its clients, and its file on disk.

The path of a keystroke: a client's update is applied to the document (which
validates it), appended to the durable store, and only once committed
broadcast to every other client. Server-side changes (a file reloaded from
disk; outputs, later) take the same path, because every transaction on the
document is observed in one place.

Rooms never import tornado: clients are :class:`~crdt.channel.Connection`s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Awaitable, Callable
from typing import Any

from jupyter_ydoc import YNotebook
from pycrdt import Doc, TransactionEvent

from . import notebook_io, protocol
from .admission import Admission
from .autosave import Autosaver
from .awareness import AwarenessRelay
from .channel import Connection
from .errors import ProtocolError, StaleClient
from .hooks import Hooks, Unregister
from .store import UpdateStore

log = logging.getLogger(__name__)



@dataclass
class RoomSettings:
    save_delay: float = 1.0
    autosave_share: float = 0.2  # of the wall clock, at most, for all rooms' autosaves
    compact_after_updates: int = 1000
    compact_after_bytes: int = 1024 * 1024  # or the snapshot's size, if larger
    awareness_timeout: float = 30.0
    max_awareness_state_bytes: int = 64 * 1024
    checkpoint_dir: Path = Path("checkpoints")


@dataclass
class RoomCounters:
    """Changes applied to the documents of every room sharing these counters, since they began.

    Plain integers, only ever increased, read by whoever reports on the
    server (its ``/metrics``).
    """

    client_updates: int = 0  # updates sent by clients and applied to a document
    server_updates: int = 0  # changes made by the server: outputs, files reloaded from disk


class Room:
    """A notebook's shared document and everyone connected to it.

    Created and closed by :class:`~crdt.rooms.RoomManager`. All methods run on
    the event loop; ``receive`` is synchronous so messages from one client are
    handled strictly in order.
    """

    def __init__(
        self,
        room_id: str,
        doc: Doc[Any],
        seed_client_id: int,
        path: Path,
        disk_hash: str | None,
        store: UpdateStore,
        worker: notebook_io.NotebookWorker,
        settings: RoomSettings,
        autosaver: Autosaver,
        tail_updates: int = 0,
        snapshot_bytes: int = 0,
        counters: RoomCounters | None = None,
    ) -> None:
        self.room_id = room_id
        self.counters = counters if counters is not None else RoomCounters()
        self.doc = doc
        self.notebook = YNotebook(doc)
        self.seed_client_id = seed_client_id
        self.path = path
        self.disk_hash = disk_hash
        self.pending_hash: str | None = None  # set by RoomManager from the store
        self.disk_signature = notebook_io.stat_signature(path)
        self.store = store
        self.worker = worker
        self.settings = settings
        self.autosaver = autosaver
        self.awareness = AwarenessRelay(settings.max_awareness_state_bytes)
        self.connections: set[Connection] = set()
        # Connections whose sync step 1 was answered: only they get document updates.
        self._answered: set[Connection] = set()
        self.admission = Admission(doc, self._apply)
        self.holders: set[object] = set()
        self._on_close: Hooks[Room] = Hooks("room close")
        self.closing = False
        self.last_active = time.monotonic()
        self.disk_lock = asyncio.Lock()
        self._closed = asyncio.Event()
        self._sender: Connection | None = None
        self._version = 0
        self._saved_version = 0
        self._save_handle: asyncio.TimerHandle | None = None
        self._tail_updates = tail_updates
        self._tail_bytes = 0
        self._compact_scheduled = False
        self._snapshot_bytes = snapshot_bytes
        self._failed = False
        # client id -> (encoded awareness entry, sending connection), until sent
        self._presence_queue: dict[int, tuple[bytes, Connection | None]] = {}
        self._subscription = doc.observe(self._on_transaction)

    # ---- clients ----------------------------------------------------------------

    def join(self, conn: Connection) -> None:
        """Add a client: send it our state vector and everyone's presence."""
        if self.closing:
            raise RuntimeError("room is closing")
        self.connections.add(conn)
        self.last_active = time.monotonic()
        conn.send(protocol.sync_step1(self.doc.get_state()))
        presence = self.awareness.full_message()
        if presence is not None:
            conn.send(presence)

    def on_close(self, callback: Callable[[Room], Awaitable[None]]) -> Unregister:
        """Register ``await callback(room)``, called once the room has closed."""
        return self._on_close.register(callback)

    def hold(self, holder: object) -> None:
        """Keep the room loaded for a server-side writer, with or without clients."""
        if self.closing:
            raise RuntimeError("room is closing")
        self.holders.add(holder)
        self.last_active = time.monotonic()

    def release(self, holder: object) -> None:
        self.holders.discard(holder)
        self.last_active = time.monotonic()

    def leave(self, conn: Connection) -> None:
        """Remove a client and tell the others its presence is gone."""
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        self._answered.discard(conn)
        self.admission.forget(conn)
        self.last_active = time.monotonic()
        self._relay_presence(self.awareness.remove_owner(conn), None)

    def receive(self, conn: Connection, data: bytes) -> None:
        """Handle one message from ``conn``.

        Raises ProtocolError (malformed message) or StaleClient (its copy
        cannot be merged); in both cases nothing was changed and the caller
        must close that connection.
        """
        message = protocol.decode_message(data)
        if isinstance(message, protocol.SyncMessage):
            if message.step == protocol.SyncStep.STEP1:
                self._reply_sync_step2(conn, message.payload)
            else:
                self.admission.receive(conn, message)
        elif isinstance(message, protocol.AwarenessMessage):
            self._relay_presence(self.awareness.apply(conn, message.payload, conn.presence_user), conn)
        elif isinstance(message, protocol.QueryAwarenessMessage):
            presence = self.awareness.full_message()
            if presence is not None:
                conn.send(presence)
        # AUTH messages only flow from server to client; ignore them.

    def _reply_sync_step2(self, conn: Connection, payload: bytes) -> None:
        state_vector = protocol.decode_state_vector(payload)
        if state_vector and self.seed_client_id not in state_vector:
            raise StaleClient(
                "this copy of the notebook comes from an earlier version of the document"
            )
        try:
            reply = protocol.sync_step2(self.doc.get_update(payload))
        except ValueError as e:
            raise ProtocolError(f"invalid state vector: {e}") from e
        # From now on the client gets every update: the reply holds the earlier ones.
        # Sent an update before, it could apply it to a copy lacking what the update
        # follows (a cell moved: the copy inserted, the original never deleted).
        self._answered.add(conn)
        # Everything in the reply must be durable before the client sees it.
        barrier = self.store.barrier()
        barrier.add_done_callback(lambda f: self._send_if_durable(f, conn, reply))

    def _apply(self, conn: Connection, update: bytes) -> None:
        """Integrate a client's update that :class:`Admission` let through."""
        self._sender = conn
        try:
            self.doc.apply_update(update)
        except (ValueError, RuntimeError) as e:
            # pycrdt may refuse an update after integrating part of it; that part
            # is a valid change by a client allowed to write, and everyone gets it.
            raise ProtocolError(f"invalid update: {str(e)[:200]}") from e
        except BaseException as e:
            if type(e).__name__ == "PanicException":  # pycrdt's wrapper of a Rust panic
                raise ProtocolError(f"invalid update: {e}") from None
            raise
        finally:
            self._sender = None

    def refused_changes_of(self, conn: Connection) -> bool:
        """Whether ``conn`` made changes while read-only: its copy differs from the document."""
        return self.admission.refused_changes_of(conn)

    def set_path(self, path: str) -> None:
        """Write the notebook's path into the document (its ``state`` map), for open tabs."""
        if self.notebook.path == path:
            return
        clean, handle = not self.dirty, self._save_handle
        self.notebook.path = path
        if clean:  # the .ipynb holds no path: it stays as it is
            self._saved_version = self._version
            if handle is None and self._save_handle is not None:
                self._save_handle.cancel()
                self._save_handle = None

    # ---- every change to the document ---------------------------------------------

    def _on_transaction(self, event: TransactionEvent) -> None:
        update: bytes = event.update
        sender = self._sender
        if sender is None:
            self.admission.document_changed()
            self.counters.server_updates += 1
        else:
            self.counters.client_updates += 1
        message = protocol.sync_update(update)
        stored = self.store.append(self.room_id, update, sender.username if sender else None)
        stored.add_done_callback(lambda f: self._send_if_durable(f, None, message, sender, update=True))
        self._version += 1
        self._tail_updates += 1
        self._tail_bytes += len(update)
        self.last_active = time.monotonic()
        self._schedule_save()
        if not self._compact_scheduled and (
            self._tail_updates >= self.settings.compact_after_updates
            or self._tail_bytes >= max(self.settings.compact_after_bytes, self._snapshot_bytes)
        ):
            # The document cannot be encoded while this transaction is being observed.
            self._compact_scheduled = True
            asyncio.get_running_loop().call_soon(self.compact)

    def _send_if_durable(
        self,
        stored: asyncio.Future[Any],
        to: Connection | None,
        message: bytes,
        exclude: Connection | None = None,
        update: bool = False,
    ) -> None:
        if stored.cancelled() or stored.exception() is not None:
            self._fail("the document could not be stored")
            return
        if to is None:
            self._broadcast(message, exclude, self._answered if update else self.connections)
        elif to in self.connections:
            to.send(message)

    def _broadcast(
        self, message: bytes, exclude: Connection | None, among: set[Connection] | None = None
    ) -> None:
        for conn in list(self.connections if among is None else among):
            if conn is not exclude:
                conn.send(message)

    @property
    def failed(self) -> bool:
        return self._failed

    def _fail(self, reason: str) -> None:
        """Durability was lost: drop every client so they resync from what is stored."""
        if self._failed:
            return
        self._failed = True
        log.error("room %s: %s; closing all its connections", self.room_id, reason)
        for conn in list(self.connections):
            conn.close(1011, reason)
        self.connections.clear()
        self._answered.clear()

    def compact(self) -> None:
        """Fold the stored tail of updates into one snapshot of the current state."""
        self._compact_scheduled = False
        if self._failed:
            return
        state = self.doc.get_update()
        self._tail_updates = 0
        self._tail_bytes = 0
        self._snapshot_bytes = len(state)
        _log_failure(self.store.compact(self.room_id, state))

    # ---- the file on disk --------------------------------------------------------

    def _schedule_save(self) -> None:
        if self._save_handle is None and not self.closing:
            loop = asyncio.get_running_loop()
            self._save_handle = loop.call_later(self.settings.save_delay, self._start_save)

    def _start_save(self) -> None:
        self._save_handle = None
        self.autosaver.request(self.room_id, self.save)

    @property
    def dirty(self) -> bool:
        return self._version != self._saved_version

    async def save(self) -> None:
        """Write the document to its .ipynb if it changed since the last save.

        If the file was changed by another program since we last read it, the
        file's content is loaded into the room instead and the room's content
        is kept as a checkpoint.
        """
        async with self.disk_lock:
            if not self.dirty:
                return
            version = self._version
            state = self.doc.get_update()
            try:
                result = await self.worker.run(
                    notebook_io.prepare_save, str(self.path), state, self.disk_hash
                )
                if result.temporary is not None:
                    # The store learns the new hash before the file changes.
                    try:
                        self.pending_hash = result.disk_hash
                        await self.store.set_pending_hash(self.room_id, result.disk_hash)
                        await asyncio.to_thread(
                            notebook_io.replace_with, result.temporary, str(self.path)
                        )
                    except BaseException:
                        notebook_io.discard_temporary(result.temporary)
                        raise
            except Exception:
                log.exception("room %s: saving %s failed; will retry", self.room_id, self.path)
                self._schedule_save()
                return
            log.debug("room %s: save of version %d: %s", self.room_id, version, result)
            if result.conflict:
                await self._load_from_disk(state)
                return
            self._saved_version = version
            if result.signature is not None:
                self.disk_signature = result.signature
            if result.disk_hash != self.disk_hash or self.pending_hash is not None:
                self.disk_hash = result.disk_hash
                self.pending_hash = None
                _log_failure(self.store.set_disk_hash(self.room_id, result.disk_hash))

    async def check_disk(self) -> None:
        """Load the .ipynb into the room if another program changed it."""
        if self.disk_lock.locked() or self.closing:
            return
        async with self.disk_lock:
            signature = await asyncio.to_thread(notebook_io.stat_signature, self.path)
            if signature is None or signature == self.disk_signature:
                return
            await self.load_if_changed_on_disk()

    async def load_if_changed_on_disk(self) -> None:
        """Load the file into the room if its content differs; hold ``disk_lock``."""
        await self._load_from_disk(None)

    async def _load_from_disk(self, state: bytes | None) -> None:
        """Checkpoint the room's content, then apply the file's content to the document."""
        try:
            disk = await self.worker.run(
                notebook_io.read_if_changed, str(self.path), self.disk_hash, self.pending_hash
            )
        except Exception:
            log.exception("room %s: %s changed on disk but cannot be loaded", self.room_id, self.path)
            self.disk_signature = notebook_io.stat_signature(self.path)
            return
        self.disk_signature = disk.signature
        if disk.notebook is None:
            if disk.disk_hash != self.disk_hash:  # our own save, interrupted before its hash was recorded
                self.disk_hash = disk.disk_hash
                self.pending_hash = None
                _log_failure(self.store.set_disk_hash(self.room_id, disk.disk_hash))
            return
        checkpoint = await self.worker.run(
            notebook_io.write_checkpoint,
            str(self.settings.checkpoint_dir / self.room_id),
            state if state is not None else self.doc.get_update(),
        )
        log.warning(
            "room %s: %s changed on disk; loaded it, previous content kept in %s",
            self.room_id,
            self.path,
            checkpoint,
        )
        self.notebook.set(disk.notebook)
        self.disk_hash = disk.disk_hash
        self.pending_hash = None
        self._saved_version = self._version
        _log_failure(self.store.set_disk_hash(self.room_id, disk.disk_hash))

    # ---- lifecycle ------------------------------------------------------------------

    async def close(self, code: int = 1001, reason: str = "room closed", save: bool = True) -> None:
        """Save (unless told not to), compact, disconnect everyone; idempotent."""
        if self.closing:
            await self._closed.wait()
            return
        self.closing = True
        try:
            if self._save_handle is not None:
                self._save_handle.cancel()
                self._save_handle = None
            self.autosaver.cancel(self.room_id)
            async with self.disk_lock:
                pass  # an autosave in progress finishes first
            if save and not self._failed:
                await self.save()
                if self._tail_updates:
                    self.compact()
                await self.store.barrier()
        finally:
            self.doc.unobserve(self._subscription)
            for conn in list(self.connections):
                conn.close(code, reason)
            self.connections.clear()
            self._answered.clear()
            await self._on_close.run(self)
            self.holders.clear()
            self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def remove_outdated_presence(self) -> None:
        self._relay_presence(self.awareness.remove_outdated(self.settings.awareness_timeout), None)

    # ---- presence --------------------------------------------------------------------

    def _relay_presence(self, entries: list[protocol.AwarenessEntry], sender: Connection | None) -> None:
        """Forward presence changes to everyone but their sender.

        Changes made in one pass of the event loop leave as one message: when
        every client renews its presence at once, each gets one message rather
        than one per client, and y-websocket clients, which echo every
        awareness message they apply, echo one.
        """
        if not entries:
            return
        if not self._presence_queue:
            asyncio.get_running_loop().call_soon(self._send_presence)
        for entry in entries:
            self._presence_queue.pop(entry.client_id, None)  # the latest change, in its order
            self._presence_queue[entry.client_id] = (protocol.encode_awareness_entry(entry), sender)

    def _send_presence(self) -> None:
        queued, self._presence_queue = self._presence_queue, {}
        if not queued:
            return
        everything = protocol.awareness_message(
            protocol.join_awareness_entries([encoded for encoded, _ in queued.values()])
        )
        senders = {sender for _, sender in queued.values() if sender is not None}
        for conn in list(self.connections):
            if conn not in senders:
                conn.send(everything)
                continue
            others = [encoded for encoded, sender in queued.values() if sender is not conn]
            if others:
                conn.send(protocol.awareness_message(protocol.join_awareness_entries(others)))


def _log_failure(future: asyncio.Future[Any]) -> None:
    """The store has logged a failed write; mark its exception as retrieved."""
    future.add_done_callback(lambda f: f.cancelled() or f.exception())
