"""Edits survive restarts and crashes; reconnecting clients never duplicate anything."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from auth.schema import metadata
from auth.tokens import Tokens
from collab_server.database import open_engine
from tests.conftest import ServerFactory, wait_until
from tests.yclient import YClient


def texts(client: YClient) -> list[str]:
    return client.sources()


async def test_edits_survive_a_clean_restart(make_server: ServerFactory) -> None:
    server = await make_server()
    notebook_id = await server.create_notebook("alice/restart.ipynb")
    token = server.token("alice")
    async with YClient(server.ws_url(notebook_id), token) as alice:
        alice.notebook.ycells[0]["source"].insert(0, "print('kept')")
        async with YClient(server.ws_url(notebook_id), server.token("bob")) as bob:
            await bob.wait_for(lambda: bob.sources()[0] == "print('kept')")
    await server.stop()

    server = await make_server()
    async with YClient(server.ws_url(notebook_id), server.token("alice")) as again:
        assert again.sources() == ["print('kept')"]


async def test_client_connected_across_a_restart_reconnects_without_duplicates(
    make_server: ServerFactory,
) -> None:
    server = await make_server(save_delay=30.0)  # the .ipynb lags behind: the store is the truth
    notebook_id = await server.create_notebook("alice/across.ipynb")
    alice = YClient(server.ws_url(notebook_id), server.token("alice"))
    await alice.connect()
    await alice.wait_synced()
    cells = alice.notebook.ycells
    cells[0]["source"].insert(0, "a = 1")
    async with YClient(server.ws_url(notebook_id), server.token("bob")) as bob:
        await bob.wait_for(lambda: bob.sources() == ["a = 1"])
    token = server.token("alice")
    await server.stop()
    await alice.closed.wait()

    # Offline edit while the server is down, then reconnect to a new server process.
    cells[0]["source"].insert(5, "\nb = 2")
    server = await make_server()
    server.tokens["alice"] = token
    alice.url = server.ws_url(notebook_id)  # same server, new port in tests
    await alice.connect()
    await alice.wait_synced()
    async with YClient(server.ws_url(notebook_id), server.token("carol")) as carol:
        await carol.wait_for(lambda: carol.sources() == ["a = 1\nb = 2"])
        assert len(carol.notebook.ycells) == 1
        assert alice.sources() == ["a = 1\nb = 2"]
    await alice.close()


async def test_copy_from_an_earlier_document_is_told_to_reload(make_server: ServerFactory) -> None:
    server = await make_server()
    notebook_id = await server.create_notebook("alice/lost-store.ipynb")
    async with YClient(server.ws_url(notebook_id), server.token("alice")) as alice:
        alice.notebook.ycells[0]["source"].insert(0, "x = 1")
        saved = server.services.settings.root_dir / "alice" / "lost-store.ipynb"
        await wait_until(lambda: "x = 1" in saved.read_text())
        stale_doc = alice.doc
    token = server.token("alice")
    await server.stop()
    # The update store is lost: the server must seed anew from the .ipynb.
    for name in ("updates.db", "updates.db-wal", "updates.db-shm"):
        path = server.services.settings.data_dir / name
        if path.exists():
            path.unlink()
    server = await make_server()
    server.tokens["alice"] = token
    stale = YClient(server.ws_url(notebook_id), token, doc=stale_doc)
    await stale.connect()
    async with asyncio.timeout(10):
        await stale.closed.wait()
    assert stale.close_code == 4409
    assert "reload" in stale.close_reason or "earlier" in stale.close_reason
    async with YClient(server.ws_url(notebook_id), token) as fresh:
        assert fresh.sources() == ["x = 1"]
        assert len(fresh.notebook.ycells) == 1


# ---- a server in its own process, killed with SIGKILL ------------------------------


class ServerProcess:
    def __init__(self, root: Path, data: Path) -> None:
        self.root = root
        self.data = data
        self.process: subprocess.Popen[str] | None = None
        self.port = 0

    async def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "collab_server", "--port=0", f"--root-dir={self.root}",
             f"--data-dir={self.data}", "--CollabServer.save_delay=30"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # so its worker processes die with it
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), 30)
        match = re.search(r":(\d+)/", line)
        assert match, f"server did not start: {line!r}"
        self.port = int(match.group(1))

    def kill(self) -> None:
        """SIGKILL the server and everything it started."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def ws_url(self, room_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/api/rooms/{room_id}"


