"""Jupyter Server's kernels API under ``/jupyter/``: a notebook's kernel, for kernel clients.

Here a kernel belongs to one notebook and is shared by everyone in it, so:

- ``GET /jupyter/api/kernels``: the running kernels of the notebooks you may see,
  in Jupyter's model ``{"id", "name", "last_activity", "execution_state", "connections"}``;
  ``GET /jupyter/api/kernels/<id>``: one of them (404 if you may not see its notebook).
- ``POST /jupyter/api/kernels/<id>/interrupt`` (204) and ``/restart`` (200, the
  model): as the notebook's own interrupt and restart (editors).
- ``POST /jupyter/api/kernels`` and ``DELETE /jupyter/api/kernels/<id>``: 403;
  a kernel starts when a notebook runs and is shut down from the notebook.
- ``WS /jupyter/api/kernels/<id>/channels``: see :class:`KernelChannelsHandler`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from tornado import web, websocket

from auth.identity import Credentials, IdentityProvider, User
from auth.permissions import Action
from kernels.relay import KernelMessage
from kernels.running import NotebookKernels
from kernels.runs import Run

from ...access import Authorizer
from ...errors import (
    WS_FORBIDDEN,
    WS_GOING_AWAY,
    WS_INVALID_DATA,
    close_reason,
    http_status,
    ws_close_code,
)
from ...live import LiveSockets
from ..base import credentials
from ..kernels import KernelAPIHandler
from ..sockets import GuardedWebSocket
from .wire import V1_PROTOCOL, BadFrame, from_v1, parse_legacy, parse_message, to_legacy, to_v1

log = logging.getLogger(__name__)

OWN_NOTEBOOK = "kernels belong to notebooks here: open or run a notebook to start its kernel"
SHUT_DOWN_FROM_NOTEBOOK = (
    "kernels belong to notebooks here and are shared: shut one down from its notebook"
)

# Shell requests relayed to the kernel as they are; their replies go back to the client.
RELAYED_REQUESTS = frozenset(
    {
        "kernel_info_request",
        "complete_request",
        "inspect_request",
        "is_complete_request",
        "history_request",
        "comm_info_request",
    }
)
MAX_TRACKED = 1024  # msg_ids of a client's requests whose answers are relayed to it


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def kernel_model(kernels: NotebookKernels, notebook_id: str) -> dict[str, Any] | None:
    """Jupyter's model of the notebook's kernel, or None if it has none."""
    status, activity = kernels.status(notebook_id), kernels.activity(notebook_id)
    if status is None or activity is None:
        return None
    return {
        "id": status["id"],
        "name": status["name"],
        "last_activity": iso(activity[0]),
        "execution_state": status["status"],
        "connections": activity[1],
    }


class JupyterKernelsAPIHandler(KernelAPIHandler):
    """A kernels REST handler: tokens may come as ``?token=`` too, as Jupyter allows."""

    async def prepare(self) -> None:
        user = await self.identity.identify(credentials(self, allow_query_token=True))
        if user is None:
            raise web.HTTPError(401, "authentication required")
        self.user = user

    async def notebook_of(self, kernel_id: str, action: Action) -> str:
        """The notebook of the kernel, if the user may do ``action`` to it; else 404/403."""
        notebook_id = self.kernels.notebook_of_kernel(kernel_id)
        if notebook_id is None:
            raise web.HTTPError(404, f"no kernel {kernel_id}")
        await self.authorizer.require(self.user, Action.VIEW, notebook_id=notebook_id)
        if action != Action.VIEW:
            await self.authorizer.require(self.user, action, notebook_id=notebook_id)
        return notebook_id

    def model_of(self, kernel_id: str, notebook_id: str) -> dict[str, Any]:
        model = kernel_model(self.kernels, notebook_id)
        if model is None or model["id"] != kernel_id:
            raise web.HTTPError(404, f"no kernel {kernel_id}")
        return model


class JupyterKernelsHandler(JupyterKernelsAPIHandler):
    """GET /jupyter/api/kernels; POST is refused (a kernel is a notebook's)."""

    async def get(self) -> None:
        running = self.kernels.notebooks_with_kernels()
        visible = await self.authorizer.allowed_notebooks(self.user, Action.VIEW, running)
        models = []
        for notebook_id in sorted(visible):
            model = kernel_model(self.kernels, notebook_id)
            if model is not None:
                models.append(model)
        self.write_json(models)

    async def post(self) -> None:
        raise web.HTTPError(403, OWN_NOTEBOOK)


class JupyterKernelHandler(JupyterKernelsAPIHandler):
    """GET /jupyter/api/kernels/<id>; DELETE is refused (the kernel is shared)."""

    async def get(self, kernel_id: str) -> None:
        notebook_id = await self.notebook_of(kernel_id, Action.VIEW)
        self.write_json(self.model_of(kernel_id, notebook_id))

    async def delete(self, kernel_id: str) -> None:
        await self.notebook_of(kernel_id, Action.VIEW)
        raise web.HTTPError(403, SHUT_DOWN_FROM_NOTEBOOK)


class JupyterKernelActionHandler(JupyterKernelsAPIHandler):
    """POST /jupyter/api/kernels/<id>/interrupt (204) or /restart (200, the model)."""

    async def post(self, kernel_id: str, action: str) -> None:
        if action == "interrupt":
            notebook_id = await self.notebook_of(kernel_id, Action.INTERRUPT)
            await self.kernels.interrupt(notebook_id, self.user.name)
            self.set_status(204)
            self.finish()
            return
        notebook_id = await self.notebook_of(kernel_id, Action.RESTART)
        await self.kernels.restart(notebook_id, self.user.name)
        self.write_json(kernel_model(self.kernels, notebook_id))


class KernelChannelsHandler(GuardedWebSocket):
    """``WS /jupyter/api/kernels/<id>/channels``: a Jupyter kernel client on a notebook's kernel.

    Before the upgrade: who it is (token header, ``?token=`` or session),
    the Origin for a session, and that they may run code in the kernel's
    notebook (editors and owners; others get 403, an unknown kernel 404).
    Speaks ``v1.kernel.websocket.jupyter.org`` if the client asks, else
    the legacy JSON protocol. From the client:

    - shell ``execute_request``: authorized again, then queued in the
      notebook's executor like a cell run (logged as this user, no cell id,
      the code as sent, nothing written into the document);
    - shell ``kernel_info``/``complete``/``inspect``/``is_complete``/
      ``history``/``comm_info`` requests: relayed to the kernel;
    - stdin ``input_reply`` to an ``input_request`` relayed to this client;
    - any other ``*_request`` (``shutdown_request``, everything on control)
      gets a ``*_reply`` with status "error" saying why; other messages
      (comm messages, stray replies) are dropped and logged.

    The client gets the kernel's iopub, shell and stdin messages whose parent
    is one of its own requests, not those of other clients or of cell runs,
    except the kernel's busy/idle ``status``, which every client gets.
    A malformed frame closes the socket (1007); the kernel's end closes it
    (1001); losing the right to run code in the notebook closes it (4403,
    4401 for a revoked token or ended session), checked as ``live`` asks.
    """

    kernels: NotebookKernels
    identity: IdentityProvider
    authorizer: Authorizer
    live: LiveSockets
    allowed_origins: frozenset[str]
    session_days: float
    user: User

    def initialize(
        self,
        kernels: NotebookKernels,
        identity: IdentityProvider,
        authorizer: Authorizer,
        live: LiveSockets,
        allowed_origins: frozenset[str],
        session_days: float,
    ) -> None:
        self.kernels = kernels
        self.identity = identity
        self.authorizer = authorizer
        self.live = live
        self.allowed_origins = allowed_origins
        self.session_days = session_days
        self.notebook_id = ""
        self.v1 = False
        self._credentials: Credentials | None = None
        self._mine: OrderedDict[str, None] = OrderedDict()
        self._inputs = 0  # input requests relayed to this client and not answered yet
        self._stop_watching: Any = None
        self._closed = False

    # ---- before the upgrade ---------------------------------------------------------

    def check_xsrf_cookie(self) -> None:
        """Only GET (the upgrade) is served here."""

    async def get(self, *args: Any, **kwargs: Any) -> None:
        user = await self.authenticate()
        if user is None:
            return
        notebook_id = self.kernels.notebook_of_kernel(kwargs["kernel_id"])
        if notebook_id is None:
            self._refuse(404, f"no kernel {kwargs['kernel_id']}")
            return
        # VIEW first: who may not know the notebook gets 404, a viewer then 403.
        for action in (Action.VIEW, Action.RUN):
            if await self.authorized(action, notebook_id) is None:
                return
        self.notebook_id = notebook_id
        problem = self.handshake_problem()
        if problem is not None:
            self._refuse(*problem)
            return
        await super().get(*args, **kwargs)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        self.v1 = V1_PROTOCOL in subprotocols
        return V1_PROTOCOL if self.v1 else None

    # ---- the socket -------------------------------------------------------------------

    def open(self, *args: str, **kwargs: str) -> None:
        self.set_nodelay(True)
        self.live.add(self)
        try:
            self._stop_watching = self.kernels.watch(self.notebook_id, self)
        except Exception as e:
            if http_status(e) is None:
                log.exception("kernel channels of %s: watching failed", self.notebook_id)
            self.close(ws_close_code(e), close_reason(e))
            return
        log.info("kernel of %s: %s connected a kernel client", self.notebook_id, self.user.name)

    async def on_message(self, message: str | bytes) -> None:
        if self._closed:
            return
        try:
            if isinstance(message, bytes):
                if not self.v1:
                    raise BadFrame("binary frames need the v1.kernel.websocket.jupyter.org protocol")
                msg = parse_message(*from_v1(message))
            else:
                if self.v1:
                    raise BadFrame("the v1 protocol sends binary frames")
                msg = parse_legacy(message)
        except BadFrame as e:
            log.warning("kernel channels of %s: %s: %s", self.notebook_id, self.user.name, e)
            self.close(WS_INVALID_DATA, f"malformed kernel message: {e}"[:120])
            return
        await self._handle(msg)

    async def _handle(self, msg: dict[str, Any]) -> None:
        channel, header = msg["channel"], msg["header"]
        msg_type, msg_id = header["msg_type"], header["msg_id"]
        outgoing = {k: msg[k] for k in ("header", "parent_header", "metadata", "content")}
        outgoing.update(msg_id=msg_id, msg_type=msg_type, buffers=msg["buffers"])
        try:
            if channel == "shell" and msg_type == "execute_request":
                await self._run_code(outgoing)
            elif channel == "shell" and msg_type in RELAYED_REQUESTS:
                self._track(msg_id)
                self.kernels.send_request(self.notebook_id, "shell", outgoing)
            elif channel == "stdin" and msg_type == "input_reply":
                if self._inputs <= 0:
                    log.warning("%s sent an input_reply nobody asked for", self.user.name)
                    return
                self._inputs -= 1
                self.kernels.send_request(self.notebook_id, "stdin", outgoing)
            elif msg_type.endswith("_request"):
                self._reply_error(
                    channel, msg, "NotAllowed", refusal(msg_type, self.request.path)
                )
            else:
                log.info("kernel channels: dropped %s %s from %s", channel, msg_type, self.user.name)
        except Exception as e:
            if http_status(e) is None:
                log.exception("kernel channels of %s: %s failed", self.notebook_id, msg_type)
                raise
            if msg_type.endswith("_request"):
                self._reply_error(channel, msg, type(e).__name__, str(e))

    async def _run_code(self, msg: dict[str, Any]) -> None:
        code = msg["content"].get("code")
        if not isinstance(code, str):
            self._reply_error("shell", msg, "BadRequest", "content.code must be a string")
            return
        # The role may have changed since the socket opened.
        await self.authorizer.require(self.user, Action.RUN, notebook_id=self.notebook_id)
        msg_id = msg["header"]["msg_id"]
        if msg_id in self._mine:  # two runs under one msg_id could not be told apart
            self._reply_error("shell", msg, "BadRequest", "this msg_id was used already")
            return
        self._track(msg_id)
        self.kernels.run_code(self.notebook_id, code, self.user.name, ExecuteRequest(self, msg))

    def unanswered(
        self, msg: dict[str, Any], run: Run, error_name: str | None, error_value: str | None
    ) -> None:
        """The kernel will not answer the client's execute_request: answer it here."""
        if error_name:
            content: dict[str, Any] = {
                "status": "error",
                "ename": error_name,
                "evalue": error_value or "",
                "traceback": [],
            }
        else:
            content = {"status": "aborted"}
        content["execution_count"] = None
        self._send_own("shell", msg, "execute_reply", content)
        if not run.idle:
            self._send_own("iopub", msg, "status", {"execution_state": "idle"})

    def _track(self, msg_id: str) -> None:
        self._mine[msg_id] = None
        while len(self._mine) > MAX_TRACKED:
            self._mine.popitem(last=False)

    def _reply_error(self, channel: str, msg: dict[str, Any], ename: str, evalue: str) -> None:
        """Answer a request the server does not pass on: its reply, status "error"."""
        msg_type = str(msg["header"]["msg_type"]).removesuffix("_request") + "_reply"
        content = {"status": "error", "ename": ename, "evalue": evalue, "traceback": []}
        self._send_own(channel, msg, msg_type, content)

    def _send_own(
        self, channel: str, parent: dict[str, Any], msg_type: str, content: dict[str, Any]
    ) -> None:
        """Send the client a message of the server's own, answering ``parent``."""
        header = {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": "collab-server",
            "session": "collab-server",
            "date": iso(time.time()),
            "version": "5.3",
        }
        parts = [json.dumps(p).encode() for p in (header, parent["header"], {}, content)]
        self._write(channel, parts)

    # ---- the MessageWatcher protocol --------------------------------------------------

    def wants(self, msg_type: str, parent_id: str | None) -> bool:
        """Answers to its own requests, and every busy/idle status (the kernel is shared:
        a client shows it busy while someone else's cell runs, as Jupyter Server's would)."""
        return msg_type == "status" or (parent_id is not None and parent_id in self._mine)

    def deliver(self, message: KernelMessage) -> None:
        if message.msg_type == "input_request":
            self._inputs += 1
        self._write(message.channel, [*message.parts, *message.buffers])

    def kernel_closed(self) -> None:
        self._stop_watching = None
        self.close(WS_GOING_AWAY, "the notebook's kernel was shut down")

    def _write(self, channel: str, parts: list[Any]) -> None:
        if self._closed:
            return
        frame = to_v1(channel, parts) if self.v1 else to_legacy(channel, parts)
        try:
            self.write_message(frame, binary=isinstance(frame, bytes))
        except websocket.WebSocketClosedError:
            self._closed = True

    async def reauthorize(self) -> None:
        """Check who this is and that they may still run code here; close the socket if not."""
        if self._closed or self._credentials is None:
            return
        user = await self.still_the_same_user()
        if user is None:
            return
        try:
            await self.authorizer.require(user, Action.RUN, notebook_id=self.notebook_id)
        except Exception as e:
            if http_status(e) is None:
                raise
            self.close(WS_FORBIDDEN, "you may no longer run code in this notebook")

    def on_close(self) -> None:
        self._closed = True
        self.live.discard(self)
        if self._stop_watching is not None:
            self._stop_watching()
            self._stop_watching = None


class ExecuteRequest:
    """A client's ``execute_request``, as the executor runs it (a ``ClientRequest``)."""

    def __init__(self, socket: KernelChannelsHandler, msg: dict[str, Any]) -> None:
        self.socket = socket
        self.msg = msg

    def send(self, client: AsyncKernelClient) -> str:
        client.shell_channel.send(self.msg)
        return str(self.msg["header"]["msg_id"])

    def unanswered(self, run: Run, error_name: str | None, error_value: str | None) -> None:
        self.socket.unanswered(self.msg, run, error_name, error_value)


def refusal(msg_type: str, path: str) -> str:
    """Why the server does not pass a request on, and what to do instead."""
    kernel = path.removesuffix("/channels")
    if msg_type == "shutdown_request":
        return f"the kernel is the notebook's, shared: shut it down from the notebook ({kernel})"
    if msg_type == "interrupt_request":
        return f"interrupt through POST {kernel}/interrupt"
    return f"collab-server does not pass {msg_type} to a notebook's shared kernel"


__all__ = [
    "JupyterKernelActionHandler",
    "JupyterKernelHandler",
    "JupyterKernelsHandler",
    "KernelChannelsHandler",
    "kernel_model",
]
