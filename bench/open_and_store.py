"""Opening a large notebook until a client is synced; the store's size after typing.

Run from the repository root::

    python -m bench.open_and_store           # full: 1,000 / 3,000 cells, 10,000 keystrokes
    python -m bench.open_and_store --smoke   # tiny sizes, for CI (< 30 s)

A real server runs in this process on an unused port (as in the tests) and
real WebSocket clients (``tests.yclient.YClient``) talk to it, so a figure
includes the client's own work in the same event loop. Prints the machine
and one table: for each metric ours, an anchor measured in the same run, and
ours / anchor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import websockets
from jupyter_ydoc import YNotebook
from pycrdt import Doc, Text
from tornado import websocket
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.web import Application

from collab_server.routes import make_app
from collab_server.services import Services, Settings
from crdt import protocol
from crdt.room import RoomSettings
from tests.yclient import YClient

MiB = 1024 * 1024
POLL = 0.05  # the server's disk_poll_interval, which also unloads idle rooms
BENCH_USER = "bench"  # owns every notebook the benchmark opens


@dataclass(frozen=True)
class Sizes:
    open_cells: int
    repeats: int
    store_cells: int
    store_output_lines: int
    keystrokes: int
    stall_seconds: float


FULL = Sizes(
    open_cells=1000, repeats=20, store_cells=3000, store_output_lines=7, keystrokes=10_000,
    stall_seconds=10.0,
)  # fmt: skip
SMOKE = Sizes(
    open_cells=100, repeats=3, store_cells=300, store_output_lines=7, keystrokes=500,
    stall_seconds=1.0,
)  # fmt: skip


@dataclass(frozen=True)
class Row:
    metric: str
    ours: float
    anchor: float | None
    unit: str
    anchor_name: str


# ---- inputs and the machine ------------------------------------------------------------


def make_notebook(cells: int, output_lines: int = 1) -> bytes:
    """An nbformat 4.5 .ipynb of code cells: three lines of source, one stream output each.

    Written as nbformat writes it (one-space indent, sorted keys, lines as lists).
    """

    def lines(text: str) -> list[str]:
        return text.splitlines(keepends=True)

    nb: dict[str, Any] = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "cells": [],
    }
    for i in range(cells):
        source = (
            f"values = [x * {i % 7 + 1} for x in range({i % 50 + 10})]\n"
            "total = sum(values)\n"
            f'print(f"step {i}: {{total}}")'
        )
        text = "".join(f"step {i}: {j * (i % 7 + 1)}\n" for j in range(output_lines))
        output = {"output_type": "stream", "name": "stdout", "text": lines(text)}
        nb["cells"].append(
            {
                "id": f"cell-{i}",
                "cell_type": "code",
                "execution_count": i + 1,
                "metadata": {},
                "outputs": [output],
                "source": lines(source),
            }
        )
    return (json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{len(os.sched_getaffinity(0))} cores ({model}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


# ---- the server under test and the anchor servers ---------------------------------------


@dataclass
class BenchServer:
    services: Services
    port: int
    token: str

    def ws_url(self, room_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/api/rooms/{room_id}"

    async def add_notebook(self, name: str, data: bytes) -> str:
        """Put an .ipynb in the bench user's own folder; return its id."""
        folder = self.services.settings.root_dir / BENCH_USER
        folder.mkdir(exist_ok=True)
        (folder / name).write_bytes(data)
        return await self.services.contents.id_for_path(f"{BENCH_USER}/{name}")

    async def wait_unloaded(self, room_id: str, timeout: float = 60) -> None:
        """Wait until the idle room is closed (saved and compacted) and forgotten."""
        async with asyncio.timeout(timeout):
            while self.services.rooms.get(room_id) is not None:
                await asyncio.sleep(POLL / 2)

    def store_file_bytes(self) -> int:
        """Size of the update store's SQLite file plus its write-ahead log."""
        db = self.services.settings.data_dir / "updates.db"
        return sum(p.stat().st_size for p in (db, db.with_name("updates.db-wal")) if p.exists())


