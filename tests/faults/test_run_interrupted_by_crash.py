"""A cell running when the server is killed must not look "running" forever after the restart.

The server writes a run's state into the document (``executions[cell]``,
the cell's ``execution_state``, ``kernel.status``): it is the busy marker
every collaborator sees. If the server dies mid-run, its kernel dies too
(ipykernel exits when its parent does) and at the next start the execution
log marks the run "aborted" (``kernels/log.py``). The document must say so
as well, for everyone who opens the notebook; not only once somebody
happens to run another cell (which is when ``Executor.start`` called
``NotebookWriter.reset_leftovers``, until the server learnt to do it when a
room opens without a kernel: ``kernels/running.py`` ``_room_opened``).
Found with the run requests of the randomized fault runs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pycrdt import Map

from tests.conftest import wait_until
from tests.interop.node_client import unused_port
from tests.yclient import YClient

from .server_process import ServerProcess, kernel_reachable_dir, prepare_users

NOTEBOOK: dict[str, Any] = {
    "cells": [
        {
            "cell_type": "code",
            "id": "slow",
            "metadata": {},
            "source": "import time\ntime.sleep(120)",
            "outputs": [],
            "execution_count": None,
        }
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


async def log_statuses(server: ServerProcess, room_id: str, token: str) -> list[str]:
    history = await server.api("GET", f"/api/notebooks/{room_id}/history", token)
    return [run["status"] for run in history["executions"]]


def run_state(client: YClient) -> Any:
    entry = client.doc.get("executions", type=Map).get("slow")
    return None if entry is None else entry.get("state")


async def test_a_run_cut_short_by_a_server_crash_is_not_shown_running_after_the_restart() -> None:
    with kernel_reachable_dir("collab-faults-run-") as workdir:  # the kernel runs as nobody
        await run_cut_short_by_a_crash(workdir)


async def run_cut_short_by_a_crash(workdir: Path) -> None:
    root, data = workdir / "notebooks", workdir / "data"
    tokens = prepare_users(data, ["alice"])
    server = ServerProcess(root, data, unused_port(), workdir / "server.log")
    await server.start()
    try:
        created = await server.api(
            "PUT",
            "/api/contents/alice/slow.ipynb",
            tokens["alice"],
            {"type": "notebook", "content": NOTEBOOK},
        )
        room_id = created["id"]
        url = f"ws://127.0.0.1:{server.port}/api/rooms/{room_id}"
        async with YClient(url, tokens["alice"]) as alice:
            await server.api(
                "POST", f"/api/notebooks/{room_id}/execute", tokens["alice"], {"cell_ids": ["slow"]}
            )
            await alice.wait_for(lambda: run_state(alice) == "running", timeout=60)
            # The log commits in groups a few ms later; kill once it has the row.
            async with asyncio.timeout(10):
                while await log_statuses(server, room_id, tokens["alice"]) != ["running"]:
                    await asyncio.sleep(0.05)  # polls the REST API, bounded by the timeout
            await server.kill_and_wait()
        await server.start()

        assert await log_statuses(server, room_id, tokens["alice"]) == [
            "aborted"
        ]  # the log knows it is over

        async with YClient(url, tokens["alice"]) as fresh:
            # Fails today: the document keeps saying "running" (and the kernel "busy")
            # until somebody runs a cell again.
            try:
                await fresh.wait_for(lambda: run_state(fresh) != "running", timeout=10)
            except TimeoutError:
                kernel = fresh.doc.get("kernel", type=Map).to_py()
                raise AssertionError(
                    f"after the restart the document still shows the run as running: "
                    f"executions={fresh.doc.get('executions', type=Map).to_py()} kernel={kernel}"
                ) from None
            entry = fresh.doc.get("executions", type=Map)["slow"]
            assert (entry["state"], entry["status"]) == ("idle", "aborted")
            await wait_until(
                lambda: fresh.notebook.ycells[0].get("execution_state") != "running", timeout=10
            )
    finally:
        await server.stop()
