"""crdt/updates.py: the check every client update passes before the document applies it."""

from __future__ import annotations

import json
import random

import nbformat
import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Array, Doc, Text

from crdt.protocol import ProtocolError
from crdt.updates import check_update


def recorded(doc: Doc) -> list[bytes]:
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    return updates


def test_an_insert_inside_a_character_is_refused() -> None:
    doc: Doc = Doc()
    text = doc.get("t", type=Text)
    updates = recorded(doc)
    text.insert(0, "é")
    text.insert(1, "😀")  # pycrdt counts UTF-8 bytes: offset 1 is inside "é"
    check_update(updates[0])
    with pytest.raises(ProtocolError, match="refers to its own client's clock 1"):
        check_update(updates[1])


def test_every_update_of_an_ordinary_editing_session_passes() -> None:
    rng = random.Random(5)
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "print('é😀')",
                outputs=[nbformat.v4.new_output("stream", text="hé")],
                metadata={"extra": ["a", 1, None, True, 2.5, {"x": [1, 2]}]},
            )
            for _ in range(20)
        ]
    )
    doc: Doc = Doc()
    updates = recorded(doc)
    YNotebook(doc).set(json.loads(nbformat.writes(notebook)))
    cells = doc.get("cells", type=Array)
    for _ in range(300):
        source = cells[rng.randrange(len(cells))]["source"]
        text = str(source)
        k = rng.randint(0, len(text))
        at = len(text[:k].encode())  # pycrdt counts UTF-8 bytes: a character boundary
        if rng.random() < 0.7 or k == len(text):
            source.insert(at, rng.choice(["a", "é", "😀", "\n", "日本"]))
        else:
            del source[at : at + len(text[k].encode())]
    assert len(updates) > 300
    for update in updates:
        check_update(update)
    check_update(doc.get_update())  # and the whole document in one update


@pytest.mark.parametrize(
    "update",
    [b"", b"\x01", b"\x01\x01\x05\x00", b"\x01\x01\x05\x00\x84", b"\xff" * 9, b"\x01\x01\x05\x00\x1f"],
)
def test_malformed_updates_are_refused(update: bytes) -> None:
    with pytest.raises(ProtocolError):
        check_update(update)


def state_of(doc: Doc) -> dict[int, int]:
    from crdt.protocol import decode_state_vector

    return decode_state_vector(doc.get_state())


def test_missing_names_what_an_update_builds_on_that_the_document_lacks() -> None:
    """Each way an update can wait for items: a gap in its own clocks, a neighbour of
    another client's, a deletion of items never received. Applied anyway, the
    document would hold it pending (and pycrdt shows no trace of it)."""
    server: Doc = Doc()
    server.get("t", type=Text)
    alice: Doc = Doc(client_id=1)
    bob: Doc = Doc(client_id=2)
    a_text, b_text = alice.get("t", type=Text), bob.get("t", type=Text)
    a_updates, b_updates = recorded(alice), recorded(bob)
    a_text.insert(0, "hello")
    a_text.insert(5, " world")  # a gap if the first never arrives
    bob.apply_update(alice.get_update())
    b_text.insert(11, "!")  # next to alice's items
    del b_text[0:5]  # deletes alice's items
    first, second = a_updates
    bang, deletion = b_updates[-2:]  # after the one that brought alice's text
    assert check_update(first).missing(state_of(server)) is None
    assert "start at clock 5" in str(check_update(second).missing(state_of(server)))
    assert "client 1" in str(check_update(bang).missing(state_of(server)))
    assert "client 1" in str(check_update(deletion).missing(state_of(server)))
    for update in (first, second):
        server.apply_update(update)
    for update in (bang, deletion):
        assert check_update(update).missing(state_of(server)) is None
        server.apply_update(update)
    assert str(server.get("t", type=Text)) == " world!"
    # A whole document, as a sync step 2 carries it, needs nothing but itself.
    assert check_update(bob.get_update()).missing({}) is None
