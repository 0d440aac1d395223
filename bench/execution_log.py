"""Executions logged per second, and the event loop's worst stall while they are logged.

Run from the repository root::

    python -m bench.execution_log                # full: 20,000 executions, then 2,000/s for 5 s
    python -m bench.execution_log --smoke        # small sizes, for CI (a few seconds)
    python -m bench.execution_log --postgres     # also on PostgreSQL (a scratch schema, dropped)

An ``ExecutionLog`` runs in this process on a fresh SQLite file (WAL,
``synchronous=NORMAL``, as the server opens it). Two workloads, each
measured with a task that asks to wake every millisecond and records how
late it is (the event loop's stall):

1. *flood*: 50 writers record queued -> started -> finished as fast as the
   loop lets them; executions per second until ``barrier()`` returns, i.e.
   durable. Anchor: a plain SQLAlchemy ``executemany`` INSERT of the same
   final rows in one transaction, with no event loop involved.
2. *paced*: 50 writers at 2,000 executions per second in total (issue 6's
   target), each execution queued, started 6 ms later, finished 6 ms after
   that. Anchor: the same writers with the records dropped, so the anchor's
   stall is this machine's noise plus the writers' own work.

Objects alive before measuring are frozen out of the garbage collector (a
full collection of them is not the log's doing); collections that still run
are printed. Prints the machine and one table: ours, anchor, ours / anchor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import json
import math
import os
import platform
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, text

from collab_server.database import open_engine
from kernels.log import (
    ExecutionLog,
    canonical_output,
    execution_output_refs,
    executions,
    metadata,
    summarize_outputs,
)

POSTGRES_URL = "postgresql+psycopg://postgres@localhost:5432/test"
WRITERS = 50
TARGET_RATE = 2000.0  # executions per second, issue 6
TARGET_STALL = 0.001  # seconds


@dataclass(frozen=True)
class Sizes:
    flood_per_writer: int
    paced_seconds: float


FULL = Sizes(flood_per_writer=400, paced_seconds=5.0)
SMOKE = Sizes(flood_per_writer=10, paced_seconds=1.0)


@dataclass(frozen=True)
class Row:
    metric: str
    ours: float
    anchor: float
    unit: str
    anchor_name: str


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


# ---- what the writers record into ---------------------------------------------------------


class DroppingSink:
    """Takes records and drops them: the anchor for the writers' own cost."""

    def record_queued(self, **fields: Any) -> str:
        return uuid.uuid4().hex

    def record_started(self, execution_id: str, started_at: float, kernel_id: str | None) -> None:
        pass

    def record_finished(self, execution_id: str, *args: Any) -> None:
        pass

    async def barrier(self) -> None:
        pass


Sink = ExecutionLog | DroppingSink


CODE = "import numpy as np\nvalues = np.arange(100)\nprint(values.sum())\n"
OUTPUTS = [{"output_type": "stream", "name": "stdout", "text": "4950\n" * 40}]
SUMMARY = summarize_outputs(OUTPUTS)  # the log keeps both: the summary and the outputs


def record_fields(notebook_id: str, writer: int, j: int) -> dict[str, Any]:
    return {
        "notebook_id": notebook_id,
        "notebook_path": f"class/notebook-{writer % 5}.ipynb",
        "cell_id": f"cell-{j % 30}",
        "code": CODE,
        "username": f"student{writer}",
        "kernelspec": "python3",
    }


# ---- measuring ---------------------------------------------------------------------------


@dataclass
class Stalls:
    """How late a task asking to wake every ``period`` seconds was."""

    period: float = 0.001
    lateness: list[float] = field(default_factory=list)
    gc_pauses: list[float] = field(default_factory=list)

    @property
    def worst(self) -> float:
        return max(self.lateness, default=0.0)

    @property
    def p99(self) -> float:
        ordered = sorted(self.lateness)
        return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)] if ordered else 0.0


@contextlib.asynccontextmanager
async def measuring_stalls() -> AsyncIterator[Stalls]:
    stalls = Stalls()
    gc_started = 0.0

    def on_gc(phase: str, info: dict[str, int]) -> None:
        nonlocal gc_started
        if phase == "start":
            gc_started = time.perf_counter()
        else:
            stalls.gc_pauses.append(time.perf_counter() - gc_started)

    async def tick() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(stalls.period)
            stalls.lateness.append(time.perf_counter() - before - stalls.period)

    gc.collect()
    gc.freeze()
    gc.callbacks.append(on_gc)
    ticker = asyncio.create_task(tick())
    try:
        yield stalls
    finally:
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)
        gc.callbacks.remove(on_gc)
        gc.unfreeze()


