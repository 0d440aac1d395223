"""One kernel choice per notebook, shared by everyone in it (jupyterlab #10643 is the bug
where collaborators pick different kernels): the choice is the document's metadata, a
running kernel of another kind stops, and the next run starts the chosen one."""

from __future__ import annotations

import json
import sys
from typing import Any

from tests.conftest import Server
from tests.yclient import YClient

from .test_kernels import TIMEOUT, finished, kernel_state, notebook, run, text_of


def add_kernelspec(server: Server, name: str, display_name: str) -> None:
    """A second Python kernel, as `collab-server kernels add` registers one."""
    folder = server.services.settings.data_dir / "kernels" / name
    folder.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": display_name,
        "language": "python",
    }
    (folder / "kernel.json").write_text(json.dumps(spec))


def kernelspec_of(client: YClient) -> Any:
    return client.notebook.get()["metadata"].get("kernelspec", {}).get("name")


async def choose(server: Server, notebook_id: str, name: str, user: str = "alice") -> Any:
    return await server.api("PUT", f"/api/notebooks/{notebook_id}/kernelspec", {"name": name}, user=user)


async def test_the_kernel_chosen_by_one_is_the_kernel_of_all(server: Server) -> None:
    add_kernelspec(server, "other-python", "Other Python")
    listed = json.loads((await server.api("GET", "/api/kernelspecs", user="bob")).body)
    assert listed["default"] == "python3"
    assert listed["kernelspecs"]["other-python"]["spec"] == {
        "display_name": "Other Python", "language": "python"
    }
    assert "python3" in listed["kernelspecs"]

    notebook_id = await server.create_notebook(
        "alice/choice.ipynb", notebook(("set", "x = 41"), ("use", "x + 1")), editors=("bob",)
    )
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("alice")) as alice, YClient(url, server.token("bob")) as bob:
        assert (await run(server, notebook_id, ["set"], "alice")).code == 202
        await bob.wait_for(lambda: finished(bob, "set"), timeout=TIMEOUT)
        before = json.loads((await server.api("GET", f"/api/notebooks/{notebook_id}/kernel")).body)
        assert before["kernel"]["name"] == "python3"

        # Choosing the kernel it already has changes nothing: x is still there.
        assert (await choose(server, notebook_id, "python3", "bob")).code == 200
        assert (await run(server, notebook_id, ["use"], "bob")).code == 202
        await bob.wait_for(lambda: finished(bob, "use") and "42" in text_of(bob, "use"), timeout=TIMEOUT)

        chosen = await choose(server, notebook_id, "other-python", "bob")
        assert chosen.code == 200, chosen.body
        for client in (alice, bob):
            await client.wait_for(lambda c=client: kernelspec_of(c) == "other-python")
            await client.wait_for(lambda c=client: kernel_state(c).get("status") is None)
            assert kernel_state(client)["message"] == "bob chose Other Python. It starts when you run a cell."
        assert json.loads((await server.api("GET", f"/api/notebooks/{notebook_id}/kernel")).body) == {"kernel": None}

        assert (await run(server, notebook_id, ["use"], "alice")).code == 202
        await alice.wait_for(lambda: "NameError" in text_of(alice, "use"), timeout=TIMEOUT)  # a new kernel
        after = json.loads((await server.api("GET", f"/api/notebooks/{notebook_id}/kernel")).body)
        assert after["kernel"]["name"] == "other-python"
    saved = server.services.settings.root_dir / "alice" / "choice.ipynb"
    await server.services.rooms.unload(notebook_id)
    assert json.loads(saved.read_text())["metadata"]["kernelspec"]["name"] == "other-python"


async def test_viewers_cannot_choose_and_unknown_kernels_change_nothing(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/fixed.ipynb", notebook(("a", "1")), editors=())
    await server.share(notebook_id, "victor", "viewer")
    async with YClient(server.ws_url(notebook_id), server.token("alice")) as alice:
        before = alice.notebook.get()["metadata"]
        assert (await choose(server, notebook_id, "python3", "victor")).code == 403
        unknown = await choose(server, notebook_id, "no-such-kernel")
        assert unknown.code == 422
        for body in ({}, {"name": 3}, {"name": ""}):
            response = await server.api("PUT", f"/api/notebooks/{notebook_id}/kernelspec", body)
            assert response.code == 400
        assert alice.notebook.get()["metadata"] == before
