"""A Jupyter kernel client on a notebook's kernel through ``/jupyter/api/kernels``: the REST
model, interrupt, and the channels WebSocket in both protocols, on a real server and kernel."""

from __future__ import annotations

import json
import struct
import uuid
from datetime import UTC, datetime
from typing import Any, Self

import anyio
import pytest
import websockets

from tests.conftest import Server, ServerFactory, wait_until
from tests.server.test_kernels import executions, history, notebook, outputs_of, run
from tests.yclient import YClient

TIMEOUT = 60
V1 = "v1.kernel.websocket.jupyter.org"


class KernelClient:
    """A kernel client as VS Code or nbclient speak to Jupyter Server: v1 binary frames, or
    the legacy JSON text frames. It encodes and decodes frames on its own (not the server's code)."""

    def __init__(self, ws: websockets.ClientConnection, v1: bool) -> None:
        self.ws = ws
        self.v1 = v1
        self.session = uuid.uuid4().hex

    @classmethod
    async def connect(cls, server: Server, kernel_id: str, token: str, v1: bool) -> Self:
        url = f"ws://127.0.0.1:{server.port}/jupyter/api/kernels/{kernel_id}/channels"
        ws = await websockets.connect(
            f"{url}?session_id={uuid.uuid4().hex}",
            additional_headers={"Authorization": f"token {token}"},
            subprotocols=[websockets.Subprotocol(V1)] if v1 else None,
            max_size=None,
        )
        assert ws.subprotocol == (V1 if v1 else None)
        return cls(ws, v1)

    async def send(
        self, channel: str, msg_type: str, content: dict[str, Any], msg_id: str | None = None
    ) -> str:
        msg_id = msg_id or uuid.uuid4().hex
        header = {
            "msg_id": msg_id,
            "msg_type": msg_type,
            "session": self.session,
            "username": "someone-else",  # the server logs who the token says, not this
            "date": datetime.now(UTC).isoformat(),
            "version": "5.3",
        }
        parts = [header, {}, {}, content]
        if self.v1:
            packed = [json.dumps(p).encode() for p in parts]
            name = channel.encode()
            offsets = [8 * (len(packed) + 3), 8 * (len(packed) + 3) + len(name)]
            for part in packed:
                offsets.append(offsets[-1] + len(part))
            await self.ws.send(
                struct.pack(f"<{len(offsets) + 1}Q", len(offsets), *offsets)
                + name
                + b"".join(packed)
            )
        else:
            keys = ("header", "parent_header", "metadata", "content")
            await self.ws.send(json.dumps({"channel": channel, **dict(zip(keys, parts))}))
        return msg_id

    async def receive(self) -> dict[str, Any]:
        frame = await self.ws.recv()
        if self.v1:
            assert isinstance(frame, bytes)
            (count,) = struct.unpack_from("<Q", frame)
            offsets = struct.unpack_from(f"<{count}Q", frame, 8)
            chunks = [frame[offsets[i] : offsets[i + 1]] for i in range(count - 1)]
            header, parent, metadata, content = (json.loads(c) for c in chunks[1:5])
            return {
                "channel": chunks[0].decode(),
                "header": header,
                "parent_header": parent,
                "metadata": metadata,
                "content": content,
            }
        assert isinstance(frame, str)
        msg: dict[str, Any] = json.loads(frame)
        return msg

    async def answers(self, msg_id: str, reply_type: str) -> list[dict[str, Any]]:
        """Every message until the reply to ``msg_id`` and the kernel's idle status for it."""
        got: list[dict[str, Any]] = []
        with anyio.fail_after(TIMEOUT):
            while not (
                any(m["header"]["msg_type"] == reply_type for m in got)
                and any(
                    m["header"]["msg_type"] == "status"
                    and m["content"]["execution_state"] == "idle"
                    and m["parent_header"].get("msg_id") == msg_id
                    for m in got
                )
            ):
                got.append(await self.receive())
        return got


async def running_kernel(server: Server, path: str = "alice/k.ipynb") -> tuple[str, str]:
    """A notebook shared with bob (editor) and vic (viewer) whose kernel runs; (notebook, kernel)."""
    notebook_id = await server.create_notebook(path, notebook(("x", "x = 1")), editors=("bob",))
    await server.share(notebook_id, "vic", "viewer")
    assert (await run(server, notebook_id, ["x"], "alice")).code == 202
    kernels = server.services.kernels

    def idle() -> bool:
        status = kernels.status(notebook_id)
        return status is not None and status["status"] == "idle" and not status["busy"]

    await wait_until(idle, timeout=TIMEOUT)
    status = kernels.status(notebook_id)
    assert status is not None
    return notebook_id, str(status["id"])