@contextlib.asynccontextmanager
async def running_server(
    folder: Path, room: RoomSettings | None = None
) -> AsyncIterator[BenchServer]:
    """A server (default room settings unless given) that unloads a room as soon as its last client leaves."""
    settings = Settings(
        root_dir=folder / "notebooks",
        data_dir=folder / "data",
        room_idle_timeout=0.0,
        disk_poll_interval=POLL,
        room=room or RoomSettings(),
    )
    services = Services(settings)
    await services.start()
    sock, port = bind_unused_port()
    app = make_app(services, max_send_buffer=64 * MiB, websocket_max_message_size=64 * MiB)
    http = HTTPServer(app)
    http.add_sockets([sock])
    try:
        yield BenchServer(services, port, services.tokens.create(BENCH_USER))
    finally:
        http.stop()
        await services.stop()
        await http.close_all_connections()


class PushHandler(websocket.WebSocketHandler):
    """Sends ``payload`` as soon as the socket opens; echoes whatever it receives."""

    def initialize(self, payload: bytes) -> None:
        self.payload = payload

    def open(self, *args: str, **kwargs: str) -> None:
        if self.payload:
            self.write_message(self.payload, binary=True)

    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


@contextlib.asynccontextmanager
async def plain_websocket_server(payload: bytes) -> AsyncIterator[int]:
    """A bare Tornado WebSocket server: ``/push`` sends ``payload`` on open, ``/echo`` echoes."""
    app = Application(
        [("/push", PushHandler, {"payload": payload}), ("/echo", PushHandler, {"payload": b""})],
        websocket_max_message_size=64 * MiB,
    )
    sock, port = bind_unused_port()
    http = HTTPServer(app)
    http.add_sockets([sock])
    try:
        yield port
    finally:
        http.stop()
        await http.close_all_connections()


# ---- measurements --------------------------------------------------------------------


async def time_to_sync(url: str, token: str) -> tuple[float, YClient]:
    """Seconds from starting to connect until the server's sync step 2 is applied."""
    client = YClient(url, token)
    start = time.perf_counter()
    await client.connect()
    await client.wait_synced(timeout=120)
    return time.perf_counter() - start, client


async def repeat(n: int, once: Callable[[int], Awaitable[float]]) -> list[float]:
    await once(-1)  # warm-up, not counted
    return [await once(i) for i in range(n)]


def parse_and_set(data: bytes) -> None:
    """What a naive server does on every open: parse, validate, build the document."""
    nb = nbformat.reads(data.decode(), as_version=4)  # type: ignore[no-untyped-call]
    YNotebook(Doc()).set(nb)


