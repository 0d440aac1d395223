"""Who may call what: every endpoint of the README's API table, as every kind of user.

The matrix below has one row per endpoint of the README's "HTTP API" table
(plus the WebSocket endpoint) and one column per role on Alice's notebook:

    none     mallory: logged in, nothing shared with her
    viewer   vic: the notebook is shared with him as viewer
    editor   bob: shared as editor
    owner    alice: it is in her folder
    admin    ada: a server admin
    tutor    tina: in the ``tutors`` group, which watches ``class``, Alice's group

Each cell is the status the README documents for that user (the success
status of the endpoint, ``403`` for a role that does not allow the action,
``404`` for someone who may not know the notebook exists). Every request is
made for real against a running server, with fresh objects where it changes
something (a fresh notebook to delete, a fresh share to revoke, a running
kernel to shut down), so an allowed request really succeeds. Running code
starts one real kernel.

``test_endpoint_coverage`` ties the matrix to the README table and to the
server's URL table: an endpoint added to the routes (or the README) without
a row here fails, so nobody adds an endpoint without saying who may call it.
Requests without any credentials are checked for every row too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets
from pycrdt import Map
from tornado.web import create_signed_value

from collab_server.handlers.base import SESSION_COOKIE
from tests.conftest import Server, ServerFactory, wait_until

from .support import code_cell, json_error, small_notebook

README = Path(__file__).resolve().parents[2] / "README.md"
ROLES = ("none", "viewer", "editor", "owner", "admin", "tutor")
USERS = {
    "none": "mallory",
    "viewer": "vic",
    "editor": "bob",
    "owner": "alice",
    "admin": "ada",
    "tutor": "tina",
    "anonymous": None,
}
CHECKPOINT = "20240101T000000.000000.ipynb"


@dataclass
class Request:
    method: str
    url: str
    body: Any = None
    raw: bytes | None = None


@dataclass
class Context:
    server: Server
    notebook_id: str  # alice/matrix.ipynb
    execution_ids: list[str]

    async def fresh_notebook(self, name: str) -> str:
        notebook_id = await self.server.create_notebook(
            f"alice/{name}.ipynb", small_notebook(), editors=("bob",)
        )
        await self.server.share(notebook_id, "vic", "viewer")
        return notebook_id

    async def trashed(self, name: str) -> str:
        """The trash id of a notebook of Alice's she just deleted."""
        await self.fresh_notebook(name)
        deleted = await self.server.api("DELETE", f"/api/contents/alice/{name}.ipynb")
        assert deleted.code == 204, deleted.body
        items = json.loads((await self.server.api("GET", "/api/trash")).body)["items"]
        return str(next(i["id"] for i in items if i["path"] == f"alice/{name}.ipynb"))

    def room_map(self, name: str) -> dict[str, Any]:
        room = self.server.services.rooms.get(self.notebook_id)
        return {} if room is None else dict(room.doc.get(name, type=Map).to_py() or {})

    async def kernel_running(self) -> None:
        """Make sure the notebook has a kernel (by running a cell as Alice)."""
        if self.server.services.kernels.status(self.notebook_id) is None:
            response = await self.server.api(
                "POST", f"/api/notebooks/{self.notebook_id}/execute", {"cell_ids": ["run"]}
            )
            assert response.code == 202, response.body

    async def pending_input(self) -> str:
        """The execution id of an ``input()`` Bob is being asked; started if there is none."""
        for execution_id, request in self.room_map("input_requests").items():
            if request.get("for") == "bob":
                return str(execution_id)
        response = await self.server.api(
            "POST", f"/api/notebooks/{self.notebook_id}/execute", {"cell_ids": ["ask"]}, user="bob"
        )
        assert response.code == 202, response.body
        await wait_until(lambda: bool(self.room_map("input_requests")), timeout=60)
        return await self.pending_input()


Builder = Callable[[Context, str], Awaitable[Request]]


@dataclass(frozen=True)
class Row:
    endpoint: str  # as the README writes it, query strings left out
    expected: dict[str, int]
    build: Builder
    anonymous: int = 401  # without any credentials