@pytest.fixture
async def server(make_server: ServerFactory) -> Server:
    return await make_server()


@pytest.mark.parametrize("v1", [True, False], ids=["v1", "legacy-json"])
async def test_kernel_client_runs_code_logged_as_its_user(server: Server, v1: bool) -> None:
    notebook_id, kernel_id = await running_kernel(server)
    client = await KernelClient.connect(server, kernel_id, server.token("alice"), v1)
    try:
        info_id = await client.send("shell", "kernel_info_request", {})
        info = await client.answers(info_id, "kernel_info_reply")
        reply = next(m for m in info if m["header"]["msg_type"] == "kernel_info_reply")
        assert reply["channel"] == "shell" and reply["content"]["status"] == "ok"
        assert reply["content"]["language_info"]["name"] == "python"

        code = "print(6*7)"
        msg_id = await client.send(
            "shell",
            "execute_request",
            {"code": code, "silent": False, "store_history": True, "user_expressions": {},
             "allow_stdin": False, "stop_on_error": True},
        )
        got = await client.answers(msg_id, "execute_reply")
        assert all(
            m["parent_header"]["msg_id"] == msg_id
            for m in got
            if m["header"]["msg_type"] != "status"
        )
        types = [(m["channel"], m["header"]["msg_type"]) for m in got]
        assert ("iopub", "execute_input") in types
        streams = [m["content"] for m in got if m["header"]["msg_type"] == "stream"]
        assert streams == [{"name": "stdout", "text": "42\n"}]
        execute_reply = next(m for m in got if m["header"]["msg_type"] == "execute_reply")
        assert execute_reply["channel"] == "shell"
        assert execute_reply["content"]["status"] == "ok"

        # Completion through the socket too.
        complete_id = await client.send("shell", "complete_request", {"code": "pri", "cursor_pos": 3})
        completion = await client.answers(complete_id, "complete_reply")
        matches = next(m for m in completion if m["header"]["msg_type"] == "complete_reply")
        assert "print" in matches["content"]["matches"]

        # Refused: the kernel is the notebook's, shared.
        shutdown_id = await client.send("control", "shutdown_request", {"restart": False})
        with anyio.fail_after(TIMEOUT):
            refused = await client.receive()
            while refused["header"]["msg_type"] == "status":
                refused = await client.receive()
        assert refused["parent_header"]["msg_id"] == shutdown_id
        assert refused["header"]["msg_type"] == "shutdown_reply"
        assert refused["content"]["status"] == "error" and "notebook" in refused["content"]["evalue"]
    finally:
        await client.ws.close()
    assert server.services.kernels.status(notebook_id) is not None  # still running

    await server.services.execution_log.barrier()
    rows = (await history(server, notebook_id, order="oldest"))["executions"]
    free = [r for r in rows if r["cell_id"] is None]
    assert [(r["username"], r["code"], r["status"]) for r in free] == [("alice", code, "ok")]
    # Nothing was written into the notebook for it: only the cell's own run is there.
    async with YClient(server.ws_url(notebook_id), server.token("bob")) as bob:
        assert [c["source"] for c in bob.cells()] == ["x = 1"]
        assert outputs_of(bob, "x") == []
        assert list(executions(bob)) == ["x"] and executions(bob)["x"]["by"] == "alice"


