"""The room handler frames and queues messages itself: its frames must be tornado's
own, and a client that stops reading must not hold the room up."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
import websockets
from tornado.websocket import WebSocketProtocol13

from collab_server.errors import WS_CLIENT_TOO_SLOW
from collab_server.handlers.room import binary_frame
from crdt import protocol
from tests.conftest import ServerFactory, wait_until
from tests.yclient import YClient

TIMEOUT = 30


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


async def test_a_client_that_stops_reading_is_dropped_and_the_room_carries_on(
    make_server: ServerFactory,
) -> None:
    server = await make_server(max_send_buffer=256 * 1024)
    notebook_id = await server.create_notebook("alice/slow.ipynb")
    url = server.ws_url(notebook_id)
    # A client whose socket takes 4 KiB and which reads nothing after joining.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    stalled = await websockets.connect(
        url,
        sock=sock,
        additional_headers={"Authorization": f"token {server.token('carol')}"},
        max_size=None,
        max_queue=1,
        ping_interval=None,
    )
    await stalled.send(protocol.sync_step1(b"\x00"))
    async with YClient(url, server.token("alice")) as alice, YClient(url, server.token("bob")) as bob:
        room = server.services.rooms.get(notebook_id)
        assert room is not None
        await wait_until(lambda: len(room.connections) == 3, timeout=TIMEOUT)
        source = alice.notebook.ycells[0]["source"]
        for n in range(200):  # 6.4 MB in all; 256 KiB may wait for one client
            source += f"{n:05d}" + "x" * (32 * 1024 - 5)
            await bob.wait_for(lambda: len(bob.sources()[0]) == len(str(source)), timeout=TIMEOUT)
        await wait_until(lambda: len(room.connections) == 2, timeout=TIMEOUT)
        assert alice.sources() == bob.sources()
        assert len(bob.sources()[0]) == 200 * 32 * 1024
        assert not alice.closed.is_set() and not bob.closed.is_set()
    # The stalled client, reading again, finds what was queued, then the close.
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with asyncio.timeout(TIMEOUT):
            while True:
                await stalled.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == WS_CLIENT_TOO_SLOW
