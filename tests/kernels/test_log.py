"""The execution log and its history queries, on a real SQLite file and the machine's PostgreSQL.

Each PostgreSQL test gets a schema of its own (dropped afterwards), so a
restart's "mark unfinished rows aborted" never touches another test's rows.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import hashlib
import io
import json
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Self

import nbformat
import pytest
from sqlalchemy import Engine, create_engine, func, select, text

from collab_server.database import open_engine
from kernels.history import (
    EXPORT_FIELDS,
    Execution,
    ExecutionHistory,
    ExecutionNotFound,
    InvalidHistoryQuery,
)
from kernels.log import (
    RESTART_NOTE,
    TEXT_LIMIT,
    ExecutionLog,
    ExecutionLogError,
    FinalStatus,
    canonical_output,
    execution_output_refs,
    execution_outputs,
    executions,
    summarize_outputs,
)
from tests.conftest import wait_until

POSTGRES_URL = "postgresql+psycopg://postgres@localhost:5432/test"
TIMEOUT = 60.0

LogFactory = Callable[..., Awaitable[ExecutionLog]]


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """(url, schema): a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'executions.db'}", None
        return
    schema = f"test_execlog_{uuid.uuid4().hex[:12]}"
    admin = open_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield POSTGRES_URL, schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def connect(url: str, schema: str | None) -> Engine:
    engine = open_engine(url)
    if schema is None:
        return engine
    return engine.execution_options(schema_translate_map={None: schema})


@pytest.fixture
def engine(db: tuple[str, str | None]) -> Iterator[Engine]:
    engine = connect(*db)
    yield engine
    engine.dispose()


@pytest.fixture
async def make_log(engine: Engine) -> AsyncIterator[LogFactory]:
    """Start execution logs on the test's database; every one is stopped at the end."""
    started: list[ExecutionLog] = []

    async def start(**options: Any) -> ExecutionLog:
        execution_log = ExecutionLog(engine, **options)
        await execution_log.start()
        started.append(execution_log)
        return execution_log

    yield start
    for execution_log in started:
        await execution_log.stop()


def queue(execution_log: ExecutionLog, notebook_id: str, **fields: Any) -> str:
    values: dict[str, Any] = {
        "notebook_id": notebook_id,
        "notebook_path": f"alice/{notebook_id}.ipynb",
        "cell_id": "cell-1",
        "code": "print(1)",
        "username": "alice",
        "kernelspec": "python3",
    }
    return execution_log.record_queued(**(values | fields))


def all_rows(engine: Engine, notebook_id: str | None = None) -> dict[str, dict[str, Any]]:
    """The log's rows read straight from the table, by id (not through kernels.history)."""
    query = select(executions)
    if notebook_id is not None:
        query = query.where(executions.c.notebook_id == notebook_id)
    with engine.connect() as conn:
        return {row.id: row._asdict() for row in conn.execute(query)}


class StallMeter:
    """Measures the event loop's worst lateness: a task asking to wake every millisecond.

    The objects alive when it starts (pytest's and the imported libraries')
    are frozen out of the garbage collector meanwhile: a full collection of
    that heap pauses every thread for 20-80 ms here, whatever the log does.
    ``gc_pauses`` lists the collections that did run (seconds).
    """

    def __init__(self, period: float = 0.001) -> None:
        self.period = period
        self.worst = 0.0
        self.ticks = 0
        self.gc_pauses: list[float] = []
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.period)
            self.worst = max(self.worst, time.perf_counter() - before - self.period)
            self.ticks += 1

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_pauses.append(time.perf_counter() - self._gc_started)

    async def __aenter__(self) -> Self:
        gc.collect()
        gc.freeze()
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.create_task(self._tick())
        await wait_until(lambda: self.ticks > 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        gc.callbacks.remove(self._on_gc)
        gc.unfreeze()


# ---- recording --------------------------------------------------------------------

FINAL: tuple[FinalStatus, ...] = ("ok", "error", "interrupted", "aborted")


async def test_fifty_writers_record_exactly_one_row_per_execution_without_stalling_the_loop(
    make_log: LogFactory, engine: Engine, request: pytest.FixtureRequest
) -> None:
    execution_log = await make_log()
    notebook_id = uuid.uuid4().hex
    writers, per_writer = 50, 100
    expected: dict[str, tuple[str, str, int]] = {}

    async def writer(w: int) -> None:
        for j in range(per_writer):
            execution_id = queue(
                execution_log,
                notebook_id,
                username=f"user{w}",
                cell_id=f"cell-{w}-{j}",
                code=f"print({w}, {j})",
            )
            expected[execution_id] = (f"user{w}", FINAL[j % 4], j + 1)
            await asyncio.sleep(0)
            execution_log.record_started(execution_id, time.time(), f"kernel-{w}")
            await asyncio.sleep(0)
            status = FINAL[j % 4]
            error = ("ValueError", "bad") if status == "error" else (None, None)
            execution_log.record_finished(execution_id, time.time(), status, j + 1, *error)
            await asyncio.sleep(0)

    async with StallMeter() as meter:
        started = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(writers)))
        async with asyncio.timeout(TIMEOUT):
            await execution_log.barrier()
        seconds = time.perf_counter() - started

    rows = all_rows(engine, notebook_id)
    with engine.connect() as conn:
        count = conn.execute(
            select(func.count()).where(executions.c.notebook_id == notebook_id)
        ).scalar()
    assert count == len(rows) == len(expected) == writers * per_writer
    for execution_id, (username, status, execution_count) in expected.items():
        row = rows[execution_id]
        assert (row["username"], row["status"], row["execution_count"]) == (
            username,
            status,
            execution_count,
        )
        assert row["code"] == f"print({username[4:]}, {execution_count - 1})"
        assert row["queued_at"] <= row["started_at"] <= row["finished_at"]
        assert row["kernel_id"] == f"kernel-{username[4:]}"
        assert row["error_name"] == ("ValueError" if status == "error" else None)
    print(
        f"\n[{request.node.callspec.id}] 5,000 executions durable in {seconds:.2f} s "
        f"({5000 / seconds:,.0f}/s, {execution_log.commits} commits); "
        f"worst event-loop stall {meter.worst * 1000:.1f} ms "
        f"(longest GC pause {max(meter.gc_pauses, default=0) * 1000:.1f} ms)"
    )
    assert meter.worst < 0.050


