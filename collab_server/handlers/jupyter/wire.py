"""The kernel channels WebSocket's two wire formats, as Jupyter Server speaks them.

- ``v1.kernel.websocket.jupyter.org`` (binary frames): an 8-byte little-endian
  count of offsets, the offsets (8 bytes each), then the channel name and the
  message parts (header, parent header, metadata, content, buffers...). The
  offsets mark where the channel and each part start, the last one the end.
- The legacy protocol: a text frame holding the message as JSON with a
  ``channel`` key; a message with buffers is a binary frame: a 4-byte
  big-endian count of parts, their offsets (4 bytes each), the JSON, the buffers.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from datetime import datetime
from typing import Any

V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"
CHANNELS = frozenset({"shell", "iopub", "stdin", "control"})


class BadFrame(ValueError):
    """A frame that is not a kernel message in the connection's protocol."""


def to_v1(channel: str, parts: Sequence[bytes | memoryview]) -> bytes:
    """One binary frame of the v1 protocol: ``parts`` are the packed header, ..., buffers."""
    name = channel.encode()
    count = len(parts) + 2
    offsets = [8 * (count + 1)]
    offsets.append(offsets[-1] + len(name))
    for part in parts:
        offsets.append(offsets[-1] + len(part))
    head = struct.pack(f"<{count + 1}Q", count, *offsets)
    return b"".join([head, name, *(bytes(p) for p in parts)])


def from_v1(frame: bytes) -> tuple[str, list[bytes]]:
    """The channel and the parts of a v1 frame; BadFrame if it is malformed."""
    if len(frame) < 8:
        raise BadFrame("frame too short")
    (count,) = struct.unpack_from("<Q", frame)
    if not 6 <= count <= 1 + 4096 or len(frame) < 8 * (count + 1):
        raise BadFrame("bad offset count")
    offsets = struct.unpack_from(f"<{count}Q", frame, 8)
    if list(offsets) != sorted(offsets) or offsets[0] != 8 * (count + 1) or offsets[-1] != len(frame):
        raise BadFrame("bad offsets")
    channel = frame[offsets[0] : offsets[1]].decode("utf-8", "replace")
    parts = [frame[offsets[i] : offsets[i + 1]] for i in range(1, count - 1)]
    return channel, parts


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_legacy(channel: str, parts: Sequence[bytes | memoryview]) -> str | bytes:
    """The legacy frame of a message: JSON text, or binary if it has buffers."""
    header, parent, metadata, content = (json.loads(bytes(p)) for p in parts[:4])
    msg = {
        "channel": channel,
        "header": header,
        "msg_id": header.get("msg_id"),
        "msg_type": header.get("msg_type"),
        "parent_header": parent,
        "metadata": metadata,
        "content": content,
        "buffers": [],
    }
    buffers = [bytes(b) for b in parts[4:]]
    if not buffers:
        return json.dumps(msg, default=json_default)
    del msg["buffers"]
    chunks = [json.dumps(msg, default=json_default).encode(), *buffers]
    offsets = [4 * (len(chunks) + 1)]
    for chunk in chunks[:-1]:
        offsets.append(offsets[-1] + len(chunk))
    return b"".join([struct.pack(f"!{len(chunks) + 1}I", len(chunks), *offsets), *chunks])


def parse_message(channel: str, parts: Sequence[bytes]) -> dict[str, Any]:
    """A client's message from a v1 frame's parts; BadFrame if malformed."""
    if len(parts) < 4:
        raise BadFrame("a message has a header, parent header, metadata and content")
    try:
        header, parent, metadata, content = (json.loads(p) for p in parts[:4])
    except (ValueError, RecursionError) as e:
        raise BadFrame(f"a part is not JSON: {str(e)[:100]}") from e
    return checked(
        {
            "channel": channel,
            "header": header,
            "parent_header": parent,
            "metadata": metadata,
            "content": content,
            "buffers": list(parts[4:]),
        }
    )


def parse_legacy(text: str) -> dict[str, Any]:
    """A client's message from a legacy JSON text frame; BadFrame if malformed."""
    try:
        msg = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise BadFrame(f"not JSON: {str(e)[:100]}") from e
    if not isinstance(msg, dict):
        raise BadFrame("a message is a JSON object")
    msg.setdefault("parent_header", {})
    msg.setdefault("metadata", {})
    msg["buffers"] = []
    return checked(msg)


def checked(msg: dict[str, Any]) -> dict[str, Any]:
    header = msg.get("header")
    if msg.get("channel") not in CHANNELS:
        raise BadFrame("channel must be shell, iopub, stdin or control")
    if not isinstance(header, dict):
        raise BadFrame("header must be an object")
    msg_id, msg_type = header.get("msg_id"), header.get("msg_type")
    if not isinstance(msg_id, str) or not 0 < len(msg_id) <= 200:
        raise BadFrame("header.msg_id must be a string")
    if not isinstance(msg_type, str) or not 0 < len(msg_type) <= 100:
        raise BadFrame("header.msg_type must be a string")
    for key in ("parent_header", "metadata", "content"):
        if not isinstance(msg.get(key), dict):
            raise BadFrame(f"{key} must be an object")
    return msg


__all__ = [
    "BadFrame",
    "CHANNELS",
    "V1_PROTOCOL",
    "checked",
    "from_v1",
    "parse_legacy",
    "parse_message",
    "to_legacy",
    "to_v1",
]
