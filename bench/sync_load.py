"""Edit propagation under load: ours against pycrdt-websocket and the reference Node server.

Run from the repository root (after ``npm ci --prefix tests/interop`` and
``pip install -e ".[test]"``; the pycrdt-websocket anchor needs
``pycrdt-websocket`` and ``uvicorn``)::

    python -m bench.sync_load            # full: 20 s windows, 2,000 rooms x 5 clients (~20 min)
    python -m bench.sync_load --smoke    # tiny sizes, for CI (< 1 min)

Three servers, each started by the benchmark on loopback in its own process
pinned to core 0: ours (``python -m collab_server``, API tokens, notebooks
created and shared through the REST API), pycrdt-websocket's ASGI server
under uvicorn, and ``@y/websocket-server`` under Node. One Node process
(``bench/loadgen.mjs``, pinned to core 1) holds every client: real y-websocket
providers with a YNotebook document of the same shape on all three servers
(the anchors' rooms are seeded by their first client with the cells ours
reads from the .ipynb). An edit is one character typed into a cell's source;
its latency runs from just before the sender's transaction to the moment
each other client of the room has applied it, on the generator's one clock.

Load points (issue 6): 10 clients x 20 edits/s text only; the same with a
cursor awareness update per edit; 50 x 5 with cursors; 50 x 5 with cursors
while every client renews its presence in the same tick every few seconds.
Then 2,000 rooms x 5 clients with 1,000 edits/s spread over them, and
delivered messages per second per server core in one busy
room (one writer as fast as the server delivers, a probe client and many
receivers that only count frames). Each of these steps runs on a freshly
started server process. Server CPU comes from /proc (the process and its
children, over the measured window), RSS is the peak sampled in it.
The generator's own CPU is reported: near 100 % of its core, the generator,
not the server, is the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import json
import os
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.open_and_store import machine
from bench.sync_harness import (
    CELLS, GENERATOR_CORE, SERVER_CLASSES, SERVER_CORE, LoadGenerator, MiB, Room, Server, Window,
    load_average, notebook_cells, rss_bytes,
)  # fmt: skip

SCALE_CONNECT_BUDGET = 480.0  # seconds to connect the many-rooms point's clients
SERVERS = ("ours", "node", "pycrdt")
LABELS = {"ours": "ours", "node": "Node y-websocket", "pycrdt": "pycrdt-websocket"}


@dataclass(frozen=True)
class LoadPoint:
    key: str
    label: str
    clients: int
    edits_per_client: float
    cursors: bool
    renew_every: float = 0.0  # seconds between "everyone renews presence at once"


@dataclass(frozen=True)
class Sizes:
    points: tuple[LoadPoint, ...]
    warmup: float
    window: float
    scale_rooms: int
    scale_clients: int
    scale_rate: float
    busy_receivers: int
    busy_window: float


FULL = Sizes(
    points=(
        LoadPoint("text", "10 x 20/s, text", 10, 20, False),
        LoadPoint("cursors", "10 x 20/s, + cursors", 10, 20, True),
        LoadPoint("fifty", "50 x 5/s, + cursors", 50, 5, True),
        LoadPoint("burst", "50 x 5/s, + cursors, all renew presence at once", 50, 5, True, 4.0),
    ),
    warmup=3.0, window=20.0, scale_rooms=2000, scale_clients=5, scale_rate=1000.0,
    busy_receivers=100, busy_window=10.0,
)  # fmt: skip
SMOKE = Sizes(
    points=(
        LoadPoint("text", "3 x 10/s, text", 3, 10, False),
        LoadPoint("burst", "5 x 5/s, + cursors, all renew presence at once", 5, 5, True, 0.5),
    ),
    warmup=0.3, window=1.0, scale_rooms=10, scale_clients=3, scale_rate=30.0,
    busy_receivers=5, busy_window=1.0,
)  # fmt: skip


# ---- measurements -------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one server did at one load point (None: not measured)."""

    p50: float | None = None
    p99: float | None = None
    max: float | None = None
    lost: int | None = None
    cpu: float | None = None  # fraction of one core
    rss: int | None = None
    gen_cpu: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    failure: str = ""


