"""Real Node y-websocket clients type while the owner flips their roles: once the typing
stops, every client still connected holds the server's document, and every other one
was closed with 4409 (its copy held edits refused while it could only view)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import Server
from tests.interop.node_client import NodeYClients

WAIT_MS = 30_000
NAMES = ("bob", "carol", "dave")
ROUNDS = 8


@pytest.fixture
async def node() -> AsyncIterator[NodeYClients]:
    async with NodeYClients(timeout=WAIT_MS / 1000 + 5) as clients:
        yield clients


def room_cells(server: Server, notebook_id: str) -> list[tuple[str, str]]:
    room = server.services.rooms.get(notebook_id)
    assert room is not None
    return [(str(c["id"]), str(c["source"])) for c in room.notebook.ycells]


def node_cells(state: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(c["id"]), str(c["source"])) for c in state["cells"]]


def reloaded(stats: dict[str, Any]) -> bool:
    """The server told this client to resync (4409), which y-websocket does not retry."""
    return any(close["code"] == 4409 for close in stats["closes"])


async def test_role_flips_while_typing_never_leave_a_client_silently_diverged(
    server: Server, node: NodeYClients
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    context = f"seed {seed}"
    started = time.monotonic()
    notebook_id = await server.create_notebook("alice/flips.ipynb", editors=NAMES)
    url = f"ws://127.0.0.1:{server.port}/api/rooms"
    for name in NAMES:
        await node.connect(
            name, url, notebook_id, headers={"Authorization": f"token {server.token(name)}"},
            timeout_ms=WAIT_MS,
        )
    roles = dict.fromkeys(NAMES, "editor")
    for round_number in range(ROUNDS):
        # The first round demotes someone and waits until they know, so that at least
        # one client holds refused edits; later flips land while everyone types.
        name = NAMES[0] if round_number == 0 else rng.choice(NAMES)
        roles[name] = "viewer" if roles[name] == "editor" else "editor"
        await server.share(notebook_id, name, roles[name])
        if round_number == 0:
            await _wait_role(node, name, "viewer", context)
        for typist in NAMES:
            stats = await node.stats(typist)
            if reloaded(stats):
                continue
            await node.request(
                "randomEdits", client=typist, count=rng.randint(3, 12), seed=rng.randrange(1 << 30)
            )
    # Everyone may write again: a client holding refused edits must now be closed.
    for name in NAMES:
        if roles[name] != "editor":
            roles[name] = "editor"
            await server.share(notebook_id, name, "editor")
    closed = []
    for name in NAMES:
        await _settle(node, server, notebook_id, name, context)
        stats = await node.stats(name)
        assert stats["roles"][0] == "editor", (context, name, stats["roles"])
        if reloaded(stats):
            closed.append(name)
            assert stats["permissionDenied"] > 0, (context, name, "closed without a refusal")
    assert NAMES[0] in closed, (context, "the client demoted while typing was not told to resync")
    assert time.monotonic() - started < 60, context


async def _wait_role(node: NodeYClients, name: str, role: str, context: str) -> None:
    deadline = time.monotonic() + 5  # a role change reaches the client within 5 s
    while (await node.stats(name))["roles"][-1:] != [role]:
        assert time.monotonic() < deadline, (context, name, f"not told it is a {role} within 5 s")
        await asyncio.sleep(0.05)


async def _settle(
    node: NodeYClients, server: Server, notebook_id: str, name: str, context: str
) -> None:
    """Wait until ``name`` was closed with 4409, or holds exactly the room's cells."""
    deadline = time.monotonic() + 20
    while True:
        stats = await node.stats(name)
        if reloaded(stats):
            return
        ours = node_cells(await node.state(name))
        if ours == room_cells(server, notebook_id) and stats["roles"][-1:] == ["editor"]:
            return
        assert time.monotonic() < deadline, (
            context, name, "connected but its document differs from the server's", ours,
            room_cells(server, notebook_id),
        )
        await asyncio.sleep(0.05)
