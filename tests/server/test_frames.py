"""The room handler frames messages itself; its frames must be tornado's own."""

from __future__ import annotations

from typing import Any

import pytest
from tornado.websocket import WebSocketProtocol13

from collab_server.handlers.room import binary_frame


class _Capture:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> Any:
        self.written.append(data)


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 1_500_000])
def test_frame_matches_tornado(size: int) -> None:
    message = bytes(i % 251 for i in range(size))
    protocol = WebSocketProtocol13.__new__(WebSocketProtocol13)
    protocol.mask_outgoing = False
    protocol._wire_bytes_out = 0
    protocol.stream = _Capture()  # type: ignore[assignment]
    protocol._write_frame(True, 0x2, message)

    assert binary_frame(message) == protocol.stream.written[0]  # type: ignore[attr-defined]


def test_a_broadcast_frames_its_message_once() -> None:
    message = b"\x00\x02" + b"x" * 300
    first = binary_frame(message)
    assert binary_frame(message) is first
    assert binary_frame(bytes(message)) == first  # an equal message, framed again
