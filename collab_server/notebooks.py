"""What happens to a notebook across the services: homes, renames, deletes, reads.

A rename or delete touches the file tree, the open room, the notebook's
kernel and its shares; this service does each in the right order so that
handlers only parse, authorize and answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Self

from auth.identity import User
from auth.permissions import owner_name
from auth.sharing import Sharing
from auth.users import Users
from crdt.contents import ContentsManager, Entry
from crdt.errors import AlreadyExists, NotebookNotFound
from crdt.notebook_io import NotebookWorker, notebook_from_state, serialize_notebook
from crdt.rooms import RoomManager
from crdt.trash import Trash, TrashedItem
from kernels.identity import kernel_account
from kernels.pool import KernelOwner, KernelPool
from kernels.running import NotebookKernels


log = logging.getLogger(__name__)


class UploadTooLarge(ValueError):
    """An uploaded file is larger than ``max_upload_bytes``."""


PURGE_INTERVAL = 3600.0  # seconds between checks for items past their days in the trash


def kernel_owner(user: User, users: Users) -> KernelOwner:
    """The account a user's kernels run as, with their server groups (see
    :func:`kernels.identity.kernel_account`). Reads the database: call it in a thread."""
    return kernel_account(user.name, user.provider, users.groups_of(user.id))


class Notebooks:
    """The notebook operations that span contents, rooms, kernels and sharing."""

    def __init__(
        self,
        contents: ContentsManager,
        rooms: RoomManager,
        kernels: NotebookKernels,
        kernel_pool: KernelPool,
        sharing: Sharing,
        users: Users,
        worker: NotebookWorker,
        trash_days: float = 30.0,
        max_upload_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.contents = contents
        self.rooms = rooms
        self.kernels = kernels
        self.kernel_pool = kernel_pool
        self.sharing = sharing
        self.users = users
        self.worker = worker
        self._homes: set[str] = set()  # folders known to exist and prepared
        self.trash = Trash(contents)
        self.trash_days = trash_days
        """Days a deleted item stays in the trash; 0 deletes at once."""
        self._purger: asyncio.Task[None] | None = None
        self.max_upload_bytes = max_upload_bytes

    # ---- homes -----------------------------------------------------------------------

    async def ensure_home(self, user: User) -> None:
        """Create the user's own folder if it does not exist yet, ready for their kernels."""
        if user.name in self._homes:
            return
        try:
            await self.contents.get(user.name)
        except NotebookNotFound:
            with contextlib.suppress(AlreadyExists):  # a concurrent first request made it
                await self.contents.make_dir(user.name)
        # Only the owner's kernels (running as them) may enter it.
        folder = await self.contents.resolve(user.name)
        owner = kernel_account(user.name, user.provider)
        await asyncio.to_thread(self.kernel_pool.prepare_home, folder, owner)
        self._homes.add(user.name)

    async def logged_in(self, user: User) -> None:
        """A user just logged in: their folder exists and a kernel is warming up for them."""
        await self.ensure_home(user)
        self.kernel_pool.prewarm(await asyncio.to_thread(kernel_owner, user, self.users))

    async def kernel_owner_of(self, path: str, runner: User) -> KernelOwner:
        """Whose account the kernel of the notebook at ``path`` runs as: its folder's owner."""
        name = owner_name(path)
        owner = runner if name == runner.name else await asyncio.to_thread(self.users.get, name)
        return await asyncio.to_thread(kernel_owner, owner, self.users)

    # ---- cascades --------------------------------------------------------------------

    async def rename(self, old_path: str, new_path: str) -> Entry:
        """Rename or move; open rooms and kernels follow the notebooks to their new paths."""
        ids = await self.contents.notebook_ids_under(old_path)
        async with self.rooms.holding_files(ids):
            entry, moved = await self.contents.rename(old_path, new_path)
            for notebook in moved:
                self.rooms.relocated(notebook.id, notebook.abs_path)
                self.kernels.relocated(notebook.id, notebook.path)
                room = self.rooms.get(notebook.id)
                if room is not None and not room.closing:
                    room.set_path(notebook.path)  # open tabs show the new name
        return entry

    async def delete(self, path: str, deleted_by: str) -> TrashedItem | None:
        """Delete a file or folder: to the trash, or for good when ``trash_days`` is 0.

        Its notebooks' rooms close (code 4404) either way; moved to the trash
        they are saved first and keep their ids and shares, to be restored.
        """
        ids = await self.contents.notebook_ids_under(path)
        if self.trash_days > 0:
            for notebook_id in ids:
                await self.rooms.notebook_trashed(notebook_id)
            return await self.trash.move_in(path, deleted_by)
        for notebook_id in ids:
            await self.rooms.notebook_deleted(notebook_id)
            await asyncio.to_thread(self.sharing.forget_notebook, notebook_id)
        await self.contents.delete(path)
        if "/" not in path.strip("/"):
            self._homes.discard(path.strip("/"))  # recreated on the user's next request
        return None

    # ---- the trash -------------------------------------------------------------------

    async def restore(self, trash_id: str) -> Entry:
        """Put a trashed item back where it was (AlreadyExists if the path was taken)."""
        return await self.contents.get(await self.trash.restore(trash_id))

    async def delete_for_good(self, trash_id: str) -> None:
        """Empty one item of the trash: its files, ids and shares go."""
        for notebook_id in await self.trash.delete(trash_id):
            await asyncio.to_thread(self.sharing.forget_notebook, notebook_id)

    async def purge_trash(self) -> int:
        """Delete for good what has been in the trash longer than ``trash_days``; how many."""
        ids = await self.trash.purge(time.time() - self.trash_days * 24 * 3600)
        for notebook_id in ids:
            await asyncio.to_thread(self.sharing.forget_notebook, notebook_id)
        return len(ids)

    async def _purge_now_and_then(self) -> None:
        while True:
            try:
                await self.purge_trash()
            except Exception:
                log.exception("emptying the trash failed; trying again in an hour")
            await asyncio.sleep(PURGE_INTERVAL)

    async def __aenter__(self) -> Self:
        if self.trash_days > 0:
            self._purger = asyncio.create_task(self._purge_now_and_then(), name="trash-purge")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._purger is not None:
            self._purger.cancel()
            await asyncio.gather(self._purger, return_exceptions=True)

    async def upload(self, path: str, body: bytes, overwrite: bool) -> Entry:
        """Store an uploaded file; an .ipynb replacing an open notebook reloads it for everyone.

        UploadTooLarge beyond ``max_upload_bytes``; nothing is written then.
        """
        if len(body) > self.max_upload_bytes:
            raise UploadTooLarge(
                f"the file is {len(body):,} bytes; uploads may be {self.max_upload_bytes:,} at most"
            )
        if not path.endswith(".ipynb"):
            return await self.contents.upload_file(path, body, overwrite=overwrite)
        entry = await self.contents.upload_notebook(path, body, overwrite=overwrite)
        room = self.rooms.get(entry.id) if overwrite and entry.id is not None else None
        if room is not None:
            async with room.disk_lock:
                await room.load_if_changed_on_disk()
        return entry

    async def current_bytes(self, notebook_id: str) -> bytes:
        """The notebook as .ipynb as it is now: its live document if open, else its file."""
        room = self.rooms.get(notebook_id)
        if room is not None and not room.closing:
            nb = await self.worker.run(notebook_from_state, room.doc.get_update())
            return await self.worker.run(serialize_notebook, nb)
        return await self.contents.read_bytes(notebook_id)
