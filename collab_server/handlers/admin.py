"""Users and groups, managed by admins.

- ``GET /api/users``; ``POST /api/users`` ``{"name", "admin": false}`` (201);
  ``PATCH /api/users/<name>`` ``{"admin": bool}``; ``DELETE /api/users/<name>``.
- ``GET /api/groups`` (``{"groups": {name: [members]}}``); ``PUT /api/groups/<name>`` (201);
  ``DELETE /api/groups/<name>``; ``PUT``/``DELETE /api/groups/<name>/members/<user>``.

Every change that can remove access has open sockets rechecked at once.
"""

from __future__ import annotations

import asyncio
import dataclasses

from tornado import web

from auth.identity import IdentityProvider
from auth.permissions import Action
from auth.users import Users

from ..access import Authorizer
from ..live import LiveSockets
from .base import APIHandler


class AdminHandler(APIHandler):
    def initialize(  # type: ignore[override]
        self, identity: IdentityProvider, authorizer: Authorizer, users: Users, live: LiveSockets
    ) -> None:
        super().initialize(identity)
        self.authorizer = authorizer
        self.users = users
        self.live = live

    async def prepare(self) -> None:
        await super().prepare()
        self.authorizer.require_server(self.user, Action.MANAGE_USERS)

    def changed(self, status: int = 204) -> None:
        self.live.recheck_soon()
        self.set_status(status)
        self.finish()


class UsersHandler(AdminHandler):
    async def get(self) -> None:
        users = await asyncio.to_thread(self.users.list_users)
        self.write_json({"users": [dataclasses.asdict(u) for u in users]})

    async def post(self) -> None:
        body = self.json_body()
        name, admin = body.get("name"), body.get("admin", False)
        if not isinstance(name, str) or not isinstance(admin, bool):
            raise web.HTTPError(400, 'give {"name": "...", "admin": false}')
        user = await asyncio.to_thread(self.users.get_or_create, name, admin)
        self.write_json({"name": user.name, "admin": user.admin}, status=201)


class UserHandler(AdminHandler):
    async def patch(self, name: str) -> None:
        admin = self.json_body().get("admin")
        if not isinstance(admin, bool):
            raise web.HTTPError(400, 'give {"admin": true|false}')
        user = await asyncio.to_thread(self.users.set_admin, name, admin)
        self.live.recheck_soon()
        self.write_json({"name": user.name, "admin": user.admin})

    async def delete(self, name: str) -> None:
        if name == self.user.name:
            raise web.HTTPError(400, "you cannot delete yourself")
        await asyncio.to_thread(self.users.delete_user, name)
        self.changed()


class GroupsHandler(AdminHandler):
    async def get(self) -> None:
        self.write_json({"groups": await asyncio.to_thread(self.users.list_groups)})


class GroupHandler(AdminHandler):
    async def put(self, name: str) -> None:
        await asyncio.to_thread(self.users.create_group, name)
        self.changed(201)

    async def delete(self, name: str) -> None:
        await asyncio.to_thread(self.users.delete_group, name)
        self.changed()


class GroupMemberHandler(AdminHandler):
    async def put(self, group: str, name: str) -> None:
        await asyncio.to_thread(self.users.add_member, group, name)
        self.changed()

    async def delete(self, group: str, name: str) -> None:
        await asyncio.to_thread(self.users.remove_member, group, name)
        self.changed()