async def test_updates_are_idempotent_and_ordered_in_one_batch_or_many(
    make_log: LogFactory, engine: Engine
) -> None:
    execution_log = await make_log()
    notebook_id = uuid.uuid4().hex
    summary = summarize_outputs([{"output_type": "stream", "name": "stdout", "text": "hi\n"}])

    async def lifecycle(separate_commits: bool) -> dict[str, dict[str, Any]]:
        async def step() -> None:
            if separate_commits:
                await execution_log.barrier()

        normal = queue(execution_log, notebook_id, code="normal")
        finish_first = queue(execution_log, notebook_id, code="finish first")
        await step()
        execution_log.record_started(normal, 10.0, "kernel-a")
        await step()
        execution_log.record_finished(normal, 11.0, "error", 3, "E", "v", summary)
        execution_log.record_finished(finish_first, 12.0, "aborted")
        await step()
        # Repeats and late arrivals change nothing but a missing start time.
        execution_log.record_started(normal, 99.0, "kernel-b")
        execution_log.record_finished(normal, 99.0, "ok", 4)
        execution_log.record_started(finish_first, 13.0, "kernel-c")
        execution_log.record_finished(finish_first, 99.0, "ok", 5)
        await execution_log.barrier()
        rows = all_rows(engine, notebook_id)
        return {rows[i]["code"]: rows[i] for i in (normal, finish_first)}

    one_batch = await lifecycle(separate_commits=False)
    many = await lifecycle(separate_commits=True)
    ignored = {"id", "queued_at"}
    for rows in (one_batch, many):
        normal, finish_first = rows["normal"], rows["finish first"]
        assert normal["started_at"] == 10.0 and normal["kernel_id"] == "kernel-a"
        assert normal["finished_at"] == 11.0 and normal["status"] == "error"
        assert (normal["execution_count"], normal["error_name"], normal["error_value"]) == (
            3,
            "E",
            "v",
        )
        assert json.loads(normal["outputs_summary"]) == summary
        assert finish_first["status"] == "aborted" and finish_first["finished_at"] == 12.0
        assert finish_first["started_at"] == 13.0 and finish_first["execution_count"] is None
    for code in ("normal", "finish first"):
        assert {k: v for k, v in one_batch[code].items() if k not in ignored} == {
            k: v for k, v in many[code].items() if k not in ignored
        }
    assert len(all_rows(engine, notebook_id)) == 4


async def test_stop_commits_everything_and_recording_outside_start_stop_is_refused(
    engine: Engine,
) -> None:
    execution_log = ExecutionLog(engine, commit_delay=1.0)
    with pytest.raises(RuntimeError):
        execution_log.record_started("x", 1.0, None)
    await execution_log.start()
    notebook_id = uuid.uuid4().hex
    ids = [queue(execution_log, notebook_id, code=f"x = {i}") for i in range(100)]
    for execution_id in ids[:50]:
        execution_log.record_finished(execution_id, time.time(), "ok", 1)
    with pytest.raises(ValueError):
        execution_log.record_finished(ids[0], time.time(), "running")  # type: ignore[arg-type]
    await execution_log.stop()
    with pytest.raises(RuntimeError):
        queue(execution_log, notebook_id)
    rows = all_rows(engine, notebook_id)
    assert sorted(rows) == sorted(ids)
    assert sum(row["status"] == "ok" for row in rows.values()) == 50


