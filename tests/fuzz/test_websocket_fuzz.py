"""Hostile y-websocket input against a real server: frames, awareness, oversized messages.

Properties, for every frame an editor or a viewer sends (see ``strategies``):

- the server stays up and never fails on it: the attacker's socket is
  either closed with a clear code (1003 text frame, 1007 malformed, 1009 too
  big, or 4409 for a sync step 1 from another document) or the message is
  handled and the socket stays open;
- a refused message, and anything a viewer sends, changes nothing: the
  room's document, what the store holds and the .ipynb are as before, and
  no save is pending; a viewer who sent an update is told it was refused.
  The one exception is an editor's update that pycrdt refuses only after
  integrating part of it (``support.refused_halfway`` replays it on a copy
  of the document): the sender is closed with 1007, and the document holds
  exactly the part pycrdt integrated, no more (a CRDT cannot refuse half of
  a peer's update, and the sender is allowed to write);
- every client of the room ends up with the room's document;
- the other clients of the same room and a pair of clients in another room
  keep syncing;
- afterwards the notebook still loads: it is saved and unloaded, the file
  is valid nbformat and is what the server derives from the document, and
  a fresh client gets everything back from the store.

For presence, whatever a client sends as awareness: other clients only
ever receive standard JSON whose ``user`` is the sender's real identity, the
presence of another connection cannot be changed or removed, and the
attacker's presence disappears with its connection.

How the examples run against one server per test is explained in ``support``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st
from pycrdt import Text

from crdt import protocol
from crdt.admission import EMPTY_UPDATE
from tests.conftest import Server, ServerFactory, wait_until
from tests.yclient import YClient

from .strategies import (
    AWARENESS,
    MAX_VARUINT,
    Attack,
    attacks,
    awareness_states,
    awareness_update,
    varuint,
)
from .support import (
    TIMEOUT,
    Pair,
    RawClient,
    awareness_problems,
    derivation_mismatch,
    derived_ipynb,
    fuzz,
    refused_halfway,
    relayed_awareness,
    room_snapshot,
    small_notebook,
    state_vector,
    stored_state_vector,
    strict_json,
    validate_ipynb,
)

MAX_MESSAGE_SIZE = 256 * 1024
REFUSAL_CODES = {1003, 1007, 1009, 4409}


@pytest.fixture
async def server(make_server: ServerFactory) -> Server:
    return await make_server(max_message_size=MAX_MESSAGE_SIZE)


@pytest.fixture
async def sentinel(server: Server) -> AsyncIterator[Pair]:
    """Two editors in a room nobody attacks: it must keep syncing through everything."""
    notebook_id = await server.create_notebook("alice/sentinel.ipynb", small_notebook())
    async with Pair(server, notebook_id, "alice", "bob", in_cell=True) as pair:
        await pair.check("start")
        yield pair
        await pair.check("end")


def notebook_path(server: Server, path: str) -> Path:
    return server.services.settings.root_dir / path


def expected_code(attack: Attack) -> int | None:
    """The only close code some attacks may get."""
    if isinstance(attack.frame, str):
        return 1003
    if len(attack.frame) > MAX_MESSAGE_SIZE:
        return 1009
    return None


def asks_to_write(frame: bytes | str) -> bool:
    """Whether the server reads this frame as a document update (refused for viewers)."""
    if isinstance(frame, str):
        return False
    try:
        message = protocol.decode_message(frame)
    except protocol.ProtocolError:
        return False
    return isinstance(message, protocol.SyncMessage) and (
        message.step == protocol.SyncStep.UPDATE
        or (message.step == protocol.SyncStep.STEP2 and message.payload != EMPTY_UPDATE)
    )


async def check_notebook_loads(server: Server, notebook_id: str, path: Path) -> None:
    """Save and unload the room, then: the file is valid and is what the server derives from
    the document, a fresh client gets it all back from the store, and so does a download."""
    room = server.services.rooms.get(notebook_id)
    assert room is not None
    state = room.doc.get_update()
    expected_vector = state_vector(room.doc.get_state())
    await server.services.rooms.unload(notebook_id)
    saved = path.read_bytes()
    try:
        validate_ipynb(saved)
    except Exception as e:
        raise AssertionError(f"the saved notebook is invalid: {e}") from e
    mismatch = derivation_mismatch(saved, state)
    assert mismatch is None, mismatch
    async with YClient(server.ws_url(notebook_id), server.token("alice")) as fresh:
        reloaded = server.services.rooms.get(notebook_id)
        assert reloaded is not None
        assert state_vector(reloaded.doc.get_state()) == expected_vector, (
            "the store lost part of the document"
        )
        assert state_vector(fresh.doc.get_state()) == expected_vector, (
            "a fresh client did not get the whole document"
        )
    response = await server.api("GET", f"/api/notebooks/{notebook_id}")
    assert response.code == 200, response.body
    validate_ipynb(response.body)


names = itertools.count()


@fuzz(max_examples=60)
@given(data=st.data())
async def test_hostile_frames_are_refused_or_harmless(
    server: Server, sentinel: Pair, data: st.DataObject
) -> None:
    n = next(names)
    relative = f"alice/attacked-{n}.ipynb"
    notebook_id = await server.create_notebook(relative, small_notebook(), editors=("bob", "carol"))
    await server.share(notebook_id, "vic", "viewer")
    path = notebook_path(server, relative)
    role = data.draw(st.sampled_from(["editor", "viewer"]), label="attacker's role")
    attacker_name = "bob" if role == "editor" else "vic"

    async with Pair(server, notebook_id, "alice", "carol") as witnesses:
        before = await room_snapshot(server, notebook_id, path)
        attack = data.draw(attacks(before.update, before.state, MAX_MESSAGE_SIZE), label="attack")
        halfway = (
            refused_halfway(before.update, attack.frame)
            if role == "editor" and expected_code(attack) is None
            else None
        )
        async with RawClient(server.ws_url(notebook_id), server.token(attacker_name)) as attacker:
            await attacker.send(attack.frame)
            outcome = await attacker.settle()
        note(f"outcome: {outcome}")
        after = await room_snapshot(server, notebook_id, path)
        changed = after.update != before.update
        event(
            f"{role}: "
            + (f"closed {outcome.code}" if outcome.closed else "changed" if changed else "ignored")
            + (" (refused halfway)" if halfway is not None else "")
        )

        if outcome.closed:
            assert outcome.code in REFUSAL_CODES, f"closed with {outcome.code} {outcome.reason!r}"
            required = expected_code(attack)
            assert required is None or outcome.code == required, (
                f"expected {required}, got {outcome}"
            )
        else:
            assert expected_code(attack) is None, f"{attack} was not refused"

        if halfway is not None:
            # pycrdt integrated part of it before refusing the rest: that part stays (and is
            # stored and broadcast: checked below), the sender is told its update was invalid.
            assert outcome.closed and outcome.code == 1007, f"refused halfway, yet {outcome}"
            assert state_vector(after.state) == halfway, (
                "the document is not what pycrdt integrated of the refused update"
            )
            assert stored_state_vector(after.stored) == halfway, (
                "the store does not hold what the room integrated"
            )
        elif outcome.closed or role == "viewer":
            assert after.state == before.state and after.update == before.update, (
                "a refused message changed the document"
            )
            assert after.stored == before.stored, "a refused message reached the store"
            assert after.file == before.file and not after.dirty, (
                "a refused message touched the file"
            )
        if role == "viewer" and not outcome.closed and asks_to_write(attack.frame):
            assert any(f[:2] == b"\x02\x00" for f in outcome.frames), "the viewer was not told"

        await witnesses.check("after")
        room = server.services.rooms.get(notebook_id)
        assert room is not None
        for witness in (witnesses.a, witnesses.b):
            assert state_vector(witness.doc.get_state()) == state_vector(room.doc.get_state()), (
                "a client of the room does not have the room's document"
            )
    await sentinel.check(f"example {n}")
    if changed:
        await check_notebook_loads(server, notebook_id, path)
    else:
        await server.services.rooms.unload(notebook_id)
        validate_ipynb(path.read_bytes())


# ---- presence -----------------------------------------------------------------------------


@st.composite
def awareness_attacks(draw: st.DrawFn, witness_ids: list[int]) -> tuple[str, bytes]:
    """An awareness message of one to three entries, or with a lying entry count."""
    entries = []
    whats = []
    for _ in range(draw(st.integers(1, 3))):
        client_id = draw(
            st.one_of(
                st.sampled_from(witness_ids),  # owned by another connection
                st.integers(0, 2**32),
                st.integers(0, MAX_VARUINT),
            )
        )
        clock = draw(st.one_of(st.integers(0, 5), st.integers(0, MAX_VARUINT)))
        what, state = draw(awareness_states())
        entries.append(varuint(client_id) + varuint(clock) + varuint(len(state)) + state)
        whats.append(f"{what} for {'a witness' if client_id in witness_ids else client_id}@{clock}")
    count = len(entries)
    declared = draw(st.sampled_from([count, count, count, count + 1, max(0, count - 1), 2**40]))
    payload = varuint(declared) + b"".join(entries)
    frame = AWARENESS + varuint(len(payload)) + payload
    label = "; ".join(whats) + ("" if declared == count else f" (declares {declared} entries)")
    return label, frame


@fuzz(max_examples=50)
@given(data=st.data())
async def test_presence_cannot_be_forged_or_break_other_clients(
    server: Server, sentinel: Pair, data: st.DataObject
) -> None:
    notebook_id = await server.create_notebook(
        f"alice/presence-{next(names)}.ipynb", small_notebook(), editors=("bob", "carol")
    )
    await server.share(notebook_id, "vic", "viewer")
    async with Pair(server, notebook_id, "alice", "carol") as witnesses:
        alice, carol = witnesses.a, witnesses.b
        await alice.set_presence({"cursor": 1})
        await carol.wait_for(lambda: alice.doc.client_id in carol.present())
        alice_seen = carol.present()[alice.doc.client_id]
        witness_ids = [alice.doc.client_id, carol.doc.client_id]

        role = data.draw(st.sampled_from(["editor", "viewer"]), label="attacker's role")
        attacker_name = "bob" if role == "editor" else "vic"
        label, frame = data.draw(awareness_attacks(witness_ids), label="awareness")
        start = len(carol.frames)
        async with RawClient(server.ws_url(notebook_id), server.token(attacker_name)) as attacker:
            await attacker.send(frame)
            outcome = await attacker.settle()
            note(f"{label}: {outcome}")
            if outcome.closed:
                assert outcome.code in (1007, 1009), str(outcome)
            await witnesses.check("flush")  # every frame relayed so far has reached carol
            relayed = relayed_awareness(carol.frames[start:])
            for entry in relayed:
                problems = awareness_problems(entry)
                assert problems == [], "; ".join(problems)
                if entry.client_id in witness_ids:
                    continue
                state = strict_json(entry.state_json)
                if isinstance(state, dict):
                    user = state.get("user")
                    assert isinstance(user, dict) and user.get("username") == attacker_name, (
                        f"presence relayed under a forged identity: {entry.state_json[:200]}"
                    )
                    assert user.get("role") == role
            # The witnesses' presence is still theirs.
            assert carol.present().get(alice.doc.client_id) == alice_seen
            room = server.services.rooms.get(notebook_id)
            assert room is not None
            assert room.awareness.owner_of(alice.doc.client_id) is not None
            foreign = [cid for cid in room.awareness.states() if cid not in witness_ids]
            assert len(foreign) <= room.awareness.max_ids_per_connection
        # The attacker's presence leaves with its connection.
        await carol.wait_for(
            lambda: all(cid in witness_ids for cid in carol.present()), timeout=TIMEOUT
        )
        await witnesses.check("after")
    await sentinel.check("presence")
    await server.services.rooms.unload(notebook_id)


# ---- what the fuzz found, asserted directly --------------------------------------------


def halfway_update() -> bytes:
    """A 22-byte Yjs update: a string inserted into root "t", then an item whose parent is
    that string (not a type). pycrdt integrates the first struct, then raises RuntimeError."""
    client = 1000
    # fmt: off
    return b"".join([
        varuint(1), varuint(2), varuint(client), varuint(0),  # 1 client: 2 structs from clock 0
        b"\x04", varuint(1), varuint(1), b"t", varuint(2), b"ab",  # ContentString "ab" in root "t"
        b"\x08", varuint(0), varuint(client), varuint(0),  # ContentAny, parent: item 1000#0 ...
        varuint(1), b"\x77", varuint(1), b"x",  # ... holding ["x"]
        varuint(0),  # an empty delete set
    ])
    # fmt: on


def server_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the server logged as an error (a traceback means it failed on the input)."""
    return [
        f"{r.name}: {r.getMessage()}"[:300] for r in caplog.records if r.levelno >= logging.ERROR
    ]


