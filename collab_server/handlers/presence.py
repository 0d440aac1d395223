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

from tornado import web

from auth.identity import IdentityProvider
from auth.permissions import Action

from ..access import Authorizer
from ..classroom import Classroom
from .base import APIHandler

MAX_HAND_MESSAGE = 500


class PresenceAPI(APIHandler):
    def initialize(  # type: ignore[override]
        self, identity: IdentityProvider, authorizer: Authorizer, classroom: Classroom
    ) -> None:
        super().initialize(identity)
        self.authorizer = authorizer
        self.classroom = classroom


class PresenceHandler(PresenceAPI):
    async def get(self) -> None:
        self.write_json({"notebooks": await self.classroom.presence(self.user)})


class RaiseHandHandler(PresenceAPI):
    async def post(self, notebook_id: str) -> None:
        await self.authorizer.require(self.user, Action.RAISE_HAND, notebook_id=notebook_id)
        message = self.json_body().get("message", "")
        if not isinstance(message, str) or len(message) > MAX_HAND_MESSAGE:
            raise web.HTTPError(400, f"message must be text of at most {MAX_HAND_MESSAGE} characters")
        await self.classroom.raise_hand(notebook_id, self.user.name, message)
        self.set_status(204)
        self.finish()


class LowerHandHandler(PresenceAPI):
    async def delete(self, notebook_id: str, username: str) -> None:
        await self.authorizer.require(
            self.user, Action.LOWER_HAND, notebook_id=notebook_id, subject=username
        )
        await self.classroom.set_hand(notebook_id, username, None)
        self.set_status(204)
        self.finish()


class StudentsHandler(PresenceAPI):
    async def get(self) -> None:
        self.write_json({"students": await self.classroom.students(self.user)})