@pytest.fixture
async def server_process(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "notebooks", tmp_path / "data")
    yield proc
    proc.terminate()


async def test_edits_survive_sigkill_of_the_server(
    server_process: ServerProcess, tmp_path: Path
) -> None:
    root = server_process.root
    notebook = root / "alice" / "crash.ipynb"
    notebook.parent.mkdir(parents=True)
    nb: dict[str, Any] = {
        "cells": [{"cell_type": "code", "id": "c1", "metadata": {}, "source": "", "outputs": [],
                   "execution_count": None}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }
    notebook.write_text(json.dumps(nb))
    engine = open_engine(f"sqlite:///{server_process.data / 'collab.db'}")
    metadata.create_all(engine)
    token = Tokens(engine).create("alice")
    await server_process.start()
    from crdt.contents import ContentsManager

    engine_contents = ContentsManager(root, engine)
    notebook_id = await engine_contents.id_for_path("alice/crash.ipynb")

    url = server_process.ws_url(notebook_id)
    async with YClient(url, token) as alice, YClient(url, token) as bob:
        for i in range(50):
            alice.notebook.ycells[0]["source"].insert(0, f"{i};")
        await bob.wait_for(lambda: bob.sources()[0].startswith("49;"))
        seen_by_bob = bob.sources()
        server_process.kill()  # the .ipynb was never saved (save_delay=30)
    assert "49;" not in notebook.read_text()

    await server_process.start()
    async with YClient(server_process.ws_url(notebook_id), token) as fresh:
        assert fresh.sources() == seen_by_bob
    engine.dispose()


async def test_a_crash_between_renaming_a_save_and_recording_its_hash_loses_nothing(
    make_server: ServerFactory,
) -> None:
    """The state a SIGKILL leaves right after a save's rename: the file holds an older
    version than the store, its hash is only the store's pending hash. On restart
    the file must be recognised as the server's own write, not loaded over the
    newer document."""
    from crdt import notebook_io
    from crdt.store import documents

    server = await make_server(save_delay=30.0)
    notebook_id = await server.create_notebook("alice/window.ipynb")
    path = server.services.settings.root_dir / "alice" / "window.ipynb"
    async with YClient(server.ws_url(notebook_id), server.token("alice")) as alice:
        source = alice.notebook.ycells[0]["source"]
        source.insert(0, "a = 1\n")
        async with YClient(server.ws_url(notebook_id), server.token("bob")) as bob:
            await bob.wait_for(lambda: bob.sources() == ["a = 1\n"])
            older = bob.doc.get_update()  # the version an interrupted save was writing
            source.insert(len(source), "c = 3\n")  # stored and seen by bob after that
            await bob.wait_for(lambda: bob.sources() == ["a = 1\nc = 3\n"])
    room = server.services.rooms.get(notebook_id)
    assert room is not None
    before_hash = room.disk_hash
    await server.stop()  # a clean stop saves; recreate the crash state by hand:
    data = notebook_io.serialize_notebook(notebook_io.notebook_from_state(older))
    path.write_bytes(data)
    with server.services.store_db.begin() as conn:
        conn.execute(
            documents.update()
            .where(documents.c.room_id == notebook_id)
            .values(disk_hash=before_hash, pending_hash=notebook_io.digest(data))
        )
    server = await make_server()
    async with YClient(server.ws_url(notebook_id), server.token("alice")) as fresh:
        assert fresh.sources() == ["a = 1\nc = 3\n"]
    assert not any(server.services.settings.data_dir.glob(f"checkpoints/{notebook_id}/*"))
