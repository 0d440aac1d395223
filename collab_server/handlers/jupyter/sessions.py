"""Jupyter Server's sessions API, ``/jupyter/api/sessions``: a notebook's one shared kernel.

Every notebook has at most one kernel, shared by everyone in it, so a
session is the notebook's: its id is derived from the notebook id (stable
across renames and restarts), and two clients POSTing a session for one path
get the same session and kernel.

- ``GET``: the sessions of the notebooks the user may see that have a kernel.
- ``POST {"path", "type": "notebook", "kernel": {"name"}}``: the notebook's
  session, starting its kernel if it has none (editors; a viewer gets the
  session only if a kernel already runs, else 403). ``kernel.name`` is used
  only when no kernel runs: it becomes the notebook's kernelspec for
  everyone, as our kernel selector does. Only notebooks have sessions
  (consoles and files: 400).
- ``GET/PATCH/DELETE /<session id>``: one session. PATCH with another
  ``kernel.name`` changes the notebook's kernel for everyone (editors), any
  other change is ignored (paths follow renames by themselves). DELETE shuts
  the shared kernel down for everyone (editors, as our kernel shutdown);
  a JupyterLab closing its tab does not send it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from tornado import web

from auth.permissions import Action, PermissionDenied, Role
from crdt.errors import NotebookNotFound
from kernels.errors import NoSuchKernelSpec

from ..kernels import KernelAPIHandler
from .contents import iso, jupyter_user

SESSION_ID = r"(?P<session_id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"


def session_id(notebook_id: str) -> str:
    """The session of a notebook: its id written as a UUID."""
    return str(uuid.UUID(hex=notebook_id))


class SessionAPIHandler(KernelAPIHandler):
    async def prepare(self) -> None:
        self.user = await jupyter_user(self)

    def session_model(self, notebook_id: str, path: str, kernel: dict[str, Any]) -> dict[str, Any]:
        """Jupyter's session model for a notebook and its kernel status."""
        room = self.notebooks.rooms.get(notebook_id)
        name = path.rpartition("/")[2]
        return {
            "id": session_id(notebook_id),
            "path": path,
            "name": name,
            "type": "notebook",
            "kernel": {
                "id": kernel["id"],
                "name": kernel["name"],
                "last_activity": iso(time.time()),
                "execution_state": kernel["status"],
                "connections": len(room.connections) if room is not None else 0,
            },
            "notebook": {"path": path, "name": name},
        }

    async def notebook_of(self, session: str) -> tuple[str, str, Role]:
        """(notebook id, path, role) of a session the user may see (404 otherwise)."""
        notebook_id = uuid.UUID(session).hex
        try:
            granted = await self.authorizer.require(self.user, Action.VIEW, notebook_id=notebook_id)
        except NotebookNotFound:
            raise web.HTTPError(404, "no session %s", session) from None
        return notebook_id, granted.path, granted.role

    async def choose(self, notebook_id: str, name: str) -> None:
        """Make kernelspec ``name`` the notebook's (422 if there is no such kernelspec)."""
        specs = {s.name: s for s in await asyncio.to_thread(self.kernels.pool.kernel_specs)}
        if name not in specs:
            raise NoSuchKernelSpec(name)
        await self.kernels.choose_kernelspec(notebook_id, specs[name], self.user.name)

    def requested_kernel(self, body: dict[str, Any]) -> str | None:
        kernel = body.get("kernel")
        name = kernel.get("name") if isinstance(kernel, dict) else None
        if name is not None and (not isinstance(name, str) or not name):
            raise web.HTTPError(400, 'kernel must be {"name": "<kernelspec name>"}')
        return name


class SessionsHandler(SessionAPIHandler):
    async def get(self) -> None:
        running = self.kernels.with_kernels()
        visible = await self.authorizer.allowed_notebooks(self.user, Action.VIEW, running)
        sessions = []
        for notebook_id, granted in sorted(visible.items(), key=lambda item: item[1].path):
            status = self.kernels.status(notebook_id)
            if status is not None:
                sessions.append(self.session_model(notebook_id, granted.path, status))
        self.write_json(sessions)

    async def post(self) -> None:
        body = self.json_body()
        path = body.get("path")
        if path is None and isinstance(body.get("notebook"), dict):
            path = body["notebook"].get("path")  # the pre-5.0 request shape
        if not isinstance(path, str) or not path.strip("/"):
            raise web.HTTPError(400, 'give {"path": "<notebook path>", "type": "notebook"}')
        path = path.strip("/")
        if body.get("type", "notebook") != "notebook" or not path.endswith(".ipynb"):
            raise web.HTTPError(400, "only notebooks have sessions here (no consoles or files)")
        name = self.requested_kernel(body)
        granted = await self.authorizer.require(self.user, Action.VIEW, path=path)
        notebook_id = await self.contents.id_for_path(path)
        status = self.kernels.status(notebook_id)
        if status is None:
            if granted.role < Role.EDITOR:
                raise PermissionDenied("the notebook has no kernel, and only editors may start it")
            if name is not None:
                await self.choose(notebook_id, name)
            status = await self.kernels.start(notebook_id, path, self.placement(path))
        self.write_json(self.session_model(notebook_id, path, status), status=201)


class SessionHandler(SessionAPIHandler):
    async def get(self, session_id: str) -> None:
        notebook_id, path, _ = await self.notebook_of(session_id)
        status = self.kernels.status(notebook_id)
        if status is None:
            raise web.HTTPError(404, "no session %s: the notebook has no kernel", session_id)
        self.write_json(self.session_model(notebook_id, path, status))

    async def patch(self, session_id: str) -> None:
        notebook_id, path, _ = await self.notebook_of(session_id)
        name = self.requested_kernel(self.json_body())
        status = self.kernels.status(notebook_id)
        if name is not None and (status is None or status["name"] != name):
            await self.authorizer.require(self.user, Action.RESTART, notebook_id=notebook_id)
            await self.choose(notebook_id, name)
            status = await self.kernels.start(notebook_id, path, self.placement(path))
        if status is None:
            raise web.HTTPError(404, "no session %s: the notebook has no kernel", session_id)
        self.write_json(self.session_model(notebook_id, path, status))

    async def delete(self, session_id: str) -> None:
        notebook_id, _, _ = await self.notebook_of(session_id)
        await self.authorizer.require(self.user, Action.RESTART, notebook_id=notebook_id)
        if self.kernels.status(notebook_id) is not None:
            await self.kernels.shutdown(notebook_id, self.user.name)
        self.set_status(204)
        self.finish()
