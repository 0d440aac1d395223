"""The start page: your notebooks and those shared with you (the full web app replaces it)."""

from __future__ import annotations

import asyncio

from auth.sharing import Sharing
from crdt.contents import ContentsManager
from crdt.errors import NotebookNotFound

from ..access import Access
from .pages import PageHandler


class HomeHandler(PageHandler):
    """GET /: the logged-in user's notebooks and the ones shared with them."""

    contents: ContentsManager
    sharing: Sharing
    access: Access

    async def get(self) -> None:
        user = self.require_user()
        await self.access.ensure_home(user)
        mine = [e for e in await self.contents.list_dir(user.name)]
        roles = await asyncio.to_thread(self.sharing.shared_with, user)
        shared = []
        for notebook_id, role in roles.items():
            try:
                shared.append((await self.contents.path_for_id(notebook_id), role.label))
            except NotebookNotFound:
                continue
        students = await asyncio.to_thread(self.sharing.students_of, user)
        self.render("home.html", mine=mine, shared=sorted(shared), students=students)