MATRIX: dict[str, Row] = {}


def row(endpoint: str, expected: str, anonymous: int = 401) -> Callable[[Builder], Builder]:
    """Register a row: ``expected`` lists the statuses for none viewer editor owner admin tutor."""
    statuses = [int(s) for s in expected.split()]
    assert len(statuses) == len(ROLES), endpoint

    def register(build: Builder) -> Builder:
        assert endpoint not in MATRIX, endpoint
        MATRIX[endpoint] = Row(endpoint, dict(zip(ROLES, statuses)), build, anonymous)
        return build

    return register


def allowed(endpoint: str, role: str) -> bool:
    return role in ROLES and MATRIX[endpoint].expected[role] < 300


# ---- the matrix: statuses for none viewer editor owner admin tutor ------------------------


@row("GET /api/user", "200 200 200 200 200 200")
async def _user(ctx: Context, role: str) -> Request:
    return Request("GET", "/api/user")


@row("GET /api/contents/<folder>", "404 404 404 200 200 404")
async def _list_folder(ctx: Context, role: str) -> Request:
    return Request("GET", "/api/contents/alice")


@row("GET /api/contents/<path>.ipynb", "404 200 200 200 200 200")
async def _notebook_entry(ctx: Context, role: str) -> Request:
    return Request("GET", "/api/contents/alice/matrix.ipynb")


@row("PUT /api/contents/<folder>", "403 403 403 201 201 403")
async def _make_folder(ctx: Context, role: str) -> Request:
    return Request("PUT", f"/api/contents/alice/dir-{role}", {"type": "directory"})


@row("PUT /api/contents/<path>.ipynb", "403 403 403 201 201 403")
async def _make_notebook(ctx: Context, role: str) -> Request:
    return Request(
        "PUT", f"/api/contents/alice/new-{role}.ipynb", {"type": "notebook", "content": None}
    )


@row("PATCH /api/contents/<path>", "404 403 403 200 200 403")
async def _rename(ctx: Context, role: str) -> Request:
    await ctx.fresh_notebook(f"mv-{role}")
    return Request(
        "PATCH", f"/api/contents/alice/mv-{role}.ipynb", {"path": f"alice/moved-{role}.ipynb"}
    )


@row("DELETE /api/contents/<path>", "404 403 403 204 204 403")
async def _delete(ctx: Context, role: str) -> Request:
    await ctx.fresh_notebook(f"rm-{role}")
    return Request("DELETE", f"/api/contents/alice/rm-{role}.ipynb")


@row("GET /api/trash", "200 200 200 200 200 200")
async def _trash(ctx: Context, role: str) -> Request:
    return Request("GET", "/api/trash")


@row("POST /api/trash/<trash id>/restore", "404 404 404 200 200 404")
async def _restore(ctx: Context, role: str) -> Request:
    return Request("POST", f"/api/trash/{await ctx.trashed(f'restore-{role}')}/restore")


@row("DELETE /api/trash/<trash id>", "404 404 404 204 204 404")
async def _delete_for_good(ctx: Context, role: str) -> Request:
    return Request("DELETE", f"/api/trash/{await ctx.trashed(f'purge-{role}')}")


@row("PUT /api/upload/<path>", "403 403 403 201 201 403")
async def _upload(ctx: Context, role: str) -> Request:
    return Request(
        "PUT", f"/api/upload/alice/up-{role}.ipynb", raw=json.dumps(small_notebook()).encode()
    )


@row("GET /api/files/<path>", "404 404 404 200 200 404")
async def _file_download(ctx: Context, role: str) -> Request:
    # A file a kernel wrote next to the notebook: only its folder's owner (and admins) see it.
    (ctx.server.services.settings.root_dir / "alice" / "matrix.csv").write_text("a,b\n1,2\n")
    return Request("GET", "/api/files/alice/matrix.csv?download=1")


