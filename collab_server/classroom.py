"""Who is where: people in open notebooks, raised hands, and the tutor dashboard.

Hands live in each document's ``hands`` map (user -> ``{"message",
"raised_at"}``), written by the server so everyone in the room sees them.
Every listing here goes through the authorizer: a tutor sees a student's
notebooks and errors only where the tutor has a role.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pycrdt import Map

from auth.identity import User
from auth.permissions import Action
from auth.sharing import Sharing
from crdt.contents import ContentsManager
from crdt.errors import NotebookNotFound
from crdt.room import Room
from crdt.rooms import RoomManager
from kernels.history import ExecutionHistory

from .access import Authorizer

RECENT_ERRORS = 5


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


class Classroom:
    """Presence, hands and the tutor dashboard, over rooms, sharing and the history."""

    def __init__(
        self,
        authorizer: Authorizer,
        sharing: Sharing,
        rooms: RoomManager,
        contents: ContentsManager,
        history: ExecutionHistory,
    ) -> None:
        self.authorizer = authorizer
        self.sharing = sharing
        self.rooms = rooms
        self.contents = contents
        self.history = history

    def _open_rooms(self) -> dict[str, Room]:
        return {room.room_id: room for room in self.rooms.open_rooms() if not room.closing}

    async def presence(self, user: User) -> dict[str, list[dict[str, Any]]]:
        """Notebook id -> the people in it, for the open notebooks ``user`` may see."""
        occupied = {i: r for i, r in self._open_rooms().items() if r.connections}
        visible = await self.authorizer.allowed_notebooks(user, Action.VIEW, occupied)
        return {i: people_in(occupied[i]) for i in visible}

    async def set_hand(self, notebook_id: str, username: str, value: dict[str, Any] | None) -> None:
        """Raise (``value``) or lower (None) one user's hand, in the document."""
        holder = object()
        room = await self.rooms.hold(notebook_id, holder)
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

    async def raise_hand(self, notebook_id: str, username: str, message: str) -> None:
        await self.set_hand(notebook_id, username, {"message": message, "raised_at": time.time()})

    async def students(self, tutor: User) -> list[dict[str, Any]]:
        """The tutor dashboard: each student's notebooks the tutor may see, with who is in
        them, last activity, raised hands, and the student's recent errors there."""
        names = await asyncio.to_thread(self.sharing.students_of, tutor)
        rooms = self._open_rooms()
        result: list[dict[str, Any]] = []
        for student in names:
            try:
                ids = await self.contents.notebook_ids_under(student)
            except NotebookNotFound:
                ids = []
            visible = await self.authorizer.allowed_notebooks(tutor, Action.SEE_IN_DASHBOARD, ids)
            notebooks: list[dict[str, Any]] = []
            for notebook_id, granted in visible.items():
                room = rooms.get(notebook_id)
                notebooks.append(
                    {
                        "id": notebook_id,
                        "path": granted.path,
                        "people": people_in(room) if room else [],
                        "last_activity": wall_clock(room.last_active) if room else None,
                        "hands": hands_of(room) if room else {},
                    }
                )
            errors, _ = await self.history.query(
                username=student, notebook_id=sorted(visible), status="error", limit=RECENT_ERRORS
            )
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
                            "path": visible[e.notebook_id].path,
                            "cell_id": e.cell_id,
                            "error": f"{e.error_name}: {e.error_value}",
                            "at": e.finished_at,
                        }
                        for e in errors
                    ],
                }
            )
        return result
