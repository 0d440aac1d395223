"""A fault-injecting TCP proxy on loopback, for tests that must survive bad networks.

``FaultProxy`` accepts connections on an unused loopback port and forwards
each one to ``upstream_port``. Every accepted connection gets its own base
latency (so traffic of one connection overtakes another's: reordering
*between* connections; bytes of one connection always keep their order, as
TCP does) and its chunks are split into random pieces. On top of that a test
(or ``run_chaos``) can, per connection:

- ``drop``: abort both sides at once (an RST, no close frame);
- ``stall``: hold every byte in both directions for a while, then release
  them in order;
- ``slow``: change the connection's latency;
- cut a connection after a random number of bytes (``cut_after``), so it
  dies in the middle of a handshake or a sync;
- ``partition``: drop every connection and refuse new ones for a while.

All random choices come from the ``random.Random`` given, so a seed decides
the sequence of faults (not their exact timing, which the network and the
scheduler decide). ``counts`` tallies what was done. ``calm()`` switches
every fault off (latency 0, stalls released) for a quiet period.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Self


@dataclass
class ProxyConfig:
    """How hostile the proxy is. Times in seconds; probabilities per event."""

    max_latency: float = 0.08  # base latency of a connection: uniform in [0, max_latency]
    jitter: float = 0.02  # extra delay per chunk, uniform in [0, jitter] (never reorders)
    split_probability: float = 0.3  # a chunk is cut into 2-4 pieces sent one after the other
    cut_probability: float = 0.1  # a new connection is cut after a random byte count
    cut_max_bytes: int = 6000
    chaos_interval: tuple[float, float] = (0.3, 1.5)  # between two faults in run_chaos
    drop_weight: float = 4.0
    stall_weight: float = 3.0
    slow_weight: float = 2.0
    partition_weight: float = 0.4
    stall_time: tuple[float, float] = (0.2, 3.0)
    partition_time: tuple[float, float] = (0.5, 2.5)


@dataclass
class _Direction:
    """One direction of a proxied connection: a queue of (due time, bytes) and its pump."""

    writer: asyncio.StreamWriter
    queue: collections.deque[tuple[float, bytes]] = field(default_factory=collections.deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    eof: bool = False
    last_due: float = 0.0


class ProxiedConnection:
    """A client connection and its upstream twin, with per-connection faults."""

    def __init__(
        self, proxy: FaultProxy, number: int, latency: float, cut_after: int | None
    ) -> None:
        self.proxy = proxy
        self.number = number
        self.latency = latency
        self.cut_after = cut_after
        self.bytes_forwarded = 0
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.closed = False
        self.tasks: list[asyncio.Task[None]] = []
        self.transports: list[asyncio.BaseTransport] = []

    def stall(self, seconds: float) -> None:
        """Hold all traffic (both ways) for ``seconds``; bytes are released in order after."""
        self.flowing.clear()
        loop = asyncio.get_running_loop()
        loop.call_later(seconds, self.flowing.set)

    def drop(self) -> None:
        """Abort both sides now: queued bytes are lost, both peers see a reset."""
        if self.closed:
            return
        self.closed = True
        for transport in self.transports:
            transport.abort()  # type: ignore[attr-defined]
        for task in self.tasks:
            task.cancel()
        self.proxy.connections.discard(self)

    async def run(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        self.transports.append(client_writer.transport)
        try:
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1", self.proxy.upstream_port
            )
        except OSError:
            self.proxy.counts["refused_upstream"] += 1
            client_writer.transport.abort()
            self.proxy.connections.discard(self)
            return
        self.transports.append(up_writer.transport)
        to_server = _Direction(up_writer)
        to_client = _Direction(client_writer)
        self.tasks = [
            asyncio.create_task(self._read(client_reader, to_server)),
            asyncio.create_task(self._read(up_reader, to_client)),
            asyncio.create_task(self._pump(to_server)),
            asyncio.create_task(self._pump(to_client)),
        ]
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.finish()

    def finish(self) -> None:
        """Both directions ended cleanly: close both sides (already half-closed)."""
        if self.closed:
            return
        self.closed = True
        for transport in self.transports:
            transport.close()
        self.proxy.connections.discard(self)

    async def _read(self, reader: asyncio.StreamReader, direction: _Direction) -> None:
        rng = self.proxy.rng
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                pieces = [data]
                if len(data) > 1 and rng.random() < self.proxy.config.split_probability:
                    cuts = sorted(
                        rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(1, 3)))
                    )
                    pieces = [data[a:b] for a, b in itertools.pairwise([0, *cuts, len(data)])]
                    self.proxy.counts["chunks_split"] += 1
                now = time.monotonic()
                for piece in pieces:
                    due = max(
                        now + self.latency + rng.uniform(0, self.proxy.config.jitter),
                        direction.last_due,
                    )
                    direction.last_due = due
                    direction.queue.append((due, piece))
                direction.ready.set()
        except (ConnectionError, OSError):
            self.drop()  # a reset (e.g. the server was killed) is passed on as a reset
            return
        direction.eof = True
        direction.ready.set()

    async def _pump(self, direction: _Direction) -> None:
        try:
            while True:
                while not direction.queue:
                    if direction.eof:
                        # The sender closed and everything it sent is through: pass the close on.
                        if direction.writer.can_write_eof():
                            direction.writer.write_eof()
                        else:
                            direction.writer.close()
                        return
                    direction.ready.clear()
                    await direction.ready.wait()
                due, piece = direction.queue.popleft()
                delay = due - time.monotonic()
                if delay > 0:
                    self.proxy.counts["chunks_delayed"] += 1
                    await asyncio.sleep(delay)
                if not self.flowing.is_set():
                    self.proxy.counts["chunks_stalled"] += 1
                    await self.flowing.wait()
                if (
                    self.cut_after is not None
                    and self.bytes_forwarded + len(piece) > self.cut_after
                ):
                    self.proxy.counts["cuts"] += 1
                    self.drop()
                    return
                self.bytes_forwarded += len(piece)
                direction.writer.write(piece)
                await direction.writer.drain()
        except (ConnectionError, OSError):
            self.drop()


class FaultProxy:
    """Forward loopback TCP connections to ``upstream_port``, injecting faults.

    ``async with FaultProxy(upstream_port, rng) as proxy:`` listens on
    ``proxy.port``. The upstream may be down: a connection accepted while it
    is down is aborted at once (clients see a failed connect and retry).
    """

    def __init__(
        self, upstream_port: int, rng: random.Random, config: ProxyConfig | None = None
    ) -> None:
        self.upstream_port = upstream_port
        self.rng = rng
        self.config = config or ProxyConfig()
        self.port = 0
        self.connections: set[ProxiedConnection] = set()
        self.counts: collections.Counter[str] = collections.Counter()
        self.calm_mode = False
        self._refusing_until = 0.0
        self._numbers = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.drop()
        # Each handler ends once its connection is dropped (or its upstream connect fails).
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=5)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counts["connections"] += 1
        if time.monotonic() < self._refusing_until:
            self.counts["refused_partition"] += 1
            writer.transport.abort()
            return
        cfg = self.config
        if self.calm_mode:
            latency, cut_after = 0.0, None
        else:
            latency = self.rng.uniform(0, cfg.max_latency)
            cut_after = (
                self.rng.randint(0, cfg.cut_max_bytes)
                if self.rng.random() < cfg.cut_probability
                else None
            )
        conn = ProxiedConnection(self, next(self._numbers), latency, cut_after)
        self.connections.add(conn)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await conn.run(reader, writer)
        finally:
            self._handlers.discard(task)

    # ---- faults -------------------------------------------------------------------

    def drop_all(self) -> int:
        """Abort every connection; returns how many there were."""
        conns = list(self.connections)
        for conn in conns:
            conn.drop()
        return len(conns)

    def partition(self, seconds: float) -> None:
        """Drop every connection and refuse new ones for ``seconds``."""
        self._refusing_until = time.monotonic() + seconds
        self.drop_all()

    def calm(self) -> None:
        """No more faults: latency 0, stalls released, no cuts, no partition."""
        self.calm_mode = True
        self._refusing_until = 0.0
        for conn in self.connections:
            conn.latency = 0.0
            conn.cut_after = None
            conn.flowing.set()

    def storm(self) -> None:
        """Faults back on (after ``calm``)."""
        self.calm_mode = False

    def random_fault(self) -> str | None:
        """Inject one random fault on a random connection; returns its name."""
        cfg = self.config
        kinds = ["drop", "stall", "slow", "partition"]
        weights = [cfg.drop_weight, cfg.stall_weight, cfg.slow_weight, cfg.partition_weight]
        kind = self.rng.choices(kinds, weights)[0]
        if kind == "partition":
            self.partition(self.rng.uniform(*cfg.partition_time))
            self.counts["partitions"] += 1
            return kind
        live = sorted(self.connections, key=lambda c: c.number)
        if not live:
            return None
        conn = self.rng.choice(live)
        if kind == "drop":
            conn.drop()
            self.counts["drops"] += 1
        elif kind == "stall":
            conn.stall(self.rng.uniform(*cfg.stall_time))
            self.counts["stalls"] += 1
        else:
            conn.latency = self.rng.uniform(0, 4 * cfg.max_latency)
            self.counts["slowdowns"] += 1
        return kind

    async def run_chaos(self, stop: asyncio.Event) -> None:
        """Inject random faults at random intervals until ``stop`` is set."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.rng.uniform(*self.config.chaos_interval))
            if not stop.is_set() and not self.calm_mode:
                self.random_fault()