def client_specs(server: Server, rooms: list[Room], per_room: int, tag: str) -> list[list[dict[str, Any]]]:
    """Per room, its clients' connect specs; the first one seeds an anchor's empty room."""
    result = []
    for r, room in enumerate(rooms):
        specs = []
        for i in range(per_room):
            spec: dict[str, Any] = {
                "name": f"{tag}-{r}-{i}", "url": server.ws_url, "room": room.name, "cell": i, "expectCells": CELLS,
            }  # fmt: skip
            if room.tokens:
                spec["params"] = {"token": room.tokens[i % len(room.tokens)]}
            if i == 0 and not room.seeded:
                spec["seed"] = notebook_cells()
            specs.append(spec)
        result.append(specs)
    return result


async def connect_rooms(
    gen: LoadGenerator, specs: list[list[dict[str, Any]]], concurrency: int, budget: float = 0
) -> int:
    """Connect every room's first client (the seeder), then the others; return the failures.

    With a ``budget`` (seconds), no client starts connecting after 40 % of it (seeders) or
    all of it (the others): a server that slows down is reported, not waited for.
    """
    failed = 0
    started = time.perf_counter()
    phases = ([s[0] for s in specs], [c for s in specs for c in s[1:]])
    for batch, share in zip(phases, (0.4, 1.0)):
        if not batch:
            continue
        limit: dict[str, Any] = {}
        if budget:
            remaining = max(0.0, budget * share - (time.perf_counter() - started))
            limit = {"deadlineMs": remaining * 1000, "timeout": remaining + 180}
        reply = await gen.request("connect", clients=batch, concurrency=concurrency, timeoutMs=60_000, **limit)
        failed += reply["failed"]
        if reply["failures"]:
            print(f"    connect failures: {reply['failed']}, e.g. {reply['failures'][:2]}")
    return failed


async def measured(gen: LoadGenerator, server: Server, cmd: str, **args: Any) -> tuple[dict[str, Any], Window]:
    """Run a generator command and sample the server over its window."""
    while not gen.windows.empty():
        gen.windows.get_nowait()
    window = Window(server.pid, gen.pid)
    sampler = asyncio.create_task(window.sample(gen.windows))
    try:
        reply = await gen.request(cmd, **args)
        await asyncio.wait_for(sampler, 5)
    finally:
        sampler.cancel()
    return reply, window


def outcome_of(reply: dict[str, Any], window: Window) -> Outcome:
    latency = reply["latency"]
    return Outcome(
        p50=latency["p50"], p99=latency["p99"], max=latency["max"], lost=reply["lost"],
        cpu=window.cpu, rss=window.peak_rss, gen_cpu=reply["generator"]["cpu"],
        extra={k: reply[k] for k in ("windowSent", "samples", "divergentRooms", "bursts", "drainMs")}
        | {"loopDelayP99": reply["generator"]["loopDelayP99"], "server_wait": window.server_wait,
           "generator_wait": window.generator_wait},
    )  # fmt: skip


async def load_point(server: Server, *, gen: LoadGenerator, point: LoadPoint, sizes: Sizes) -> Outcome:
    rooms = await server.rooms(f"point-{point.key}", 1)
    specs = client_specs(server, rooms, point.clients, point.key)
    names = [s["name"] for s in specs[0]]
    try:
        if failed := await connect_rooms(gen, specs, 10):
            return Outcome(failure=f"{failed} of {point.clients} clients could not connect")
        reply, window = await measured(
            gen, server, "run", clients=names, rate=point.clients * point.edits_per_client,
            seconds=sizes.window, warmupSeconds=sizes.warmup, cursors=point.cursors,
            renewEvery=point.renew_every,
        )  # fmt: skip
        return outcome_of(reply, window)
    finally:
        await gen.request("disconnect", clients=names)


