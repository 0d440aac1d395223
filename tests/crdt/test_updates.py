"""crdt/updates.py: the check every client update passes before the document applies it."""

from __future__ import annotations

import json
import random

import nbformat
import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Array, Doc, Text

from crdt.protocol import ProtocolError, decode_state_vector
from crdt.updates import check_update, missing


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


def _state(doc: Doc) -> dict[int, int]:
    return decode_state_vector(doc.get_state())


def _copy(doc: Doc) -> Doc:
    copy: Doc = Doc()
    copy.apply_update(doc.get_update())
    return copy


def test_needs_tell_exactly_which_updates_pycrdt_would_keep_pending() -> None:
    """A server refusing some of one client's updates: each later update is found to lack
    something exactly when applying it leaves its structs pending; the other client's
    updates, made on what the server sent it, always apply whole."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    server: Doc = Doc()
    YNotebook(server).set(
        json.loads(nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1") for _ in range(5)])))
    )
    writers = [_copy(server), _copy(server)]
    outbox: list[list[bytes]] = [recorded(w) for w in writers]
    refused = whole = lacked = 0
    for step in range(400):
        i = rng.randrange(2)
        writer = writers[i]
        source = writer.get("cells", type=Array)[rng.randrange(5)]["source"]
        text = str(source)
        if text and rng.random() < 0.3:
            del source[rng.randrange(len(text))]
        else:
            source.insert(rng.randint(0, len(text)), rng.choice("abc\n"))
        for update in outbox[i][:]:
            outbox[i].remove(update)
            shape = check_update(update)
            lacking = missing(shape.needs, _state(server))
            trial = _copy(server)
            trial.apply_update(update)
            if shape.ends and not missing(shape.ends, _state(trial)):
                assert not lacking, f"seed {seed}, step {step}: applied whole, yet {lacking} lacking"
            elif shape.ends:
                assert lacking, f"seed {seed}, step {step}: left pending, nothing found lacking"
            if lacking:
                lacked += 1
                assert i == 0, f"seed {seed}: an update made on the server's copy lacked {lacking}"
                continue
            if i == 0 and rng.random() < 0.05:
                refused += 1  # the server refuses it, as it does a viewer's
                continue
            whole += 1
            server.apply_update(update)
            writers[1 - i].apply_update(update)  # the other client gets what the server applied
    assert refused and lacked and whole, (seed, refused, lacked, whole)


def test_a_deletion_of_an_item_the_document_lacks_is_found() -> None:
    origin: Doc = Doc()
    text = origin.get("t", type=Text)
    text.insert(0, "hello")
    server: Doc = Doc()  # never got "hello"
    updates = recorded(origin)
    del text[1:3]
    shape = check_update(updates[0])
    assert shape.ends == {}  # no structs: only a delete set
    assert missing(shape.needs, _state(server)) == {origin.client_id: 3}
    assert missing(shape.needs, _state(_copy(origin))) == {}
