"""Sharing a notebook: shares with users and groups, share links, "shared with me".

- ``GET /api/notebooks/<id>/shares``: ``{"shares": [...], "links": [...]}`` (owner).
- ``POST /api/notebooks/<id>/shares`` ``{"user" or "group": name, "role": "viewer"|"editor"|"owner"}``
  shares (or changes the role of an existing share); 201 with the share.
- ``DELETE /api/notebooks/<id>/shares/<share id>``: unshare; open sockets lose access within seconds.
- ``POST /api/notebooks/<id>/links`` ``{"role", "expires_in": seconds or null}``: 201 with the
  link and its ``url`` (shown once).
- ``DELETE /api/notebooks/<id>/links/<link id>``: revoke; whoever joined through it loses access.
- ``GET /api/shared``: notebooks shared with me, with my role.
- ``GET /api/me/role/<id>``: my role on a notebook.
- ``GET /share/<code>``: the page a link leads to; ``POST`` accepts it (logged in).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from auth.identity import IdentityProvider
from auth.permissions import Action, Role
from auth.sharing import InvalidShare, Sharing
from crdt.contents import ContentsManager
from crdt.errors import NotebookNotFound

from ..access import Authorizer
from ..live import LiveSockets
from .base import APIHandler
from .pages import PageHandler

MAX_LINK_LIFETIME = 365 * 24 * 3600


class SharingHandler(APIHandler):
    def initialize(  # type: ignore[override]
        self,
        identity: IdentityProvider,
        authorizer: Authorizer,
        sharing: Sharing,
        live: LiveSockets,
        contents: ContentsManager,
    ) -> None:
        super().initialize(identity)
        self.authorizer = authorizer
        self.sharing = sharing
        self.live = live
        self.contents = contents

    async def require(self, action: Action, notebook_id: str) -> str:
        return (await self.authorizer.require(self.user, action, notebook_id=notebook_id)).path


class SharesHandler(SharingHandler):
    async def get(self, notebook_id: str) -> None:
        await self.require(Action.SHARE, notebook_id)
        shares = await asyncio.to_thread(self.sharing.list_shares, notebook_id)
        links = await asyncio.to_thread(self.sharing.list_links, notebook_id)
        self.write_json(
            {
                "shares": [dataclasses.asdict(s) for s in shares],
                "links": [dataclasses.asdict(x) for x in links],
            }
        )

    async def post(self, notebook_id: str) -> None:
        path = await self.require(Action.SHARE, notebook_id)
        body = self.json_body()
        role = Role.parse(body.get("role"))
        user, group = body.get("user"), body.get("group")
        if not isinstance(user, (str, type(None))) or not isinstance(group, (str, type(None))):
            raise InvalidShare('"user" and "group" must be names')
        share = await asyncio.to_thread(
            self.sharing.share, notebook_id, path, role, self.user.name, user=user, group=group
        )
        self.live.recheck_soon()
        self.write_json(dataclasses.asdict(share), status=201)


class ShareHandler(SharingHandler):
    async def delete(self, notebook_id: str, share_id: str) -> None:
        await self.require(Action.SHARE, notebook_id)
        await asyncio.to_thread(self.sharing.unshare, notebook_id, int(share_id))
        self.live.recheck_soon()
        self.set_status(204)
        self.finish()


class LinksHandler(SharingHandler):
    async def post(self, notebook_id: str) -> None:
        await self.require(Action.LINK, notebook_id)
        body = self.json_body()
        role = Role.parse(body.get("role", "viewer"))
        expires_in = body.get("expires_in")
        if expires_in is not None and (
            not isinstance(expires_in, (int, float))
            or isinstance(expires_in, bool)
            or not 0 < expires_in <= MAX_LINK_LIFETIME
        ):
            raise InvalidShare(f"expires_in must be seconds between 1 and {MAX_LINK_LIFETIME}")
        expires_at = None if expires_in is None else time.time() + float(expires_in)
        link, code = await asyncio.to_thread(
            self.sharing.create_link, notebook_id, role, self.user.name, expires_at
        )
        self.write_json({**dataclasses.asdict(link), "url": f"/share/{code}"}, status=201)


class LinkHandler(SharingHandler):
    async def delete(self, notebook_id: str, link_id: str) -> None:
        await self.require(Action.LINK, notebook_id)
        await asyncio.to_thread(self.sharing.revoke_link, notebook_id, int(link_id))
        self.live.recheck_soon()
        self.set_status(204)
        self.finish()


class SharedWithMeHandler(SharingHandler):
    async def get(self) -> None:
        roles = await asyncio.to_thread(self.sharing.shared_with, self.user)
        notebooks: list[dict[str, Any]] = []
        for notebook_id, role in sorted(roles.items()):
            try:
                path = await self.contents.path_for_id(notebook_id)
            except NotebookNotFound:
                continue
            notebooks.append({"id": notebook_id, "path": path, "role": role.label})
        notebooks.sort(key=lambda n: n["path"])
        self.write_json({"notebooks": notebooks})


class MyRoleHandler(SharingHandler):
    async def get(self, notebook_id: str) -> None:
        granted = await self.authorizer.require(self.user, Action.VIEW, notebook_id=notebook_id)
        self.write_json({"id": notebook_id, "path": granted.path, "role": granted.role.label})


class ShareLinkPage(PageHandler):
    """The page a share link leads to: who shares what, and a button to open it."""

    def initialize(  # type: ignore[override]
        self,
        identity: IdentityProvider,
        session_days: float,
        sharing: Sharing,
        contents: ContentsManager,
        live: LiveSockets,
    ) -> None:
        super().initialize(identity, session_days)
        self.sharing = sharing
        self.contents = contents
        self.live = live

    async def get(self, code: str) -> None:
        self.require_user()
        _, notebook_id, role = await asyncio.to_thread(self.sharing.link_target, code)
        path = await self.contents.path_for_id(notebook_id)
        self.render("share.html", path=path, role=role.label, code=code)

    async def post(self, code: str) -> None:
        user = self.require_user()
        notebook_id, _ = await asyncio.to_thread(self.sharing.redeem_link, code, user)
        self.live.recheck_soon()
        self.redirect(f"/notebooks/{notebook_id}")