CRASHING_SERVER = """
import asyncio, os, signal, sys, time
from collab_server.database import open_engine
from kernels.log import ExecutionLog

async def main(url, schema, notebook_id):
    engine = open_engine(url)
    if schema:
        engine = engine.execution_options(schema_translate_map={None: schema})
    log = ExecutionLog(engine)
    await log.start()
    common = dict(notebook_id=notebook_id, notebook_path="p.ipynb", cell_id="c", username="alice")
    queued = log.record_queued(code="queued", **common)
    running = log.record_queued(code="running", **common)
    log.record_started(running, time.time(), "kernel-1")
    done = log.record_queued(code="done", **common)
    log.record_started(done, time.time(), "kernel-1")
    log.record_finished(done, time.time(), "ok", 1)
    await log.barrier()
    print(queued, running, done, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
"""


async def test_a_restart_marks_what_a_crashed_server_left_unfinished_as_aborted(
    db: tuple[str, str | None], make_log: LogFactory, engine: Engine
) -> None:
    url, schema = db
    notebook_id = uuid.uuid4().hex
    crashed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", CRASHING_SERVER, url, schema or "", notebook_id],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=Path(__file__).parents[2],
    )
    assert crashed.returncode == -9, crashed.stderr
    queued, running, done = crashed.stdout.split()
    before = all_rows(engine, notebook_id)
    assert [before[i]["status"] for i in (queued, running, done)] == ["queued", "running", "ok"]

    execution_log = await make_log()
    assert execution_log.recovered == 2
    after = all_rows(engine, notebook_id)
    for execution_id in (queued, running):
        assert after[execution_id]["status"] == "aborted"
        assert after[execution_id]["note"] == RESTART_NOTE
        assert after[execution_id]["finished_at"] is None
    assert after[done] == before[done]
    assert after[running]["started_at"] == before[running]["started_at"]
    # A later finish cannot revive an aborted row.
    execution_log.record_finished(running, time.time(), "ok", 7)
    await execution_log.barrier()
    assert all_rows(engine, notebook_id)[running]["status"] == "aborted"


async def test_a_refused_record_is_dropped_and_logged_and_the_rest_is_written(
    make_log: LogFactory, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    execution_log = await make_log()
    notebook_id = uuid.uuid4().hex
    good = [queue(execution_log, notebook_id, code=f"good {i}") for i in range(3)]
    bad = queue(execution_log, notebook_id, code="bad")
    execution_log.record_finished(bad, time.time(), "ok", 2**70)  # no database stores that
    with pytest.raises(ExecutionLogError):
        async with asyncio.timeout(TIMEOUT):
            await execution_log.barrier()
    assert sorted(all_rows(engine, notebook_id)) == sorted(good)
    assert execution_log.dropped == 1
    assert f"execution {bad} could not be recorded" in caplog.text
    later = queue(execution_log, notebook_id)
    await execution_log.barrier()
    assert later in all_rows(engine, notebook_id)


@pytest.fixture
def impatient_sqlite(tmp_path: Path) -> Iterator[tuple[Engine, Path]]:
    """A SQLite engine that gives up on a lock after 50 ms, and its file."""
    path = tmp_path / "executions.db"
    open_engine(f"sqlite:///{path}").dispose()  # creates it, in WAL mode
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.05})
    yield engine, path
    engine.dispose()


