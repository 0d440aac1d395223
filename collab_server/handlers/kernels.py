"""Running code and reviewing what ran: a notebook's kernel, its executions, its history.

Editors run cells; everyone in the room sees them queued, running and their
outputs in the shared document (see ``kernels/execution.py`` for its layout).

- ``POST /api/notebooks/<id>/execute`` ``{"cell_ids": [...]}``: queue cells
  (editor); ``202 {"execution_ids": [...]}``. The kernel starts if needed.
- ``POST /api/notebooks/<id>/complete`` ``{"code", "cursor_pos"}``: the
  kernel's completions (editor; cursor in code points, as Jupyter's
  protocol counts); ``POST .../inspect`` (``"detail_level": 0|1``): its help
  on the name at the cursor as plain text. Both start the kernel if needed.
- ``GET /api/kernelspecs``: the installed kernels (anyone logged in);
  ``PUT /api/notebooks/<id>/kernelspec`` ``{"name"}`` (editor): the
  notebook's kernel for everyone; a running kernel of another kind stops.
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
import re
import time
from pathlib import Path
from typing import Any

from tornado import web

from auth.identity import IdentityProvider
from auth.permissions import Action
from crdt.contents import ContentsManager
from kernels.errors import NoSuchKernelSpec
from kernels.history import ExecutionHistory
from kernels.pool import KernelOwner
from kernels.running import DEFAULT_KERNEL, NotebookKernels, Placement

from ..access import Authorizer
from ..notebooks import Notebooks
from .base import APIHandler

EXPORT_TYPES = {"csv": "text/csv; charset=UTF-8", "json": "application/json; charset=UTF-8"}


class KernelAPIHandler(APIHandler):
    def initialize(  # type: ignore[override]
        self,
        identity: IdentityProvider,
        authorizer: Authorizer,
        kernels: NotebookKernels,
        notebooks: Notebooks,
        contents: ContentsManager,
        history: ExecutionHistory,
    ) -> None:
        super().initialize(identity)
        self.authorizer = authorizer
        self.kernels = kernels
        self.notebooks = notebooks
        self.contents = contents
        self.history = history

    async def require(self, action: Action, notebook_id: str) -> str:
        """The notebook's path, if the user may do ``action`` to it."""
        return (await self.authorizer.require(self.user, action, notebook_id=notebook_id)).path

    def placement(self, path: str) -> Placement:
        """Where the notebook's kernel starts, if it must: its folder, as whom."""

        async def place() -> tuple[Path, KernelOwner]:
            folder = (await self.contents.resolve(path)).parent
            return folder, await self.notebooks.kernel_owner_of(path, self.user)

        return place


class ExecuteHandler(KernelAPIHandler):
    async def post(self, notebook_id: str) -> None:
        path = await self.require(Action.RUN, notebook_id)
        cell_ids = self.json_body().get("cell_ids")
        if (
            not isinstance(cell_ids, list)
            or not cell_ids
            or not all(isinstance(c, str) for c in cell_ids)
            or len(cell_ids) > 10_000
        ):
            raise web.HTTPError(400, 'give {"cell_ids": ["<cell id>", ...]}')
        placement = self.placement(path)
        ids = await self.kernels.run(notebook_id, path, placement, cell_ids, self.user.name)
        self.write_json({"execution_ids": ids}, status=202)


MAX_CODE = 1024 * 1024  # characters of a cell sent for completion or help
MAX_MATCHES = 1000
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class CodeHelpHandler(KernelAPIHandler):
    """What ``complete`` and ``inspect`` share: editors only, the code and the cursor."""

    async def code_and_cursor(self) -> tuple[str, int, dict[str, Any]]:
        body = self.json_body()
        code, cursor_pos = body.get("code"), body.get("cursor_pos")
        if (
            not isinstance(code, str)
            or len(code) > MAX_CODE
            or not isinstance(cursor_pos, int)
            or isinstance(cursor_pos, bool)
            or not 0 <= cursor_pos <= len(code)
        ):
            raise web.HTTPError(
                400, 'give {"code": "<text>", "cursor_pos": <0..len(code), in code points>}'
            )
        return code, cursor_pos, body


class CompleteHandler(CodeHelpHandler):
    """POST /api/notebooks/<id>/complete: the kernel's completions at the cursor."""

    async def post(self, notebook_id: str) -> None:
        path = await self.require(Action.RUN, notebook_id)
        code, cursor_pos, _ = await self.code_and_cursor()
        reply = await self.kernels.complete(
            notebook_id, path, self.placement(path), code, cursor_pos
        )
        matches = [m for m in reply.get("matches", []) if isinstance(m, str)][:MAX_MATCHES]
        types = reply.get("metadata", {}).get("_jupyter_types_experimental", [])
        kinds = {t.get("text"): t.get("type") for t in types if isinstance(t, dict)}
        self.write_json(
            {
                "matches": [{"text": m, "type": kinds.get(m) or ""} for m in matches],
                "cursor_start": reply.get("cursor_start", cursor_pos),
                "cursor_end": reply.get("cursor_end", cursor_pos),
            }
        )


