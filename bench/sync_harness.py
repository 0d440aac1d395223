"""The parts of ``bench.sync_load`` that run things: the servers, the load generator, /proc.

- ``Server`` subclasses start one server process pinned to the server core
  (``taskset``) and prepare rooms on it: ``OursServer`` (``python -m
  collab_server`` with API tokens from ``collab-server token create``, notebooks
  created through the REST API and shared with a group of editors),
  ``NodeServer`` (``@y/websocket-server`` from ``tests/interop``) and
  ``PycrdtServer`` (pycrdt-websocket's ASGI server under uvicorn, started as
  ``python -m bench.sync_harness --serve-pycrdt-websocket PORT``).
- ``LoadGenerator`` drives ``bench/loadgen.mjs`` pinned to the generator core.
- ``cpu_seconds``, ``rss_bytes`` and ``Window`` read a process tree's CPU time and
  memory from /proc over the generator's measured window.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient

from tests.interop.node_client import INTEROP_DIR, REFERENCE_SERVER_SCRIPT, unused_port

LOADGEN = Path(__file__).resolve().parent / "loadgen.mjs"
SERVER_CORE, GENERATOR_CORE = 0, 1
MiB = 1024 * 1024
CELLS = 10  # per notebook; clients type in cell (index % CELLS)
OWNER, EDITORS, GROUP = "bench-owner", [f"bench-e{i}" for i in range(1, 5)], "bench-editors"


def notebook_cells() -> list[dict[str, str]]:
    """The cells of every benchmark notebook: three short lines of code each."""
    return [
        {"id": f"cell-{i}", "source": f"values = [x * {i + 1} for x in range(10)]\ntotal = sum(values)\nprint(total)"}
        for i in range(CELLS)
    ]  # fmt: skip


def ipynb() -> dict[str, Any]:
    cells: list[dict[str, Any]] = [
        {"id": c["id"], "cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": c["source"]}
        for c in notebook_cells()
    ]  # fmt: skip
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": kernelspec}, "cells": cells}


# ---- processes: pinning, CPU and memory from /proc ----------------------------------------------


# The cores this process may use when it starts; sync_load later keeps itself to the
# generator's core, and the servers it starts must not inherit that.
USABLE_CORES = frozenset(os.sched_getaffinity(0))


def pinned(core: int, argv: list[str]) -> list[str]:
    """``argv`` under ``taskset -c core`` when this machine has that core and taskset."""
    if core in USABLE_CORES and len(USABLE_CORES) > 1 and shutil.which("taskset"):
        return ["taskset", "-c", str(core), *argv]
    return argv


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (all threads)."""
    ticks = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and its live descendants."""
    total = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def runqueue_wait_seconds(pid: int) -> float:
    """Seconds the main thread (the event loop) of ``pid`` and of each of its descendants
    spent runnable but waiting for a CPU."""
    waited = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            waited += int(Path(f"/proc/{p}/task/{p}/schedstat").read_text().split()[1])
    return waited / 1e9


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Window:
    """Between the generator's ``window`` start and end events: the server's CPU (cores
    used) and peak RSS, and how long the server's and the generator's main threads waited,
    runnable, for a CPU (seconds per second: other work on the machine delays them)."""

    def __init__(self, pid: int, generator_pid: int) -> None:
        self.pid = pid
        self.generator_pid = generator_pid
        self.cpu = 0.0
        self.seconds = 0.0
        self.peak_rss = 0
        self.server_wait = 0.0
        self.generator_wait = 0.0

    async def sample(self, events: asyncio.Queue[dict[str, Any]]) -> None:
        while (await events.get())["phase"] != "start":
            pass
        cpu0, t0 = cpu_seconds(self.pid), time.perf_counter()
        waits0 = runqueue_wait_seconds(self.pid), runqueue_wait_seconds(self.generator_pid)
        end = asyncio.create_task(self._until_end(events))
        while not end.done():
            self.peak_rss = max(self.peak_rss, rss_bytes(self.pid))
            await asyncio.wait({end}, timeout=0.5)
        self.seconds = time.perf_counter() - t0
        self.cpu = (cpu_seconds(self.pid) - cpu0) / self.seconds
        self.server_wait = (runqueue_wait_seconds(self.pid) - waits0[0]) / self.seconds
        self.generator_wait = (runqueue_wait_seconds(self.generator_pid) - waits0[1]) / self.seconds

    @staticmethod
    async def _until_end(events: asyncio.Queue[dict[str, Any]]) -> None:
        while (await events.get())["phase"] != "end":
            pass


# ---- the load generator -------------------------------------------------------------------------


class GeneratorError(RuntimeError):
    pass


class LoadGenerator:
    """``node bench/loadgen.mjs`` pinned to the generator's core; see its header for commands."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.windows: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.closes: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.versions: dict[str, str] = {}
        self._ids = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ready: asyncio.Future[dict[str, Any]] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stderr: list[str] = []

    async def __aenter__(self) -> LoadGenerator:
        node = shutil.which("node")
        if node is None or not (INTEROP_DIR / "node_modules" / "y-websocket").is_dir():
            raise GeneratorError(f"needs node and `npm ci --prefix {INTEROP_DIR}`")
        self.proc = await asyncio.create_subprocess_exec(
            *pinned(GENERATOR_CORE, [node, "--max-old-space-size=8192", str(LOADGEN)]),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            limit=16 * MiB,
        )  # fmt: skip
        self._ready = asyncio.get_running_loop().create_future()
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._read_stderr())]
        self.versions = (await asyncio.wait_for(self._ready, 30))["versions"]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(GeneratorError, TimeoutError):
                await self.request("quit", timeout=60)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def request(self, cmd: str, timeout: float = 600, **args: Any) -> dict[str, Any]:
        """Send a command; return its reply. Raises GeneratorError if it failed."""
        assert self.proc is not None and self.proc.stdin is not None
        self._ids += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._ids] = future
        self.proc.stdin.write(json.dumps({"id": self._ids, "cmd": cmd, **args}).encode() + b"\n")
        await self.proc.stdin.drain()
        try:
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise GeneratorError(f"{cmd}: no reply in {timeout} s") from None
        if not reply.get("ok"):
            raise GeneratorError(f"{cmd} failed: {reply.get('error')}")
        return reply

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            message = json.loads(raw)
            event = message.get("event")
            if event == "ready" and self._ready is not None:
                self._ready.set_result(message)
            elif event == "window":
                self.windows.put_nowait(message)
            elif event == "close":
                self.closes.append(message)
            elif event == "error":
                self.errors.append(message["error"])
            elif (future := self._pending.pop(message.get("id", -1), None)) and not future.done():
                future.set_result(message)
        tail = "\n".join(self._stderr[-20:])
        for future in [*self._pending.values(), *([self._ready] if self._ready else [])]:
            if not future.done():
                future.set_exception(GeneratorError(f"the generator exited:\n{tail}"))

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self._stderr.append(raw.decode(errors="replace").rstrip())


