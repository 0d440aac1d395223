"""The y-websocket endpoint of a notebook room: ``/api/rooms/<notebook id>``.

Before the upgrade the user is authenticated, their role on the notebook
found, and, for a browser session (cookie), the Origin checked against the
allowlist; a refused client gets a plain HTTP error (401, 403, 404) and never
a socket. After that, each message goes to the room, which checks the role
on every document update; a malformed message closes only this connection.
Access is checked again whenever it may have changed (see ``live``): a
revoked user's socket is closed with 4403; any other change of role is sent
to the client (an auth message of subtype 1, see ``crdt.protocol.role_message``),
and a client promoted to writer after edits of its were refused is closed
with 4409 so that it resyncs.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import struct
from typing import Any

from tornado import web, websocket
from tornado.iostream import StreamClosedError

from auth.identity import Credentials, IdentityProvider, User
from auth.permissions import Action, Role, role_allows
from crdt.errors import NotebookNotFound
from crdt.protocol import role_message
from crdt.room import Room
from crdt.rooms import RoomManager

from ..access import Authorizer
from ..errors import (
    WS_CLIENT_TOO_SLOW,
    WS_FORBIDDEN,
    WS_RELOAD_REQUIRED,
    WS_UNSUPPORTED_DATA,
    close_reason,
    http_status,
    ws_close_code,
)
from ..live import LiveSockets
from .base import credentials
from .sockets import GuardedWebSocket

# Presence colours, picked by a hash of the user name (readable on white and dark).
COLORS = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#008080",
    "#f032e6", "#9a6324", "#800000", "#808000", "#000075", "#2f7ed8",
)


def presence_identity(user: User, role: Role) -> dict[str, Any]:
    """The ``user`` field of a client's presence, decided by the server."""
    digest = hashlib.sha256(user.name.encode()).digest()
    parts = [p for p in user.name.replace(".", " ").replace("_", " ").split() if p]
    initials = "".join(p[0] for p in parts[:2]).upper() or user.name[:1].upper()
    return {
        "username": user.name,
        "name": user.name,
        "display_name": user.name,
        "initials": initials,
        "color": COLORS[digest[0] % len(COLORS)],
        "role": role.label,
    }


log = logging.getLogger(__name__)

_last_frame: tuple[bytes, bytes] = (b"", b"\x82\x00")


def binary_frame(message: bytes) -> bytes:
    """``message`` as one unmasked binary WebSocket frame (RFC 6455 5.2).

    A broadcast sends the same bytes object to every client, so the last
    message's frame is kept and reused.
    """
    global _last_frame
    if _last_frame[0] is message:
        return _last_frame[1]
    size = len(message)
    if size < 126:
        header = bytes((0x82, size))
    elif size <= 0xFFFF:
        header = struct.pack("!BBH", 0x82, 126, size)
    else:
        header = struct.pack("!BBQ", 0x82, 127, size)
    frame = header + message
    _last_frame = (message, frame)
    return frame