async def scale_point(server: Server, *, gen: LoadGenerator, sizes: Sizes) -> Outcome:
    n = sizes.scale_rooms * sizes.scale_clients
    started = time.perf_counter()
    rooms = await server.rooms("scale", sizes.scale_rooms)
    prepared = time.perf_counter() - started
    specs = client_specs(server, rooms, sizes.scale_clients, "scale")
    started = time.perf_counter()
    try:
        failed = await connect_rooms(gen, specs, 100, budget=SCALE_CONNECT_BUDGET)
        connected = time.perf_counter() - started
        idle_rss = rss_bytes(server.pid)
        print(f"    {n - failed:,} of {n:,} clients in {sizes.scale_rooms:,} rooms connected in {connected:.0f} s "
              f"(rooms prepared in {prepared:.0f} s); server RSS {idle_rss / MiB:,.0f} MiB")  # fmt: skip
        note = f"only {n - failed:,} of {n:,} clients connected in {connected:.0f} s" if failed else ""
        if failed > n // 2 or not server.alive():
            return Outcome(rss=idle_rss if server.alive() else None, failure=note or "server exited")
        reply, window = await measured(
            gen, server, "run", clients="all", rate=sizes.scale_rate, seconds=sizes.window,
            warmupSeconds=sizes.warmup * 2, cursors=False,
        )  # fmt: skip
        result = outcome_of(reply, window)
        result.extra |= {"idle_rss": idle_rss, "connect_s": connected, "gen_rss": (await gen.request("memory"))["rss"]}
        result.failure = note
        return result
    finally:
        await gen.request("disconnect", clients="all", timeout=900)


async def busy_room(server: Server, *, gen: LoadGenerator, sizes: Sizes) -> Outcome:
    [room] = await server.rooms("busy", 1)
    [specs] = client_specs(server, [room], 2, "busy")  # a writer, and the probe connected last
    receivers = [
        {"name": f"busy-raw-{i}", "url": server.ws_url, "room": room.name}
        | ({"params": {"token": room.tokens[(i + 2) % len(room.tokens)]}} if room.tokens else {})
        for i in range(sizes.busy_receivers)
    ]  # fmt: skip
    names = [s["name"] for s in specs] + [r["name"] for r in receivers]
    try:
        failed = await connect_rooms(gen, [specs[:1]], 1)
        failed += (await gen.request("raw", clients=receivers, concurrency=20))["failed"]
        failed += await connect_rooms(gen, [specs[1:]], 1)
        if failed:
            return Outcome(failure=f"{failed} clients could not connect")
        reply, window = await measured(
            gen, server, "flood", writers=[specs[0]["name"]], probe=specs[1]["name"],
            seconds=sizes.busy_window, warmupSeconds=sizes.warmup, inflight=64,
        )  # fmt: skip
        delivered = reply["delivered"] / reply["seconds"]
        return Outcome(
            p50=reply["latency"]["p50"], p99=reply["latency"]["p99"], max=reply["latency"]["max"], cpu=window.cpu, rss=window.peak_rss,
            gen_cpu=reply["generator"]["cpu"],
            extra={"delivered_per_s": delivered, "per_core": delivered / max(window.cpu, 1e-9), "edits": reply["edits"],
                   "server_wait": window.server_wait, "generator_wait": window.generator_wait},
        )  # fmt: skip
    finally:
        await gen.request("disconnect", clients=names)


