"""The authorizer: gathers the facts about a notebook or folder and asks the rules.

The rules themselves are in :mod:`auth.permissions`; this is the one place
handlers ask them. A user with no access at all is told the thing does not
exist (``NotebookNotFound``), so ids and paths do not leak; a user who may
see it but not do this gets ``PermissionDenied``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from auth.identity import User
from auth.permissions import SERVER, Action, Hidden, Resource, Role, check, is_authorized, role_of
from auth.sharing import Sharing
from crdt.contents import NOTEBOOK_SUFFIX, ContentsManager
from crdt.errors import NotebookNotFound


@dataclass(frozen=True, slots=True)
class Granted:
    """What a successful check found: the thing's path and the user's role on it."""

    path: str
    role: Role
    tutor: bool = False  # the user tutors the owner of ``path``


class Authorizer:
    """``require(user, action, ...)`` for every decision a handler makes.

    Methods look up the notebook's path (by id) and the grants the database
    holds (shares, links, tutor groups), then apply the rules. A user's own
    folder, and admins' access, need no database round trip.
    """

    def __init__(self, contents: ContentsManager, sharing: Sharing) -> None:
        self.contents = contents
        self.sharing = sharing

    async def require(
        self,
        user: User,
        action: Action,
        *,
        notebook_id: str | None = None,
        path: str | None = None,
        subject: str = "",
        target: str = "",
    ) -> Granted:
        """Check ``action`` on a notebook (by id) or on whatever is at ``path``.

        Returns what was checked. Raises NotebookNotFound if the user may not
        know it exists, PermissionDenied if they may see it but not do this.
        """
        resource = await self._resource(user, action, notebook_id, path, subject, target)
        try:
            check(user, action, resource)
        except Hidden:
            what = f"no notebook with id {notebook_id!r}" if notebook_id else f"no file or folder {path!r}"
            raise NotebookNotFound(what) from None
        role = role_of(user, resource)
        assert resource.path is not None and role is not None
        return Granted(resource.path, role, resource.tutor)

    async def is_authorized(
        self, user: User, action: Action, *, notebook_id: str | None = None, path: str | None = None
    ) -> bool:
        """Whether ``require`` would succeed (a missing notebook is simply not allowed)."""
        try:
            await self.require(user, action, notebook_id=notebook_id, path=path)
        except (NotebookNotFound, PermissionError):
            return False
        return True

    async def allowed_notebooks(
        self, user: User, action: Action, notebook_ids: Iterable[str]
    ) -> dict[str, Granted]:
        """The notebooks among ``notebook_ids`` the user may do ``action`` to, for listings."""
        allowed: dict[str, Granted] = {}
        for notebook_id in notebook_ids:
            try:
                allowed[notebook_id] = await self.require(user, action, notebook_id=notebook_id)
            except (NotebookNotFound, PermissionError):
                continue
        return allowed

    def require_server(self, user: User, action: Action) -> None:
        """A server-wide action (managing users, everyone's history)."""
        check(user, action, SERVER)

    def allows_server(self, user: User, action: Action) -> bool:
        return is_authorized(user, action, SERVER)

    async def _resource(
        self,
        user: User,
        action: Action,
        notebook_id: str | None,
        path: str | None,
        subject: str,
        target: str,
    ) -> Resource:
        if notebook_id is not None:
            path = await self.contents.path_for_id(notebook_id)
        if path is None:
            raise ValueError("give a notebook id or a path")
        path = path.strip("/")
        bare = Resource(path, subject=subject, target=target)
        if role_of(user, bare) == Role.OWNER:
            return bare  # the user's own folder, or an admin: no database round trip
        if notebook_id is None:
            if action == Action.CREATE:
                return bare  # a new path: nothing is shared on it
            if not path.endswith(NOTEBOOK_SUFFIX):
                await self.contents.resolve(path)  # InvalidPath for a path never allowed
                return bare  # folders and other files are their owner's alone
            try:
                notebook_id = await self.contents.id_for_path(path)
            except NotebookNotFound:
                return bare
        shared, tutor = await asyncio.to_thread(self.sharing.grants, user, notebook_id, path)
        return Resource(path, shared, tutor, subject, target)
