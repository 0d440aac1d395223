"""The y-websocket endpoint of a notebook room: ``/api/rooms/<notebook id>``.

The user is authenticated and the notebook found before the upgrade, so a
refused client gets a plain HTTP error (401, 404) and never a socket. After
that, each message goes to the room; a malformed one closes only this
connection, with a close code and reason.
"""

from __future__ import annotations

import logging
from typing import Any

from tornado import websocket

from auth.identity import IdentityProvider, User
from crdt.room import Room
from crdt.rooms import RoomManager

from ..errors import (
    WS_CLIENT_TOO_SLOW,
    WS_UNSUPPORTED_DATA,
    close_reason,
    http_status,
    ws_close_code,
)
from .base import credentials

log = logging.getLogger(__name__)


class RoomHandler(websocket.WebSocketHandler):
    """One client of a room; implements :class:`crdt.channel.Connection`."""

    rooms: RoomManager
    identity: IdentityProvider
    max_send_buffer: int
    user: User
    room: Room | None = None

    def initialize(
        self, rooms: RoomManager, identity: IdentityProvider, max_send_buffer: int
    ) -> None:
        self.rooms = rooms
        self.identity = identity
        self.max_send_buffer = max_send_buffer
        self._queued_bytes = 0
        self._closed = False

    # ---- before the upgrade -------------------------------------------------------

    async def get(self, *args: Any, **kwargs: Any) -> None:
        user = await self.identity.identify(credentials(self.request, allow_query_token=True))
        if user is None:
            self._refuse(401, "authentication required")
            return
        self.user = user
        room_id = kwargs["room_id"]
        try:
            await self.rooms.locate(room_id)
        except Exception as e:
            status = http_status(e)
            if status is None:
                raise
            self._refuse(status, str(e))
            return
        await super().get(*args, **kwargs)

    def _refuse(self, status: int, message: str) -> None:
        log.info("refused WebSocket %s: %d %s", self.request.path, status, message)
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        if status == 401:
            self.set_header("WWW-Authenticate", 'token realm="collab-server"')
        self.finish({"status": status, "message": message})

    # ---- the Connection protocol --------------------------------------------------

    @property
    def username(self) -> str:
        return self.user.name

    @property
    def can_write(self) -> bool:
        return True

    def send(self, message: bytes) -> None:
        if self._closed:
            return
        if self._queued_bytes > self.max_send_buffer:
            self.close(WS_CLIENT_TOO_SLOW, "client too slow: too many messages waiting")
            return
        try:
            future = self.write_message(message, binary=True)
        except websocket.WebSocketClosedError:
            return
        size = len(message)
        self._queued_bytes += size

        def sent(f: Any) -> None:
            self._queued_bytes -= size
            if not f.cancelled():
                f.exception()  # a closed stream is handled by on_close

        future.add_done_callback(sent)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        super().close(code, reason)
        if self.room is not None:
            self.room.leave(self)

    # ---- the socket ------------------------------------------------------------------

    async def open(self, *args: str, **kwargs: str) -> None:
        room_id = kwargs["room_id"]
        try:
            self.room = await self.rooms.join(room_id, self)
        except Exception as e:
            if http_status(e) is None:
                log.exception("room %s: opening failed", room_id)
            self.close(ws_close_code(e), close_reason(e))
            return
        if self._closed:  # the client left while the room was opening
            self.room.leave(self)
        log.info("room %s: %s joined", room_id, self.user.name)

    def on_message(self, message: str | bytes) -> None:
        if self.room is None or self._closed:
            return
        if isinstance(message, str):
            self.close(WS_UNSUPPORTED_DATA, "binary y-websocket messages only")
            return
        try:
            self.room.receive(self, message)
        except Exception as e:
            code = ws_close_code(e)
            if http_status(e) is None and code == 1011:
                log.exception("room %s: message from %s failed", self.room.room_id, self.username)
            else:
                log.warning(
                    "room %s: closing %s's connection (%d): %s",
                    self.room.room_id,
                    self.username,
                    code,
                    e,
                )
            self.close(code, close_reason(e))

    def on_close(self) -> None:
        self._closed = True
        if self.room is not None:
            self.room.leave(self)
            log.info("room %s: %s left", self.room.room_id, self.user.name)