async def open_notebook(sizes: Sizes, folder: Path) -> list[Row]:
    data = make_notebook(sizes.open_cells)
    print(f"notebook for opening: {sizes.open_cells} cells, {len(data) / 1024:.0f} KiB")
    async with running_server(folder) as server:

        async def check_and_close(client: YClient) -> None:
            assert client.notebook.cell_number == sizes.open_cells, client.notebook.cell_number
            await client.close()

        # One fresh copy per repetition, and one for the warm-up (index -1).
        cold_ids = [
            await server.add_notebook(f"cold-{i}.ipynb", data) for i in range(sizes.repeats + 1)
        ]

        async def cold(i: int) -> float:
            seconds, client = await time_to_sync(server.ws_url(cold_ids[i]), server.token)
            await check_and_close(client)
            await server.wait_unloaded(cold_ids[i])
            return seconds

        stored_id = await server.add_notebook("stored.ipynb", data)

        async def stored(i: int) -> float:
            seconds, client = await time_to_sync(server.ws_url(stored_id), server.token)
            await check_and_close(client)
            await server.wait_unloaded(stored_id)
            return seconds

        async def loaded(i: int) -> float:
            seconds, client = await time_to_sync(server.ws_url(stored_id), server.token)
            await check_and_close(client)
            return seconds

        cold_times = await repeat(sizes.repeats, cold)
        stored_times = await repeat(sizes.repeats, stored)  # its warm-up seeds the store
        keeper = YClient(server.ws_url(stored_id), server.token)
        await keeper.connect()
        await keeper.wait_synced(timeout=120)
        encoded = keeper.doc.get_update()
        loaded_times = await repeat(sizes.repeats, loaded)
        await keeper.close()

    async def naive(i: int) -> float:
        start = time.perf_counter()
        parse_and_set(data)
        return time.perf_counter() - start

    naive_times = await repeat(sizes.repeats, naive)
    async with plain_websocket_server(encoded) as port:

        async def push(i: int) -> float:
            start = time.perf_counter()
            async with websockets.connect(
                f"ws://127.0.0.1:{port}/push", max_size=None, ping_interval=None
            ) as ws:
                message = await ws.recv()
                assert isinstance(message, bytes)
                Doc().apply_update(message)
                return time.perf_counter() - start

        push_times = await repeat(sizes.repeats, push)
        async with websockets.connect(f"ws://127.0.0.1:{port}/echo", ping_interval=None) as ws:

            async def echo(i: int) -> float:
                start = time.perf_counter()
                await ws.send(b"x" * 32)
                await ws.recv()
                return time.perf_counter() - start

            echo_times = await repeat(max(100, sizes.repeats), echo)

    n = sizes.open_cells
    naive_name = "in-process nbformat.reads + YNotebook.set"
    push_name = f"plain WS: connect, receive the doc ({len(encoded) / 1024:.0f} KiB), apply it"
    rows: list[Row] = []
    for case, times, anchor, anchor_name in [
        ("cold: seeded from .ipynb", cold_times, naive_times, naive_name),
        ("stored, not loaded", stored_times, naive_times, naive_name),
        ("loaded, 1 client in", loaded_times, push_times, push_name),
    ]:
        for p in (50, 95):
            rows.append(
                Row(
                    f"open {n} cells, {case}, p{p}",
                    percentile(times, p) * 1000,
                    percentile(anchor, p) * 1000,
                    "ms",
                    anchor_name,
                )
            )
    print(f"loopback WebSocket echo of 32 B: p50 {percentile(echo_times, 50) * 1000:.2f} ms")
    return rows


def state_clock(doc: Doc[Any], client_id: int) -> int:
    return protocol.decode_state_vector(doc.get_state()).get(client_id, 0)