@row("GET /api/notebooks/<id>", "404 200 200 200 200 200")
async def _download(ctx: Context, role: str) -> Request:
    return Request("GET", f"/api/notebooks/{ctx.notebook_id}?download=1")


@row("GET /api/notebooks/<id>/checkpoints", "404 200 200 200 200 200")
async def _checkpoints(ctx: Context, role: str) -> Request:
    return Request("GET", f"/api/notebooks/{ctx.notebook_id}/checkpoints")


@row("GET /api/notebooks/<id>/checkpoints/<name>", "404 200 200 200 200 200")
async def _checkpoint(ctx: Context, role: str) -> Request:
    return Request("GET", f"/api/notebooks/{ctx.notebook_id}/checkpoints/{CHECKPOINT}")


@row("GET /api/notebooks/<id>/role", "404 200 200 200 200 200")
async def _role(ctx: Context, role: str) -> Request:
    return Request("GET", f"/api/notebooks/{ctx.notebook_id}/role")


@row("GET /api/shared", "200 200 200 200 200 200")
async def _shared(ctx: Context, role: str) -> Request:
    return Request("GET", "/api/shared")


@row("GET /api/notebooks/<id>/shares", "404 403 403 200 200 403")
async def _shares(ctx: Context, role: str) -> Request:
    return Request("GET", f"/api/notebooks/{ctx.notebook_id}/shares")


@row("POST /api/notebooks/<id>/shares", "404 403 403 201 201 403")
async def _share(ctx: Context, role: str) -> Request:
    return Request(
        "POST", f"/api/notebooks/{ctx.notebook_id}/shares", {"user": "sam", "role": "viewer"}
    )


@row("DELETE /api/notebooks/<id>/shares/<share id>", "404 403 403 204 204 403")
async def _unshare(ctx: Context, role: str) -> Request:
    share = await ctx.server.share(ctx.notebook_id, "sue", "viewer")
    return Request("DELETE", f"/api/notebooks/{ctx.notebook_id}/shares/{share['id']}")


@row("POST /api/notebooks/<id>/links", "404 403 403 201 201 403")
async def _link(ctx: Context, role: str) -> Request:
    return Request(
        "POST", f"/api/notebooks/{ctx.notebook_id}/links", {"role": "viewer", "expires_in": 3600}
    )


@row("DELETE /api/notebooks/<id>/links/<link id>", "404 403 403 204 204 403")
async def _revoke_link(ctx: Context, role: str) -> Request:
    link = await ctx.server.api(
        "POST", f"/api/notebooks/{ctx.notebook_id}/links", {"role": "viewer"}
    )
    assert link.code == 201
    return Request(
        "DELETE", f"/api/notebooks/{ctx.notebook_id}/links/{json.loads(link.body)['id']}"
    )


@row("GET /api/users", "403 403 403 403 200 403")
async def _users(ctx: Context, role: str) -> Request:
    return Request("GET", "/api/users")


@row("POST /api/users", "403 403 403 403 201 403")
async def _add_user(ctx: Context, role: str) -> Request:
    return Request("POST", "/api/users", {"name": f"new-{role}", "admin": False})


@row("PATCH /api/users/<name>", "403 403 403 403 200 403")
async def _set_admin(ctx: Context, role: str) -> Request:
    return Request("PATCH", "/api/users/sam", {"admin": False})


@row("DELETE /api/users/<name>", "403 403 403 403 204 403")
async def _remove_user(ctx: Context, role: str) -> Request:
    ctx.server.services.users.get_or_create(f"gone-{role}")
    return Request("DELETE", f"/api/users/gone-{role}")


@row("GET /api/groups", "403 403 403 403 200 403")
async def _groups(ctx: Context, role: str) -> Request:
    return Request("GET", "/api/groups")


@row("PUT /api/groups/<name>", "403 403 403 403 201 403")
async def _make_group(ctx: Context, role: str) -> Request:
    return Request("PUT", f"/api/groups/made-{role}")


