"""Hypothesis strategies for hostile y-websocket input.

Messages are built the way the protocol frames them (``varuint(type)``, for
sync a ``varuint(step)``, then ``varbytes(payload)``), so that the fuzzer can
break each part on purpose: random bytes, valid messages (sync step 1/2,
update, awareness, query-awareness, auth), and those valid messages
truncated, bit-flipped, overwritten, spliced, re-framed with a wrong, huge
or over-long declared length, or grown past the server's size limit.
Valid document updates are real Yjs updates made by a local copy of the
attacked document, so that their mutations reach deep into Yjs decoding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from jupyter_ydoc import YNotebook
from pycrdt import Doc, Map

from crdt import protocol

MAX_VARUINT = 2**56 - 1  # the largest integer the server's decoder reads (8 bytes)

SYNC_STEP1 = b"\x00\x00"
SYNC_STEP2 = b"\x00\x01"
SYNC_UPDATE = b"\x00\x02"
AWARENESS = b"\x01"


@dataclass(frozen=True)
class Attack:
    """One frame to send, and how it was made (shown by Hypothesis when a property fails)."""

    how: str
    frame: bytes | str

    def __repr__(self) -> str:
        frame = self.frame
        if isinstance(frame, bytes):
            shown = (
                frame.hex() if len(frame) <= 96 else f"{frame[:48].hex()}...({len(frame)} bytes)"
            )
        else:
            shown = repr(frame[:96])
        return f"Attack({self.how}: {shown})"


def varuint(value: int) -> bytes:
    return protocol.encode_varuint(value)


def overlong_varuint(value: int, extra: int) -> bytes:
    """``value`` encoded with ``extra`` redundant continuation bytes (lib0 still reads it)."""
    encoded = bytearray(varuint(value))
    encoded[-1] |= 0x80
    encoded += b"\x80" * (extra - 1) + b"\x00"
    return bytes(encoded)


# ---- valid document updates ------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**31), 2**31),
    texts,
    st.floats(allow_nan=False, allow_infinity=False),
)

edit_ops = st.one_of(
    st.tuples(st.just("insert_text"), st.integers(0, 5), st.integers(0, 40), texts),
    st.tuples(st.just("delete_text"), st.integers(0, 5), st.integers(0, 40), st.integers(1, 5)),
    st.tuples(st.just("append_cell"), st.sampled_from(["code", "markdown", "raw"]), texts),
    st.tuples(st.just("delete_cell"), st.integers(0, 5)),
    st.tuples(st.just("cell_metadata"), st.integers(0, 5), texts, json_scalars),
    st.tuples(st.just("notebook_metadata"), texts, json_scalars),
)


def _apply(nb: YNotebook, op: tuple[Any, ...]) -> None:
    kind = op[0]
    cells = nb.ycells
    if kind == "append_cell":
        cell: dict[str, Any] = {"cell_type": op[1], "source": op[2], "metadata": {}}
        if op[1] == "code":
            cell.update(outputs=[], execution_count=None)
        nb.append_cell(cell)
        return
    if kind == "notebook_metadata":
        nb.ydoc.get("meta", type=Map)["metadata"][op[1]] = op[2]
        return
    if len(cells) == 0:
        return
    ycell = cells[op[1] % len(cells)]
    # pycrdt counts a Text's length in UTF-8 bytes but indexes it otherwise: positions are
    # only used in ASCII text, anything else is edited at its start.
    if kind == "insert_text":
        source = ycell["source"]
        text_ = str(source)
        source.insert(min(op[2], len(text_)) if text_.isascii() else 0, op[3])
    elif kind == "delete_text":
        source = ycell["source"]
        text_ = str(source)
        if text_ and text_.isascii():
            start = min(op[2], len(text_) - 1)
            del source[start : min(len(text_), start + op[3])]
    elif kind == "delete_cell":
        del cells[op[1] % len(cells)]
    elif kind == "cell_metadata":
        ycell["metadata"][op[2]] = op[3]


@st.composite
def valid_updates(draw: st.DrawFn, base_state: bytes) -> bytes:
    """A real Yjs update: schema-respecting edits made on a copy of the document ``base_state``."""
    doc: Doc[Any] = Doc()
    doc.apply_update(base_state)
    nb = YNotebook(doc)
    before = doc.get_state()
    for op in draw(st.lists(edit_ops, min_size=1, max_size=4)):
        try:
            _apply(nb, op)
        except BaseException as e:  # an edit that does not fit this document (pycrdt may panic)
            if not isinstance(e, Exception) and type(e).__name__ != "PanicException":
                raise
            continue
    update: bytes = doc.get_update(before)
    return update


# ---- valid messages ------------------------------------------------------------------------

client_ids = st.one_of(st.integers(0, 2**32), st.integers(0, MAX_VARUINT))


def awareness_update(client_id: int, clock: int, state: bytes) -> bytes:
    return varuint(1) + varuint(client_id) + varuint(clock) + varuint(len(state)) + state


@st.composite
def valid_framed(
    draw: st.DrawFn, base_state: bytes, state_vector: bytes
) -> tuple[str, bytes, bytes]:
    """(what, header, payload) of a well-formed message; the frame is header + varbytes(payload)."""
    kind = draw(
        st.sampled_from(["step1", "step2", "step2", "update", "update", "update", "awareness"])
    )
    if kind == "step1":
        sv = draw(st.sampled_from([state_vector, b"\x00"]))
        return "sync step 1", SYNC_STEP1, sv
    if kind in ("step2", "update"):
        update = draw(valid_updates(base_state))
        return f"sync {kind}", SYNC_STEP2 if kind == "step2" else SYNC_UPDATE, update
    state = json.dumps({"cursor": draw(st.integers(0, 100)), "user": {"name": "mallory"}})
    payload = awareness_update(draw(client_ids), draw(st.integers(0, 1000)), state.encode())
    return "awareness", AWARENESS, payload


def frame(header: bytes, payload: bytes) -> bytes:
    return header + varuint(len(payload)) + payload


# ---- breaking them ---------------------------------------------------------------------------


# Positions are drawn from a fixed range and taken modulo the message's length: the
# attacked document (and so every message's length) differs from one example to the next,
# and Hypothesis needs the same draws to mean the same thing when it replays or shrinks.
positions = st.integers(0, 2**16)


@st.composite
def mutated(draw: st.DrawFn, message: bytes) -> tuple[str, bytes]:
    data = bytearray(message)
    size = max(1, len(data))
    how = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "delete", "append"]))
    if how == "truncate":
        cut = draw(positions) % size
        return f"truncated to {cut} bytes", bytes(data[:cut])
    if how == "flip":
        flips = [
            (p % size, bit)
            for p, bit in draw(
                st.lists(st.tuples(positions, st.integers(0, 7)), min_size=1, max_size=4)
            )
        ]
        for pos, bit in flips:
            if pos < len(data):
                data[pos] ^= 1 << bit
        return f"bits flipped at {flips}", bytes(data)
    pos = draw(positions) % size
    if how == "overwrite":
        value = draw(st.integers(0, 255))
        if pos < len(data):
            data[pos] = value
        return f"byte {pos} set to {value:#x}", bytes(data)
    if how == "insert":
        extra = draw(st.binary(min_size=1, max_size=8))
        return f"{extra.hex()} inserted at {pos}", bytes(data[:pos] + extra + data[pos:])
    if how == "delete":
        length = draw(st.integers(1, 8))
        return f"{length} bytes deleted at {pos}", bytes(data[:pos] + data[pos + length :])
    extra = draw(st.binary(min_size=1, max_size=8))
    return f"{extra.hex()} appended", bytes(data + extra)


@st.composite
def reframed(draw: st.DrawFn, header: bytes, payload: bytes) -> tuple[str, bytes]:
    """The payload behind a wrong, huge or over-long declared length."""
    n = len(payload)
    how = draw(st.sampled_from(["shorter", "longer", "huge", "overlong", "too many bytes", "zero"]))
    if how == "shorter":
        declared = draw(positions) % max(1, n)
        return f"declares {declared} of {n} bytes", header + varuint(declared) + payload
    if how == "longer":
        declared = n + draw(st.integers(1, 1000))
        return f"declares {declared} of {n} bytes", header + varuint(declared) + payload
    if how == "huge":
        declared = draw(st.sampled_from([2**31 - 1, 2**32, 2**49, 2**53 + 1, MAX_VARUINT]))
        return f"declares {declared} bytes", header + varuint(declared) + payload
    if how == "overlong":
        extra = draw(st.integers(1, 7))
        return f"length in {extra} redundant bytes", header + overlong_varuint(n, extra) + payload
    if how == "too many bytes":
        return "length varuint of 9+ bytes", header + b"\xff" * draw(
            st.integers(8, 12)
        ) + b"\x01" + payload
    return "declares 0 bytes", header + varuint(0) + payload


@st.composite
def attacks(
    draw: st.DrawFn, base_state: bytes, state_vector: bytes, max_message_size: int
) -> Attack:
    """One hostile frame against a room whose document is ``base_state``."""
    kind = draw(
        st.sampled_from(
            ["random"] * 2
            + ["valid"] * 2
            + ["mutated"] * 5
            + ["reframed"] * 2
            + ["text", "oversized", "query-awareness", "auth", "wrong type"]
        )
    )
    if kind == "random":
        data = draw(st.one_of(st.binary(max_size=48), st.binary(min_size=49, max_size=1024)))
        return Attack("random bytes", data)
    if kind == "text":
        return Attack("text frame", draw(st.text(max_size=40)))
    if kind == "oversized":
        size = max_message_size + draw(st.integers(1, 64 * 1024))
        return Attack(f"{size}-byte update", SYNC_UPDATE + varuint(size) + b"\x00" * size)
    if kind == "query-awareness":
        trailing = draw(st.binary(max_size=4))
        return Attack(
            "query-awareness" + (" with trailing bytes" if trailing else ""), b"\x03" + trailing
        )
    if kind == "auth":
        reason = draw(st.one_of(texts.map(lambda t: t.encode()), st.binary(max_size=8)))
        return Attack(
            "auth message from a client",
            b"\x02" + varuint(draw(st.integers(0, 3))) + varuint(len(reason)) + reason,
        )
    if kind == "wrong type":
        message_type = draw(st.integers(4, MAX_VARUINT))
        return Attack(
            f"message type {message_type}", varuint(message_type) + draw(st.binary(max_size=8))
        )
    what, header, payload = draw(valid_framed(base_state, state_vector))
    if kind == "valid":
        return Attack(what, frame(header, payload))
    if kind == "reframed":
        how, data = draw(reframed(header, payload))
        return Attack(f"{what}, {how}", data)
    how, data = draw(mutated(frame(header, payload)))
    return Attack(f"{what}, {how}", data)


# ---- awareness -------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        texts,
        st.floats(allow_nan=True, allow_infinity=True),
    ),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)

forged_users = (
    st.fixed_dictionaries(
        {"username": st.sampled_from(["alice", "admin", "root"]), "name": texts, "color": texts}
    )
    | json_values
)


@st.composite
def awareness_states(draw: st.DrawFn) -> tuple[str, bytes]:
    """(what, state bytes) for one awareness entry: ordinary, malicious, huge or malformed."""
    kind = draw(
        st.sampled_from(
            [
                "object",
                "object",
                "forged user",
                "null",
                "not an object",
                "deep",
                "wide",
                "long string",
                "not JSON",
                "invalid UTF-8",
                "non-finite",
            ]
        )
    )
    if kind == "object":
        value = draw(st.dictionaries(texts, json_values, max_size=5))
        return "object", json.dumps(value).encode()
    if kind == "forged user":
        value = draw(st.dictionaries(texts, json_values, max_size=3))
        value["user"] = draw(forged_users)
        return "forged user", json.dumps(value).encode()
    if kind == "null":
        return "null", draw(st.sampled_from([b"null", b" null", b"null "]))
    if kind == "not an object":
        value = draw(
            st.one_of(
                st.lists(json_values, max_size=3),
                json_values.filter(lambda v: not isinstance(v, dict)),
            )
        )
        return "not an object", json.dumps(value).encode()
    if kind == "deep":
        depth = draw(st.sampled_from([100, 900, 1_000, 5_000, 30_000]))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        inner = "1" if opener == '{"a":' else ""
        return f"nested {depth} deep", (opener * depth + inner + closer * depth).encode()
    if kind == "wide":
        keys = draw(st.sampled_from([1_000, 6_000, 100_000]))
        return f"{keys} keys", json.dumps({f"k{i}": i for i in range(keys)}).encode()
    if kind == "long string":
        size = draw(st.sampled_from([60 * 1024, 64 * 1024 + 1, 1024 * 1024]))
        return f"{size}-character string", json.dumps({"s": "x" * size}).encode()
    if kind == "not JSON":
        return "not JSON", draw(
            st.sampled_from([b"{", b"{'a': 1}", b"undefined", b"", b'{"a":1}x'])
        )
    if kind == "invalid UTF-8":
        return "invalid UTF-8", b'{"a": "' + draw(
            st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])
        ) + b'"}'
    constant = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]))
    return f"non-finite number {constant}", f'{{"cursor": {constant}}}'.encode()
