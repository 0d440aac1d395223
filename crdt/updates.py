"""Checks on a client's Yjs update before the document applies it.

pycrdt integrates what it can of an update and keeps the rest pending, so a
client can put the document in a state no other replica reproduces. One case
is known: a pycrdt client that inserts at a UTF-8 offset inside a multi-byte
character sends an item whose right neighbour is the item itself; the
server's document then differs from what it stores and what it sends
newcomers. An item can only be placed next to items that existed when it was
made, so an item pointing at its own client's clock at or after its own is
refused, with the rest of the update.

The same pass finds what the update needs from the document it is applied
to (:func:`check_update` returns it): pycrdt keeps an update's structs
pending, invisibly and for good, when the document lacks what they follow, so
the room refuses such an update rather than apply it (see ``Room``).

The structs and the delete set are read per the Yjs v1 update encoding (yjs
``UpdateDecoderV1``, ``readStructs``, ``readItemContent``, ``readDeleteSet``).
"""

from __future__ import annotations

from typing import NamedTuple

from .protocol import ProtocolError, Reader, encode_varuint

_ORIGIN = 0x80
_RIGHT_ORIGIN = 0x40
_PARENT_SUB = 0x20
_GC, _DELETED, _JSON, _BINARY, _STRING, _EMBED, _FORMAT, _TYPE, _ANY, _DOC = range(10)
_SKIP = 10
_XML_ELEMENT, _XML_HOOK = 3, 5
_MAX_ANY_DEPTH = 64


Needs = dict[int, int]
"""Client id -> a clock, as in a state vector."""


class Shape(NamedTuple):
    """What an update needs from a document and how far it takes the document's state vector."""

    needs: Needs
    ends: Needs


def check_update(update: bytes) -> Shape:
    """What ``update`` needs from the document it is applied to, beyond what it holds itself.

    ``needs``, for each client: the first clock of its structs in the update,
    and one past every item that a struct names as a neighbour or parent and
    every deleted range, where the update does not hold that item. The update
    applies whole (nothing left pending) exactly when the document's state
    vector reaches every entry; the state vector is then at least ``ends``
    (one past each client's last struct). Raises ProtocolError if the update
    is malformed or holds an item placed next to a later item of its own
    client.
    """
    reader = Reader(update)
    groups = reader.varuint()
    if groups > len(update):
        raise ProtocolError("update: client count exceeds its size")
    needs: Needs = {}
    ends: Needs = {}
    held: dict[int, list[tuple[int, int]]] = {}  # client -> [start, end) ranges the update holds
    references: list[tuple[int, int]] = []  # (client, clock) of named items
    for _ in range(groups):
        structs = reader.varuint()
        if structs > len(update):
            raise ProtocolError("update: struct count exceeds its size")
        client = reader.varuint()
        clock = reader.varuint()
        if clock > needs.get(client, -1):
            needs[client] = clock
        encoded = encode_varuint(client)
        ranges = held.setdefault(client, [])
        start = clock
        for _ in range(structs):
            length, skipped = _struct_length(reader, encoded, clock, references)
            if skipped:  # a gap: the update does not hold these clocks
                if clock > start:
                    ranges.append((start, clock))
                start = clock + length
            clock += length
        if clock > start:
            ranges.append((start, clock))
        if clock > ends.get(client, 0):
            ends[client] = clock
    if not reader.at_end():
        _read_delete_set(reader, references)
    for client, clock in references:
        if clock >= needs.get(client, 0) and not _holds(held.get(client), clock):
            needs[client] = clock + 1
    return Shape(needs, ends)


def missing(needs: Needs, state: dict[int, int]) -> Needs:
    """The entries of ``needs`` that the state vector ``state`` does not reach."""
    return {c: k for c, k in needs.items() if k > state.get(c, 0)}


def _holds(ranges: list[tuple[int, int]] | None, clock: int) -> bool:
    return ranges is not None and any(start <= clock < end for start, end in ranges)