@row("DELETE /api/groups/<name>", "403 403 403 403 204 403")
async def _delete_group(ctx: Context, role: str) -> Request:
    ctx.server.services.users.create_group(f"doomed-{role}")
    return Request("DELETE", f"/api/groups/doomed-{role}")


@row("PUT /api/groups/<name>/members/<user>", "403 403 403 403 204 403")
async def _add_member(ctx: Context, role: str) -> Request:
    ctx.server.services.users.create_group(f"join-{role}")
    return Request("PUT", f"/api/groups/join-{role}/members/sam")


@row("DELETE /api/groups/<name>/members/<user>", "403 403 403 403 204 403")
async def _remove_member(ctx: Context, role: str) -> Request:
    users = ctx.server.services.users
    users.create_group(f"leave-{role}")
    users.add_member(f"leave-{role}", "sam")
    return Request("DELETE", f"/api/groups/leave-{role}/members/sam")


@row("POST /api/notebooks/<id>/execute", "404 403 202 202 202 403")
async def _execute(ctx: Context, role: str) -> Request:
    return Request("POST", f"/api/notebooks/{ctx.notebook_id}/execute", {"cell_ids": ["run"]})


@row("POST /api/notebooks/<id>/complete", "404 403 200 200 200 403")
async def _complete(ctx: Context, role: str) -> Request:
    return Request("POST", f"/api/notebooks/{ctx.notebook_id}/complete", {"code": "pri", "cursor_pos": 3})


@row("POST /api/notebooks/<id>/inspect", "404 403 200 200 200 403")
async def _inspect(ctx: Context, role: str) -> Request:
    return Request("POST", f"/api/notebooks/{ctx.notebook_id}/inspect", {"code": "len", "cursor_pos": 3})


@row("GET /api/kernelspecs", "200 200 200 200 200 200")
async def _kernelspecs(ctx: Context, role: str) -> Request:
    return Request("GET", "/api/kernelspecs")


@row("PUT /api/notebooks/<id>/kernelspec", "404 403 200 200 200 403")
async def _kernelspec(ctx: Context, role: str) -> Request:
    return Request("PUT", f"/api/notebooks/{ctx.notebook_id}/kernelspec", {"name": "python3"})


@row("GET /api/notebooks/<id>/kernel", "404 200 200 200 200 200")
async def _kernel(ctx: Context, role: str) -> Request:
    return Request("GET", f"/api/notebooks/{ctx.notebook_id}/kernel")


@row("POST /api/notebooks/<id>/kernel/interrupt", "404 403 204 204 204 403")
async def _interrupt(ctx: Context, role: str) -> Request:
    if allowed("POST /api/notebooks/<id>/kernel/interrupt", role):
        await ctx.kernel_running()
    return Request("POST", f"/api/notebooks/{ctx.notebook_id}/kernel/interrupt")


@row("POST /api/notebooks/<id>/input", "404 403 204 403 403 403")
async def _input(ctx: Context, role: str) -> Request:
    # Only the user who ran the cell (Bob, the editor) may answer; the owner and admins may not.
    execution_id = await ctx.pending_input() if role in ROLES else "0" * 32
    return Request(
        "POST",
        f"/api/notebooks/{ctx.notebook_id}/input",
        {"execution_id": execution_id, "value": "x"},
    )


@row("POST /api/notebooks/<id>/kernel/restart", "404 403 204 204 204 403")
async def _restart(ctx: Context, role: str) -> Request:
    if allowed("POST /api/notebooks/<id>/kernel/restart", role):
        await ctx.kernel_running()
    return Request("POST", f"/api/notebooks/{ctx.notebook_id}/kernel/restart")


@row("POST /api/notebooks/<id>/kernel/shutdown", "404 403 204 204 204 403")
async def _shutdown(ctx: Context, role: str) -> Request:
    if allowed("POST /api/notebooks/<id>/kernel/shutdown", role):
        await ctx.kernel_running()
    return Request("POST", f"/api/notebooks/{ctx.notebook_id}/kernel/shutdown")