async def flood(sink: Sink, per_writer: int) -> tuple[float, Stalls]:
    """Seconds until ``WRITERS`` x ``per_writer`` executions are recorded and durable."""
    notebook_id = uuid.uuid4().hex

    async def writer(w: int) -> None:
        for j in range(per_writer):
            execution_id = sink.record_queued(**record_fields(notebook_id, w, j))
            await asyncio.sleep(0)
            sink.record_started(execution_id, time.time(), "kernel-1")
            await asyncio.sleep(0)
            sink.record_finished(
                execution_id, time.time(), "ok", j + 1, None, None, SUMMARY, OUTPUTS
            )
            await asyncio.sleep(0)

    async with measuring_stalls() as stalls:
        start = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(WRITERS)))
        await sink.barrier()
        seconds = time.perf_counter() - start
    return seconds, stalls


async def paced(sink: Sink, seconds: float, rate: float = TARGET_RATE) -> tuple[int, Stalls]:
    """Record at ``rate`` executions per second for ``seconds``; return how many."""
    notebook_id = uuid.uuid4().hex
    period = WRITERS / rate
    per_writer = max(1, round(seconds / period))

    async def writer(w: int) -> None:
        begin = time.perf_counter() + period * w / WRITERS
        for j in range(per_writer):
            await asyncio.sleep(max(0.0, begin + j * period - time.perf_counter()))
            execution_id = sink.record_queued(**record_fields(notebook_id, w, j))
            await asyncio.sleep(period / 4)
            sink.record_started(execution_id, time.time(), "kernel-1")
            await asyncio.sleep(period / 4)
            sink.record_finished(
                execution_id, time.time(), "ok", j + 1, None, None, SUMMARY, OUTPUTS
            )

    async with measuring_stalls() as stalls:
        await asyncio.gather(*(writer(w) for w in range(WRITERS)))
        await sink.barrier()
    return WRITERS * per_writer, stalls


def final_rows(count: int) -> Iterator[dict[str, Any]]:
    """The rows the log ends up with for ``count`` finished executions."""
    notebook_id = uuid.uuid4().hex
    summary = json.dumps(SUMMARY, ensure_ascii=False)
    for k in range(count):
        now = time.time()
        yield {
            "id": uuid.uuid4().hex,
            **record_fields(notebook_id, k % WRITERS, k // WRITERS),
            "kernel_id": "kernel-1",
            "queued_at": now,
            "started_at": now,
            "finished_at": now,
            "status": "ok",
            "execution_count": k + 1,
            "error_name": None,
            "error_value": None,
            "outputs_summary": summary,
            "note": None,
        }


def plain_executemany(engine: Engine, count: int) -> float:
    """Seconds for INSERT executemany of ``count`` final rows and their output references,
    in one transaction (all runs print the same output, which the log stored once already)."""
    rows = list(final_rows(count))
    encoded = canonical_output(OUTPUTS[0])
    sha = hashlib.sha256(encoded).hexdigest()
    refs = [
        {"execution_id": row["id"], "position": 0, "sha256": sha, "size": len(encoded)}
        for row in rows
    ]
    start = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert(executions), rows)
        conn.execute(insert(execution_output_refs), refs)  # the one output row: already there
    return time.perf_counter() - start


# ---- one database ---------------------------------------------------------------------


@contextlib.contextmanager
def database(name: str, folder: Path, postgres_url: str) -> Iterator[Engine]:
    """A fresh SQLite file, or a scratch PostgreSQL schema dropped afterwards."""
    if name == "sqlite":
        engine = open_engine(f"sqlite:///{folder / 'executions.db'}")
        try:
            yield engine
        finally:
            engine.dispose()
        return
    schema = f"bench_execlog_{uuid.uuid4().hex[:12]}"
    admin = open_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield admin.execution_options(schema_translate_map={None: schema})
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def gc_note(stalls: Stalls) -> str:
    if not stalls.gc_pauses:
        return "no GC"
    return f"{len(stalls.gc_pauses)} GCs, longest {max(stalls.gc_pauses) * 1000:.2f} ms"


