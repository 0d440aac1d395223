"""The fault proxy itself: what it promises to the fault tests.

Bytes of one connection arrive complete and in order whatever the delays,
splits and stalls; a drop resets both sides; a partition refuses new
connections; a connection's latency lets another connection overtake it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from .proxy import FaultProxy, ProxyConfig


class Echo:
    """A TCP echo server on loopback."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(echo, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


@pytest.fixture
async def echo() -> AsyncIterator[Echo]:
    server = Echo()
    await server.start()
    yield server
    await server.stop()


async def test_bytes_keep_their_order_through_delays_splits_and_stalls(echo: Echo) -> None:
    config = ProxyConfig(max_latency=0.02, jitter=0.01, split_probability=1.0, cut_probability=0.0)
    async with FaultProxy(echo.port, random.Random(1), config) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        sent = b"".join(i.to_bytes(4, "big") for i in range(20000))
        for start in range(0, len(sent), 997):
            writer.write(sent[start : start + 997])
            if start % (997 * 20) == 0:
                (conn,) = proxy.connections
                conn.stall(0.05)
        await writer.drain()
        received = await asyncio.wait_for(reader.readexactly(len(sent)), 20)
        assert received == sent
        assert proxy.counts["chunks_split"] > 0 and proxy.counts["chunks_stalled"] > 0
        writer.close()


async def test_drop_resets_both_sides(echo: Echo) -> None:
    async with FaultProxy(echo.port, random.Random(2), ProxyConfig(cut_probability=0.0)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
        assert proxy.drop_all() == 1
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            await asyncio.wait_for(reader.readexactly(1), 5)
        writer.close()


async def test_partition_refuses_new_connections_for_a_while(echo: Echo) -> None:
    async with FaultProxy(echo.port, random.Random(3), ProxyConfig(cut_probability=0.0)) as proxy:
        proxy.partition(30)
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            writer.write(b"x")
            await asyncio.wait_for(reader.readexactly(1), 5)
        writer.close()
        proxy.calm()  # ends the partition
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"back")
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"back"
        writer.close()


async def test_a_slow_connection_is_overtaken_by_a_fast_one(echo: Echo) -> None:
    config = ProxyConfig(max_latency=0.0, jitter=0.0, cut_probability=0.0, split_probability=0.0)
    async with FaultProxy(echo.port, random.Random(4), config) as proxy:
        slow_reader, slow_writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        fast_reader, fast_writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        async with asyncio.timeout(5):
            while len(proxy.connections) < 2:
                await asyncio.sleep(0.01)  # both accepted
        slow_conn = min(proxy.connections, key=lambda c: c.number)
        slow_conn.latency = 0.3
        arrivals: list[str] = []

        async def receive(name: str, reader: asyncio.StreamReader) -> None:
            await reader.readexactly(1)
            arrivals.append(name)

        slow_writer.write(b"s")  # sent first...
        await slow_writer.drain()
        fast_writer.write(b"f")
        await asyncio.wait_for(
            asyncio.gather(receive("slow", slow_reader), receive("fast", fast_reader)), 5
        )
        assert arrivals == ["fast", "slow"]  # ...arrives last
        slow_writer.close()
        fast_writer.close()