@row("GET /api/notebooks/<id>/history", "404 200 200 200 200 200")
async def _history(ctx: Context, role: str) -> Request:
    return Request("GET", f"/api/notebooks/{ctx.notebook_id}/history?limit=5")


@row("GET /api/notebooks/<id>/history/export", "404 200 200 200 200 200")
async def _export(ctx: Context, role: str) -> Request:
    return Request("GET", f"/api/notebooks/{ctx.notebook_id}/history/export?format=json")


@row("POST /api/notebooks/<id>/history/rebuild", "404 201 201 201 201 201")
async def _rebuild(ctx: Context, role: str) -> Request:
    user = USERS[role] or "nobody"
    return Request(
        "POST",
        f"/api/notebooks/{ctx.notebook_id}/history/rebuild",
        {"execution_ids": ctx.execution_ids[:1], "path": f"{user}/rebuilt-{role}.ipynb"},
    )


@row("GET /api/history", "200 200 200 200 200 200")
async def _all_history(ctx: Context, role: str) -> Request:
    return Request("GET", "/api/history")


@row("GET /api/presence", "200 200 200 200 200 200")
async def _presence(ctx: Context, role: str) -> Request:
    return Request("GET", "/api/presence")


@row("POST /api/notebooks/<id>/hand", "404 204 204 204 204 204")
async def _raise_hand(ctx: Context, role: str) -> Request:
    return Request("POST", f"/api/notebooks/{ctx.notebook_id}/hand", {"message": "help"})


@row("DELETE /api/notebooks/<id>/hand/<user>", "404 403 204 204 204 204")
async def _lower_hand(ctx: Context, role: str) -> Request:
    raised = await ctx.server.api("POST", f"/api/notebooks/{ctx.notebook_id}/hand", {}, user="sam")
    assert raised.code == 204
    return Request("DELETE", f"/api/notebooks/{ctx.notebook_id}/hand/sam")


@row("GET /api/tutor/students", "200 200 200 200 200 200")
async def _students(ctx: Context, role: str) -> Request:
    return Request("GET", "/api/tutor/students")


@row("GET /metrics", "403 403 403 403 200 403")
async def _metrics(ctx: Context, role: str) -> Request:
    return Request("GET", "/metrics")


@row("GET /health", "200 200 200 200 200 200", anonymous=200)
async def _health(ctx: Context, role: str) -> Request:
    return Request("GET", "/health")


@row("WS /api/rooms/<notebook id>", "404 101 101 101 101 101")
async def _room(ctx: Context, role: str) -> Request:
    return Request("WS", f"/api/rooms/{ctx.notebook_id}")


# ---- the Jupyter Server API under /jupyter/ ----------------------------------------------


@row("GET /jupyter/api", "200 200 200 200 200 200", anonymous=200)
async def _jupyter_version(ctx: Context, role: str) -> Request:
    return Request("GET", "/jupyter/api")


@row("GET /jupyter/api/status", "200 200 200 200 200 200")
async def _jupyter_status(ctx: Context, role: str) -> Request:
    return Request("GET", "/jupyter/api/status")


@row("GET /jupyter/api/me", "200 200 200 200 200 200")
async def _jupyter_me(ctx: Context, role: str) -> Request:
    return Request("GET", "/jupyter/api/me")


@row("GET /jupyter/api/kernelspecs", "200 200 200 200 200 200")
async def _jupyter_kernelspecs(ctx: Context, role: str) -> Request:
    return Request("GET", "/jupyter/api/kernelspecs")


@row("GET /jupyter/api/contents/<folder>", "404 404 404 200 200 404")
async def _jupyter_list(ctx: Context, role: str) -> Request:
    return Request("GET", "/jupyter/api/contents/alice")


@row("GET /jupyter/api/contents/<path>.ipynb", "404 200 200 200 200 200")
async def _jupyter_notebook(ctx: Context, role: str) -> Request:
    return Request("GET", "/jupyter/api/contents/alice/matrix.ipynb")


