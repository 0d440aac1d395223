"""Completion (Tab) and help (Shift+Tab) from the notebook's shared kernel, over the API:
what the kernel knows (names defined by earlier runs), for editors only, bad requests refused."""

from __future__ import annotations

import json
from typing import Any

from pycrdt import Map

from tests.conftest import Server
from tests.yclient import YClient

from .test_kernels import TIMEOUT, finished, kernel_state, notebook, run


async def ask(server: Server, notebook_id: str, what: str, body: Any, user: str = "alice") -> Any:
    response = await server.api("POST", f"/api/notebooks/{notebook_id}/{what}", body, user=user)
    return response.code, json.loads(response.body)


async def test_completion_knows_what_the_shared_kernel_defined(server: Server) -> None:
    notebook_id = await server.create_notebook(
        "alice/analysis.ipynb", notebook(("setup", "visits_per_city = {'Lisbon': 1204}")),
        editors=("bob",),
    )
    async with YClient(server.ws_url(notebook_id), server.token("alice")) as alice:
        assert (await run(server, notebook_id, ["setup"], "alice")).code == 202
        await alice.wait_for(lambda: finished(alice, "setup"), timeout=TIMEOUT)
        await alice.wait_for(lambda: kernel_state(alice).get("status") == "idle", timeout=TIMEOUT)
        seen: list[Any] = []
        kernel = alice.doc.get("kernel", type=Map)
        kernel.observe(lambda _: seen.append(kernel.get("status")))
        await completions_and_help(server, notebook_id)
        # Completing is not running: nobody saw the notebook's kernel turn busy meanwhile.
        assert kernel_state(alice)["status"] == "idle"
        assert "busy" not in seen


async def completions_and_help(server: Server, notebook_id: str) -> None:
    # bob completes a name alice's run defined: one kernel for both.
    code = "total = visits_per"
    status, reply = await ask(server, notebook_id, "complete", {"code": code, "cursor_pos": len(code)}, "bob")
    assert status == 200, reply
    assert "visits_per_city" in [m["text"] for m in reply["matches"]]
    assert (reply["cursor_start"], reply["cursor_end"]) == (len("total = "), len(code))

    code = "import collections\ncollections.Ordered"
    status, reply = await ask(server, notebook_id, "complete", {"code": code, "cursor_pos": len(code)})
    assert status == 200
    assert "OrderedDict" in {m["text"].rsplit(".", 1)[-1] for m in reply["matches"]}

    # The cursor counts code points, as Jupyter's protocol does: "é" is one.
    code = "café = 1\ncaf"
    status, reply = await ask(server, notebook_id, "complete", {"code": code, "cursor_pos": len(code)})
    assert status == 200 and reply["cursor_start"] == len("café = 1\n")

    status, reply = await ask(server, notebook_id, "inspect", {"code": "len", "cursor_pos": 3})
    assert status == 200 and reply["found"] is True
    assert "Return the number of items" in reply["text"] and "\x1b[" not in reply["text"]
    status, reply = await ask(server, notebook_id, "inspect", {"code": "no_such_name_here", "cursor_pos": 5})
    assert status == 200 and reply == {"found": False, "text": ""}


async def test_a_first_tab_starts_the_kernel_as_a_run_would(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/fresh.ipynb", notebook(("a", "")), editors=())
    assert json.loads((await server.api("GET", f"/api/notebooks/{notebook_id}/kernel")).body) == {"kernel": None}
    status, reply = await ask(server, notebook_id, "complete", {"code": "pri", "cursor_pos": 3})
    assert status == 200 and "print" in [m["text"] for m in reply["matches"]]
    kernel = json.loads((await server.api("GET", f"/api/notebooks/{notebook_id}/kernel")).body)["kernel"]
    assert kernel["status"] == "idle"


async def test_viewers_get_no_completion_and_bad_requests_change_nothing(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/nb.ipynb", notebook(("a", "")), editors=())
    await server.share(notebook_id, "victor", "viewer")
    status, _ = await ask(server, notebook_id, "complete", {"code": "pri", "cursor_pos": 3}, "victor")
    assert status == 403
    for body in (
        {},
        {"code": "pri"},
        {"code": "pri", "cursor_pos": 4},
        {"code": "pri", "cursor_pos": -1},
        {"code": "pri", "cursor_pos": True},
        {"code": 3, "cursor_pos": 0},
        {"code": "x" * (1024 * 1024 + 1), "cursor_pos": 0},
    ):
        for what in ("complete", "inspect"):
            status, reply = await ask(server, notebook_id, what, body)
            assert status == 400, (what, body)
            assert "cursor_pos" in reply["message"]
    # Nothing refused started a kernel.
    assert json.loads((await server.api("GET", f"/api/notebooks/{notebook_id}/kernel")).body) == {"kernel": None}


async def test_while_a_long_cell_runs_completion_says_the_kernel_is_busy(server: Server) -> None:
    notebook_id = await server.create_notebook(
        "alice/slow.ipynb", notebook(("slow", "import time; time.sleep(60)")), editors=()
    )
    async with YClient(server.ws_url(notebook_id), server.token("alice")) as alice:
        assert (await run(server, notebook_id, ["slow"], "alice")).code == 202
        await alice.wait_for(
            lambda: alice.doc.get("executions", type=Map).to_py().get("slow", {}).get("state") == "running",
            timeout=TIMEOUT,
        )
        status, reply = await ask(server, notebook_id, "complete", {"code": "pri", "cursor_pos": 3})
        assert status == 409 and "busy" in reply["message"]
        interrupted = await server.api("POST", f"/api/notebooks/{notebook_id}/kernel/interrupt")
        assert interrupted.code == 204
        await alice.wait_for(lambda: finished(alice, "slow"), timeout=TIMEOUT)
        # Between cells the kernel answers again (its first completion loads jedi: on a
        # loaded machine that can take longer than the server waits, so ask until it answers).
        for _ in range(6):
            status, reply = await ask(server, notebook_id, "complete", {"code": "pri", "cursor_pos": 3})
            if status == 200:
                break
        assert status == 200 and "print" in [m["text"] for m in reply["matches"]]