async def bench_database(name: str, engine: Engine, sizes: Sizes) -> list[Row]:
    await asyncio.to_thread(metadata.create_all, engine)
    count = WRITERS * sizes.flood_per_writer
    async with ExecutionLog(engine) as execution_log:
        await flood(execution_log, 2)  # warm-up: connections, statement caches
        commits = execution_log.commits
        seconds, flood_stalls = await flood(execution_log, sizes.flood_per_writer)
        flood_commits = execution_log.commits - commits
        commits = execution_log.commits
        paced_count, paced_stalls = await paced(execution_log, sizes.paced_seconds)
        paced_commits = execution_log.commits - commits
    plain = await asyncio.to_thread(plain_executemany, engine, count)
    _, dropped_flood = await flood(DroppingSink(), sizes.flood_per_writer)
    _, dropped_paced = await paced(DroppingSink(), sizes.paced_seconds)

    print(
        f"[{name}] flood: {count:,} executions durable in {seconds:.2f} s, {flood_commits} "
        f"commits; {gc_note(flood_stalls)}"
    )
    print(
        f"[{name}] paced: {paced_count:,} executions at {TARGET_RATE:,.0f}/s, {paced_commits} "
        f"commits; {gc_note(paced_stalls)}"
    )
    ms = 1000.0
    plain_name = "plain executemany INSERT of the final rows and output refs, 1 transaction"
    return [
        Row(f"{name}: executions logged/s, flood (durable)", count / seconds, count / plain, "/s", plain_name),
        Row(f"{name}: worst loop stall, flood", flood_stalls.worst * ms, dropped_flood.worst * ms, "ms", "same writers, records dropped"),
        Row(f"{name}: worst loop stall at 2,000/s", paced_stalls.worst * ms, dropped_paced.worst * ms, "ms", "same writers, records dropped"),
        Row(f"{name}: p99 loop stall at 2,000/s", paced_stalls.p99 * ms, dropped_paced.p99 * ms, "ms", "same writers, records dropped"),
    ]  # fmt: skip


# ---- report ------------------------------------------------------------------------


def fmt(value: float, unit: str) -> str:
    if unit == "/s":
        return f"{value:,.0f}/s"
    return f"{value:,.2f} {unit}"


def print_table(rows: list[Row]) -> None:
    header = ("metric", "ours", "anchor", "ours/anchor", "anchor is")
    lines = [
        (r.metric, fmt(r.ours, r.unit), fmt(r.anchor, r.unit), f"{r.ours / r.anchor:.2f}x", r.anchor_name)
        for r in rows
    ]  # fmt: skip
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    for line in [header, tuple("-" * w for w in widths), *lines]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths)) + " |")


def verdicts(rows: list[Row]) -> Iterator[str]:
    by_metric = {row.metric: row for row in rows}
    for name in dict.fromkeys(row.metric.split(":")[0] for row in rows):
        rate = by_metric[f"{name}: executions logged/s, flood (durable)"].ours
        stall = by_metric[f"{name}: worst loop stall at 2,000/s"]
        verdict = "met" if rate >= TARGET_RATE and stall.ours <= TARGET_STALL * 1000 else "NOT met"
        yield (
            f"[{name}] target (>= {TARGET_RATE:,.0f}/s, worst stall <= {TARGET_STALL * 1000:.0f} ms): "
            f"{verdict} ({rate:,.0f}/s; worst stall {stall.ours:.2f} ms, "
            f"{stall.anchor:.2f} ms with the records dropped)"
        )


async def main(sizes: Sizes, postgres_url: str | None) -> None:
    print(f"machine: {machine()}")
    names = ["sqlite"] + (["postgresql"] if postgres_url else [])
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-execution-log-") as tmp:
        for name in names:
            with database(name, Path(tmp), postgres_url or "") as engine:
                rows += await bench_database(name, engine, sizes)
    print_table(rows)
    for line in verdicts(rows):
        print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, for CI (seconds)")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=POSTGRES_URL,
        default=None,
        metavar="URL",
        help=f"also measure on PostgreSQL (default URL {POSTGRES_URL})",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    asyncio.run(main(SMOKE if args.smoke else FULL, args.postgres))
    print(f"total {time.perf_counter() - started:.0f} s")