@row("PUT /jupyter/api/contents/<path>", "403 403 200 200 200 403")
async def _jupyter_save(ctx: Context, role: str) -> Request:
    await ctx.fresh_notebook(f"save-{role}")
    nb = {"type": "notebook", "format": "json", "content": small_notebook()}
    return Request("PUT", f"/jupyter/api/contents/alice/save-{role}.ipynb", nb)


@row("POST /jupyter/api/contents/<folder>", "403 403 403 201 201 403")
async def _jupyter_untitled(ctx: Context, role: str) -> Request:
    return Request("POST", "/jupyter/api/contents/alice", {"type": "notebook"})


@row("PATCH /jupyter/api/contents/<path>", "404 403 403 200 200 403")
async def _jupyter_rename(ctx: Context, role: str) -> Request:
    await ctx.fresh_notebook(f"jmv-{role}")
    new_path = {"path": f"alice/jmoved-{role}.ipynb"}
    return Request("PATCH", f"/jupyter/api/contents/alice/jmv-{role}.ipynb", new_path)


@row("DELETE /jupyter/api/contents/<path>", "404 403 403 204 204 403")
async def _jupyter_delete(ctx: Context, role: str) -> Request:
    await ctx.fresh_notebook(f"jrm-{role}")
    return Request("DELETE", f"/jupyter/api/contents/alice/jrm-{role}.ipynb")


@row("GET /jupyter/api/contents/<path>/checkpoints", "404 200 200 200 200 200")
async def _jupyter_checkpoints(ctx: Context, role: str) -> Request:
    return Request("GET", "/jupyter/api/contents/alice/matrix.ipynb/checkpoints")


@row("POST /jupyter/api/contents/<path>/checkpoints", "404 403 201 201 201 403")
async def _jupyter_checkpoint(ctx: Context, role: str) -> Request:
    return Request("POST", "/jupyter/api/contents/alice/matrix.ipynb/checkpoints")


@row("GET /jupyter/api/sessions", "200 200 200 200 200 200")
async def _jupyter_sessions(ctx: Context, role: str) -> Request:
    return Request("GET", "/jupyter/api/sessions")