def _read_delete_set(reader: Reader, references: list[tuple[int, int]]) -> None:
    """Record the last clock of each deleted range as a named item."""
    clients = reader.varuint()
    if clients > len(reader.data):
        raise ProtocolError("update: delete set client count exceeds its size")
    for _ in range(clients):
        client = reader.varuint()
        ranges = reader.varuint()
        if ranges > len(reader.data):
            raise ProtocolError("update: delete range count exceeds its size")
        for _ in range(ranges):
            clock = reader.varuint()
            length = reader.varuint()
            if length:
                references.append((client, clock + length - 1))
    reader.expect_end()


def _struct_length(
    reader: Reader, client: bytes, clock: int, references: list[tuple[int, int]]
) -> tuple[int, bool]:
    """The length of the struct at ``clock`` and whether it is a skip (a gap)."""
    info = _byte(reader)
    kind = info & 0x1F
    if kind in (_GC, _SKIP):
        return reader.varuint(), kind == _SKIP
    for flag in (_ORIGIN, _RIGHT_ORIGIN):
        if info & flag:
            _check_neighbour(reader, client, clock, references)
    if not info & (_ORIGIN | _RIGHT_ORIGIN):
        if reader.varuint() == 1:
            reader.varstring()  # the name of a root type
        else:
            _check_neighbour(reader, client, clock, references)  # the parent item
        if info & _PARENT_SUB:
            reader.varstring()
    return _content_length(reader, kind), False


def _check_neighbour(
    reader: Reader, client: bytes, clock: int, references: list[tuple[int, int]]
) -> None:
    """Read the id of a neighbour or parent of the item at ``clock`` of ``client`` (encoded)."""
    if not reader.data.startswith(client, reader.pos):
        other = reader.varuint()  # another client's item
        references.append((other, reader.varuint()))
        return
    own = reader.varuint()
    other_clock = reader.varuint()
    if other_clock >= clock:
        raise ProtocolError(
            f"update: an item (clock {clock}) refers to its own client's clock {other_clock}, "
            "which was made after it (an offset inside a character?)"
        )
    references.append((own, other_clock))


def _content_length(reader: Reader, kind: int) -> int:
    if kind == _DELETED:
        return reader.varuint()
    if kind in (_JSON, _ANY):
        count = reader.varuint()
        if count > len(reader.data):
            raise ProtocolError("update: content count exceeds its size")
        for _ in range(count):
            reader.varstring() if kind == _JSON else _skip_any(reader, 0)
        return count
    if kind == _BINARY:
        reader.varbytes()
    elif kind == _STRING:
        return len(reader.varstring().encode("utf-16-le")) // 2  # Yjs counts UTF-16 units
    elif kind == _EMBED:
        reader.varstring()
    elif kind == _FORMAT:
        reader.varstring()
        reader.varstring()
    elif kind == _TYPE:
        if reader.varuint() in (_XML_ELEMENT, _XML_HOOK):
            reader.varstring()
    elif kind == _DOC:
        reader.varstring()
        _skip_any(reader, 0)
    else:
        raise ProtocolError(f"update: unknown content type {kind}")
    return 1


def _skip_any(reader: Reader, depth: int) -> None:
    """Read one lib0 ``any`` value."""
    if depth > _MAX_ANY_DEPTH:
        raise ProtocolError("update: value nested too deeply")
    tag = _byte(reader)
    if tag in (127, 126, 121, 120):  # undefined, null, false, true
        return
    if tag == 125:  # signed varint: a first byte, then 7 bits a byte
        if _byte(reader) & 0x80:
            reader.varuint()
    elif tag in (124, 123, 122):  # float32, float64, bigint64
        _take(reader, 4 if tag == 124 else 8)
    elif tag == 119:
        reader.varstring()
    elif tag in (118, 117):  # object, array
        count = reader.varuint()
        if count > len(reader.data):
            raise ProtocolError("update: value count exceeds its size")
        for _ in range(count):
            if tag == 118:
                reader.varstring()
            _skip_any(reader, depth + 1)
    elif tag == 116:
        reader.varbytes()
    else:
        raise ProtocolError(f"update: unknown value type {tag}")


def _byte(reader: Reader) -> int:
    return _take(reader, 1)[0]


def _take(reader: Reader, n: int) -> bytes:
    end = reader.pos + n
    if end > len(reader.data):
        raise ProtocolError("update: truncated")
    chunk = reader.data[reader.pos : end]
    reader.pos = end
    return chunk
