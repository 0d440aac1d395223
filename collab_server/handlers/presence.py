"""Who is where: people in open notebooks, raised hands, and the tutor dashboard's data.

- ``GET /api/presence``: ``{"notebooks": {id: [{"username", "role"}]}}`` for
  the open notebooks you can see.
- ``POST /api/notebooks/<id>/hand`` ``{"message": "..."}``: raise your hand
  (any role, viewers included); ``DELETE /api/notebooks/<id>/hand/<user>``:
  lower it (that user, an editor or owner, or a tutor of the notebook's owner).
  Hands live in the document's ``hands`` map (user -> ``{"message",
  "raised_at"}``), written by the server, so everyone in the room sees them.
- ``GET /api/tutor/students``: for a tutor, each student's notebooks, who is
  in them, last activity, raised hands and recent errors.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pycrdt import Map
from tornado import web

from auth.sharing import PermissionDenied, Role, Sharing, owner_name
from crdt.contents import ContentsManager
from crdt.errors import NotebookNotFound
from crdt.room import Room
from crdt.rooms import RoomManager
from kernels.history import ExecutionHistory

from ..access import Access
from .base import APIHandler

MAX_HAND_MESSAGE = 500


def people_in(room: Room) -> list[dict[str, Any]]:
    """Everyone connected to a room, once each, with their role."""
    people: dict[str, dict[str, Any]] = {}
    for conn in room.connections:
        identity = conn.presence_user or {}
        people.setdefault(
            conn.username, {"username": conn.username, "role": identity.get("role", "")}
        )
    return sorted(people.values(), key=lambda p: str(p["username"]))


def hands_of(room: Room) -> dict[str, Any]:
    return dict(room.doc.get("hands", type=Map).to_py() or {})


def wall_clock(monotonic: float) -> float:
    return time.time() - (time.monotonic() - monotonic)


class PresenceAPI(APIHandler):
    access: Access
    sharing: Sharing
    rooms: RoomManager
    contents: ContentsManager
    history: ExecutionHistory


class PresenceHandler(PresenceAPI):
    async def get(self) -> None:
        result: dict[str, list[dict[str, Any]]] = {}
        for room in self.rooms.open_rooms():
            if room.closing or not room.connections:
                continue
            try:
                await self.access.notebook_role(self.user, room.room_id)
            except NotebookNotFound:
                continue
            result[room.room_id] = people_in(room)
        self.write_json({"notebooks": result})


async def write_hand(
    rooms: RoomManager, notebook_id: str, username: str, value: dict[str, Any] | None
) -> None:
    """Set or clear one user's hand in the document (server-written, so everyone sees it)."""
    holder = object()
    room = await rooms.hold(notebook_id, holder)
    try:
        hands = room.doc.get("hands", type=Map)
        with room.doc.transaction():
            if value is None:
                if username in hands:
                    del hands[username]
            else:
                hands[username] = value
    finally:
        room.release(holder)


class RaiseHandHandler(PresenceAPI):
    async def post(self, notebook_id: str) -> None:
        await self.access.require_notebook(self.user, notebook_id, Role.VIEWER)
        message = self.json_body().get("message", "")
        if not isinstance(message, str) or len(message) > MAX_HAND_MESSAGE:
            raise web.HTTPError(400, f"message must be text of at most {MAX_HAND_MESSAGE} characters")
        value = {"message": message, "raised_at": time.time()}
        await write_hand(self.rooms, notebook_id, self.user.name, value)
        self.set_status(204)
        self.finish()


class LowerHandHandler(PresenceAPI):
    async def delete(self, notebook_id: str, username: str) -> None:
        role, path = await self.access.notebook_role(self.user, notebook_id)
        allowed = (
            username == self.user.name
            or role >= Role.EDITOR
            or await asyncio.to_thread(self.sharing.tutors, self.user, owner_name(path))
        )
        if not allowed:
            raise PermissionDenied("only that person, an editor or their tutor can lower a hand")
        await write_hand(self.rooms, notebook_id, username, None)
        self.set_status(204)
        self.finish()


class StudentsHandler(PresenceAPI):
    async def get(self) -> None:
        students = await asyncio.to_thread(self.sharing.students_of, self.user)
        rooms = {room.room_id: room for room in self.rooms.open_rooms() if not room.closing}
        result = []
        for student in students:
            try:
                ids = await self.contents.notebook_ids_under(student)
            except NotebookNotFound:
                ids = []
            notebooks: list[dict[str, Any]] = []
            for notebook_id in ids:
                try:
                    path = await self.contents.path_for_id(notebook_id)
                except NotebookNotFound:
                    continue
                room = rooms.get(notebook_id)
                notebooks.append(
                    {
                        "id": notebook_id,
                        "path": path,
                        "people": people_in(room) if room else [],
                        "last_activity": wall_clock(room.last_active) if room else None,
                        "hands": hands_of(room) if room else {},
                    }
                )
            errors, _ = await self.history.query(username=student, status="error", limit=5)
            result.append(
                {
                    "name": student,
                    "active": any(
                        any(p["username"] == student for p in n["people"]) for n in notebooks
                    ),
                    "notebooks": sorted(notebooks, key=lambda n: str(n["path"])),
                    "recent_errors": [
                        {
                            "notebook_id": e.notebook_id,
                            "path": e.notebook_path,
                            "cell_id": e.cell_id,
                            "error": f"{e.error_name}: {e.error_value}",
                            "at": e.finished_at,
                        }
                        for e in errors
                    ],
                }
            )
        self.write_json({"students": result})
