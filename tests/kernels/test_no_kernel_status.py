"""A notebook whose kernel is gone says so: "no kernel", and that running a cell starts one.

Issue 13: after a server restart the document said ``kernel.status ==
"dead"`` until someone ran a cell, and the page showed "dead" with nothing
to explain it. A real server process is stopped and started again on the
same data folder (as the fault tests do), and a real Yjs client reads the
``kernel`` map the page renders (``web/src/notebook/execution.js``: a status
that is not a string shows as "no kernel", the message as its tooltip).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pycrdt import Map

from kernels.running import CULLED, RESTARTED
from tests.faults.server_process import ServerProcess, kernel_reachable_dir, prepare_users
from tests.interop.node_client import unused_port
from tests.yclient import YClient

NOTEBOOK: dict[str, Any] = {
    "cells": [
        {
            "cell_type": "code",
            "id": "add",
            "metadata": {},
            "source": "1 + 1",
            "outputs": [],
            "execution_count": None,
        }
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def kernel_of(client: YClient) -> dict[str, Any]:
    return dict(client.doc.get("kernel", type=Map).to_py() or {})


def result_of(client: YClient) -> Any:
    outputs = client.notebook.ycells[0].get("outputs")
    for output in outputs.to_py() if outputs is not None else []:
        if output.get("output_type") == "execute_result":
            return output["data"]["text/plain"]
    return None


async def run_add(server: ServerProcess, room_id: str, token: str) -> None:
    await server.api("POST", f"/api/notebooks/{room_id}/execute", token, {"cell_ids": ["add"]})


async def create(server: ServerProcess, token: str) -> str:
    created = await server.api(
        "PUT",
        "/api/contents/alice/add.ipynb",
        token,
        {"type": "notebook", "content": NOTEBOOK},
    )
    return str(created["id"])


async def test_after_a_server_restart_the_notebook_shows_no_kernel_until_a_cell_runs() -> None:
    with kernel_reachable_dir("collab-kernels-restart-") as workdir:  # the kernel runs as nobody
        await restart_and_look(workdir)


async def restart_and_look(workdir: Path) -> None:
    tokens = prepare_users(workdir / "data", ["alice"])
    server = ServerProcess(
        workdir / "notebooks", workdir / "data", unused_port(), workdir / "server.log"
    )
    await server.start()
    try:
        room_id = await create(server, tokens["alice"])
        url = f"ws://127.0.0.1:{server.port}/api/rooms/{room_id}"
        async with YClient(url, tokens["alice"]) as alice:
            await run_add(server, room_id, tokens["alice"])
            await alice.wait_for(lambda: result_of(alice) == "2", timeout=60)
            assert kernel_of(alice)["status"] in ("idle", "busy")
        await server.stop()
        await server.start()

        async with YClient(url, tokens["alice"]) as fresh:
            await fresh.wait_for(lambda: kernel_of(fresh).get("message") == RESTARTED, timeout=30)
            kernel = kernel_of(fresh)
            assert kernel["status"] is None  # the page shows "no kernel"
            assert kernel["name"] == "python3" and kernel["by"] is None
            assert result_of(fresh) == "2"  # the outputs stay
            status = await server.api("GET", f"/api/notebooks/{room_id}/kernel", tokens["alice"])
            assert status == {"kernel": None}

            # Running a cell starts a kernel, as the message says.
            await run_add(server, room_id, tokens["alice"])
            await fresh.wait_for(lambda: kernel_of(fresh).get("status") == "idle", timeout=60)
            await fresh.wait_for(
                lambda: fresh.doc.get("executions", type=Map).to_py()["add"]["status"] == "ok",
                timeout=60,
            )
    finally:
        await server.stop()


async def test_a_culled_kernel_shows_no_kernel() -> None:
    with kernel_reachable_dir("collab-kernels-cull-") as workdir:
        tokens = prepare_users(workdir / "data", ["alice"])
        server = ServerProcess(
            workdir / "notebooks",
            workdir / "data",
            unused_port(),
            workdir / "server.log",
            {"KernelPool.cull_idle_after": 1.0, "KernelPool.check_interval": 0.2},
        )
        await server.start()
        try:
            room_id = await create(server, tokens["alice"])
            url = f"ws://127.0.0.1:{server.port}/api/rooms/{room_id}"
            async with YClient(url, tokens["alice"]) as alice:
                await run_add(server, room_id, tokens["alice"])
                await alice.wait_for(lambda: result_of(alice) == "2", timeout=60)
                await alice.wait_for(lambda: kernel_of(alice).get("message") == CULLED, timeout=60)
                assert kernel_of(alice)["status"] is None
        finally:
            await server.stop()