async def test_kernels_rest_model_and_who_may_connect(server: Server) -> None:
    notebook_id, kernel_id = await running_kernel(server)
    listed = await server.api("GET", "/jupyter/api/kernels", user="vic")
    assert listed.code == 200
    (model,) = json.loads(listed.body)
    assert model["id"] == kernel_id and model["name"] == "python3"
    assert model["execution_state"] == "idle" and model["connections"] == 0
    assert model["last_activity"].endswith("Z")
    assert json.loads((await server.api("GET", "/jupyter/api/kernels", user="mallory")).body) == []
    one = await server.api("GET", f"/jupyter/api/kernels/{kernel_id}", user="vic")
    assert one.code == 200 and json.loads(one.body)["id"] == kernel_id
    assert (await server.api("GET", f"/jupyter/api/kernels/{kernel_id}", user="mallory")).code == 404
    assert (await server.api("GET", f"/jupyter/api/kernels/{uuid.uuid4()}")).code == 404
    assert (await server.api("GET", "/jupyter/api/kernels", user=None)).code == 401
    query = await server.api("GET", f"/jupyter/api/kernels?token={server.token('vic')}", user=None)
    assert query.code == 200

    started = await server.api("POST", "/jupyter/api/kernels", {"name": "python3"})
    assert started.code == 403 and "notebook" in json.loads(started.body)["message"]
    deleted = await server.api("DELETE", f"/jupyter/api/kernels/{kernel_id}")
    assert deleted.code == 403 and "notebook" in json.loads(deleted.body)["message"]

    url = f"ws://127.0.0.1:{server.port}/jupyter/api/kernels/{{}}/channels"
    for kernel, headers, status in [
        (kernel_id, {"Authorization": f"token {server.token('vic')}"}, 403),
        (kernel_id, {}, 401),
        (kernel_id, {"Authorization": f"token {server.token('mallory')}"}, 404),
        (str(uuid.uuid4()), {"Authorization": f"token {server.token('alice')}"}, 404),
    ]:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url.format(kernel), additional_headers=headers):
                pass
        assert refused.value.response.status_code == status

    client = await KernelClient.connect(server, kernel_id, server.token("bob"), v1=True)
    try:
        await wait_until(lambda: server.services.kernels.activity(notebook_id)[1] == 1)  # type: ignore[index]
        # Alice runs a cell: bob's client sees the kernel busy, then idle, and nothing else.
        assert (await run(server, notebook_id, ["x"], "alice")).code == 202
        states = []
        with anyio.fail_after(TIMEOUT):
            while states[-1:] != ["idle"]:
                msg = await client.receive()
                assert msg["header"]["msg_type"] == "status", msg
                states.append(msg["content"]["execution_state"])
        assert states == ["busy", "idle"]
    finally:
        await client.ws.close()


async def test_interrupt_through_the_jupyter_api(server: Server) -> None:
    notebook_id, kernel_id = await running_kernel(server)
    client = await KernelClient.connect(server, kernel_id, server.token("alice"), v1=True)
    try:
        msg_id = await client.send(
            "shell", "execute_request", {"code": "import time; time.sleep(60)", "silent": False}
        )
        with anyio.fail_after(TIMEOUT):
            while (await client.receive())["header"]["msg_type"] != "execute_input":
                pass
        denied = await server.api("POST", f"/jupyter/api/kernels/{kernel_id}/interrupt", user="vic")
        assert denied.code == 403
        done = await server.api("POST", f"/jupyter/api/kernels/{kernel_id}/interrupt", user="bob")
        assert done.code == 204, done.body
        got = await client.answers(msg_id, "execute_reply")
        reply = next(m for m in got if m["header"]["msg_type"] == "execute_reply")
        assert reply["content"]["status"] == "error"
        assert reply["content"]["ename"] == "KeyboardInterrupt"
    finally:
        await client.ws.close()
    await server.services.execution_log.barrier()
    rows = (await history(server, notebook_id))["executions"]
    assert [r["status"] for r in rows if r["cell_id"] is None] == ["interrupted"]


async def test_kernel_client_answers_its_own_input_request(server: Server) -> None:
    notebook_id, kernel_id = await running_kernel(server)
    client = await KernelClient.connect(server, kernel_id, server.token("bob"), v1=False)
    try:
        msg_id = await client.send(
            "shell",
            "execute_request",
            {"code": "print(input('name? ') * 2)", "silent": False, "allow_stdin": True},
        )
        with anyio.fail_after(TIMEOUT):
            while True:
                asked = await client.receive()
                if asked["header"]["msg_type"] == "input_request":
                    break
        assert asked["channel"] == "stdin" and asked["content"]["prompt"] == "name? "
        assert asked["parent_header"]["msg_id"] == msg_id
        await client.send("stdin", "input_reply", {"value": "ab"})
        got = await client.answers(msg_id, "execute_reply")
        streams = "".join(m["content"]["text"] for m in got if m["header"]["msg_type"] == "stream")
        assert streams == "abab\n"
        # The same msg_id again is refused: its answers could not be told apart.
        await client.send("shell", "execute_request", {"code": "1"}, msg_id=msg_id)
        with anyio.fail_after(TIMEOUT):
            refused = await client.receive()
            while refused["header"]["msg_type"] == "status":
                refused = await client.receive()
        assert refused["header"]["msg_type"] == "execute_reply"
        assert refused["content"]["status"] == "error"
        assert refused["content"]["ename"] == "BadRequest"
    finally:
        await client.ws.close()
    await server.services.execution_log.barrier()
    rows = (await history(server, notebook_id))["executions"]
    free = [(r["username"], r["code"], r["status"]) for r in rows if r["cell_id"] is None]
    assert free == [("bob", "print(input('name? ') * 2)", "ok")]


