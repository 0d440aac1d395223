"""Running code and reviewing what ran: a notebook's kernel, its executions, its history.

Editors run cells; everyone in the room sees them queued, running and their
outputs in the shared document (see ``kernels/execution.py`` for its layout).

- ``POST /api/notebooks/<id>/execute`` ``{"cell_ids": [...]}``: queue cells
  (editor); ``202 {"execution_ids": [...]}``. The kernel starts if needed.
- ``GET /api/notebooks/<id>/kernel``: ``{"kernel": {...} or null}`` (viewer).
- ``POST /api/notebooks/<id>/kernel/interrupt|restart|shutdown`` (editor).
- ``POST /api/notebooks/<id>/input`` ``{"execution_id", "value"}``: answer an
  ``input()`` prompt; only the user who ran that cell may.
- ``GET /api/notebooks/<id>/history``: one page of executions (viewer);
  filters ``user``, ``status`` (repeatable), ``since``, ``until`` (seconds since
  the epoch), ``q`` (text in the code), ``limit``, ``cursor``, ``order=oldest``.
- ``GET /api/notebooks/<id>/history/export?format=csv|json``: the whole
  (filtered) history, streamed.
- ``POST /api/notebooks/<id>/history/rebuild`` ``{"execution_ids": [...],
  "path": "<your folder>/<name>.ipynb"}``: a new notebook made of those
  executions, in that order; ``201`` with its entry.
- ``GET /api/history``: the same query across notebooks: yours, or
  everybody's for admins.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

from tornado import web

from auth.sharing import Role, owner_name
from auth.users import Users
from crdt.contents import ContentsManager
from kernels.history import ExecutionHistory
from kernels.pool import KernelOwner
from kernels.running import NotebookKernels

from ..access import Access
from .base import APIHandler

EXPORT_TYPES = {"csv": "text/csv; charset=UTF-8", "json": "application/json; charset=UTF-8"}


class KernelAPIHandler(APIHandler):
    access: Access
    kernels: NotebookKernels
    contents: ContentsManager
    users: Users
    history: ExecutionHistory

    async def editor(self, notebook_id: str) -> str:
        return await self.access.require_notebook(self.user, notebook_id, Role.EDITOR)

    async def kernel_owner(self, path: str) -> KernelOwner:
        """Whose account the notebook's kernel runs as: the owner of its folder."""
        name = owner_name(path)
        user = self.user if name == self.user.name else await asyncio.to_thread(self.users.get, name)
        return KernelOwner(name, unix=user.provider == "pam")


class ExecuteHandler(KernelAPIHandler):
    async def post(self, notebook_id: str) -> None:
        path = await self.editor(notebook_id)
        cell_ids = self.json_body().get("cell_ids")
        if (
            not isinstance(cell_ids, list)
            or not cell_ids
            or not all(isinstance(c, str) for c in cell_ids)
            or len(cell_ids) > 10_000
        ):
            raise web.HTTPError(400, 'give {"cell_ids": ["<cell id>", ...]}')

        async def placement() -> tuple[Path, KernelOwner]:
            return (await self.contents.resolve(path)).parent, await self.kernel_owner(path)

        ids = await self.kernels.run(notebook_id, path, placement, cell_ids, self.user.name)
        self.write_json({"execution_ids": ids}, status=202)


class KernelHandler(KernelAPIHandler):
    async def get(self, notebook_id: str) -> None:
        await self.access.require_notebook(self.user, notebook_id, Role.VIEWER)
        self.write_json({"kernel": self.kernels.status(notebook_id)})


class KernelActionHandler(KernelAPIHandler):
    async def post(self, notebook_id: str, action: str) -> None:
        await self.editor(notebook_id)
        if action == "interrupt":
            await self.kernels.interrupt(notebook_id, self.user.name)
        elif action == "restart":
            await self.kernels.restart(notebook_id, self.user.name)
        else:
            await self.kernels.shutdown(notebook_id, self.user.name)
        self.set_status(204)
        self.finish()


