"""What a user may do with a notebook or folder: identity meets sharing and the file tree.

Every user's notebooks live in a folder named after them at the root
(``alice/...``). Folders are private to their owner (and admins); a
notebook is reachable by anyone it is shared with. Someone with no access
at all is told the notebook does not exist, so ids and paths do not leak.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from auth.identity import User
from auth.sharing import PermissionDenied, Role, Sharing, owner_name
from crdt.contents import ContentsManager
from crdt.errors import AlreadyExists, NotebookNotFound


class Access:
    """Authorization checks for handlers: each returns what it checked or raises.

    Raises NotebookNotFound when the user may not even know the thing exists,
    PermissionDenied when they may see it but not do this.
    """

    def __init__(
        self,
        contents: ContentsManager,
        sharing: Sharing,
        prepare_home: Callable[[Path, User], None] | None = None,
    ) -> None:
        self.contents = contents
        self.sharing = sharing
        self.prepare_home = prepare_home
        self._homes: set[str] = set()  # folders known to exist and prepared

    async def notebook_role(self, user: User, notebook_id: str) -> tuple[Role, str]:
        """(role, path) of the user on a notebook; NotebookNotFound if they have none."""
        path = await self.contents.path_for_id(notebook_id)
        if self.owns_folder(user, path):
            return Role.OWNER, path  # no database round trip
        role = await asyncio.to_thread(self.sharing.role_of, user, notebook_id, path)
        if role is None:
            raise NotebookNotFound(f"no notebook with id {notebook_id!r}")
        return role, path

    async def require_notebook(self, user: User, notebook_id: str, role: Role) -> str:
        """The notebook's path, if the user has at least ``role`` on it."""
        actual, path = await self.notebook_role(user, notebook_id)
        if actual < role:
            raise PermissionDenied(f"you need the {role.label} role on this notebook")
        return path

    def owns_folder(self, user: User, path: str) -> bool:
        """Whether ``path`` lies in the user's own folder (admins: anywhere)."""
        return user.admin or (path != "" and owner_name(path) == user.name)

    def require_folder(self, user: User, path: str) -> None:
        """Writing at ``path`` (create, upload, move to, or list a folder) needs its owner."""
        if not self.owns_folder(user, path):
            raise PermissionDenied("only the owner of this folder can do that")

    async def require_path(self, user: User, path: str, role: Role) -> None:
        """``role`` on whatever is at ``path``: a notebook's sharing, or folder ownership.

        For a folder, or anything in someone else's folder that is not a
        notebook shared with the user, a user without access gets
        NotebookNotFound.
        """
        if self.owns_folder(user, path):
            return
        try:
            notebook_id = await self.contents.id_for_path(path)
        except NotebookNotFound:
            raise NotebookNotFound(f"no file or folder {path!r}") from None
        await self.require_notebook(user, notebook_id, role)

    async def ensure_home(self, user: User) -> None:
        """Create the user's own folder if it does not exist yet."""
        if user.name in self._homes:
            return
        try:
            await self.contents.get(user.name)
        except NotebookNotFound:
            with contextlib.suppress(AlreadyExists):  # a concurrent first request made it
                await self.contents.make_dir(user.name)
        if self.prepare_home is not None:
            # Only the owner's kernels (running as them) may enter it.
            folder = await self.contents.resolve(user.name)
            await asyncio.to_thread(self.prepare_home, folder, user)
        self._homes.add(user.name)

    def forget_home(self, name: str) -> None:
        """A user's folder was deleted (by an admin): recreate it on their next request."""
        self._homes.discard(name)
