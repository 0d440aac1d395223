"""A crash between writing the .ipynb and recording its hash must not lose edits.

Found by ``test_convergence`` (kills "right after a save"); this is the
minimal, deterministic form. The server's ``Room.save`` (crdt/room.py) used
to have the worker write the file (``notebook_io.save_state``: ``atomic_write``
renames it into place) and only afterwards queue ``store.set_disk_hash`` for
the new hash. If the server died in between, the store still held the
*previous* hash; on restart ``RoomManager._open`` called
``load_if_changed_on_disk``, which took the server's own write for a change
made by another program and loaded the (older) file over the newer stored
document: edits made after that save started, already stored and seen by
other clients, were deleted from the notebook (kept only in a checkpoint).
The fix records the coming hash (``pending_hash``) before the file is
replaced and, on open, takes a file with that hash for the server's own save.

Instead of racing a SIGKILL against a few milliseconds, the test freezes
the notebook worker (SIGSTOP) while the save of an older state is pending,
lets a newer edit be stored and seen by another client, then freezes the
server's main process, lets the worker finish what it can do alone, and
kills the server before the main process can record anything. (A server
that records the coming hash before replacing the file cannot replace it
while its main process is frozen; then the test resumes it and kills it the
moment the file changes.)
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import wait_until
from tests.interop.node_client import unused_port
from tests.yclient import YClient

from .server_process import ServerProcess, file_signature, kill_when_file_changes, prepare_users


def notebook_worker_pid(server_pid: int) -> int:
    """The server's notebook worker: its child started by multiprocessing's spawn."""
    for task in os.listdir(f"/proc/{server_pid}/task"):
        with open(f"/proc/{server_pid}/task/{task}/children") as f:
            for child in f.read().split():
                with open(f"/proc/{child}/cmdline", "rb") as cmd:
                    if b"spawn_main" in cmd.read():
                        return int(child)
    raise AssertionError("the server has no notebook worker process")


def stored_disk_hash(store: Path, room_id: str) -> str | None:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT disk_hash FROM ystore_documents WHERE room_id = ?", (room_id,)
        ).fetchone()
    finally:
        conn.close()
    return None if row is None else str(row[0])


def file_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


NOTEBOOK: dict[str, Any] = {
    "cells": [
        {
            "cell_type": "code",
            "id": "c1",
            "metadata": {},
            "source": "",
            "outputs": [],
            "execution_count": None,
        }
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


async def test_kill_after_the_file_write_before_its_hash_is_stored_loses_nothing(
    tmp_path: Path,
) -> None:
    root, data = tmp_path / "notebooks", tmp_path / "data"
    tokens = prepare_users(data, ["alice", "bob"])
    # save_delay=0: a save starts (and takes its snapshot) on the loop turn right after
    # an edit, before that edit can even be stored and broadcast.
    server = ServerProcess(
        root, data, unused_port(), tmp_path / "server.log", {"CollabServer.save_delay": 0}
    )
    await server.start()
    try:
        created = await server.api(
            "PUT",
            "/api/contents/alice/window.ipynb",
            tokens["alice"],
            {"type": "notebook", "content": NOTEBOOK},
        )
        room_id = created["id"]
        await server.api(
            "POST",
            f"/api/notebooks/{room_id}/shares",
            tokens["alice"],
            {"user": "bob", "role": "editor"},
        )
        url = f"ws://127.0.0.1:{server.port}/api/rooms/{room_id}"
        path = root / "alice" / "window.ipynb"

        alice = YClient(url, tokens["alice"])
        bob = YClient(url, tokens["bob"])
        await alice.connect()
        await bob.connect()
        await alice.wait_synced()
        await bob.wait_synced()
        source = alice.notebook.ycells[0]["source"]

        source.insert(0, "a = 1\n")
        # Steady state: the file holds it and the store knows the file's hash.
        await wait_until(
            lambda: (
                "a = 1" in path.read_text()
                and stored_disk_hash(server.store_path, room_id) == file_hash(path)
            )
        )

        assert server.process is not None
        worker = notebook_worker_pid(server.process.pid)
        os.kill(worker, signal.SIGSTOP)
        try:
            source.insert(len(source), "b = 2\n")  # its save is now waiting for the worker
            await bob.wait_for(lambda: "b = 2" in bob.sources()[0])
            source.insert(len(source), "c = 3\n")  # stored and seen by bob while that save waits
            await bob.wait_for(lambda: "c = 3" in bob.sources()[0])
            # Freeze the main process: it cannot record anything now.
            os.kill(server.process.pid, signal.SIGSTOP)
        finally:
            os.kill(worker, signal.SIGCONT)
        try:
            # A server whose worker replaces the file on its own does it now (in milliseconds).
            await wait_until(lambda: "b = 2" in path.read_text(), timeout=5)
            written_alone = True
        except TimeoutError:
            # A server that records something before replacing the file cannot write now.
            written_alone = False
        if written_alone:
            await server.kill_and_wait()
        else:
            before = file_signature(path)
            os.kill(server.process.pid, signal.SIGCONT)
            # Kill at the first sign of the write, before anything after it can be recorded.
            await asyncio.to_thread(kill_when_file_changes, path, server.process.pid, 10.0, before)
            await server.kill_and_wait()
        alice.drop()
        bob.drop()

        await server.start()
        async with YClient(url, tokens["alice"]) as fresh:
            # With the bug: ['a = 1\nb = 2\n'] -- "c = 3", seen by bob before the crash, is gone.
            assert fresh.sources() == ["a = 1\nb = 2\nc = 3\n"]
    finally:
        await server.stop()