class InputHandler(KernelAPIHandler):
    async def post(self, notebook_id: str) -> None:
        await self.editor(notebook_id)
        body = self.json_body()
        execution_id, value = body.get("execution_id"), body.get("value")
        if not isinstance(execution_id, str) or not isinstance(value, str):
            raise web.HTTPError(400, 'give {"execution_id": "...", "value": "..."}')
        self.kernels.answer_input(notebook_id, self.user.name, execution_id, value)
        self.set_status(204)
        self.finish()


class HistoryQuery(KernelAPIHandler):
    """The filters of a history request, from its query string."""

    def filters(self, default_order: str = "newest") -> dict[str, Any]:
        def number(name: str) -> float | None:
            text = self.get_query_argument(name, "")
            if not text:
                return None
            try:
                return float(text)
            except ValueError:
                raise web.HTTPError(400, f"{name} must be seconds since the epoch") from None

        return {
            "username": self.get_query_arguments("user") or None,
            "status": self.get_query_arguments("status") or None,
            "since": number("since"),
            "until": number("until"),
            "text": self.get_query_argument("q", "") or None,
            "oldest_first": self.get_query_argument("order", default_order) == "oldest",
        }

    async def write_page(self, **scope: Any) -> None:
        try:
            limit = int(self.get_query_argument("limit", "50"))
        except ValueError:
            raise web.HTTPError(400, "limit must be a number") from None
        rows, cursor = await self.history.query(
            **{**self.filters(), **scope},
            limit=limit,
            cursor=self.get_query_argument("cursor", "") or None,
        )
        self.write_json({"executions": [r.to_json() for r in rows], "next_cursor": cursor})


class NotebookHistoryHandler(HistoryQuery):
    async def get(self, notebook_id: str) -> None:
        await self.access.require_notebook(self.user, notebook_id, Role.VIEWER)
        await self.write_page(notebook_id=notebook_id)


class AllHistoryHandler(HistoryQuery):
    async def get(self) -> None:
        if self.user.admin:
            await self.write_page()
            return
        requested = self.get_query_arguments("user")
        if requested and requested != [self.user.name]:
            raise web.HTTPError(403, "only admins can see other people's executions")
        await self.write_page(username=self.user.name)


class HistoryExportHandler(HistoryQuery):
    async def get(self, notebook_id: str) -> None:
        path = await self.access.require_notebook(self.user, notebook_id, Role.VIEWER)
        kind = self.get_query_argument("format", "csv")
        if kind not in EXPORT_TYPES:
            raise web.HTTPError(400, 'format must be "csv" or "json"')
        export = self.history.export_csv if kind == "csv" else self.history.export_json
        chunks = export(notebook_id=notebook_id, **self.filters(default_order="oldest"))
        name = Path(path).stem.replace('"', "") + f"-history.{kind}"
        self.set_header("Content-Type", EXPORT_TYPES[kind])
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        async for chunk in chunks:
            self.write(chunk)
            await self.flush()
        self.finish()


class RebuildHandler(KernelAPIHandler):
    async def post(self, notebook_id: str) -> None:
        await self.access.require_notebook(self.user, notebook_id, Role.VIEWER)
        body = self.json_body()
        ids, target = body.get("execution_ids"), body.get("path")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise web.HTTPError(400, 'give {"execution_ids": ["...", ...], "path": "..."}')
        if not isinstance(target, str) or not target.endswith(".ipynb"):
            raise web.HTTPError(400, "path must name the new .ipynb file")
        self.access.require_folder(self.user, target.strip("/"))
        executions = await self.history.get(ids)
        if any(e.notebook_id != notebook_id for e in executions):
            raise web.HTTPError(400, "every execution must come from this notebook")
        nb = await self.history.rebuild_notebook(ids)
        nb.setdefault("metadata", {})["collab_server"] = {
            "rebuilt_from": notebook_id,
            "rebuilt_at": time.time(),
            "rebuilt_by": self.user.name,
        }
        entry = await self.contents.create_notebook(target.strip("/"), nb)
        self.write_json(dataclasses.asdict(entry), status=201)