async def run_server(key: str, sizes: Sizes, folder: Path, gen: LoadGenerator, only: set[str]) -> dict[str, Outcome]:
    """Every measurement on one kind of server, each step on a freshly started process: its
    CPU and RSS are that step's own, and a server broken by one step does not fail the next."""
    results: dict[str, Outcome] = {}
    server = SERVER_CLASSES[key](folder)
    print(f"{LABELS[key]}: {server.version}")
    steps: list[tuple[str, Callable[[Server], Awaitable[Outcome]]]] = [
        *((p.key, functools.partial(load_point, gen=gen, point=p, sizes=sizes)) for p in sizes.points),
        ("busy", functools.partial(busy_room, gen=gen, sizes=sizes)),
        ("scale", functools.partial(scale_point, gen=gen, sizes=sizes)),
    ]
    for name, step in steps:
        if only and name not in only:
            continue
        started = time.perf_counter()
        try:
            async with server:
                try:
                    results[name] = await step(server)
                except Exception as e:  # an anchor may not survive a load point; report it
                    results[name] = Outcome(failure=f"{type(e).__name__}: {str(e)[:300]}")
                if not server.alive():
                    results[name].failure = results[name].failure or "the server exited during the step"
        except Exception as e:  # it did not start (e.g. pycrdt-websocket not installed)
            results[name] = Outcome(failure=f"could not start: {type(e).__name__}: {str(e)[:300]}")
        seconds = time.perf_counter() - started
        pid = server.proc.pid if server.proc is not None else "-"
        print(f"  {LABELS[key]}, {name} ({seconds:.0f} s, pid {pid}): {describe(results[name])}")
        if results[name].failure:
            print("    server log: " + server.log_tail().replace("\n", "\n      "))
    return results


def describe(o: Outcome) -> str:
    if o.failure and o.p99 is None:
        return f"FAILED: {o.failure}"
    parts = []
    if o.p50 is not None and o.p99 is not None:
        parts.append(f"p50 {o.p50:.2f} ms, p99 {o.p99:.2f} ms, max {(o.max or 0):.1f} ms")
    if o.lost is not None:
        parts.append(f"lost {o.lost}")
    if o.cpu is not None:
        parts.append(f"server CPU {o.cpu * 100:.0f} %, RSS {(o.rss or 0) / MiB:.0f} MiB")
    if o.gen_cpu is not None:
        parts.append(f"generator CPU {o.gen_cpu * 100:.0f} %")
    if "server_wait" in o.extra:
        parts.append(f"waiting for a CPU: server {o.extra['server_wait'] * 1000:.0f} ms/s, "
                     f"generator {o.extra['generator_wait'] * 1000:.0f} ms/s")  # fmt: skip
    if "delivered_per_s" in o.extra:
        parts.append(f"{o.extra['delivered_per_s']:,.0f} delivered/s, {o.extra['per_core']:,.0f}/s per core")
    if o.extra.get("bursts"):
        done = [b["completeMs"] for b in o.extra["bursts"] if b["completeMs"] is not None]
        parts.append(f"{len(done)}/{len(o.extra['bursts'])} renewal bursts complete, slowest {max(done, default=0):.0f} ms")
    if o.failure:
        parts.append(f"({o.failure})")
    return "; ".join(parts)


# ---- report -----------------------------------------------------------------------------------------


@dataclass
class Row:
    metric: str
    unit: str
    values: dict[str, float | None]  # server key -> value
    target: str = ""
    met: bool | None = None
    versus: str = "node"  # the anchor the target (or, without one, the ratio) compares with
    notes: dict[str, str] = field(default_factory=dict)  # server key -> why there is no value