# ---- the servers ----------------------------------------------------------------------------------


@dataclass
class Room:
    name: str
    tokens: list[str]  # client i uses tokens[i % len(tokens)] (ours); empty: no auth
    seeded: bool  # the server builds the document from an .ipynb (else the first client seeds it)


class Server:
    """One server process pinned to the server core; ``async with`` starts and stops it."""

    key = ""
    version = ""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = 0
        self.proc: asyncio.subprocess.Process | None = None
        self.log = folder / f"{self.key}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/rooms"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    async def __aenter__(self) -> Server:
        """Start the process (again, after a previous ``async with``); return once it accepts."""
        self.folder.mkdir(parents=True, exist_ok=True)
        await self.prepare()
        self.port = unused_port()
        argv, env = self.command()
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *pinned(SERVER_CORE, argv), env={**os.environ, **env}, cwd=self.folder,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        async with asyncio.timeout(60):
            while True:
                if not self.alive():
                    raise RuntimeError(f"{self.key} exited at start: {self.log_tail()}")
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                    writer.close()
                    await writer.wait_closed()
                    break
                await asyncio.sleep(0.05)  # polling for the port, bounded by the timeout
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def prepare(self) -> None:
        """Work before the process starts (ours: users and tokens)."""

    async def rooms(self, prefix: str, count: int) -> list[Room]:
        return [Room(f"{prefix}-{i}", [], seeded=False) for i in range(count)]


class NodeServer(Server):
    key = "node"
    version = "@y/websocket-server 0.1.1"

    def command(self) -> tuple[list[str], dict[str, str]]:
        node = shutil.which("node") or "node"
        return [node, str(REFERENCE_SERVER_SCRIPT)], {"HOST": "127.0.0.1", "PORT": str(self.port)}