class InspectHandler(CodeHelpHandler):
    """POST /api/notebooks/<id>/inspect: the kernel's help on the name at the cursor."""

    async def post(self, notebook_id: str) -> None:
        path = await self.require(Action.RUN, notebook_id)
        code, cursor_pos, body = await self.code_and_cursor()
        detail = 1 if body.get("detail_level") == 1 else 0
        reply = await self.kernels.inspect(
            notebook_id, path, self.placement(path), code, cursor_pos, detail
        )
        text = reply.get("data", {}).get("text/plain", "") if reply.get("found") else ""
        self.write_json({"found": bool(text), "text": ANSI.sub("", str(text))})


class KernelSpecsHandler(KernelAPIHandler):
    """GET /api/kernelspecs: the kernels a notebook may use, in Jupyter Server's shape."""

    async def get(self) -> None:
        specs = await asyncio.to_thread(self.kernels.pool.kernel_specs)
        self.write_json(
            {
                "default": DEFAULT_KERNEL,
                "kernelspecs": {
                    s.name: {
                        "name": s.name,
                        "spec": {"display_name": s.display_name, "language": s.language},
                        "resources": {},
                    }
                    for s in specs
                },
            }
        )


class NotebookKernelSpecHandler(KernelAPIHandler):
    """PUT /api/notebooks/<id>/kernelspec ``{"name"}``: the notebook's kernel, for everyone."""

    async def put(self, notebook_id: str) -> None:
        await self.require(Action.RESTART, notebook_id)
        name = self.json_body().get("name")
        if not isinstance(name, str) or not name:
            raise web.HTTPError(400, 'give {"name": "<kernelspec name>"}')
        specs = {s.name: s for s in await asyncio.to_thread(self.kernels.pool.kernel_specs)}
        if name not in specs:
            raise NoSuchKernelSpec(name)
        await self.kernels.choose_kernelspec(notebook_id, specs[name], self.user.name)
        self.write_json({"kernel": self.kernels.status(notebook_id), "kernelspec": name})


class KernelHandler(KernelAPIHandler):
    async def get(self, notebook_id: str) -> None:
        await self.require(Action.VIEW, notebook_id)
        self.write_json({"kernel": self.kernels.status(notebook_id)})


KERNEL_ACTIONS = {
    "interrupt": Action.INTERRUPT,
    "restart": Action.RESTART,
    "shutdown": Action.RESTART,
}


class KernelActionHandler(KernelAPIHandler):
    async def post(self, notebook_id: str, action: str) -> None:
        await self.require(KERNEL_ACTIONS[action], notebook_id)
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
        await self.require(Action.VIEW, notebook_id)  # 404 before anything is looked up
        body = self.json_body()
        execution_id, value = body.get("execution_id"), body.get("value")
        if not isinstance(execution_id, str) or not isinstance(value, str):
            raise web.HTTPError(400, 'give {"execution_id": "...", "value": "..."}')
        runner = self.kernels.input_requester(notebook_id, execution_id)
        await self.authorizer.require(
            self.user, Action.ANSWER_INPUT, notebook_id=notebook_id, subject=runner
        )
        self.kernels.answer_input(notebook_id, execution_id, value)
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
        await self.require(Action.SEE_HISTORY, notebook_id)
        await self.write_page(notebook_id=notebook_id)


class AllHistoryHandler(HistoryQuery):
    """Your own executions in the notebooks you may still see; everybody's for admins."""

    async def get(self) -> None:
        requested = self.get_query_arguments("user")
        everyone = self.authorizer.allows_server(self.user, Action.SEE_EVERYONES_HISTORY)
        if everyone or (requested and requested != [self.user.name]):
            self.authorizer.require_server(self.user, Action.SEE_EVERYONES_HISTORY)
            await self.write_page()
            return
        ran_in = await self.history.notebooks_of(self.user.name)
        visible = await self.authorizer.allowed_notebooks(self.user, Action.SEE_HISTORY, ran_in)
        await self.write_page(username=self.user.name, notebook_id=sorted(visible))


class HistoryExportHandler(HistoryQuery):
    async def get(self, notebook_id: str) -> None:
        path = await self.require(Action.SEE_HISTORY, notebook_id)
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
        await self.require(Action.REBUILD, notebook_id)
        body = self.json_body()
        ids, target = body.get("execution_ids"), body.get("path")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise web.HTTPError(400, 'give {"execution_ids": ["...", ...], "path": "..."}')
        if not isinstance(target, str) or not target.endswith(".ipynb"):
            raise web.HTTPError(400, "path must name the new .ipynb file")
        await self.authorizer.require(self.user, Action.CREATE, path=target.strip("/"))
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