def build_rows(results: dict[str, dict[str, Outcome]], sizes: Sizes) -> list[Row]:
    rows: list[Row] = []

    def row(metric: str, unit: str, get: Callable[[Outcome], float | None], step: str, **kw: Any) -> Row:
        values, notes = {}, {}
        for key, steps in results.items():
            o = steps.get(step)
            values[key] = None if o is None else get(o)
            if o is not None and o.failure:
                notes[key] = "failed" if values[key] is None else "partial"
            elif o is not None and values[key] is None and o.extra.get("samples") == 0:
                notes[key] = "none arrived"  # not one edit of the window reached anyone
        r = Row(metric, unit, values, notes=notes, **kw)
        rows.append(r)
        return r

    def cmp(r: Row, against: str, limit: float | None = None) -> None:
        ours, anchor = r.values.get("ours"), r.values.get(against)
        bound = limit if limit is not None else anchor
        r.met = None if ours is None or bound is None else ours <= bound

    for p in sizes.points:
        r = row(f"{p.label}: edit p50", "ms", lambda o: o.p50, p.key, target="<= 1 ms" if p.key == "text" else "")
        if p.key == "text":
            cmp(r, "node", 1.0)
        cmp(row(f"{p.label}: edit p99", "ms", lambda o: o.p99, p.key, target="<= Node's p99"), "node")
        if p.renew_every:
            cmp(row(f"{p.label}: edit max (stall)", "ms", lambda o: o.max, p.key, target="<= Node's max"), "node")
            cmp(row(f"{p.label}: slowest burst, all renewals seen", "ms", slowest_burst, p.key, target="<= Node's"), "node")
        cmp(row(f"{p.label}: edits undelivered at the end", "", lambda o: o.lost, p.key, target="0"), "node", 0)
        row(f"{p.label}: backlog, typing stopped -> all delivered", "ms", drained, p.key, target="report")
        cmp(row(f"{p.label}: server CPU", "%", lambda o: pct(o.cpu), p.key, target="<= pycrdt-websocket's", versus="pycrdt"), "pycrdt")
        cmp(row(f"{p.label}: server RSS", "MiB", lambda o: mib(o.rss), p.key, target="<= pycrdt-websocket's", versus="pycrdt"), "pycrdt")
        row(f"{p.label}: generator CPU", "%", lambda o: pct(o.gen_cpu), p.key, target="report (< 90 %)")
        row(f"{p.label}: server waiting for a CPU", "ms/s", waited, p.key, target="report (machine noise)")
    s = f"{sizes.scale_rooms:,} rooms x {sizes.scale_clients}, {sizes.scale_rate:,.0f} edits/s"
    cmp(row(f"{s}: server RSS", "MiB", lambda o: mib(o.rss), "scale", target="<= 1024 MiB"), "node", 1024)
    row(f"{s}: edit p50", "ms", lambda o: o.p50, "scale")
    cmp(row(f"{s}: edit p99", "ms", lambda o: o.p99, "scale", target="<= 50 ms"), "node", 50)
    cmp(row(f"{s}: edits undelivered at the end", "", lambda o: o.lost, "scale", target="0"), "node", 0)
    row(f"{s}: backlog, typing stopped -> all delivered", "ms", drained, "scale", target="report")
    row(f"{s}: server CPU", "%", lambda o: pct(o.cpu), "scale")
    row(f"{s}: generator CPU", "%", lambda o: pct(o.gen_cpu), "scale", target="report (< 90 %)")
    row(f"{s}: server waiting for a CPU", "ms/s", waited, "scale", target="report (machine noise)")
    b = f"busy room, 1 writer -> {sizes.busy_receivers + 1} receivers"
    row(f"{b}: delivered messages/s", "/s", lambda o: o.extra.get("delivered_per_s"), "busy")
    row(f"{b}: server CPU", "%", lambda o: pct(o.cpu), "busy")
    r = row(f"{b}: delivered messages/s per server core", "/s", lambda o: o.extra.get("per_core"), "busy",
            target=">= 20,000")  # fmt: skip
    r.met = None if r.values.get("ours") is None else (r.values["ours"] or 0) >= 20_000
    row(f"{b}: generator CPU", "%", lambda o: pct(o.gen_cpu), "busy", target="report (< 90 %)")
    row(f"{b}: server waiting for a CPU", "ms/s", waited, "busy", target="report (machine noise)")
    return rows


def drained(o: Outcome) -> float | None:
    """Milliseconds from the end of typing until every edit had reached every client."""
    value = o.extra.get("drainMs")
    return None if value is None else float(value)


def waited(o: Outcome) -> float | None:
    """Milliseconds per second the server's threads were runnable but not running."""
    value = o.extra.get("server_wait")
    return None if value is None else value * 1000


def pct(value: float | None) -> float | None:
    return None if value is None else value * 100