async def test_restart_answers_the_clients_run_it_aborted(server: Server) -> None:
    notebook_id, kernel_id = await running_kernel(server)
    client = await KernelClient.connect(server, kernel_id, server.token("alice"), v1=True)
    try:
        msg_id = await client.send("shell", "execute_request", {"code": "import time; time.sleep(60)"})
        with anyio.fail_after(TIMEOUT):
            while (await client.receive())["header"]["msg_type"] != "execute_input":
                pass
        assert (await server.api("POST", f"/jupyter/api/kernels/{kernel_id}/restart", user="vic")).code == 403
        restarted = await server.api("POST", f"/jupyter/api/kernels/{kernel_id}/restart", user="bob")
        assert restarted.code == 200, restarted.body
        assert json.loads(restarted.body)["execution_state"] == "idle"
        # The kernel that would have answered is gone: the server answers for it.
        got = await client.answers(msg_id, "execute_reply")
        reply = next(m for m in got if m["header"]["msg_type"] == "execute_reply")
        assert reply["parent_header"]["msg_id"] == msg_id
        assert reply["content"]["status"] == "aborted"
        # The socket still works on the new process.
        again = await client.send("shell", "execute_request", {"code": "print('back')"})
        streams = [m["content"]["text"] for m in await client.answers(again, "execute_reply")
                   if m["header"]["msg_type"] == "stream"]
        assert streams == ["back\n"]
    finally:
        await client.ws.close()
    await server.services.execution_log.barrier()
    rows = (await history(server, notebook_id, order="oldest"))["executions"]
    assert [r["status"] for r in rows if r["cell_id"] is None] == ["aborted", "ok"]


async def test_socket_closes_when_its_user_may_no_longer_run_code(server: Server) -> None:
    notebook_id, kernel_id = await running_kernel(server)
    client = await KernelClient.connect(server, kernel_id, server.token("bob"), v1=True)
    try:
        await server.share(notebook_id, "bob", "viewer")
        with anyio.fail_after(TIMEOUT), pytest.raises(websockets.ConnectionClosed) as closed:
            await client.receive()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
    finally:
        await client.ws.close()


@pytest.mark.parametrize(
    "v1, frame",
    [
        (True, b"\x01\x00"),  # too short
        (True, struct.pack("<Q", 3) + b"\x00" * 24),  # too few offsets
        (True, '{"channel": "shell"}'),  # text on the binary protocol
        (False, "not json"),
        (False, '{"channel": "nowhere", "header": {"msg_id": "1", "msg_type": "x"}}'),
        (False, b"\x00\x00\x00\x01"),  # binary on the JSON protocol
    ],
)
async def test_malformed_frames_close_only_that_socket(
    server: Server, v1: bool, frame: str | bytes
) -> None:
    notebook_id, kernel_id = await running_kernel(server)
    bad = await KernelClient.connect(server, kernel_id, server.token("alice"), v1)
    good = await KernelClient.connect(server, kernel_id, server.token("bob"), v1=True)
    try:
        await bad.ws.send(frame)
        with anyio.fail_after(TIMEOUT), pytest.raises(websockets.ConnectionClosed) as closed:
            await bad.receive()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
        info = await good.send("shell", "kernel_info_request", {})
        assert any(
            m["header"]["msg_type"] == "kernel_info_reply"
            for m in await good.answers(info, "kernel_info_reply")
        )
    finally:
        await bad.ws.close()
        await good.ws.close()
    assert server.services.kernels.status(notebook_id) is not None
