"""The update store on a real SQLite file and the machine's PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pycrdt import Doc, Text

from collab_server.database import open_engine
from crdt.store import UpdateStore

POSTGRES_URL = "postgresql+psycopg://postgres@localhost:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[UpdateStore]:
    url = f"sqlite:///{tmp_path / 'updates.db'}" if request.param == "sqlite" else POSTGRES_URL
    engine = open_engine(url)
    async with UpdateStore(engine) as s:
        yield s
    engine.dispose()


def keystrokes(n: int) -> tuple[Doc[Text], list[bytes]]:
    doc: Doc[Text] = Doc()
    text = doc.get("t", type=Text)
    updates = []
    for i in range(n):
        before = doc.get_state()
        text.insert(len(text), str(i % 10))
        updates.append(doc.get_update(before))
    return doc, updates


def replay(snapshot: bytes, tail: list[bytes]) -> str:
    doc: Doc[Text] = Doc()
    doc.apply_update(snapshot)
    for update in tail:
        doc.apply_update(update)
    return str(doc.get("t", type=Text))


async def test_appends_arriving_together_are_committed_and_loaded_in_order(store: UpdateStore) -> None:
    room = uuid.uuid4().hex
    seed: Doc[Text] = Doc()
    await store.create(room, seed.client_id, seed.get_update(), "hash0")
    doc, updates = keystrokes(300)
    await asyncio.gather(*(store.append(room, u, "alice") for u in updates))
    stored = await store.load(room)
    assert stored is not None
    assert stored.disk_hash == "hash0"
    assert len(stored.tail) == 300
    assert replay(stored.snapshot, stored.tail) == str(doc.get("t", type=Text))


async def test_compaction_keeps_the_document_and_drops_the_tail(store: UpdateStore) -> None:
    room = uuid.uuid4().hex
    doc, updates = keystrokes(1000)
    await store.create(room, doc.client_id, b"\x00\x00", None)
    for u in updates:
        store.append(room, u, "alice")
    await store.compact(room, doc.get_update())
    later = doc.get("t", type=Text)
    before = doc.get_state()
    later.insert(0, "x")
    await store.append(room, doc.get_update(before), "bob")
    stored = await store.load(room)
    assert stored is not None
    assert len(stored.tail) == 1
    assert replay(stored.snapshot, stored.tail) == "x" + "0123456789" * 100
    assert await store.size(room) == stored.size
    assert stored.size < sum(len(u) for u in updates)


async def test_unknown_and_deleted_rooms_load_as_none(store: UpdateStore) -> None:
    room = uuid.uuid4().hex
    assert await store.load(room) is None
    await store.create(room, 1, b"\x00\x00", None)
    await store.delete_room(room)
    assert await store.load(room) is None


async def test_stop_while_a_commit_runs_commits_what_arrived_meanwhile(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'updates.db'}")
    store = UpdateStore(engine)
    await store.start()
    room = uuid.uuid4().hex
    seed: Doc[Text] = Doc()
    await store.create(room, seed.client_id, seed.get_update(), "h")
    _, updates = keystrokes(50)
    first = store.append(room, updates[0], "alice")  # the writer starts committing it
    await asyncio.sleep(0)
    rest = [store.append(room, u, "alice") for u in updates[1:]]  # queued meanwhile
    async with asyncio.timeout(10):
        await store.stop()  # used to wait forever for a wake-up nobody sent
    await asyncio.gather(first, *rest)
    async with UpdateStore(engine) as again:
        stored = await again.load(room)
    assert stored is not None and len(stored.tail) == 50
    engine.dispose()