def root_text(doc: Any, name: str) -> str:
    return str(doc.get(name, type=Text))


async def test_update_refused_halfway_is_1007_and_every_copy_agrees(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """pycrdt integrates the update's first struct ("ab" in root "t"), then refuses the rest.

    The sender is closed with 1007 (invalid data), and nothing is logged as a server
    error. The part already integrated is a valid change by an editor (a CRDT cannot
    refuse half of a peer's update), so it stays, and everybody agrees on it: the room,
    the other clients, the store, a fresh client after a reload; the saved .ipynb and
    the download are what the server derives from that document, and valid.
    """
    relative = "alice/halfway.ipynb"
    notebook_id = await server.create_notebook(relative, small_notebook(), editors=("bob", "carol"))
    path = notebook_path(server, relative)
    update = halfway_update()
    assert update.hex() == "0102e80700040101740261620800e807000177017800"
    async with Pair(server, notebook_id, "alice", "carol") as witnesses:
        before = await room_snapshot(server, notebook_id, path)
        halfway = refused_halfway(before.update, protocol.sync_update(update))
        assert halfway is not None and halfway.get(1000) == 2, halfway  # the premise: "ab" stays
        async with RawClient(server.ws_url(notebook_id), server.token("bob")) as attacker:
            await attacker.send(protocol.sync_update(update))
            outcome = await attacker.settle()
        assert outcome.closed and outcome.code == 1007, str(outcome)
        assert state_vector((await room_snapshot(server, notebook_id, path)).state) == halfway

        await witnesses.check("after")
        room = server.services.rooms.get(notebook_id)
        assert room is not None
        after = await room_snapshot(server, notebook_id, path)
        document = state_vector(after.state)
        assert document.get(1000) == 2, document
        for client in (witnesses.a, witnesses.b):
            assert state_vector(client.doc.get_state()) == document, "a client disagrees"
            assert root_text(client.doc, "t") == "ab"
        assert stored_state_vector(after.stored) == document, "the store disagrees"
        await wait_until(lambda: not room.dirty)
        derived = derived_ipynb(room.doc.get_update())
        assert path.read_bytes() == derived, "the saved notebook is not the room's document"
        validate_ipynb(derived)

    await server.services.rooms.unload(notebook_id)
    assert path.read_bytes() == derived
    async with YClient(server.ws_url(notebook_id), server.token("alice")) as fresh:
        assert state_vector(fresh.doc.get_state()) == document, "a fresh client disagrees"
        assert root_text(fresh.doc, "t") == "ab"
    response = await server.api("GET", f"/api/notebooks/{notebook_id}")
    assert response.code == 200, response.body
    assert response.body == derived, "the download is not the room's document"
    assert server_errors(caplog) == []


async def test_deeply_nested_awareness_state_is_malformed_input(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """A state nested 5000 deep (well under the size limit) is malformed input: 1007."""
    notebook_id = await server.create_notebook("alice/deep.ipynb", small_notebook())
    state = b"[" * 5000 + b"]" * 5000
    async with RawClient(server.ws_url(notebook_id), server.token("bob")) as attacker:
        await attacker.send(protocol.awareness_message(awareness_update(7, 1, state)))
        outcome = await attacker.settle()
    assert outcome.closed and outcome.code == 1007, str(outcome)
    assert server_errors(caplog) == []


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_non_standard_json_presence_is_refused_and_never_relayed(
    server: Server, number: str
) -> None:
    """NaN, Infinity and numbers overflowing to Infinity are not JSON for any Yjs client
    (JSON.parse rejects them): such a state is malformed (1007) and reaches nobody."""
    notebook_id = await server.create_notebook("alice/nan.ipynb", small_notebook())
    async with Pair(server, notebook_id, "alice", "carol") as witnesses:
        start = len(witnesses.b.frames)
        async with RawClient(server.ws_url(notebook_id), server.token("bob")) as attacker:
            state = f'{{"cursor": {number}}}'.encode()
            await attacker.send(protocol.awareness_message(awareness_update(7, 1, state)))
            outcome = await attacker.settle()
            await witnesses.check("flush")
        assert outcome.closed and outcome.code == 1007, str(outcome)
        await witnesses.check("closed")
        relayed = relayed_awareness(witnesses.b.frames[start:])
        assert [e.state_json for e in relayed if e.client_id == 7] == [], "it was relayed"
        bad = [e.state_json for e in relayed if awareness_problems(e)]
        assert bad == [], f"relayed as non-standard JSON: {bad}"


async def test_real_yjs_client_survives_hostile_presence(server: Server) -> None:
    node_client = pytest.importorskip("tests.interop.node_client")
    try:
        node_client._node_executable()
    except node_client.NodeClientError as e:
        pytest.skip(str(e))
    notebook_id = await server.create_notebook("alice/node.ipynb", small_notebook())
    prefix = f"ws://127.0.0.1:{server.port}/api/rooms"
    async with node_client.NodeYClients() as node:
        await node.connect(
            "carol",
            prefix,
            notebook_id,
            headers={"Authorization": f"token {server.token('carol')}"},
        )
        async with RawClient(server.ws_url(notebook_id), server.token("bob")) as attacker:
            await attacker.send(protocol.awareness_message(awareness_update(7, 1, b'{"x": NaN}')))
            outcome = await attacker.settle()
            assert outcome.closed and outcome.code == 1007, str(outcome)
            async with YClient(server.ws_url(notebook_id), server.token("alice")) as alice:
                alice.notebook.ycells[0]["source"] += "after"
                await asyncio.wait_for(node.wait_for("carol", cellSourceContains="after"), TIMEOUT)


async def test_oversized_and_text_frames_leave_the_room_alone(
    server: Server, sentinel: Pair
) -> None:
    """Deterministic companions of the fuzz: the size limit is exact, text frames are refused."""
    relative = "alice/limits.ipynb"
    notebook_id = await server.create_notebook(relative, small_notebook(), editors=("bob", "carol"))
    path = notebook_path(server, relative)
    async with Pair(server, notebook_id, "alice", "carol") as witnesses:
        before = await room_snapshot(server, notebook_id, path)
        for frame, code in [
            (b"\x00\x02" + varuint(MAX_MESSAGE_SIZE) + b"\x00" * MAX_MESSAGE_SIZE, 1009),
            ("\x00\x02\x00", 1003),
            (b"\x00\x02" + varuint(2**53 + 1) + b"\x00\x00", 1007),
            (b"\x01" + b"\xff" * 9 + b"\x01", 1007),
            (b"", 1007),
        ]:
            async with RawClient(server.ws_url(notebook_id), server.token("bob")) as attacker:
                await attacker.send(frame)
                outcome = await attacker.settle()
            assert outcome.closed and outcome.code == code, (frame[:16], outcome)
        # A message of exactly the limit is read: an empty update followed by padding,
        # which Yjs decoders (pycrdt's too) ignore.
        at_limit = b"\x00\x02" + varuint(MAX_MESSAGE_SIZE - 5) + b"\x00" * (MAX_MESSAGE_SIZE - 5)
        assert len(at_limit) == MAX_MESSAGE_SIZE
        async with RawClient(server.ws_url(notebook_id), server.token("bob")) as attacker:
            await attacker.send(at_limit)
            outcome = await attacker.settle()
        assert not outcome.closed, str(outcome)
        after = await room_snapshot(server, notebook_id, path)
        await witnesses.check("after")
        assert (after.update, after.stored, after.file) == (
            before.update,
            before.stored,
            before.file,
        )
    await sentinel.check("limits")
    assert json.loads((await server.api("GET", "/api/user")).body)["name"] == "alice"