@row("POST /jupyter/api/sessions", "404 403 201 201 201 403")
async def _jupyter_new_session(ctx: Context, role: str) -> Request:
    kernels = ctx.server.services.kernels
    if not allowed("POST /jupyter/api/sessions", role) and kernels.status(ctx.notebook_id):
        await kernels.shutdown(ctx.notebook_id, "alice")  # viewers may join a kernel, not start it
    session = {"path": "alice/matrix.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
    return Request("POST", "/jupyter/api/sessions", session)


def session_url(ctx: Context) -> str:
    return f"/jupyter/api/sessions/{uuid.UUID(hex=ctx.notebook_id)}"


@row("GET /jupyter/api/sessions/<session id>", "404 200 200 200 200 200")
async def _jupyter_session(ctx: Context, role: str) -> Request:
    await ctx.kernel_running()
    return Request("GET", session_url(ctx))


@row("PATCH /jupyter/api/sessions/<session id>", "404 200 200 200 200 200")
async def _jupyter_patch_session(ctx: Context, role: str) -> Request:
    await ctx.kernel_running()
    return Request("PATCH", session_url(ctx), {"path": "alice/matrix.ipynb"})


@row("DELETE /jupyter/api/sessions/<session id>", "404 403 204 204 204 403")
async def _jupyter_end_session(ctx: Context, role: str) -> Request:
    await ctx.kernel_running()
    return Request("DELETE", session_url(ctx))


async def _kernel_id(ctx: Context) -> str:
    await ctx.kernel_running()
    status = ctx.server.services.kernels.status(ctx.notebook_id)
    assert status is not None
    return str(status["id"])


@row("GET /jupyter/api/kernels", "200 200 200 200 200 200")
async def _jupyter_kernels(ctx: Context, role: str) -> Request:
    return Request("GET", "/jupyter/api/kernels")


@row("POST /jupyter/api/kernels", "403 403 403 403 403 403")
async def _jupyter_start_kernel(ctx: Context, role: str) -> Request:
    return Request("POST", "/jupyter/api/kernels", {"name": "python3"})


@row("GET /jupyter/api/kernels/<kernel id>", "404 200 200 200 200 200")
async def _jupyter_kernel(ctx: Context, role: str) -> Request:
    return Request("GET", f"/jupyter/api/kernels/{await _kernel_id(ctx)}")


@row("DELETE /jupyter/api/kernels/<kernel id>", "404 403 403 403 403 403")
async def _jupyter_delete_kernel(ctx: Context, role: str) -> Request:
    return Request("DELETE", f"/jupyter/api/kernels/{await _kernel_id(ctx)}")


@row("POST /jupyter/api/kernels/<kernel id>/interrupt", "404 403 204 204 204 403")
async def _jupyter_interrupt(ctx: Context, role: str) -> Request:
    return Request("POST", f"/jupyter/api/kernels/{await _kernel_id(ctx)}/interrupt")


@row("POST /jupyter/api/kernels/<kernel id>/restart", "404 403 200 200 200 403")
async def _jupyter_restart(ctx: Context, role: str) -> Request:
    return Request("POST", f"/jupyter/api/kernels/{await _kernel_id(ctx)}/restart")


@row("WS /jupyter/api/kernels/<kernel id>/channels", "404 403 101 101 101 403")
async def _jupyter_channels(ctx: Context, role: str) -> Request:
    return Request("WS", f"/jupyter/api/kernels/{await _kernel_id(ctx)}/channels")


# ---- running it ------------------------------------------------------------------------------


async def call(server: Server, request: Request, user: str | None) -> tuple[int, bytes]:
    if request.method == "WS":
        headers = {"Authorization": f"token {server.token(user)}"} if user else {}
        try:
            async with websockets.connect(
                f"ws://127.0.0.1:{server.port}{request.url}", additional_headers=headers
            ):
                return 101, b""
        except websockets.InvalidStatus as e:
            return e.response.status_code, bytes(e.response.body or b"")
    response = await server.api(
        request.method, request.url, request.body, user=user, raw=request.raw
    )
    return response.code, bytes(response.body or b"")


def matrix_notebook() -> dict[str, Any]:
    nb = small_notebook()
    nb["cells"] = [code_cell("run", "1 + 1"), code_cell("ask", "answer = input('?')")]
    return nb


@pytest.fixture
async def context(make_server: ServerFactory) -> Context:
    server = await make_server(tutor_groups={"tutors": ["class"]})
    users = server.services.users
    for name in ("mallory", "vic", "bob", "alice", "tina", "sam", "sue"):
        users.get_or_create(name)
    users.get_or_create("ada", admin=True)
    users.create_group("tutors")
    users.add_member("tutors", "tina")
    users.create_group("class")
    users.add_member("class", "alice")
    notebook_id = await server.create_notebook(
        "alice/matrix.ipynb", matrix_notebook(), editors=("bob",)
    )
    for user, role in (("vic", "viewer"), ("sam", "viewer")):
        await server.share(notebook_id, user, role)
    for user in USERS.values():
        if user is not None:
            assert (await server.api("GET", "/api/contents/", user=user)).code == 200  # home exists
    folder = server.services.settings.room.checkpoint_dir / notebook_id
    folder.mkdir(parents=True)
    (folder / CHECKPOINT).write_text(json.dumps(small_notebook()))
    # One finished execution, for the history rows.
    run = await server.api("POST", f"/api/notebooks/{notebook_id}/execute", {"cell_ids": ["run"]})
    assert run.code == 202, run.body
    execution_ids = json.loads(run.body)["execution_ids"]
    await server.api("POST", f"/api/notebooks/{notebook_id}/kernel/shutdown")
    await server.services.execution_log.barrier()
    return Context(server, notebook_id, execution_ids)


def anonymous_status(spec: Row) -> set[int]:
    """Without credentials: 401 (README), whatever the method (no cookie, no XSRF check);
    200 for ``/health``, which load balancers call without any."""
    return {spec.anonymous}


async def test_authorization_matrix(context: Context) -> None:
    server = context.server
    mismatches: list[str] = []
    table: list[str] = []
    for endpoint, spec in MATRIX.items():
        cells = []
        for role in (*ROLES, "anonymous"):
            request = await spec.build(context, role)
            code, body = await call(server, request, USERS[role])
            expected = spec.expected.get(role)
            ok = (
                code in anonymous_status(spec)
                if role == "anonymous"
                else code == expected
            )
            if code >= 400 and request.method != "WS":
                problem = json_error(body, code)
                if problem is not None:
                    ok = False
                    mismatches.append(f"{endpoint} as {role}: {problem}")
            if not ok:
                mismatches.append(
                    f"{endpoint} as {role}: expected {expected}, got {code} {body[:120]!r}"
                )
            cells.append(f"{code}{'' if ok else '!'}")
            if role in ROLES and endpoint == "GET /api/notebooks/<id>/role" and code == 200:
                label = json.loads(body)["role"]
                want = {
                    "viewer": "viewer",
                    "editor": "editor",
                    "owner": "owner",
                    "admin": "owner",
                    "tutor": "viewer",
                }
                if label != want[role]:
                    mismatches.append(
                        f"{endpoint} as {role}: role {label!r}, expected {want[role]!r}"
                    )
            if role == "tutor" and endpoint == "GET /api/tutor/students":
                names = [s["name"] for s in json.loads(body)["students"]]
                if names != ["alice"]:
                    mismatches.append(f"{endpoint} as tutor: students {names}, expected ['alice']")
        table.append(f"{endpoint:<52} " + " ".join(f"{c:>5}" for c in cells))
    header = f"{'':<52} " + " ".join(f"{r[:5]:>5}" for r in (*ROLES, "anon"))
    print("\n".join([header, *table]))
    assert mismatches == [], "\n".join(mismatches)


STATE_CHANGES: list[tuple[str, str, Any]] = [
    ("PUT", "/api/contents/alice/x.ipynb", {"type": "notebook"}),
    ("POST", "/api/users", {"name": "eve"}),
    ("DELETE", "/api/contents/alice", None),
]


async def test_unauthenticated_state_changes_answer_401(server: Server) -> None:
    """README: 'without either [a token or a session cookie] the answer is 401'. Without a
    session cookie there is nothing to forge, so no XSRF check comes first."""
    server.services.users.get_or_create("alice")
    for method, url, body in STATE_CHANGES:
        response = await server.api(method, url, body, user=None)
        assert (response.code, json_error(response.body, response.code)) == (401, None), (
            method,
            url,
            response.code,
            response.body,
        )


async def test_session_cookies_still_need_the_xsrf_value(server: Server) -> None:
    """With a session cookie (real or forged) a state change must carry the _xsrf value."""
    alice = server.services.users.get_or_create("alice")
    assert (await server.api("GET", "/api/contents/", user="alice")).code == 200  # home exists
    secret = server.services.sessions.create(alice)
    signed = create_signed_value(server.services.cookie_secret, SESSION_COOKIE, secret).decode()
    xsrf = {"Cookie": "_xsrf=0123456789abcdef", "X-XSRFToken": "0123456789abcdef"}
    for name, cookie, with_xsrf, status in (
        ("session", signed, False, 403),
        ("forged session", "x" * 40, False, 403),
        ("forged session", "x" * 40, True, 401),
        ("session", signed, True, 201),
    ):
        headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
        if with_xsrf:
            headers = {
                "Cookie": f"{headers['Cookie']}; {xsrf['Cookie']}",
                "X-XSRFToken": xsrf["X-XSRFToken"],
            }
        response = await server.api(
            "PUT",
            f"/api/contents/alice/{name.replace(' ', '-')}.ipynb",
            {"type": "notebook"},
            user=None,
            headers=headers,
        )
        problem = json_error(response.body, response.code) if response.code >= 400 else None
        assert (response.code, problem) == (status, None), (name, with_xsrf, response.body)
