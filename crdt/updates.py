"""Checks on a client's Yjs update before the document applies it.

pycrdt integrates what it can of an update and keeps the rest pending, so a
client can put the document in a state no other replica reproduces. One case
is known: a pycrdt client that inserts at a UTF-8 offset inside a multi-byte
character sends an item whose right neighbour is the item itself; the
server's document then differs from what it stores and what it sends
newcomers. An item can only be placed next to items that existed when it was
made, so an item pointing at its own client's clock at or after its own is
refused, with the rest of the update.

The same reading tells what an update needs: the items its new items are
placed next to or inside, and the items it deletes. An update needing items
the server does not have is not applied: Yjs would keep it pending, invisibly
and for ever if those items were refused (a viewer's edits), and every later
edit of that client would pile up behind it. :meth:`UpdateShape.missing`
says what is missing, for the room to refuse the update and resync the client.

The structs are read per the Yjs v1 update encoding (yjs ``UpdateDecoderV1``,
``readStructs``, ``readItemContent``), then the delete set (``readDeleteSet``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .protocol import ProtocolError, Reader

_ORIGIN = 0x80
_RIGHT_ORIGIN = 0x40
_PARENT_SUB = 0x20
_GC, _DELETED, _JSON, _BINARY, _STRING, _EMBED, _FORMAT, _TYPE, _ANY, _DOC = range(10)
_SKIP = 10
_XML_ELEMENT, _XML_HOOK = 3, 5
_MAX_ANY_DEPTH = 64


@dataclass(slots=True)
class UpdateShape:
    """What an update adds (clock ranges per client) and the clocks it needs."""

    adds: list[tuple[int, int, int]] = field(default_factory=list)  # (client, start, end)
    needs: dict[int, int] = field(default_factory=dict)  # client -> clocks below it needed

    def need(self, client: int, clock: int) -> None:
        if clock > self.needs.get(client, 0):
            self.needs[client] = clock

    def missing(self, state: dict[int, int]) -> str | None:
        """Why this update cannot be integrated into a document with ``state``; None if it can."""
        have = dict(state)
        for client, start, end in sorted(self.adds):
            known = have.get(client, 0)
            if start > known:
                return f"its edits of client {client} start at clock {start}; the server has {known}"
            have[client] = max(known, end)
        for client, clock in self.needs.items():
            if clock > have.get(client, 0):
                return f"it builds on clock {clock - 1} of client {client}, which the server never got"
        return None


def check_update(update: bytes) -> UpdateShape:
    """Read ``update``: what it adds and needs; ProtocolError if it is malformed or holds an
    item placed next to a later item of its own client."""
    reader = Reader(update)
    shape = UpdateShape()
    groups = reader.varuint()
    if groups > len(update):
        raise ProtocolError("update: client count exceeds its size")
    for _ in range(groups):
        structs = reader.varuint()
        if structs > len(update):
            raise ProtocolError("update: struct count exceeds its size")
        client = reader.varuint()
        clock = start = reader.varuint()
        for _ in range(structs):
            length, skipped = _struct_length(reader, shape, client, clock)
            if skipped:  # a hole: what follows is a range of its own
                if clock > start:
                    shape.adds.append((client, start, clock))
                start = clock + length
            clock += length
        if clock > start:
            shape.adds.append((client, start, clock))
    if reader.pos < len(update):
        _read_delete_set(reader, shape)
    return shape


def _read_delete_set(reader: Reader, shape: UpdateShape) -> None:
    clients = reader.varuint()
    if clients > len(reader.data):
        raise ProtocolError("update: delete set client count exceeds its size")
    for _ in range(clients):
        client = reader.varuint()
        ranges = reader.varuint()
        if ranges > len(reader.data):
            raise ProtocolError("update: delete set range count exceeds its size")
        for _ in range(ranges):
            clock = reader.varuint()
            shape.need(client, clock + reader.varuint())


def _struct_length(reader: Reader, shape: UpdateShape, client: int, clock: int) -> tuple[int, bool]:
    """(length, is a skip) of the struct at ``clock``; records the ids it refers to."""
    info = _byte(reader)
    kind = info & 0x1F
    if kind in (_GC, _SKIP):
        return reader.varuint(), kind == _SKIP
    for flag in (_ORIGIN, _RIGHT_ORIGIN):
        if info & flag:
            _neighbour(reader, shape, client, clock)
    if not info & (_ORIGIN | _RIGHT_ORIGIN):
        if reader.varuint() == 1:
            reader.varstring()  # the name of a root type
        else:
            _neighbour(reader, shape, client, clock)  # the parent item
        if info & _PARENT_SUB:
            reader.varstring()
    return _content_length(reader, kind), False


def _neighbour(reader: Reader, shape: UpdateShape, client: int, clock: int) -> None:
    """Read the id of a neighbour or parent of the item at ``clock`` of ``client``."""
    other_client = reader.varuint()
    other_clock = reader.varuint()
    if other_client == client and other_clock >= clock:
        raise ProtocolError(
            f"update: an item (clock {clock}) refers to its own client's clock {other_clock}, "
            "which was made after it (an offset inside a character?)"
        )
    shape.need(other_client, other_clock + 1)


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
