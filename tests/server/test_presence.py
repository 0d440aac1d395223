"""Who is where, raised hands, and what a tutor's dashboard shows."""

from __future__ import annotations

import json
from typing import Any

from pycrdt import Map

from crdt import protocol
from tests.conftest import Server, ServerFactory
from tests.yclient import YClient


def hands(client: YClient) -> dict[str, Any]:
    return client.doc.get("hands", type=Map).to_py() or {}


async def test_presence_lists_people_in_notebooks_you_can_see(server: Server) -> None:
    mine = await server.create_notebook("alice/mine.ipynb", editors=("bob",))
    hidden = await server.create_notebook("carol/hidden.ipynb", editors=())
    async with YClient(server.ws_url(mine), server.token("bob")), YClient(
        server.ws_url(hidden), server.token("carol")
    ):
        seen = json.loads((await server.api("GET", "/api/presence")).body)["notebooks"]
        assert seen == {mine: [{"username": "bob", "role": "editor"}]}
    after = json.loads((await server.api("GET", "/api/presence")).body)["notebooks"]
    assert after == {}


async def test_anyone_in_the_room_raises_a_hand_and_a_tutor_lowers_it(
    make_server: ServerFactory,
) -> None:
    server = await make_server(tutor_groups={"tutors": ["class"]})
    users = server.services.users
    for name in ("tina", "sam", "vic"):
        users.get_or_create(name)
    users.create_group("tutors")
    users.create_group("class")
    users.add_member("tutors", "tina")
    users.add_member("class", "sam")
    notebook_id = await server.create_notebook("sam/work.ipynb", editors=())
    await server.share(notebook_id, "vic", "viewer", owner="sam")
    async with YClient(server.ws_url(notebook_id), server.token("tina")) as tina:
        raised = await server.api(
            "POST", f"/api/notebooks/{notebook_id}/hand", {"message": "stuck on 3"}, user="sam"
        )
        assert raised.code == 204
        await tina.wait_for(lambda: "sam" in hands(tina))
        assert hands(tina)["sam"]["message"] == "stuck on 3"
        # A viewer may raise a hand too, but not lower someone else's.
        assert (await server.api("POST", f"/api/notebooks/{notebook_id}/hand", {}, user="vic")).code == 204
        refused = await server.api("DELETE", f"/api/notebooks/{notebook_id}/hand/sam", user="vic")
        assert refused.code == 403
        too_long = await server.api(
            "POST", f"/api/notebooks/{notebook_id}/hand", {"message": "x" * 501}, user="sam"
        )
        assert too_long.code == 400
        dashboard = json.loads((await server.api("GET", "/api/tutor/students", user="tina")).body)
        student = dashboard["students"][0]
        assert student["name"] == "sam" and not student["active"]
        notebook = student["notebooks"][0]
        assert notebook["id"] == notebook_id and notebook["hands"]["sam"]["message"] == "stuck on 3"
        assert notebook["people"] == [{"username": "tina", "role": "viewer"}]
        lowered = await server.api("DELETE", f"/api/notebooks/{notebook_id}/hand/sam", user="tina")
        assert lowered.code == 204
        await tina.wait_for(lambda: "sam" not in hands(tina))
    stranger = json.loads((await server.api("GET", "/api/tutor/students", user="vic")).body)
    assert stranger == {"students": []}
    outsider = await server.api("POST", f"/api/notebooks/{notebook_id}/hand", {}, user="mallory")
    assert outsider.code == 404


class _Recorder:
    """A connection held by the test itself, so that messages reach the room in one pass."""

    can_write = True
    role_name = "editor"

    def __init__(self, name: str) -> None:
        self.username = name
        self.presence_user = {"username": name}
        self.sent: list[bytes] = []

    def send(self, message: bytes) -> None:
        self.sent.append(message)

    def close(self, code: int, reason: str) -> None:
        pass


def _presence_messages(conn: _Recorder) -> list[list[protocol.AwarenessEntry]]:
    return [
        protocol.decode_awareness_update(m.payload)
        for m in map(protocol.decode_message, conn.sent)
        if isinstance(m, protocol.AwarenessMessage)
    ]


async def test_presence_renewed_at_once_reaches_each_client_as_one_message(server: Server) -> None:
    notebook_id = await server.create_notebook("alice/burst.ipynb")
    async with YClient(server.ws_url(notebook_id), server.token("alice")) as alice:
        room = server.services.rooms.get(notebook_id)
        assert room is not None
        people = [_Recorder(name) for name in ("u0", "u1", "u2")]
        for person in people:
            room.join(person)
        seen_before = len(alice.awareness_messages)
        for n, person in enumerate(people):
            entry = protocol.AwarenessEntry(100 + n, 1, json.dumps({"cursor": n}))
            update = protocol.awareness_message(protocol.encode_awareness_update([entry]))
            room.receive(person, update)
        await alice.wait_for(lambda: set(alice.present()) == {100, 101, 102}, timeout=10)
        assert len(alice.awareness_messages) == seen_before + 1
        for n, person in enumerate(people):
            [message] = _presence_messages(person)
            states = {e.client_id: json.loads(e.state_json) for e in message}
            assert states == {
                100 + k: {"cursor": k, "user": {"username": f"u{k}"}} for k in range(3) if k != n
            }
        for person in people:
            room.leave(person)
        await alice.wait_for(lambda: alice.present() == {}, timeout=10)
        assert len(alice.awareness_messages) == seen_before + 2
