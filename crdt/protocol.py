"""The y-websocket wire protocol: strict decoding and encoding of messages.

A message is ``varuint(type)`` followed by a type-specific body:

- ``SYNC`` (0): ``varuint(step)`` then ``varbytes(payload)``; step 0 carries a state
  vector, steps 1 and 2 carry a document update.
- ``AWARENESS`` (1): ``varbytes(awareness update)``.
- ``AUTH`` (2): ``varuint(0)`` then ``varstring(reason)``: permission denied; or
  ``varuint(1)`` then ``varstring(JSON {"role": ...})``: the client's role (ours).
- ``QUERY_AWARENESS`` (3): no body.

Every decoder here checks bounds and raises :class:`ProtocolError` on anything
malformed, so one bad client can be refused without touching shared state.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class ProtocolError(ValueError):
    """A message does not follow the y-websocket protocol."""


class MessageType(IntEnum):
    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3


class SyncStep(IntEnum):
    STEP1 = 0
    STEP2 = 1
    UPDATE = 2


_MAX_VARUINT_BYTES = 8  # 56 bits: more than any length or Yjs client id (53 bits)


def encode_varuint(value: int) -> bytes:
    """Encode a non-negative integer as a lib0 variable-length unsigned integer."""
    if value < 0:
        raise ValueError("varuint must be non-negative")
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_varbytes(data: bytes) -> bytes:
    return encode_varuint(len(data)) + data


def encode_varstring(text: str) -> bytes:
    return encode_varbytes(text.encode("utf-8"))


class Reader:
    """A bounds-checked cursor over a byte string."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def varuint(self) -> int:
        data, pos = self.data, self.pos
        if pos < len(data) and data[pos] < 0x80:  # most are one byte
            self.pos = pos + 1
            return data[pos]
        result = 0
        for shift in range(0, 7 * _MAX_VARUINT_BYTES, 7):
            if pos >= len(data):
                raise ProtocolError("truncated integer")
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                self.pos = pos
                return result
        raise ProtocolError("integer too long")

    def varbytes(self) -> bytes:
        length = self.varuint()
        end = self.pos + length
        if end > len(self.data):
            raise ProtocolError("truncated byte string")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def varstring(self) -> str:
        try:
            return self.varbytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise ProtocolError("string is not valid UTF-8") from e

    def at_end(self) -> bool:
        return self.pos == len(self.data)

    def expect_end(self) -> None:
        if not self.at_end():
            raise ProtocolError("trailing bytes after message")


@dataclass(frozen=True, slots=True)
class SyncMessage:
    step: SyncStep
    payload: bytes


@dataclass(frozen=True, slots=True)
class AwarenessMessage:
    payload: bytes


@dataclass(frozen=True, slots=True)
class AuthMessage:
    reason: str  # subtype 0: why permission was denied; subtype 1: the role JSON
    subtype: int = 0


@dataclass(frozen=True, slots=True)
class QueryAwarenessMessage:
    pass


Message = SyncMessage | AwarenessMessage | AuthMessage | QueryAwarenessMessage


def decode_message(data: bytes) -> Message:
    """Decode one y-websocket message; raise ProtocolError if it is malformed."""
    reader = Reader(data)
    kind = reader.varuint()
    message: Message
    if kind == MessageType.SYNC:
        step = reader.varuint()
        if step not in (0, 1, 2):
            raise ProtocolError(f"unknown sync step {step}")
        message = SyncMessage(SyncStep(step), reader.varbytes())
    elif kind == MessageType.AWARENESS:
        message = AwarenessMessage(reader.varbytes())
    elif kind == MessageType.AUTH:
        subtype = reader.varuint()
        message = AuthMessage(reader.varstring(), subtype)
    elif kind == MessageType.QUERY_AWARENESS:
        message = QueryAwarenessMessage()
    else:
        raise ProtocolError(f"unknown message type {kind}")
    reader.expect_end()
    return message


def sync_step1(state_vector: bytes) -> bytes:
    return b"\x00\x00" + encode_varbytes(state_vector)


def sync_step2(update: bytes) -> bytes:
    return b"\x00\x01" + encode_varbytes(update)


def sync_update(update: bytes) -> bytes:
    return b"\x00\x02" + encode_varbytes(update)


def awareness_message(awareness_update: bytes) -> bytes:
    return b"\x01" + encode_varbytes(awareness_update)


def permission_denied(reason: str) -> bytes:
    return b"\x02\x00" + encode_varstring(reason)


def role_message(role: str) -> bytes:
    """Tell a client its role ("viewer", "editor" or "owner"): auth subtype 1.

    Sent on join, right after sync step 1, and whenever the role changes.
    y-websocket clients ignore it: y-protocols' ``readAuthMessage`` switches on
    the subtype and handles only 0 (permission denied).
    """
    return b"\x02\x01" + encode_varstring(json.dumps({"role": role}))


AUTH_PERMISSION_DENIED = 0
AUTH_ROLE = 1
QUERY_AWARENESS = b"\x03"


# ---- awareness updates ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    """One client's presence as carried in an awareness update.

    ``state_json`` is kept as the sender's text so that relaying needs no
    re-encoding; ``"null"`` means the client has left.
    """

    client_id: int
    clock: int
    state_json: str

    @property
    def removed(self) -> bool:
        return self.state_json == "null"


def decode_awareness_update(payload: bytes) -> list[AwarenessEntry]:
    """Split an awareness update into entries without parsing their JSON states."""
    reader = Reader(payload)
    count = reader.varuint()
    if count > len(payload):  # every entry takes at least three bytes
        raise ProtocolError("awareness entry count exceeds message size")
    entries = [
        AwarenessEntry(reader.varuint(), reader.varuint(), reader.varstring())
        for _ in range(count)
    ]
    reader.expect_end()
    return entries


def encode_awareness_update(entries: list[AwarenessEntry]) -> bytes:
    return join_awareness_entries([encode_awareness_entry(entry) for entry in entries])


def encode_awareness_entry(entry: AwarenessEntry) -> bytes:
    """One entry of an awareness update; see :func:`join_awareness_entries`."""
    return encode_varuint(entry.client_id) + encode_varuint(entry.clock) + encode_varstring(entry.state_json)


def join_awareness_entries(encoded: list[bytes]) -> bytes:
    """An awareness update made of entries encoded by :func:`encode_awareness_entry`."""
    return encode_varuint(len(encoded)) + b"".join(encoded)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:20]}")
    return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_awareness_state(state_json: str) -> dict[str, Any] | None:
    """Parse one awareness state; it must be a standard JSON object or null.

    NaN, Infinity and numbers that overflow to infinity are refused: every
    Yjs client's ``JSON.parse`` rejects them, so relaying them would break
    the other clients' presence.
    """
    try:
        state = json.loads(state_json, parse_float=_finite, parse_constant=_no_constants)
    except (ValueError, RecursionError) as e:
        raise ProtocolError("awareness state is not valid JSON") from e
    if state is not None and not isinstance(state, dict):
        raise ProtocolError("awareness state must be a JSON object or null")
    return state


def decode_state_vector(data: bytes) -> dict[int, int]:
    """Decode a Yjs state vector (client id -> clock); raise ProtocolError if malformed."""
    reader = Reader(data)
    count = reader.varuint()
    if count > len(data):
        raise ProtocolError("state vector entry count exceeds message size")
    state = {}
    for _ in range(count):
        client = reader.varuint()
        state[client] = reader.varuint()
    reader.expect_end()
    return state