class RoomHandler(GuardedWebSocket):
    """One client of a room; implements :class:`crdt.channel.Connection`."""

    rooms: RoomManager
    identity: IdentityProvider
    authorizer: Authorizer
    live: LiveSockets
    allowed_origins: frozenset[str]
    max_send_buffer: int
    session_days: float
    closes: collections.Counter[int]
    user: User
    role: Role
    room: Room | None = None

    def initialize(
        self,
        rooms: RoomManager,
        identity: IdentityProvider,
        authorizer: Authorizer,
        live: LiveSockets,
        allowed_origins: frozenset[str],
        max_send_buffer: int,
        session_days: float,
        closes: collections.Counter[int],
    ) -> None:
        """``closes`` counts the sockets the server closes, by close code (for /metrics)."""
        self.rooms = rooms
        self.identity = identity
        self.authorizer = authorizer
        self.live = live
        self.allowed_origins = allowed_origins
        self.max_send_buffer = max_send_buffer
        self.session_days = session_days
        self.closes = closes
        self._queued_bytes = 0
        self._outbox: list[bytes] | None = None  # frames waiting for the end of this pass
        self._closed = False
        self._credentials: Credentials | None = None
        self._presence: dict[str, Any] | None = None
        self._path = ""

    # ---- before the upgrade -------------------------------------------------------

    def check_xsrf_cookie(self) -> None:
        """Only GET (the upgrade) is served here; other methods get 401 or 405, not an XSRF error."""

    async def prepare(self) -> None:
        """Other methods than GET: 401 without credentials, else 405 (like every API route)."""
        if self.request.method != "GET":
            presented = credentials(self, session_days=self.session_days)
            if await self.identity.identify(presented) is None:
                raise web.HTTPError(401, "authentication required")

    async def get(self, *args: Any, **kwargs: Any) -> None:
        user = await self.authenticate()
        if user is None:
            return
        granted = await self.authorized(Action.VIEW, kwargs["room_id"])
        if granted is None:
            return
        self.role, self._path = granted.role, granted.path
        self._presence = presence_identity(user, self.role)
        problem = self.handshake_problem()
        if problem is not None:
            self._refuse(*problem)
            return
        await super().get(*args, **kwargs)

    # ---- the Connection protocol --------------------------------------------------

    @property
    def username(self) -> str:
        return self.user.name

    @property
    def can_write(self) -> bool:
        return role_allows(self.role, Action.EDIT)

    @property
    def presence_user(self) -> dict[str, Any] | None:
        return self._presence

    async def reauthorize(self) -> None:
        """Check who this is and their role again; close or downgrade the socket."""
        if self._closed or self._credentials is None:
            return
        user = await self.still_the_same_user()
        if user is None:
            return
        try:
            granted = await self.authorizer.require(
                user, Action.VIEW, notebook_id=self.path_kwargs["room_id"]
            )
            role = granted.role
        except NotebookNotFound:
            self.close(WS_FORBIDDEN, "your access to this notebook was removed")
            return
        if role == self.role:
            return
        log.info("%s's role on %s is now %s", user.name, self.path_kwargs["room_id"], role.label)
        promoted = role_allows(role, Action.EDIT) and not self.can_write
        self.user, self.role = user, role
        self._presence = presence_identity(user, role)
        if promoted and self.room is not None and self.room.refused_changes_of(self):
            # Its copy holds the edits refused while it was read-only: they would
            # poison every later edit. It must resync (the page keeps the text).
            self.close(WS_RELOAD_REQUIRED, "you may edit again; reload to get the notebook as it is")
            return
        self.send(role_message(role.label))

    def send(self, message: bytes) -> None:
        if self._closed:
            return
        if self._queued_bytes > self.max_send_buffer:
            self.close(WS_CLIENT_TOO_SLOW, "client too slow: too many messages waiting")
            return
        frame = binary_frame(message)
        self._queued_bytes += len(frame)
        if self._outbox is not None:
            self._outbox.append(frame)
            return
        # The first frame of a pass of the event loop leaves at once; the others
        # in one write at the end of the pass (a busy room sends a client many
        # small frames at once, and each write is a syscall).
        self._write(frame)
        self._outbox = []
        asyncio.get_running_loop().call_soon(self._write_outbox)

    def _write_outbox(self) -> None:
        frames, self._outbox = self._outbox, None
        if frames:
            self._write(frames[0] if len(frames) == 1 else b"".join(frames))

    def _write(self, data: bytes) -> None:
        """Write queued frames to the stream; their bytes stay queued until written."""
        size = len(data)
        protocol = self.ws_connection
        if self._closed or protocol is None or protocol.stream is None or protocol.is_closing():
            self._queued_bytes -= size
            return
        try:
            # Straight to the stream: write_message would frame each message once
            # per recipient and wrap each write in a Task.
            future = protocol.stream.write(data)
        except StreamClosedError:
            self._queued_bytes -= size
            return

        def sent(f: Any) -> None:
            self._queued_bytes -= size
            if not f.cancelled():
                f.exception()  # a closed stream is handled by on_close

        future.add_done_callback(sent)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if self._closed:
            return
        self._write_outbox()  # what was sent before the close frame goes first
        self._closed = True
        if code is not None:
            self.closes[code] += 1
        self.live.discard(self)
        super().close(code, reason)
        if self.room is not None:
            self.room.leave(self)

    # ---- the socket ------------------------------------------------------------------

    async def open(self, *args: str, **kwargs: str) -> None:
        room_id = kwargs["room_id"]
        # Keystrokes are small frames: without this, Nagle's algorithm holds each one
        # back until the previous is acknowledged (tens of ms with delayed ACKs).
        self.set_nodelay(True)
        self.live.add(self)
        try:
            self.room = await self.rooms.join(room_id, self)
        except Exception as e:
            if http_status(e) is None:
                log.exception("room %s: opening failed", room_id)
            self.close(ws_close_code(e), close_reason(e))
            return
        if self._closed:  # the client left while the room was opening
            self.room.leave(self)
            return
        self.send(role_message(self.role.label))
        self.room.set_path(self._path)  # a rename made while the room was closed
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
        self.live.discard(self)
        if self.room is not None:
            self.room.leave(self)
            log.info("room %s: %s left", self.room.room_id, self.user.name)