async def type_keystrokes(writer: YClient, reader: YClient, count: int) -> list[str]:
    """Type ``count`` keystrokes in five cells, one transaction each; every tenth a backspace.

    Every 100 keystrokes, and at the end, waits until ``reader`` has them all.
    If the server closes the writer's connection, reconnects it as y-websocket
    clients do (its unsent keystrokes go in the sync) and goes on; returns the
    close code and reason of every such drop.
    """
    n = writer.notebook.cell_number
    targets = [0, n // 4, n // 2, 3 * n // 4, n - 1]
    # Array.get is slow on a 3,000-cell list; the bench must not measure itself.
    typed: dict[int, Text] = {i: writer.notebook.ycells[i]["source"] for i in targets}
    seen: dict[int, Text] = {i: reader.notebook.ycells[i]["source"] for i in targets}
    cursors = {i: str(typed[i]).find("\n") for i in targets}
    writer_id = writer.doc.client_id
    drops: list[str] = []
    cell = targets[0]

    def caught_up() -> bool:
        return state_clock(reader.doc, writer_id) >= state_clock(writer.doc, writer_id) and str(
            seen[cell]
        ) == str(typed[cell])

    async def flush() -> None:
        while True:
            caught = asyncio.create_task(reader.wait_for(caught_up, timeout=120))
            dropped = asyncio.create_task(writer.closed.wait())
            done, _ = await asyncio.wait({caught, dropped}, return_when=asyncio.FIRST_COMPLETED)
            dropped.cancel()
            if caught in done:
                caught.result()  # raises TimeoutError if the reader never caught up
                return
            caught.cancel()
            drops.append(f"{writer.close_code} {writer.close_reason}")
            await writer.connect()
            await writer.wait_synced(timeout=120)

    for k in range(count):
        cell = targets[(k // 200) % len(targets)]
        source = typed[cell]
        if k % 10 == 9 and cursors[cell] > 0:
            del source[cursors[cell] - 1]
            cursors[cell] -= 1
        else:
            source.insert(cursors[cell], chr(ord("a") + k % 26))
            cursors[cell] += 1
        if k % 100 == 99 or k == count - 1:
            await flush()
    return drops


def first_struct(update: bytes) -> tuple[int, int] | None:
    """(client, clock) of a Yjs v1 update's first struct; None if it only deletes."""
    reader = protocol.Reader(update)
    if reader.varuint() == 0:  # number of clients with structs
        return None
    reader.varuint()  # number of structs
    return reader.varuint(), reader.varuint()


def time_to_durable(server: BenchServer, writer: YClient) -> list[float]:
    """Milliseconds from each of ``writer``'s insertions to its commit in the server's store.

    Both ends are in this process: the writer's transactions are timed on its
    document, the commits on the store's futures, matched by (client, clock).
    """
    made: dict[int, float] = {}
    durable: list[float] = []
    writer_id = writer.doc.client_id

    def on_change(event: Any) -> None:
        key = first_struct(event.update)
        if key is not None and key[0] == writer_id:
            made[key[1]] = time.perf_counter()

    writer.doc.observe(on_change)
    store = server.services.store
    append = store.append

    def timed_append(room_id: str, update: bytes, username: str | None) -> asyncio.Future[None]:
        future = append(room_id, update, username)
        key = first_struct(update)
        started = made.pop(key[1], None) if key is not None and key[0] == writer_id else None
        if started is not None:
            future.add_done_callback(
                lambda _: durable.append((time.perf_counter() - started) * 1000)
            )
        return future

    store.append = timed_append  # type: ignore[method-assign]
    return durable


async def autosave_stall(sizes: Sizes, folder: Path) -> list[Row]:
    """The event loop's longest stall while a busy 1,000-cell room autosaves again and again.

    One client types a keystroke every 20 ms; the room saves 0.1 s after a
    change, so saves follow each other as fast as the autosaver allows. A
    task measures how late a 1 ms sleep wakes up. Anchor: a naive save on the
    loop, ``YNotebook.get()`` + ``nbformat.writes`` of the same document.
    """
    data = make_notebook(sizes.open_cells)
    settings = RoomSettings(save_delay=0.1)
    async with running_server(folder, settings) as server:
        room_id = await server.add_notebook("busy.ipynb", data)
        _, writer = await time_to_sync(server.ws_url(room_id), server.token)
        room = server.services.rooms.get(room_id)
        assert room is not None
        saves = 0
        save = room.save

        async def counted_save() -> None:
            nonlocal saves
            await save()
            saves += 1

        room.save = counted_save  # type: ignore[method-assign]
        stalls: list[float] = []
        typing = True

        async def watch() -> None:
            while typing:
                before = time.perf_counter()
                await asyncio.sleep(0.001)
                stalls.append((time.perf_counter() - before - 0.001) * 1000)

        watcher = asyncio.create_task(watch())
        source = writer.notebook.ycells[sizes.open_cells // 2]["source"]
        deadline = time.perf_counter() + sizes.stall_seconds
        while time.perf_counter() < deadline:
            source.insert(0, "x")
            await asyncio.sleep(0.02)
        typing = False
        await watcher
        await writer.close()
        naive = []
        for _ in range(3):
            started = time.perf_counter()
            nbformat.writes(nbformat.from_dict(room.notebook.get()))
            naive.append((time.perf_counter() - started) * 1000)
    print(f"autosave while typing: {saves} saves in {sizes.stall_seconds:.0f} s, "
          f"{len(stalls)} loop samples")  # fmt: skip
    anchor = "naive save on the loop: YNotebook.get + nbformat.writes"
    return [
        Row(f"autosave of {sizes.open_cells} cells while typing: worst loop stall",
            max(stalls), min(naive), "ms", anchor),
        Row("  same, p99 loop stall", percentile(stalls, 99), min(naive), "ms", anchor),
    ]  # fmt: skip


async def describe_store(server: BenchServer, room_id: str) -> tuple[str, int]:
    """What is stored for the room, in words, and how many updates its tail holds."""
    stored = await server.services.store.load(room_id)
    assert stored is not None
    tail = sum(len(u) for u in stored.tail)
    db = server.services.settings.data_dir / "updates.db"
    files = ", ".join(
        f"{f.name} {f.stat().st_size / 1024:,.0f} KiB"
        for f in (db, db.with_name("updates.db-wal"))
        if f.exists()
    )
    text = (
        f"snapshot {len(stored.snapshot) / 1024:,.0f} KiB + tail of {len(stored.tail)} updates "
        f"({tail / 1024:,.0f} KiB); files: {files}"
    )
    return text, len(stored.tail)


async def store_size(sizes: Sizes, folder: Path) -> list[Row]:
    data = make_notebook(sizes.store_cells, sizes.store_output_lines)
    size = len(data)
    print(f"notebook for typing: {sizes.store_cells} cells, {size / 1024:.0f} KiB")
    async with running_server(folder) as server:
        room_id = await server.add_notebook("typed.ipynb", data)
        url = server.ws_url(room_id)
        _, writer = await time_to_sync(url, server.token)
        _, reader = await time_to_sync(url, server.token)
        durable = time_to_durable(server, writer)
        start = time.perf_counter()
        drops = await type_keystrokes(writer, reader, sizes.keystrokes)
        seconds = time.perf_counter() - start
        live = await server.services.store.size(room_id)
        live_file = server.store_file_bytes()
        live_text, live_tail = await describe_store(server, room_id)
        await writer.close()
        await reader.close()
        await server.wait_unloaded(room_id)
        after = await server.services.store.size(room_id)
        after_file = server.store_file_bytes()
        after_text, after_tail = await describe_store(server, room_id)
        limit = server.services.settings.room.compact_after_updates
    print(
        f"{sizes.keystrokes} keystrokes reached the other client in {seconds:.1f} s "
        f"({sizes.keystrokes / seconds:.0f}/s)"
    )
    if drops:
        print(f"WARNING: the server closed the typing client {len(drops)} times: {drops[0]!r}")
    for when, text, stored, tail in (
        ("open", live_text, live, live_tail),
        ("unloaded", after_text, after, after_tail),
    ):
        verdict = "met" if stored <= 3 * size and tail <= limit else "NOT met"
        print(f"room {when}: {text}")
        print(f"  target (store <= 3x .ipynb, tail <= {limit} updates): {verdict}")
    k = f"{sizes.keystrokes} keystrokes"
    name = f".ipynb size ({size / 1024:.0f} KiB)"
    return [
        Row(f"keystroke made -> durable in the store, p50", percentile(durable, 50), None, "ms", ""),
        Row(f"keystroke made -> durable in the store, p95", percentile(durable, 95), None, "ms", ""),
        Row(f"store after {k}, room open", live, size, "B", name),
        Row("  SQLite updates.db + -wal, room open", live_file, size, "B", name),
        Row("store after room unloaded", after, size, "B", name),
        Row("  SQLite updates.db + -wal, unloaded", after_file, size, "B", name),
    ]


# ---- report ------------------------------------------------------------------------


def fmt(value: float, unit: str) -> str:
    if unit == "B":
        return f"{value / 1024:,.0f} KiB"
    return f"{value:,.1f} {unit}" if value >= 10 else f"{value:,.2f} {unit}"


def print_table(rows: list[Row]) -> None:
    header = ("metric", "ours", "anchor", "ours/anchor", "anchor is")
    lines = [
        (
            r.metric,
            fmt(r.ours, r.unit),
            "-" if r.anchor is None else fmt(r.anchor, r.unit),
            "-" if not r.anchor else f"{r.ours / r.anchor:.2f}x",
            r.anchor_name,
        )
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in [header, *lines]) for i in range(len(header))]
    for line in [header, tuple("-" * w for w in widths), *lines]:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths)) + " |")


async def main(sizes: Sizes) -> None:
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-open-store-") as tmp:
        rows = await open_notebook(sizes, Path(tmp) / "open")
        rows += await store_size(sizes, Path(tmp) / "store")
        rows += await autosave_stall(sizes, Path(tmp) / "autosave")
    print_table(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI (< 30 s)")
    args = parser.parse_args()
    started = time.perf_counter()
    asyncio.run(main(SMOKE if args.smoke else FULL))
    print(f"total {time.perf_counter() - started:.0f} s")
