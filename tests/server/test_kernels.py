"""Running code through the server: shared kernels, outputs in the document for everyone,
the execution log and its history API, on real ipykernel kernels."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import pwd
import signal
import time
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest
from pycrdt import Map

from auth.pam import PAMAuthenticator
from kernels.pool import KernelPool
from tests.auth.unix_users import UnixUsers, throwaway_unix_users
from tests.conftest import Server, ServerFactory, wait_until
from tests.webclient import WebClient
from tests.yclient import YClient

TIMEOUT = 60


def code_cell(cell_id: str, source: str) -> dict[str, Any]:
    return {
        "id": cell_id,
        "cell_type": "code",
        "metadata": {},
        "execution_count": None,
        "source": source,
        "outputs": [],
    }


def notebook(*cells: tuple[str, str]) -> dict[str, Any]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.from_dict(code_cell(i, s)) for i, s in cells]
    return dict(nb)


def executions(client: YClient) -> dict[str, Any]:
    return client.doc.get("executions", type=Map).to_py() or {}


def kernel_state(client: YClient) -> dict[str, Any]:
    return client.doc.get("kernel", type=Map).to_py() or {}


def outputs_of(client: YClient, cell_id: str) -> list[dict[str, Any]]:
    for cell in client.cells():
        if cell["id"] == cell_id:
            return list(cell.get("outputs") or [])
    raise KeyError(cell_id)


def text_of(client: YClient, cell_id: str) -> str:
    parts = []
    for output in outputs_of(client, cell_id):
        if output["output_type"] == "stream":
            text = output["text"]
            parts.append("".join(text) if isinstance(text, list) else str(text))
        elif output["output_type"] in ("execute_result", "display_data"):
            parts.append(str(output["data"].get("text/plain", "")))
        elif output["output_type"] == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
    return "".join(parts)


def finished(client: YClient, *cell_ids: str) -> bool:
    runs = executions(client)
    return all(runs.get(c, {}).get("state") == "idle" and runs[c].get("status") for c in cell_ids)


async def run(server: Server, notebook_id: str, cells: list[str], user: str) -> Any:
    response = await server.api(
        "POST", f"/api/notebooks/{notebook_id}/execute", {"cell_ids": cells}, user=user
    )
    return response


async def history(
    server: Server, notebook_id: str, as_user: str = "alice", **params: str
) -> Any:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = await server.api(
        "GET", f"/api/notebooks/{notebook_id}/history?{query}", user=as_user
    )
    assert response.code == 200, response.body
    return json.loads(response.body)


@pytest.fixture
async def server(make_server: ServerFactory) -> Server:
    return await make_server()


async def test_three_users_queue_cells_and_everyone_sees_the_same_run(server: Server) -> None:
    cells = [("a", "import time; time.sleep(0.3); 'alice'"), ("b", "print('bob')"), ("c", "6 * 7")]
    notebook_id = await server.create_notebook(
        "alice/shared.ipynb", notebook(*cells), editors=("bob", "carol")
    )
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("alice")) as alice, YClient(
        url, server.token("bob")
    ) as bob, YClient(url, server.token("carol")) as carol:
        responses = await asyncio.gather(
            run(server, notebook_id, ["a"], "alice"),
            run(server, notebook_id, ["b"], "bob"),
            run(server, notebook_id, ["c"], "carol"),
        )
        assert [r.code for r in responses] == [202, 202, 202]
        ids = [json.loads(r.body)["execution_ids"][0] for r in responses]
        for client in (alice, bob, carol):
            await client.wait_for(lambda c=client: finished(c, "a", "b", "c"), timeout=TIMEOUT)
        for client in (alice, bob, carol):
            assert text_of(client, "a") == "'alice'"
            assert text_of(client, "b") == "bob\n"
            assert text_of(client, "c") == "42"
            runs = executions(client)
            assert [runs[c]["by"] for c in "abc"] == ["alice", "bob", "carol"]
            # One at a time, in the order the requests arrived (queued_at).
            order = sorted("abc", key=lambda c: runs[c]["queued_at"])
            for first, then in zip(order, order[1:]):
                assert runs[first]["finished_at"] <= runs[then]["started_at"]
            counts = [
                next(x for x in client.cells() if x["id"] == c)["execution_count"] for c in order
            ]
            assert None not in counts and counts == sorted(counts)
        assert executions(alice) == executions(bob) == executions(carol)
    await server.services.execution_log.barrier()
    rows = (await history(server, notebook_id, order="oldest"))["executions"]
    assert sorted((r["id"], r["username"], r["cell_id"], r["status"]) for r in rows) == sorted(
        [(ids[0], "alice", "a", "ok"), (ids[1], "bob", "b", "ok"), (ids[2], "carol", "c", "ok")]
    )
    assert next(r for r in rows if r["cell_id"] == "a")["code"] == cells[0][1]


async def test_outputs_keep_arriving_after_everyone_left(server: Server) -> None:
    source = "import time\nfor i in range(5):\n    print(i, flush=True)\n    time.sleep(0.3)"
    notebook_id = await server.create_notebook("alice/long.ipynb", notebook(("loop", source)))
    url = server.ws_url(notebook_id)
    async with YClient(url, server.token("alice")) as alice:
        assert (await run(server, notebook_id, ["loop"], "alice")).code == 202
        await alice.wait_for(lambda: "0\n" in text_of(alice, "loop"), timeout=TIMEOUT)
    # Nobody is connected; the kernel keeps printing into the document.
    await wait_until(
        lambda: server.services.kernels.status(notebook_id) is not None
        and not server.services.kernels.status(notebook_id)["busy"],  # type: ignore[index]
        timeout=TIMEOUT,
    )
    async with YClient(url, server.token("bob")) as bob:
        assert text_of(bob, "loop") == "0\n1\n2\n3\n4\n"
        assert executions(bob)["loop"]["status"] == "ok"
    saved = (server.services.settings.root_dir / "alice" / "long.ipynb").read_text()
    await wait_until(lambda: "4\\n" in (server.services.settings.root_dir / "alice" / "long.ipynb").read_text())
    assert saved is not None


async def test_viewer_cannot_run_and_nothing_is_logged(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/view.ipynb", notebook(("x", "1+1")), editors=())
    await server.share(notebook_id, "vic", "viewer")
    response = await run(server, notebook_id, ["x"], "vic")
    assert response.code == 403 and b"editor" in response.body
    for action in ("interrupt", "restart", "shutdown"):
        denied = await server.api("POST", f"/api/notebooks/{notebook_id}/kernel/{action}", user="vic")
        assert denied.code == 403
    stranger = await run(server, notebook_id, ["x"], "mallory")
    assert stranger.code == 404
    await server.services.execution_log.barrier()
    assert (await history(server, notebook_id))["executions"] == []
    assert server.services.kernels.status(notebook_id) is None  # no kernel was even started


async def test_bad_run_requests_are_refused_and_queue_nothing(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/bad.ipynb", notebook(("x", "1+1")))
    for body, code in [
        ({"cell_ids": ["nope"]}, 400),
        ({"cell_ids": "x"}, 400),
        ({"cell_ids": []}, 400),
        ({"cells": ["x"]}, 400),
    ]:
        response = await server.api("POST", f"/api/notebooks/{notebook_id}/execute", body)
        assert response.code == code, (body, response.body)
        assert json.loads(response.body)["message"]
    await server.services.execution_log.barrier()
    assert (await history(server, notebook_id))["executions"] == []


async def test_killed_kernel_fails_queued_cells_and_comes_back(server: Server) -> None:
    cells = [("slow", "import time; time.sleep(30)"), ("q1", "1"), ("q2", "2")]
    notebook_id = await server.create_notebook("alice/crash.ipynb", notebook(*cells))
    async with YClient(server.ws_url(notebook_id), server.token("alice")) as alice:
        assert (await run(server, notebook_id, ["slow"], "alice")).code == 202
        assert (await run(server, notebook_id, ["q1"], "bob")).code == 202
        assert (await run(server, notebook_id, ["q2"], "carol")).code == 202
        await alice.wait_for(lambda: executions(alice).get("slow", {}).get("state") == "running", timeout=TIMEOUT)
        kernel = server.services.kernel_pool.get(notebook_id)
        assert kernel is not None
        old_pid = kernel.pid
        os.kill(old_pid, signal.SIGKILL)
        await alice.wait_for(lambda: finished(alice, "slow", "q1", "q2"), timeout=TIMEOUT)
        runs = executions(alice)
        assert {runs[c]["status"] for c in ("slow", "q1", "q2")} == {"aborted"}
        assert all("KernelDied" in text_of(alice, c) for c in ("slow", "q1", "q2"))
        await alice.wait_for(lambda: kernel_state(alice).get("status") == "idle", timeout=TIMEOUT)
        assert server.services.kernel_pool.get(notebook_id).pid != old_pid  # type: ignore[union-attr]
        # The kernel is back: the next run works.
        assert (await run(server, notebook_id, ["q1"], "alice")).code == 202
        await alice.wait_for(lambda: executions(alice)["q1"].get("status") == "ok", timeout=TIMEOUT)
    await server.services.execution_log.barrier()
    rows = (await history(server, notebook_id, order="oldest"))["executions"]
    assert [r["status"] for r in rows] == ["aborted", "aborted", "aborted", "ok"]


async def test_interrupt_input_and_huge_output(make_server: ServerFactory) -> None:
    server = await make_server(max_output_bytes=64 * 1024)
    cells = [
        ("spin", "while True: pass"),
        ("ask", "name = input('Your name? ')\nprint('hello', name)"),
        ("flood", "import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 1_000_000)"),
    ]
    notebook_id = await server.create_notebook("alice/io.ipynb", notebook(*cells))
    async with YClient(server.ws_url(notebook_id), server.token("alice")) as alice:
        await run(server, notebook_id, ["spin"], "alice")
        await alice.wait_for(lambda: executions(alice).get("spin", {}).get("state") == "running", timeout=TIMEOUT)
        interrupted = await server.api("POST", f"/api/notebooks/{notebook_id}/kernel/interrupt", user="bob")
        assert interrupted.code == 204
        await alice.wait_for(lambda: finished(alice, "spin"), timeout=TIMEOUT)
        assert executions(alice)["spin"]["status"] == "interrupted"
        assert "KeyboardInterrupt" in text_of(alice, "spin")
        assert "bob" in kernel_state(alice).get("message", "")

        # input() goes to the user who ran the cell.
        await run(server, notebook_id, ["ask"], "bob")
        requests = alice.doc.get("input_requests", type=Map)
        await alice.wait_for(lambda: len(requests.to_py() or {}) == 1, timeout=TIMEOUT)
        execution_id, request = next(iter((requests.to_py() or {}).items()))
        assert request["for"] == "bob" and request["prompt"] == "Your name? "
        path = f"/api/notebooks/{notebook_id}/input"
        wrong = await server.api("POST", path, {"execution_id": execution_id, "value": "eve"}, user="alice")
        assert wrong.code == 403
        right = await server.api("POST", path, {"execution_id": execution_id, "value": "Bob"}, user="bob")
        assert right.code == 204
        await alice.wait_for(lambda: finished(alice, "ask"), timeout=TIMEOUT)
        assert "hello Bob" in text_of(alice, "ask")

        # 100 MB of output: truncated with a note, and the server keeps answering.
        await run(server, notebook_id, ["flood"], "alice")
        worst = 0.0
        while not finished(alice, "flood"):
            start = time.monotonic()
            response = await server.api("GET", "/api/user")
            assert response.code == 200
            worst = max(worst, time.monotonic() - start)
            try:
                await alice.wait_for(lambda: finished(alice, "flood"), timeout=0.1)
            except TimeoutError:
                pass
        shown = outputs_of(alice, "flood")
        assert sum(len(json.dumps(o)) for o in shown) < 200 * 1024
        assert "truncated" in json.dumps(shown[-1])
        print(f"worst API answer while a cell printed 100 MB: {worst * 1000:.0f} ms")
        assert worst < 2.0


async def test_history_filters_export_and_rebuild(server: Server) -> None:
    cells = [("one", "x = 1"), ("two", "x + 1"), ("bad", "1/0")]
    notebook_id = await server.create_notebook("alice/review.ipynb", notebook(*cells))
    async with YClient(server.ws_url(notebook_id), server.token("alice")) as alice:
        await run(server, notebook_id, ["one", "two"], "alice")
        await alice.wait_for(lambda: finished(alice, "one", "two"), timeout=TIMEOUT)
        await run(server, notebook_id, ["bad"], "bob")
        await alice.wait_for(lambda: finished(alice, "bad"), timeout=TIMEOUT)
    await server.services.execution_log.barrier()
    everything = (await history(server, notebook_id, order="oldest"))["executions"]
    assert [(r["cell_id"], r["username"], r["status"]) for r in everything] == [
        ("one", "alice", "ok"), ("two", "alice", "ok"), ("bad", "bob", "error"),
    ]
    assert everything[2]["error_name"] == "ZeroDivisionError"
    assert [r["cell_id"] for r in (await history(server, notebook_id, user="bob"))["executions"]] == ["bad"]
    assert [r["cell_id"] for r in (await history(server, notebook_id, status="error"))["executions"]] == ["bad"]
    assert [r["cell_id"] for r in (await history(server, notebook_id, q="x%20%2B"))["executions"]] == ["two"]
    page = await history(server, notebook_id, limit="2", order="oldest")
    rest = await history(server, notebook_id, limit="2", order="oldest", cursor=page["next_cursor"])
    assert [r["id"] for r in page["executions"] + rest["executions"]] == [r["id"] for r in everything]
    # A viewer (a tutor reviewing) reads it; a stranger does not.
    await server.share(notebook_id, "tina", "viewer")
    assert len((await history(server, notebook_id, as_user="tina"))["executions"]) == 3
    stranger = await server.api("GET", f"/api/notebooks/{notebook_id}/history", user="mallory")
    assert stranger.code == 404
    exported = await server.api("GET", f"/api/notebooks/{notebook_id}/history/export?format=csv")
    assert exported.code == 200 and exported.headers["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.body.decode())))
    assert [row["code"] for row in table] == ["x = 1", "x + 1", "1/0"]
    as_json = await server.api("GET", f"/api/notebooks/{notebook_id}/history/export?format=json")
    assert [r["username"] for r in json.loads(as_json.body)] == ["alice", "alice", "bob"]
    rebuilt = await server.api(
        "POST",
        f"/api/notebooks/{notebook_id}/history/rebuild",
        {"execution_ids": [everything[1]["id"], everything[0]["id"]], "path": "alice/replay.ipynb"},
    )
    assert rebuilt.code == 201, rebuilt.body
    saved = nbformat.reads((server.services.settings.root_dir / "alice" / "replay.ipynb").read_text(), 4)
    nbformat.validate(saved)
    assert [c.source for c in saved.cells] == ["x + 1", "x = 1"]
    elsewhere = await server.api(
        "POST",
        f"/api/notebooks/{notebook_id}/history/rebuild",
        {"execution_ids": [everything[0]["id"]], "path": "bob/stolen.ipynb"},
    )
    assert elsewhere.code == 403
    mine = json.loads((await server.api("GET", "/api/history", user="bob")).body)["executions"]
    assert [r["cell_id"] for r in mine] == ["bad"]
    others = await server.api("GET", "/api/history?user=alice", user="bob")
    assert others.code == 403


@pytest.fixture
def unix_users() -> Iterator[UnixUsers]:
    yield from throwaway_unix_users()


async def test_pam_users_kernels_run_as_them_and_cannot_reach_each_other(
    make_server: ServerFactory, unix_users: UnixUsers
) -> None:
    pool = KernelPool(pool_size=0, max_spares=0, check_interval=0.1, limit_file_size=1_000_000)
    server = await make_server(authenticators=[PAMAuthenticator()], kernel_pool=pool)
    (ann, ann_pw), (ben, ben_pw) = unix_users.add_user(), unix_users.add_user()
    for name, password in ((ann, ann_pw), (ben, ben_pw)):
        browser = WebClient(server.url)
        assert (await browser.login(name, password)).code == 302
    root = server.services.settings.root_dir
    data = server.services.settings.data_dir
    ben_id = await server.create_notebook(
        f"{ben}/secret.ipynb", notebook(("s", "secret = 'ben only'; print('ok')")), editors=()
    )
    probe = (
        "import os, pathlib, json\n"
        "def attempt(f):\n"
        "    try:\n"
        "        f(); return 'allowed'\n"
        "    except PermissionError: return 'denied'\n"
        "    except OSError: return 'failed'\n"
        f"print(json.dumps({{'uid': os.getuid(), 'euid': os.geteuid(),\n"
        f"  'read_notebook': attempt(lambda: open({str(root / ben / 'secret.ipynb')!r}).read()),\n"
        f"  'list_home': attempt(lambda: os.listdir({str(root / ben)!r})),\n"
        "  'read_connection': attempt(lambda: open(CONNECTION).read()),\n"
        "  'signal_kernel': attempt(lambda: os.kill(PID, 0)),\n"
        f"  'read_cookie_secret': attempt(lambda: open({str(data / 'cookie_secret')!r}).read()),\n"
        f"  'read_main_db': attempt(lambda: open({str(data / 'collab.db')!r}, 'rb').read()),\n"
        f"  'read_update_store': attempt(lambda: open({str(data / 'updates.db')!r}, 'rb').read()),\n"
        f"  'list_all_homes': attempt(lambda: os.listdir({str(root)!r})),\n"
        "  'private_tmp': __import__('tempfile').gettempdir() != '/tmp',\n"
        "  'write_big_file': attempt(lambda: open(os.path.join(__import__('tempfile').gettempdir(), 'big'), 'wb').write(b'x' * 2_000_000)),\n"
        "}))"
    )
    ann_id = await server.create_notebook(f"{ann}/probe.ipynb", notebook(("p", "")), editors=())
    async with YClient(server.ws_url(ben_id), server.token(ben)) as ben_client:
        assert (await run(server, ben_id, ["s"], ben)).code == 202
        await ben_client.wait_for(lambda: finished(ben_client, "s"), timeout=TIMEOUT)
    ben_kernel = server.services.kernel_pool.get(ben_id)
    assert ben_kernel is not None
    code = probe.replace("CONNECTION", repr(ben_kernel.manager.connection_file)).replace(
        "PID", str(ben_kernel.pid)
    )
    async with YClient(server.ws_url(ann_id), server.token(ann)) as ann_client:
        ann_client.notebook.ycells[0]["source"].insert(0, code)
        await ann_client.wait_for(lambda: code in ann_client.sources()[0])
        assert (await run(server, ann_id, ["p"], ann)).code == 202
        await ann_client.wait_for(lambda: finished(ann_client, "p"), timeout=TIMEOUT)
        seen = json.loads(text_of(ann_client, "p"))
    ann_uid = pwd.getpwnam(ann).pw_uid
    assert seen == {
        "uid": ann_uid,
        "euid": ann_uid,
        "read_notebook": "denied",
        "list_home": "denied",
        "read_connection": "denied",
        "signal_kernel": "denied",
        "read_cookie_secret": "denied",
        "read_main_db": "denied",
        "read_update_store": "denied",
        "list_all_homes": "denied",
        "private_tmp": True,
        "write_big_file": "failed",
    }
    assert ben_kernel.identity.uid == pwd.getpwnam(ben).pw_uid
    status = json.loads((await server.api("GET", f"/api/notebooks/{ann_id}/kernel", user=ann)).body)
    assert status["kernel"]["runs_as"] == ann


async def test_a_pam_users_kernel_reads_the_notebooks_the_server_wrote_in_their_folder(
    make_server: ServerFactory, unix_users: UnixUsers
) -> None:
    """Issue 13 item 6: the server (root) wrote ann's .ipynb root-owned 0600, so ann's own
    kernel got PermissionError opening her notebook. Privacy between users stays."""
    pool = KernelPool(pool_size=0, max_spares=0, check_interval=0.1)
    server = await make_server(authenticators=[PAMAuthenticator()], kernel_pool=pool)
    (ann, ann_pw), (ben, ben_pw) = unix_users.add_user(), unix_users.add_user()
    for name, password in ((ann, ann_pw), (ben, ben_pw)):
        assert (await WebClient(server.url).login(name, password)).code == 302
    made = await server.api("PUT", f"/api/contents/{ann}/sub", {"type": "directory"}, user=ann)
    assert made.code == 201
    probe = (
        "import json, os\n"
        "print(json.dumps({'cells': len(json.load(open('mine.ipynb'))['cells']),\n"
        "  'sub_writable': os.access('sub', os.W_OK),\n"
        "  'own_uid': os.stat('mine.ipynb').st_uid == os.getuid()}))"
    )
    ann_id = await server.create_notebook(f"{ann}/mine.ipynb", notebook(("p", probe)), editors=())
    ben_id = await server.create_notebook(f"{ben}/other.ipynb", notebook(("q", "1")), editors=())
    async with YClient(server.ws_url(ann_id), server.token(ann)) as ann_client:
        source = ann_client.notebook.ycells[0]["source"]
        source.insert(len(str(source)), "  # saved again by the server")
        path = server.services.settings.root_dir / ann / "mine.ipynb"
        await wait_until(lambda: "saved again" in path.read_text(), timeout=TIMEOUT)
        assert (await run(server, ann_id, ["p"], ann)).code == 202
        await ann_client.wait_for(lambda: finished(ann_client, "p"), timeout=TIMEOUT)
        assert json.loads(text_of(ann_client, "p")) == {
            "cells": 1, "sub_writable": True, "own_uid": True
        }
    ann_uid = pwd.getpwnam(ann).pw_uid
    for written in (path, path.parent / "sub"):
        assert os.stat(written).st_uid == ann_uid
    assert os.stat(path).st_mode & 0o077 == 0  # nobody else may read it
    ben_file = server.services.settings.root_dir / ben / "other.ipynb"
    assert os.stat(ben_file).st_uid == pwd.getpwnam(ben).pw_uid and ben_id