class PycrdtServer(Server):
    key = "pycrdt"

    @property
    def version(self) -> str:  # type: ignore[override]
        from importlib.metadata import PackageNotFoundError, version

        try:
            return f"pycrdt-websocket {version('pycrdt-websocket')}, uvicorn {version('uvicorn')}"
        except PackageNotFoundError as e:
            return f"not installed ({e}): pip install pycrdt-websocket uvicorn"

    def command(self) -> tuple[list[str], dict[str, str]]:
        return [sys.executable, "-m", "bench.sync_harness", "--serve-pycrdt-websocket", str(self.port)], {
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent)
        }


class OursServer(Server):
    key = "ours"
    version = "collab-server"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.tokens: dict[str, str] = {}

    def cli(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "collab_server", *args, f"--data-dir={self.folder / 'data'}"]

    async def prepare(self) -> None:
        """The owner (an admin, to make the editors' group) and four editors, with tokens; once."""
        if self.tokens:
            return

        async def run(argv: list[str]) -> str:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=self.folder, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            out, err = await proc.communicate()
            if proc.returncode:
                raise RuntimeError(f"{' '.join(argv)}: {err.decode()}")
            return out.decode().strip()

        await run(self.cli("user", "add", OWNER, "--admin", "--create"))  # the database first
        for editor in EDITORS:  # one at a time: each may write to the SQLite file
            await run(self.cli("user", "add", editor))
        users = [OWNER, *EDITORS]
        outputs = await asyncio.gather(*(run(self.cli("token", "create", user)) for user in users))
        self.tokens = {user: out.splitlines()[-1] for user, out in zip(users, outputs)}

    def command(self) -> tuple[list[str], dict[str, str]]:
        return [
            sys.executable, "-m", "collab_server", "--ip=127.0.0.1", f"--port={self.port}",
            f"--data-dir={self.folder / 'data'}", f"--root-dir={self.folder / 'notebooks'}",
            "--log-level=WARN", "--KernelPool.pool_size=0", *os.environ.get("BENCH_OURS_ARGS", "").split(),
        ], {}  # fmt: skip

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        response = await AsyncHTTPClient().fetch(
            f"http://127.0.0.1:{self.port}{path}", method=method,
            body=json.dumps(body if body is not None else {}),
            headers={"Authorization": f"token {self.tokens[OWNER]}"}, request_timeout=120,
        )  # fmt: skip
        return json.loads(response.body) if response.body else None

    async def __aenter__(self) -> Server:
        first = not self.tokens
        await super().__aenter__()
        if first:
            await self.api("PUT", f"/api/groups/{GROUP}")
            for user in EDITORS:
                await self.api("PUT", f"/api/groups/{GROUP}/members/{user}")
        return self

    async def rooms(self, prefix: str, count: int) -> list[Room]:
        """Create ``count`` notebooks in the owner's folder, each shared with the editors."""
        content = ipynb()
        tokens = [self.tokens[u] for u in [OWNER, *EDITORS]]

        async def create(i: int) -> Room:
            entry = await self.api(
                "PUT", f"/api/contents/{OWNER}/{prefix}-{i}.ipynb", {"type": "notebook", "content": content}
            )
            await self.api("POST", f"/api/notebooks/{entry['id']}/shares", {"group": GROUP, "role": "editor"})
            return Room(entry["id"], tokens, seeded=True)

        jobs: list[Callable[[], Awaitable[Room]]] = [functools.partial(create, i) for i in range(count)]
        return await gather_limited(jobs, 8)


SERVER_CLASSES: dict[str, type[Server]] = {"ours": OursServer, "node": NodeServer, "pycrdt": PycrdtServer}


async def gather_limited(jobs: list[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await job()

    return list(await asyncio.gather(*(one(job) for job in jobs)))


def serve_pycrdt_websocket(port: int) -> None:
    """The pycrdt-websocket anchor: its ASGI server under uvicorn, rooms in memory."""
    import uvicorn
    from pycrdt.websocket import ASGIServer, WebsocketServer
    from pycrdt.websocket.websocket_server import exception_logger

    async def main() -> None:
        # Without an exception handler, one failed send stops the whole server.
        websocket_server = WebsocketServer(exception_handler=exception_logger)
        config = uvicorn.Config(
            ASGIServer(websocket_server), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        async with websocket_server:
            await uvicorn.Server(config).serve()

    asyncio.run(main())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the pycrdt-websocket anchor server")
    parser.add_argument("--serve-pycrdt-websocket", type=int, metavar="PORT", required=True)
    serve_pycrdt_websocket(parser.parse_args().serve_pycrdt_websocket)
