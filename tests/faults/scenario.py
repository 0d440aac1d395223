"""One randomized run: clients edit through a hostile proxy while the server is killed.

``run_scenario(config, workdir)`` does, with every random choice drawn from
``config.seed``:

1. starts a real server (``python -m collab_server``, token auth) on an
   unused port, creates ``alice/faults.ipynb`` over the REST API and shares it
   with bob, carol, dave and erin as editors;
2. connects Python clients (``p1``...) and Node y-websocket clients
   (``n1``...) to it through a ``FaultProxy``;
3. for ``chaos_seconds``: every client makes random edits (text, cells,
   moves, metadata) at random intervals, online or offline; random users
   ask the server to run random code cells (``POST .../execute``: real
   kernels write outputs into the document); the proxy delays,
   splits, stalls, cuts, drops and partitions connections; the server is
   SIGKILLed (at a random moment, or right after it wrote the .ipynb) and
   restarted on the same port and data; Python client instances crash (their
   document is thrown away; a new instance with a fresh document replaces
   them); every client's document is polled to see which markers others
   have acknowledged;
4. then calms the proxy and checks (see ``Report.failures``): every client
   connected and synced; no cell still shown queued or running once the runs
   are over; all of them and a fresh client hold the same notebook (cells,
   metadata, outputs, the executions map); no duplicated cell id, no mangled
   source; every marker that
   must be present is (``ledger``); no client was told to reload (4409) or
   closed with an error code; the update store, loaded straight from its
   SQLite file, holds the same notebook; the saved .ipynb catches up to it;
   and after one more SIGKILL and restart a fresh client still sees it.

Timing is not reproducible (the network and the scheduler decide it), but
the seed fixes the sequence of decisions: which edits, which faults, which
kill modes and pauses.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pycrdt import Map
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from tests.interop.node_client import unused_port
from tests.yclient import YClient

from . import notebook_ops, server_process
from .clients import NodeFaultClients, PyFaultClient
from .ledger import Ledger
from .proxy import FaultProxy, ProxyConfig
from .server_process import ServerProcess, prepare_users

Json = dict[str, Any]

USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
NOTEBOOK_PATH = "alice/faults.ipynb"

OP_WEIGHTS = {
    "insert_token": 40,
    "delete_tokens": 12,
    "insert_cell": 7,
    "delete_cell": 3,
    "move_cell": 4,
    "cell_meta": 8,
    "nb_meta": 6,
    "nb_meta_del": 2,
    "shared_meta": 3,
}
# Marker suffixes: UTF-16 surrogate pairs and multi-byte UTF-8 must not shift offsets.
SUFFIXES = ["", "", "", "", "é", "😀", "ß", "\n", "中"]


@dataclass
class ScenarioConfig:
    seed: int
    chaos_seconds: float = 40.0
    python_clients: int = 3
    node_clients: int = 2
    initial_cells: int = 4
    edit_interval: tuple[float, float] = (0.02, 0.3)
    kill_interval: tuple[float, float] = (3.0, 9.0)
    kill_after_save_share: float = 0.5  # of kills: right after the server wrote the .ipynb
    downtime: tuple[float, float] = (0.0, 1.5)
    crash_probability: float = 0.004  # per Python edit: the instance is thrown away
    run_interval: tuple[float, float] | None = (0.5, 3.0)  # run requests (None: no kernels)
    settle_timeout: float = 60.0
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    server_options: dict[str, Any] = field(
        default_factory=lambda: {
            "CollabServer.save_delay": 0.2,
            "CollabServer.compact_after_updates": 50,
            "CollabServer.room_idle_timeout": 1.0,
            "CollabServer.disk_poll_interval": 0.2,
            "CollabServer.websocket_ping_interval": 5,
        }
    )


@dataclass
class Report:
    seed: int
    counts: collections.Counter[str]
    failures: list[str]
    timeline: list[str]
    workdir: Path
    seconds: float

    def summary(self) -> str:
        keys = [
            "edits",
            "markers made",
            "markers acknowledged",
            "markers present",
            "cells present",
            "run requests",
            "runs refused",
            "runs finished",
            "server kills",
            "kills after save",
            "restarts",
            "client crashes",
            "proxy drops",
            "proxy stalls",
            "proxy slowdowns",
            "proxy partitions",
            "proxy cuts",
            "proxy connections",
            "proxy chunks split",
            "reconnects",
        ]
        keys += sorted(k for k in self.counts if k.startswith("run answers"))
        figures = ", ".join(f"{k}={self.counts[k]}" for k in keys)
        status = "OK" if not self.failures else f"{len(self.failures)} FAILURES"
        return f"seed={self.seed} {status} in {self.seconds:.1f}s: {figures}"


class _Instance:
    """The random edit stream of one client instance."""

    def __init__(self, name: str, client: Any) -> None:
        self.name = name
        self.client = client
        self.counter = 0

    def next_name(self) -> int:
        self.counter += 1
        return self.counter


def make_op(rng: random.Random, inst: _Instance) -> Json:
    kind = rng.choices(list(OP_WEIGHTS), list(OP_WEIGHTS.values()))[0]
    token = f"[{inst.name}.{inst.next_name()}{rng.choice(SUFFIXES)}]"
    if kind == "insert_token":
        return {"kind": kind, "cell": rng.random(), "pos": rng.random(), "token": token}
    if kind == "delete_tokens":
        return {"kind": kind, "cell": rng.random(), "pos": rng.random(), "count": rng.randint(1, 3)}
    if kind == "insert_cell":
        n = inst.next_name()
        return {
            "kind": kind,
            "index": rng.random(),
            "token": token,
            "owner": inst.name,
            "cell_id": f"{inst.name}-c{n}",
            "inc": f"{inst.name}-i{n}",
            "cell_type": rng.choice(["code", "code", "markdown", "raw"]),
        }
    if kind in ("delete_cell", "move_cell"):
        return {
            "kind": kind,
            "pick": rng.random(),
            "to": rng.random(),
            "owner": inst.name,
            "new_inc": f"{inst.name}-i{inst.next_name()}",
        }
    if kind == "cell_meta":
        return {"kind": kind, "cell": rng.random(), "token": token}
    if kind == "nb_meta_del":
        return {"kind": kind, "pick": rng.random(), "author": inst.name}
    return {"kind": kind, "token": token}


def initial_notebook(owners: list[str], cells: int) -> Json:
    return {
        "cells": [
            {
                "cell_type": "code",
                "id": f"init-{i}",
                "source": f"[init.{i}]",
                "metadata": {"inc": f"init-i{i}", "owner": owners[i % len(owners)]},
                "outputs": [],
                "execution_count": None,
            }
            for i in range(cells)
        ],
        "metadata": {"m_[init.meta]": "[init.meta]"},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


class Scenario:
    def __init__(self, config: ScenarioConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.seed = config.seed
        self.ledger = Ledger()
        self.counts = self.ledger.counts
        self.timeline: list[str] = []
        self.failures: list[str] = []
        self.t0 = time.monotonic()
        self.server: ServerProcess | None = None
        self.proxy: FaultProxy | None = None
        self.node: NodeFaultClients | None = None
        self.tokens: dict[str, str] = {}
        self.room_id = ""
        self.instances: dict[str, _Instance] = {}  # logical client -> current instance
        self.retired: list[Any] = []  # crashed Python clients (for their close codes)
        self.stop = asyncio.Event()

    def rng(self, component: str) -> random.Random:
        return random.Random(f"{self.seed}:{component}")

    def event(self, text: str) -> None:
        self.timeline.append(f"{time.monotonic() - self.t0:8.3f} {text}")

    # ---- setup ------------------------------------------------------------------------

    async def setup(self) -> None:
        cfg = self.config
        root, data = self.workdir / "notebooks", self.workdir / "data"
        # Kernels run as another unix user (the server runs as root here): they must
        # be able to reach the notebook folder.
        for folder in (self.workdir, *self.workdir.parents):
            if folder == Path(tempfile.gettempdir()) or folder == Path("/"):
                break
            folder.chmod(folder.stat().st_mode | 0o011)
        logical = [f"p{i + 1}" for i in range(cfg.python_clients)] + [
            f"n{i + 1}" for i in range(cfg.node_clients)
        ]
        users = USERS[: len(logical)]
        self.users = dict(zip(logical, users, strict=True))
        self.tokens = prepare_users(data, users)
        self.server = ServerProcess(
            root, data, unused_port(), self.workdir / "server.log", cfg.server_options
        )
        await self.server.start()
        self.event(f"server started on port {self.server.port}")
        owners = [f"{name}-1" for name in logical]
        nb = initial_notebook(owners, cfg.initial_cells)
        self.ledger.add_initial(nb)
        created = await self.server.api(
            "PUT",
            f"/api/contents/{NOTEBOOK_PATH}",
            self.tokens["alice"],
            {"type": "notebook", "content": nb},
        )
        self.room_id = created["id"]
        for user in users[1:]:
            await self.server.api(
                "POST",
                f"/api/notebooks/{self.room_id}/shares",
                self.tokens["alice"],
                {"user": user, "role": "editor"},
            )
        self.proxy = FaultProxy(self.server.port, self.rng("proxy"), cfg.proxy)
        await self.proxy.start()
        self.proxy.calm()  # everyone joins first
        if cfg.node_clients:
            self.node = NodeFaultClients(timeout=30)
            await self.node.__aenter__()
        for name in logical:
            self.instances[name] = _Instance(f"{name}-1", await self._new_client(name, f"{name}-1"))
        for inst in self.instances.values():
            await inst.client.wait_synced(30)
        self.proxy.storm()
        self.event("all clients synced; faults on")

    @property
    def proxy_url(self) -> str:
        assert self.proxy is not None
        return f"ws://127.0.0.1:{self.proxy.port}/api/rooms"

    async def _new_client(self, logical: str, instance: str) -> Any:
        token = self.tokens[self.users[logical]]
        if logical.startswith("p"):
            client = PyFaultClient(
                instance, f"{self.proxy_url}/{self.room_id}", token, self.rng(f"backoff:{instance}")
            )
            client.start()
            return client
        assert self.node is not None
        return await self.node.new_client(instance, self.proxy_url, self.room_id, token)

    # ---- the run ------------------------------------------------------------------------

    async def edit_loop(self, logical: str) -> None:
        rng = self.rng(f"edits:{logical}")
        cfg = self.config
        while not self.stop.is_set():
            await asyncio.sleep(rng.uniform(*cfg.edit_interval))
            if self.stop.is_set():
                return
            inst = self.instances[logical]
            if logical.startswith("p") and rng.random() < cfg.crash_probability:
                await self._crash(logical, inst)
                continue
            op = make_op(rng, inst)
            result = await inst.client.apply(op)
            self.ledger.record(inst.name, op, result)

    async def _crash(self, logical: str, inst: _Instance) -> None:
        await inst.client.discard()
        self.retired.append(inst.client)
        self.ledger.crash(inst.name)
        number = int(inst.name.rsplit("-", 1)[1]) + 1
        name = f"{logical}-{number}"
        self.event(f"client {inst.name} crashed; {name} replaces it")
        client = await self._new_client(logical, name)
        self.instances[logical] = _Instance(name, client)
        # A new tab loads the notebook before anyone types in it (a fresh document that
        # edits before its first sync is a different document; the server would refuse it).
        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await client.wait_synced(1.0)
                return

    async def observe_loop(self) -> None:
        while not self.stop.is_set():
            for inst in list(self.instances.values()):
                state = await inst.client.snapshot()
                detail = f"at {time.monotonic() - self.t0:.3f}s, synced={inst.client.is_synced()}"
                self.ledger.observe(inst.name, state, detail)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 0.25)

    async def run_loop(self) -> None:
        """Run requests by random users for random code cells, straight to the server."""
        assert self.server is not None and self.config.run_interval is not None
        rng = self.rng("runs")
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), rng.uniform(*self.config.run_interval))
            if self.stop.is_set():
                return
            logical = rng.choice(sorted(self.instances))
            state = await self.instances[logical].client.snapshot()
            code_cells = sorted(c["id"] for c in state["cells"] if c["type"] == "code")
            if not code_cells:
                continue
            cell_ids = rng.sample(code_cells, min(len(code_cells), rng.randint(1, 3)))
            try:
                response = await AsyncHTTPClient().fetch(
                    f"{self.server.url}/api/notebooks/{self.room_id}/execute",
                    method="POST",
                    body=json.dumps({"cell_ids": cell_ids}),
                    headers={"Authorization": f"token {self.tokens[self.users[logical]]}"},
                    raise_error=False,
                    request_timeout=15,
                )
            except (OSError, HTTPClientError):
                self.counts["runs refused"] += 1  # the server is down
                continue
            self.counts["run requests"] += 1
            self.counts[f"run answers {response.code}"] += 1
            if response.code == 599:
                self.counts["runs refused"] += 1  # connection failed or cut by a kill
            elif response.code >= 500:
                self.failures.append(
                    f"RUN: POST execute {cell_ids} answered {response.code} {response.body!r}"
                )

    async def kill_loop(self) -> None:
        assert self.server is not None
        rng = self.rng("kills")
        cfg = self.config
        notebook_file = self.server.root_dir / NOTEBOOK_PATH
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), rng.uniform(*cfg.kill_interval))
            if self.stop.is_set():
                return
            after_save = rng.random() < cfg.kill_after_save_share
            downtime = rng.uniform(*cfg.downtime)
            assert self.server.process is not None
            if after_save:
                hit = await asyncio.to_thread(
                    server_process.kill_when_file_changes,
                    notebook_file,
                    self.server.process.pid,
                    3.0,
                )
                self.counts["kills after save"] += hit
            await self.server.kill_and_wait()
            self.counts["server kills"] += 1
            self.event(
                f"server SIGKILLed ({'right after a save' if after_save else 'at a random moment'}); down {downtime:.2f}s"
            )
            await asyncio.sleep(downtime)
            await self.server.start()
            self.counts["restarts"] += 1
            self.event("server restarted")

    async def run(self) -> Report:
        try:
            await self.setup()
            tasks = [asyncio.create_task(self.edit_loop(name)) for name in self.instances]
            tasks.append(asyncio.create_task(self.observe_loop()))
            tasks.append(asyncio.create_task(self.kill_loop()))
            if self.config.run_interval is not None:
                tasks.append(asyncio.create_task(self.run_loop()))
            assert self.proxy is not None
            tasks.append(asyncio.create_task(self.proxy.run_chaos(self.stop)))
            await asyncio.wait(
                tasks, timeout=self.config.chaos_seconds, return_when=asyncio.FIRST_EXCEPTION
            )
            self.stop.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            self.event("faults off; settling")
            await self.settle_and_check()
        finally:
            await self.teardown()
        return self.report()

    # ---- the checks ------------------------------------------------------------------------

    async def settle_and_check(self) -> None:
        assert self.server is not None and self.proxy is not None
        cfg = self.config
        self.proxy.calm()
        if not self.server.running:
            await self.server.start()
        for inst in self.instances.values():
            try:
                await inst.client.wait_synced(cfg.settle_timeout)
            except TimeoutError:
                self.failures.append(
                    f"HANG: {inst.name} not connected and synced {cfg.settle_timeout}s after the faults stopped"
                )
        fresh = YClient(
            f"ws://127.0.0.1:{self.server.port}/api/rooms/{self.room_id}", self.tokens["alice"]
        )
        await fresh.connect()
        try:
            await fresh.wait_synced(30)
            await self._runs_finish(fresh)
            final = await self._converge(fresh)
        finally:
            await fresh.close()
        self.failures += self.ledger.verify(notebook_ops.notebook_part(final))
        self._check_close_codes()
        self._check_store(final)
        await self._check_saved_file(final)
        await self._check_after_last_kill(final)

    async def _runs_finish(self, fresh: YClient) -> None:
        """Wait until the document shows no cell queued or running (nothing runs any more)."""
        timeout = min(self.config.settle_timeout, 30.0)  # a run here takes well under a second
        deadline = time.monotonic() + timeout
        while True:
            executions = notebook_ops.snapshot(fresh.doc, full=True)["executions"]
            busy = {
                cell: entry.get("state")
                for cell, entry in executions.items()
                if entry.get("state") != "idle"
            }
            if not busy:
                self.counts["runs finished"] = sum(
                    1 for e in executions.values() if e.get("status")
                )
                return
            if time.monotonic() > deadline:
                self.failures.append(
                    f"STUCK RUN: {timeout}s after the last run request the document "
                    f"still shows {busy} (kernel: {fresh.doc.get('kernel', type=Map).to_py()})"
                )
                return
            await asyncio.sleep(0.1)  # polls the fresh client's document, bounded by settle_timeout

    async def _converge(self, fresh: YClient) -> Json:
        """Wait until every client and the fresh one hold the same notebook; return it."""
        deadline = time.monotonic() + self.config.settle_timeout
        while True:
            final = notebook_ops.snapshot(fresh.doc, full=True)
            states = {
                inst.name: await inst.client.snapshot(full=True) for inst in self.instances.values()
            }
            differing = {name: s for name, s in states.items() if s != final}
            if not differing:
                self.event("converged")
                return final
            if time.monotonic() > deadline:
                for name, state in differing.items():
                    self.failures.append(
                        f"DIVERGED: {name} differs from a fresh client: {notebook_ops.describe_difference(state, final, name, 'fresh')}"
                    )
                return final
            await asyncio.sleep(0.1)  # polls the clients' documents, bounded by settle_timeout

    def _check_close_codes(self) -> None:
        clients = [inst.client for inst in self.instances.values()] + self.retired
        for client in clients:
            if client.terminal is not None:
                self.failures.append(
                    f"RELOAD: {client.name} was closed with {client.terminal} and gave up"
                )
            for code, reason in client.closes:
                self.counts["reconnects"] += 1
                if code not in (None, 1000, 1001, 1005, 1006):
                    self.failures.append(
                        f"CLOSE CODE: {client.name} was closed with {code} {reason!r}"
                    )

    def _check_store(self, final: Json) -> None:
        assert self.server is not None
        stored = notebook_ops.load_store(self.server.store_path, self.room_id)
        if stored is None:
            self.failures.append("STORE: the room is not in the update store")
        elif stored != final:
            self.failures.append(
                f"STORE: differs from the clients: {notebook_ops.describe_difference(stored, final, 'store', 'clients')}"
            )

    async def _check_saved_file(self, final: Json) -> None:
        assert self.server is not None
        path = self.server.root_dir / NOTEBOOK_PATH
        deadline = time.monotonic() + 20
        saved: Json | None = None
        while time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                saved = notebook_ops.snapshot_of_ipynb(json.loads(path.read_text()))
                if saved == notebook_ops.notebook_part(final):
                    return
            await asyncio.sleep(0.1)  # polls the file, bounded by the deadline
        detail = (
            "unreadable"
            if saved is None
            else notebook_ops.describe_difference(
                saved, notebook_ops.notebook_part(final), "ipynb", "clients"
            )
        )
        self.failures.append(f"IPYNB: the saved file never matched the clients: {detail}")

    async def _check_after_last_kill(self, final: Json) -> None:
        assert self.server is not None
        await self.server.kill_and_wait()
        self.counts["server kills"] += 1
        await self.server.start()
        self.counts["restarts"] += 1
        async with YClient(
            f"ws://127.0.0.1:{self.server.port}/api/rooms/{self.room_id}", self.tokens["bob"]
        ) as late:
            state = notebook_ops.snapshot(late.doc, full=True)
        if state != final:
            self.failures.append(
                f"AFTER RESTART: {notebook_ops.describe_difference(state, final, 'restarted', 'before')}"
            )

    # ---- teardown --------------------------------------------------------------------------

    async def teardown(self) -> None:
        self.stop.set()
        for inst in self.instances.values():
            with contextlib.suppress(Exception):
                await inst.client.stop()
        if self.node is not None:
            await self.node.close()
        if self.proxy is not None:
            for key, value in self.proxy.counts.items():
                self.counts[f"proxy {key.replace('_', ' ')}"] = value
            await self.proxy.stop()
        if self.server is not None:
            await self.server.stop()
            errors = [
                line
                for line in self.server.log_text().splitlines()
                if "Traceback" in line or line.startswith("[E ")
            ]
            self.counts["server error lines"] = len(errors)

    def report(self) -> Report:
        return Report(
            self.seed,
            self.counts,
            self.failures,
            self.timeline,
            self.workdir,
            time.monotonic() - self.t0,
        )


async def run_scenario(config: ScenarioConfig, workdir: Path) -> Report:
    """Run one scenario in ``workdir`` (server folders, server.log); see the module docstring."""
    workdir.mkdir(parents=True, exist_ok=True)
    report = await Scenario(config, workdir).run()
    (workdir / "timeline.txt").write_text("\n".join(report.timeline) + "\n")
    return report