def mib(value: int | None) -> float | None:
    return None if value is None else value / MiB


def slowest_burst(o: Outcome) -> float | None:
    bursts = o.extra.get("bursts") or []
    if not bursts:
        return None
    if any(b["completeMs"] is None for b in bursts):
        return float("inf")  # some client never saw some renewal
    return float(max(b["completeMs"] for b in bursts))


def fmt(value: float | None, unit: str, note: str = "") -> str:
    if value is None:
        return note or "-"
    suffix = f" ({note})" if note else ""
    if value == float("inf"):
        return "incomplete" + suffix
    if unit in ("/s", "") or abs(value) >= 100:
        return f"{value:,.0f} {unit}".strip() + suffix
    return (f"{value:,.1f} {unit}" if abs(value) >= 10 else f"{value:,.2f} {unit}") + suffix


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0 or float("inf") in (a, b):
        return "-"
    return f"{a / b:.2f}x"


def print_table(rows: list[Row], servers: list[str]) -> None:
    header = ("metric", *(LABELS[k] for k in servers), "ours/Node", "ours/pycrdt", "target", "met")
    lines = [
        (
            r.metric,
            *(fmt(r.values.get(k), r.unit, r.notes.get(k, "")) for k in servers),
            ratio(r.values.get("ours"), r.values.get("node")),
            ratio(r.values.get("ours"), r.values.get("pycrdt")),
            r.target,
            {True: "yes", False: "NO", None: ""}[r.met],
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    for line in [header, tuple("-" * w for w in widths), *lines]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths)) + " |")


async def main(sizes: Sizes, servers: list[str], only: set[str], json_path: Path | None) -> None:
    print(f"machine: {machine()}; load average {load_average()}")
    if GENERATOR_CORE in os.sched_getaffinity(0) and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {GENERATOR_CORE})  # this process stays off the server's core
    results: dict[str, dict[str, Outcome]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        async with LoadGenerator() as gen:
            print(f"generator: node {gen.versions['node']}, yjs {gen.versions['yjs']}, "
                  f"y-websocket {gen.versions['y-websocket']}, pinned to core {GENERATOR_CORE}; "
                  f"servers pinned to core {SERVER_CORE}")  # fmt: skip
            for key in servers:
                results[key] = await run_server(key, sizes, Path(tmp) / key, gen, only)
            if gen.closes:
                print(f"sockets closed by a server: {len(gen.closes)}, e.g. {gen.closes[:3]}")
            if gen.errors:
                print(f"generator errors: {gen.errors[:3]}")
    rows = build_rows(results, sizes)
    print(f"load average after: {load_average()}")
    print_table(rows, servers)
    failures = [f"{LABELS[k]}, {step}: {o.failure}" for k, steps in results.items() for step, o in steps.items() if o.failure]
    for line in failures:
        print(f"  - {line}")
    if json_path is not None:
        json_path.write_text(json.dumps({"rows": [asdict(r) for r in rows], "servers": servers,
                                         "labels": LABELS, "failures": failures}, default=str))  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI (< 1 min)")
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated: ours,node,pycrdt")
    parser.add_argument(
        "--only", default="", help="comma-separated steps: text,cursors,fifty,burst,busy,scale (default: all)"
    )
    parser.add_argument("--scale-rooms", type=int, help="rooms of the many-rooms point (default 2,000)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON (bench.run_all)")
    args = parser.parse_args()
    started = time.perf_counter()
    chosen = [s for s in args.servers.split(",") if s]
    only = {s for s in args.only.split(",") if s}
    sizes = SMOKE if args.smoke else FULL
    if args.scale_rooms:
        sizes = dataclasses.replace(sizes, scale_rooms=args.scale_rooms)

    async def until_terminated() -> None:
        # SIGTERM (a CI timeout) cancels like Ctrl-C, so every server and the generator are stopped.
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await main(sizes, chosen, only, args.json)

    asyncio.run(until_terminated())
    print(f"total {time.perf_counter() - started:.0f} s")