def lock(path: Path) -> sqlite3.Connection:
    """Another process's write transaction, holding the database's write lock."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


async def test_a_locked_database_delays_the_log_but_loses_nothing(
    impatient_sqlite: tuple[Engine, Path],
) -> None:
    engine, path = impatient_sqlite
    notebook_id = uuid.uuid4().hex
    async with ExecutionLog(engine) as execution_log:
        before = [queue(execution_log, notebook_id, code=f"before {i}") for i in range(10)]
        await execution_log.barrier()
        holder = lock(path)
        for execution_id in before:
            execution_log.record_started(execution_id, time.time(), "kernel-1")
        during = [queue(execution_log, notebook_id, code=f"during {i}") for i in range(10)]
        for execution_id in during:
            execution_log.record_finished(execution_id, time.time(), "ok", 1)
        barrier = asyncio.create_task(execution_log.barrier())
        await wait_until(lambda: execution_log.failed_commits >= 2, timeout=TIMEOUT)
        later = [queue(execution_log, notebook_id, code=f"later {i}") for i in range(10)]
        for execution_id in before:
            execution_log.record_finished(execution_id, time.time(), "interrupted")
        assert not barrier.done()
        holder.rollback()
        holder.close()
        async with asyncio.timeout(TIMEOUT):
            await barrier
            await execution_log.barrier()
    rows = all_rows(engine, notebook_id)
    assert sorted(rows) == sorted(before + during + later)
    assert all(rows[i]["status"] == "interrupted" and rows[i]["started_at"] for i in before)
    assert all(rows[i]["status"] == "ok" for i in during)
    assert all(rows[i]["status"] == "queued" for i in later)


async def test_stop_gives_up_on_a_database_that_stays_locked_and_says_so(
    impatient_sqlite: tuple[Engine, Path], caplog: pytest.LogCaptureFixture
) -> None:
    engine, path = impatient_sqlite
    execution_log = ExecutionLog(engine)
    await execution_log.start()
    holder = lock(path)
    try:
        queue(execution_log, uuid.uuid4().hex)
        await wait_until(lambda: execution_log.failed_commits >= 1, timeout=TIMEOUT)
        async with asyncio.timeout(TIMEOUT):
            await execution_log.stop()
    finally:
        holder.close()
    assert "1 records could not be committed and are lost" in caplog.text


def test_summaries_keep_types_sizes_and_the_first_kilobyte_of_text() -> None:
    outputs: list[dict[str, Any]] = [
        {"output_type": "stream", "name": "stdout", "text": ["a" * 600, "b" * 100]},
        {
            "output_type": "execute_result",
            "execution_count": 1,
            "data": {"text/plain": "é" * 400, "image/png": "iVBOR" * 100},
            "metadata": {},
        },
        {
            "output_type": "display_data",
            "data": {"application/json": {"k": [1, 2]}},
            "metadata": {},
        },
        {"output_type": "stream", "name": "stderr", "text": "late"},
        {"output_type": "error", "ename": "KeyError", "evalue": "'x'", "traceback": ["t1", "t2"]},
    ]
    summary = summarize_outputs(outputs)
    stream, result, display, late, error = summary["outputs"]
    assert stream == {
        "output_type": "stream",
        "name": "stdout",
        "mime_types": {"text/plain": 700},
        "text": "a" * 600 + "b" * 100,
    }
    # 324 bytes of the kilobyte are left: 162 two-byte characters, none cut in half.
    assert result["mime_types"] == {"text/plain": 400, "image/png": 500}
    assert result["text"] == "é" * 162 and result["truncated"] is True
    assert display["mime_types"] == {"application/json": len('{"k": [1, 2]}')}
    assert "text" not in late and late["truncated"] is True
    assert (error["ename"], error["evalue"], error["traceback_size"]) == ("KeyError", "'x'", 4)
    kept = "".join(o.get("text", "") for o in summary["outputs"])
    assert len(kept.encode()) <= TEXT_LIMIT
    assert summary["total_size"] == 700 + 900 + 13 + 4 + 4 + 3
    assert summarize_outputs([]) == {"outputs": [], "total_size": 0}
    json.dumps(summary)


# ---- history ---------------------------------------------------------------------------

CODES = ["x = 100%", "a_b = 1", "axb = 2", "a%b", "A_B", "path = 'a/b'", "print('hi')"]


async def record_history(
    execution_log: ExecutionLog, notebooks: list[str], count: int, base: float = 1_700_000_000.0
) -> list[str]:
    """``count`` finished executions with set times (every third pair shares a time)."""
    ids = []
    for k in range(count):
        queued_at = base + (k // 3) * 10.0 + (0.5 if k % 3 == 2 else 0.0)
        execution_id = queue(
            execution_log,
            notebooks[k % len(notebooks)],
            username=["alice", "bob", "carol"][k % 3],
            code=f"{CODES[k % len(CODES)]}  # run {k}\n",
            cell_id=None if k % 5 == 0 else f"cell-{k % 4}",
            queued_at=queued_at,
        )
        execution_log.record_started(execution_id, queued_at + 1, "kernel-1")
        summary = summarize_outputs(
            [{"output_type": "stream", "name": "stdout", "text": f'line, "{k}"\n'}]
        )
        status = FINAL[k % 4]
        execution_log.record_finished(execution_id, queued_at + 2, status, k, None, None, summary)
        ids.append(execution_id)
    await execution_log.barrier()
    return ids


async def everything(history: ExecutionHistory, **filters: Any) -> list[Execution]:
    """Every page of a query, with a small page size."""
    rows: list[Execution] = []
    cursor: str | None = None
    while True:
        page, cursor = await history.query(limit=7, cursor=cursor, **filters)
        rows += page
        if cursor is None:
            return rows


async def test_queries_filter_by_notebook_user_time_status_and_literal_text(
    make_log: LogFactory, engine: Engine
) -> None:
    execution_log = await make_log()
    notebooks = [uuid.uuid4().hex, uuid.uuid4().hex]
    await record_history(execution_log, notebooks, 60)
    history = ExecutionHistory(engine)
    every = await everything(history, notebook_id=notebooks, oldest_first=True)
    assert len(every) == 60

    async def check(expect: Callable[[Execution], bool], **filters: Any) -> None:
        got = await everything(
            history, notebook_id=filters.pop("notebook_id", notebooks), **filters
        )
        wanted = [e for e in every if expect(e)]
        assert [e.id for e in got] == [e.id for e in reversed(wanted)], filters
        assert wanted, filters  # every filter here matches something

    await check(lambda e: e.notebook_id == notebooks[1], notebook_id=notebooks[1])
    await check(lambda e: e.username == "bob", username="bob")
    await check(lambda e: e.username != "bob", username=["alice", "carol"])
    since, until = every[10].queued_at, every[40].queued_at
    await check(lambda e: since <= e.queued_at < until, since=since, until=until)
    await check(lambda e: e.status == "interrupted", status="interrupted")
    await check(lambda e: e.status in ("ok", "error"), status=["ok", "error"])
    await check(lambda e: "%" in e.code, text="%")
    await check(lambda e: "_" in e.code, text="_")
    await check(lambda e: "a%b" in e.code, text="a%b")
    await check(lambda e: "a_b" in e.code.lower(), text="a_b")  # case-insensitive
    await check(lambda e: "a/b" in e.code, text="a/b")  # the LIKE escape character itself
    await check(lambda e: "print('hi')" in e.code, text="PRINT('HI')")
    await check(
        lambda e: e.username == "alice" and e.status == "ok" and "run" in e.code,
        username="alice",
        status="ok",
        text="run",
    )
    assert await history.query(notebook_id=[]) == ([], None)
    assert await history.query(notebook_id=notebooks, text="no such code") == ([], None)
    for bad in ({"status": "done"}, {"limit": 0}, {"limit": 1001}, {"cursor": "garbage"}):
        with pytest.raises(InvalidHistoryQuery):
            await history.query(**bad)


async def test_pagination_visits_every_row_once_in_both_orders_while_more_are_recorded(
    make_log: LogFactory, engine: Engine
) -> None:
    execution_log = await make_log()
    notebook_id = uuid.uuid4().hex
    await record_history(execution_log, [notebook_id], 137)
    history = ExecutionHistory(engine)

    def in_order() -> list[str]:
        rows = all_rows(engine, notebook_id)
        return sorted(rows, key=lambda i: (rows[i]["queued_at"], i))

    stored = all_rows(engine, notebook_id)
    assert len({row["queued_at"] for row in stored.values()}) < len(stored)  # ties, broken by id
    for oldest_first in (True, False):
        before = in_order()
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while pages == 0 or cursor is not None:
            page, cursor = await history.query(
                notebook_id=notebook_id, limit=10, cursor=cursor, oldest_first=oldest_first
            )
            seen += [e.id for e in page]
            pages += 1
            if pages == 3:  # newer runs are recorded between two pages
                await record_history(execution_log, [notebook_id], 5, base=time.time())
        # Oldest first, the newer runs come at the end; newest first, they came too late.
        assert seen == (in_order() if oldest_first else before[::-1])
        assert len(seen) == len(before) + 5 * oldest_first

    _, cursor = await history.query(notebook_id=notebook_id, limit=5, oldest_first=True)
    assert cursor is not None
    with pytest.raises(InvalidHistoryQuery):
        await history.query(notebook_id=notebook_id, cursor=cursor, oldest_first=False)


def untimed(row: Execution) -> Execution:
    return replace(row, queued_at=0.0, started_at=None, finished_at=None)


def times(row: Execution) -> tuple[float | None, ...]:
    return (row.queued_at, row.started_at, row.finished_at)


def parse_csv_row(record: dict[str, str]) -> Execution:
    values: dict[str, Any] = {}
    for name in EXPORT_FIELDS:
        raw = record[name]
        if raw == "" and name not in ("code", "notebook_path"):
            values[name] = None
        elif name in ("queued_at", "started_at", "finished_at"):
            assert raw.endswith("Z"), raw  # ISO 8601 UTC, as spreadsheets read dates
            values[name] = datetime.fromisoformat(raw).timestamp()
        elif name == "execution_count":
            values[name] = int(raw)
        elif name == "outputs_summary":
            values[name] = json.loads(raw)
        else:
            values[name] = raw
    return Execution(**values)


async def test_csv_and_json_exports_stream_and_round_trip(
    make_log: LogFactory, engine: Engine
) -> None:
    execution_log = await make_log()
    notebook_id = uuid.uuid4().hex
    await record_history(execution_log, [notebook_id], 23)
    tricky = queue(
        execution_log,
        notebook_id,
        code='s = "a, b"\nprint(s)\r\n# ünïcödé, "quotes", tab\t, emoji 🎉\n',
        username="dave",
        queued_at=2_000_000_000.123456789,
    )
    execution_log.record_finished(tricky, 2_000_000_001.0, "error", 9, "ValueError", 'bad "x", y')
    await execution_log.barrier()
    history = ExecutionHistory(engine)
    expected = await everything(history, notebook_id=notebook_id, oldest_first=True)
    assert len(expected) == 24

    chunks = [c async for c in history.export_csv(notebook_id=notebook_id, page_size=5)]
    assert len(chunks) == 1 + 5  # the header, then one chunk per page of 5 rows
    reader = csv.DictReader(io.StringIO("".join(chunks), newline=""))
    assert tuple(reader.fieldnames or ()) == EXPORT_FIELDS
    parsed = [parse_csv_row(record) for record in reader]
    assert [untimed(row) for row in parsed] == [untimed(row) for row in expected]
    for row, want in zip(parsed, expected, strict=True):
        for got, sent in zip(times(row), times(want), strict=True):
            assert (got is None and sent is None) or abs(got - sent) <= 1e-6  # to the microsecond

    chunks = [c async for c in history.export_json(notebook_id=notebook_id, page_size=5)]
    assert len(chunks) == 1 + 5 + 1  # "[", five pages, "]"
    assert json.loads("".join(chunks)) == [e.to_json() for e in expected]
    newest_first = history.export_json(notebook_id=notebook_id, username="dave", oldest_first=False)
    assert json.loads("".join([c async for c in newest_first])) == [expected[-1].to_json()]
    assert json.loads("".join([c async for c in history.export_json(notebook_id=[])])) == []
    assert "".join([c async for c in history.export_csv(notebook_id=[])]).count("\n") == 1


async def test_rebuild_notebook_gives_a_valid_notebook_of_the_chosen_runs_in_order(
    make_log: LogFactory, engine: Engine
) -> None:
    execution_log = await make_log()
    notebook_id = uuid.uuid4().hex
    runs: list[tuple[str, list[dict[str, Any]]]] = [
        ("import math", []),
        (
            "print('x' * 2000)",
            [{"output_type": "stream", "name": "stdout", "text": "x" * 2000 + "\n"}],
        ),
        (
            "plot()",
            [
                {
                    "output_type": "execute_result",
                    "execution_count": 3,
                    "data": {"text/plain": "<Figure>", "image/png": "iVBORw0KGgo="},
                    "metadata": {},
                },
                {"output_type": "display_data", "data": {"text/html": "<b>x</b>"}, "metadata": {}},
            ],
        ),
        (
            "1 / 0",
            [
                {
                    "output_type": "error",
                    "ename": "ZeroDivisionError",
                    "evalue": "division by zero",
                    "traceback": ["..."],
                }
            ],
        ),
    ]
    ids = []
    for count, (code, outputs) in enumerate(runs, start=1):
        execution_id = queue(execution_log, notebook_id, code=code, username="bob")
        execution_log.record_started(execution_id, time.time(), "kernel-1")
        status: FinalStatus = "error" if outputs and outputs[0]["output_type"] == "error" else "ok"
        execution_log.record_finished(
            execution_id, time.time(), status, count, None, None, summarize_outputs(outputs)
        )
        ids.append(execution_id)
    unfinished = queue(execution_log, notebook_id, code="time.sleep(100)")
    await execution_log.barrier()

    history = ExecutionHistory(engine)
    order = [ids[3], ids[0], ids[2], ids[1], ids[0], unfinished]
    notebook = await history.rebuild_notebook(order)
    node = nbformat.from_dict(notebook)  # type: ignore[no-untyped-call]
    nbformat.validate(node)
    reread = nbformat.reads(json.dumps(notebook), as_version=4)  # type: ignore[no-untyped-call]
    nbformat.validate(reread)

    cells = notebook["cells"]
    assert [c["source"] for c in cells] == [
        "1 / 0",
        "import math",
        "plot()",
        "print('x' * 2000)",
        "import math",
        "time.sleep(100)",
    ]
    assert [c["execution_count"] for c in cells] == [4, 1, 3, 2, 1, None]
    assert len({c["id"] for c in cells}) == len(cells)
    assert cells[0]["outputs"][0]["ename"] == "ZeroDivisionError"
    assert cells[0]["outputs"][0]["evalue"] == "division by zero"
    assert cells[1]["outputs"] == [] and cells[5]["outputs"] == []
    result, display = cells[2]["outputs"]
    assert result["output_type"] == "execute_result" and result["execution_count"] == 3
    assert result["data"]["text/plain"].startswith("<Figure>")
    assert "image/png" in result["data"]["text/plain"] and "image/png" not in result["data"]
    assert display["data"] == {"text/plain": display["data"]["text/plain"]}
    assert "text/html" in display["data"]["text/plain"]
    stream = cells[3]["outputs"][0]
    assert stream["text"].startswith("x" * TEXT_LIMIT) and "truncated" in stream["text"]
    meta = cells[0]["metadata"]["collab_execution"]
    assert (meta["id"], meta["username"], meta["status"]) == (ids[3], "bob", "error")
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"

    with pytest.raises(ExecutionNotFound) as missing:
        await history.rebuild_notebook([ids[0], "no-such-id"])
    assert missing.value.missing == ["no-such-id"]


# ---- outputs kept by content hash ---------------------------------------------------

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E"
    "rkJggg==\n"
)
RICH_OUTPUTS: list[dict[str, Any]] = [
    {"output_type": "stream", "name": "stdout", "text": "x" * 3000 + "\n"},
    {
        "output_type": "display_data",
        "data": {"image/png": PNG, "text/plain": "<Figure size 640x480 with 1 Axes>"},
        "metadata": {"image/png": {"width": 1, "height": 1}},
    },
    {
        "output_type": "execute_result",
        "execution_count": 1,
        "data": {"text/html": "<table><tr><td>1</td></tr></table>", "text/plain": "   a\n0  1"},
        "metadata": {},
    },
    {"output_type": "error", "ename": "E", "evalue": "é", "traceback": ["\x1b[31mE\x1b[0m: é"]},
]


def kept_rows(engine: Engine) -> tuple[dict[str, str], list[tuple[str, int, str | None, int]]]:
    """The output tables read straight: bundles by hash, and every reference."""
    with engine.connect() as conn:
        bundles = {r.sha256: r.output for r in conn.execute(select(execution_outputs))}
        query = select(execution_output_refs).order_by(
            execution_output_refs.c.execution_id, execution_output_refs.c.position
        )
        refs = [(r.execution_id, r.position, r.sha256, r.size) for r in conn.execute(query)]
    return bundles, refs


def finish_with(
    execution_log: ExecutionLog, execution_id: str, outputs: list[dict[str, Any]], count: int = 1
) -> None:
    execution_log.record_finished(
        execution_id, time.time(), "ok", count, None, None, summarize_outputs(outputs), outputs
    )


async def test_outputs_are_kept_once_by_hash_and_rebuilt_exactly_in_order(
    make_log: LogFactory, engine: Engine
) -> None:
    execution_log = await make_log()
    notebook_id = uuid.uuid4().hex
    first = queue(execution_log, notebook_id, code="show()")
    finish_with(execution_log, first, RICH_OUTPUTS)  # queued and finished in one batch
    second = queue(execution_log, notebook_id, code="show()")
    await execution_log.barrier()
    execution_log.record_started(second, time.time(), "kernel-1")
    finish_with(execution_log, second, RICH_OUTPUTS, 2)  # an UPDATE of an existing row
    await execution_log.barrier()
    finish_with(execution_log, second, [RICH_OUTPUTS[0]])  # a second finish changes nothing
    plain = queue(execution_log, notebook_id, code="pass")
    finish_with(execution_log, plain, [])
    await execution_log.barrier()

    bundles, refs = kept_rows(engine)
    assert len(bundles) == len(RICH_OUTPUTS)  # the second run's outputs are the same bundles
    for sha, output in bundles.items():
        assert hashlib.sha256(output.encode()).hexdigest() == sha
        assert json.loads(output) in RICH_OUTPUTS
    assert [(e, p) for e, p, _, _ in refs] == [(i, p) for i in (first, second) for p in range(4)]
    assert all(sha is not None for _, _, sha, _ in refs)

    notebook = await ExecutionHistory(engine).rebuild_notebook([second, plain, first])
    nbformat.validate(nbformat.from_dict(notebook))  # type: ignore[no-untyped-call]
    cells = notebook["cells"]
    assert cells[0]["outputs"] == RICH_OUTPUTS and cells[2]["outputs"] == RICH_OUTPUTS
    assert cells[1]["outputs"] == []
    assert [c["metadata"]["collab_execution"]["outputs_are_summaries"] for c in cells] == [
        False,
        False,
        False,
    ]


async def test_outputs_beyond_the_limit_are_not_kept_and_the_rebuild_says_what_was_dropped(
    make_log: LogFactory, engine: Engine
) -> None:
    big_png = "A" * 5000
    outputs: list[dict[str, Any]] = [
        {"output_type": "stream", "name": "stdout", "text": "small\n"},
        {"output_type": "display_data", "data": {"image/png": big_png}, "metadata": {}},
        {"output_type": "display_data", "data": {"text/html": "<p>after</p>"}, "metadata": {}},
    ]
    execution_log = await make_log(max_kept_output_bytes=1000)
    none_log = await make_log(max_kept_output_bytes=0)
    notebook_id = uuid.uuid4().hex
    limited = queue(execution_log, notebook_id)
    finish_with(execution_log, limited, outputs)
    unkept = queue(none_log, notebook_id)
    finish_with(none_log, unkept, outputs[:1])
    await execution_log.barrier()
    await none_log.barrier()

    _, refs = kept_rows(engine)
    png_size = len(json.dumps(outputs[1], sort_keys=True, separators=(",", ":")))
    assert [(p, sha is None, size) for e, p, sha, size in refs if e == limited][1] == (
        1,
        True,
        png_size,
    )
    notebook = await ExecutionHistory(engine).rebuild_notebook([limited, unkept])
    nbformat.validate(nbformat.from_dict(notebook))  # type: ignore[no-untyped-call]
    small, dropped, after = notebook["cells"][0]["outputs"]
    assert small == outputs[0] and after == outputs[2]  # a later, smaller output still fits
    assert dropped["output_type"] == "display_data" and list(dropped["data"]) == ["text/plain"]
    note = dropped["data"]["text/plain"]
    assert f"image/png ({len(big_png):,} characters)" in note
    assert f"({png_size:,} bytes)" in note and "max_kept_output_bytes" in note
    assert notebook["cells"][0]["metadata"]["collab_execution"]["outputs_are_summaries"]
    (stream,) = notebook["cells"][1]["outputs"]  # limit 0: the text comes from the summary
    assert stream["text"].startswith("small\n") and "max_kept_output_bytes" in stream["text"]


async def test_outputs_recorded_while_the_database_is_locked_are_kept_once(
    impatient_sqlite: tuple[Engine, Path],
) -> None:
    engine, path = impatient_sqlite
    notebook_id = uuid.uuid4().hex
    async with ExecutionLog(engine) as execution_log:
        earlier = queue(execution_log, notebook_id)
        await execution_log.barrier()
        holder = lock(path)
        finish_with(execution_log, earlier, RICH_OUTPUTS)
        during = queue(execution_log, notebook_id)
        finish_with(execution_log, during, RICH_OUTPUTS[1:])
        barrier = asyncio.create_task(execution_log.barrier())
        await wait_until(lambda: execution_log.failed_commits >= 2, timeout=TIMEOUT)
        holder.rollback()
        holder.close()
        async with asyncio.timeout(TIMEOUT):
            await barrier
    bundles, refs = kept_rows(engine)
    assert len(bundles) == len(RICH_OUTPUTS)
    assert sorted((e, p) for e, p, _, _ in refs) == sorted(
        [(earlier, p) for p in range(4)] + [(during, p) for p in range(3)]
    )
    notebook = await ExecutionHistory(engine).rebuild_notebook([earlier, during])
    assert [c["outputs"] for c in notebook["cells"]] == [RICH_OUTPUTS, RICH_OUTPUTS[1:]]


async def test_a_rebuild_takes_outputs_up_to_its_own_limit_and_names_what_it_left_out(
    make_log: LogFactory, engine: Engine
) -> None:
    execution_log = await make_log()
    notebook_id = uuid.uuid4().hex
    first, second = queue(execution_log, notebook_id), queue(execution_log, notebook_id)
    finish_with(execution_log, first, RICH_OUTPUTS)
    finish_with(execution_log, second, RICH_OUTPUTS)
    await execution_log.barrier()
    one_run = sum(len(canonical_output(o)) for o in RICH_OUTPUTS)

    history = ExecutionHistory(engine)
    notebook = await history.rebuild_notebook([second, first], max_output_bytes=one_run)
    nbformat.validate(nbformat.from_dict(notebook))  # type: ignore[no-untyped-call]
    taken, left = notebook["cells"]
    assert taken["outputs"] == RICH_OUTPUTS
    assert not taken["metadata"]["collab_execution"]["outputs_are_summaries"]
    assert left["metadata"]["collab_execution"]["outputs_are_summaries"]
    assert len(left["outputs"]) == len(RICH_OUTPUTS)
    png_note = left["outputs"][1]["data"]["text/plain"]
    assert f"image/png ({len(PNG):,} characters)" in png_note
    assert "in the execution log but was left out" in png_note
    assert left["outputs"][3]["ename"] == "E"  # an error still has its name and value
