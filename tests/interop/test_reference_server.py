"""Self-test of the Node Yjs client harness against the reference y-websocket server.

If these fail, the harness is broken, not collab-server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from .node_client import NodeClientError, NodeYClients, ReferenceServer, unused_port

ROOM = "nb-0001"


@pytest.fixture
async def server() -> AsyncIterator[ReferenceServer]:
    async with ReferenceServer() as reference:
        yield reference


@pytest.fixture
async def node() -> AsyncIterator[NodeYClients]:
    async with NodeYClients() as clients:
        yield clients


def rooms_url(server: ReferenceServer) -> str:
    return f"{server.url}/api/rooms"


@pytest.mark.asyncio
async def test_two_clients_converge_on_concurrent_text(
    server: ReferenceServer, node: NodeYClients
) -> None:
    await node.connect("alice", rooms_url(server), ROOM)
    await node.request("insertCell", client="alice", index=0, cellId="c1", source="x = 1\n")
    await node.connect("bob", rooms_url(server), ROOM)
    await node.wait_for("bob", cellSourceContains="x = 1")

    # Both type at the start of the same cell without waiting for each other;
    # the order of the two insertions is Yjs's to decide, but both must agree.
    await asyncio.gather(
        node.request("insertText", client="alice", cell=0, index=0, text="# alice\n"),
        node.request("insertText", client="bob", cell=0, index=0, text="# bob\n"),
    )
    for client in ("alice", "bob"):
        await node.wait_for(client, cell=0, cellSourceContains="# alice")
        await node.wait_for(client, cell=0, cellSourceContains="# bob")

    alice, bob = await node.state("alice"), await node.state("bob")
    assert alice["cells"] == bob["cells"]
    assert [cell["id"] for cell in alice["cells"]] == ["c1"]
    assert alice["cells"][0]["cell_type"] == "code"
    assert alice["cells"][0]["source"] in ("# alice\n# bob\nx = 1\n", "# bob\n# alice\nx = 1\n")


@pytest.mark.asyncio
async def test_each_client_sees_the_others_presence(
    server: ReferenceServer, node: NodeYClients
) -> None:
    alice_id = await node.connect(
        "alice", rooms_url(server), ROOM, awareness_user={"name": "Alice"}
    )
    bob_id = await node.connect("bob", rooms_url(server), ROOM, awareness_user={"name": "Bob"})
    await node.request("insertCell", client="alice", index=0, source="print('hi')")
    await node.wait_for("bob", cellCount=1)
    await node.request("setCursor", client="alice", cell=0, anchor=1, head=4)
    await node.request("setCursor", client="bob", cell=0, anchor=2, head=2)

    await node.wait_for(
        "bob",
        awarenessCount=2,
        awarenessMatches={
            "clientID": alice_id,
            "fields": {"user": {"name": "Alice"}, "cursor": {"cell": 0, "anchor": 1, "head": 4}},
        },
    )
    await node.wait_for(
        "alice",
        awarenessCount=2,
        awarenessMatches={
            "clientID": bob_id,
            "fields": {"user": {"name": "Bob"}, "cursor": {"cell": 0, "anchor": 2, "head": 2}},
        },
    )
    seen_by_bob = (await node.state("bob"))["awareness"]
    assert seen_by_bob[str(alice_id)]["user"] == {"name": "Alice"}

    bob_stats = await node.stats("bob")
    assert bob_stats["remote"][str(alice_id)]["distinct"] >= 2  # initial state + cursor

    await node.request("disconnect", client="alice")
    await node.wait_for("bob", awarenessCount=1)


@pytest.mark.asyncio
async def test_echo_detector_reports_the_reference_servers_echo(
    server: ReferenceServer, node: NodeYClients
) -> None:
    """The reference server sends every awareness update back to its sender too."""
    await node.connect("alice", rooms_url(server), ROOM)
    await node.connect("bob", rooms_url(server), ROOM)
    await node.request("renewAwareness", clients="all")
    for client in ("alice", "bob"):
        await node.wait_for(client, minStats={"echoes": 1})
        stats = await node.stats(client)
        assert stats["ownIdForeignClock"] == 0
        assert stats["echoes"] <= stats["awarenessSent"]


@pytest.mark.asyncio
async def test_refused_connection_is_reported_and_writes_are_refused(node: NodeYClients) -> None:
    nobody = f"ws://127.0.0.1:{unused_port()}/api/rooms"
    with pytest.raises(NodeClientError) as refused:
        await node.connect("carol", nobody, ROOM)
    assert refused.value.reply is not None
    assert refused.value.reply["closeCode"] == 1006
    assert "ECONNREFUSED" in refused.value.reply["socketError"]

    reply = await node.request("insertCell", client="carol", index=0, check=False)
    assert not reply["ok"]
    assert "not synced" in reply["error"]
