"""The execution log: one row per cell execution, written by a single writer.

Every run request gets a row when it is queued, updated when it starts and
when it finishes. Recording never waits: ``record_*`` put the record in the
current batch (merged per execution) and return; one writer task hands each
batch to one database thread, which commits it in one transaction (group
commit), so the event loop never touches the database and a burst of
executions costs one commit, not one per execution. ``barrier()`` waits
until what was recorded before it is committed.

Each finished execution's outputs, as the document holds them, are kept too:
every output bundle once, under the SHA-256 of its canonical JSON
(``execution_outputs``, so a plot shown by a hundred runs is stored once),
and per execution the list of its outputs' hashes in order
(``execution_output_refs``). At most ``max_kept_output_bytes`` per execution
are kept; an output beyond that is listed with its size and no hash, so a
rebuilt notebook can say what was dropped.

SQLite (the default, in WAL mode) or PostgreSQL, through SQLAlchemy Core, in
the log's own tables. One server writes to one set of these tables: at
start-up, rows a crashed server left "queued" or "running" are marked
"aborted".

Queries, exports and "rebuild as notebook" are in :mod:`kernels.history`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import itertools
import json
import logging
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Self, TypeVar

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import exc as sa_exc

from .summaries import TEXT_LIMIT as TEXT_LIMIT  # re-exported: the summary is the log's
from .summaries import summarize_outputs as summarize_outputs

log = logging.getLogger(__name__)

_T = TypeVar("_T")

metadata = MetaData()

executions = Table(
    "executions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("notebook_id", String, nullable=False),
    Column("notebook_path", String, nullable=False),
    Column("cell_id", String, nullable=True),
    Column("code", String, nullable=False),
    Column("username", String, nullable=False),
    Column("kernel_id", String, nullable=True),
    Column("kernelspec", String, nullable=True),
    Column("queued_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("status", String(16), nullable=False),
    Column("execution_count", Integer, nullable=True),
    Column("error_name", String, nullable=True),
    Column("error_value", String, nullable=True),
    Column("outputs_summary", String, nullable=True),  # JSON from summarize_outputs
    Column("note", String, nullable=True),
    Index("ix_executions_queued", "queued_at", "id"),
    Index("ix_executions_notebook", "notebook_id", "queued_at"),
    Index("ix_executions_username", "username", "queued_at"),
    Index("ix_executions_status", "status"),
)

execution_outputs = Table(
    "execution_outputs",
    metadata,
    Column("sha256", String(64), primary_key=True),  # of ``output``
    Column("output", String, nullable=False),  # canonical_output() of one nbformat output
    Column("size", Integer, nullable=False),  # bytes of ``output`` (ASCII)
)

execution_output_refs = Table(
    "execution_output_refs",
    metadata,
    Column("execution_id", String(64), primary_key=True),
    Column("position", Integer, primary_key=True),  # 0, 1, ... in the cell's order
    Column("sha256", String(64), nullable=True),  # None: beyond the limit, not kept
    Column("size", Integer, nullable=False),
)

Status = Literal["queued", "running", "ok", "error", "interrupted", "aborted"]
FinalStatus = Literal["ok", "error", "interrupted", "aborted"]
STATUSES: Final = frozenset({"queued", "running", "ok", "error", "interrupted", "aborted"})
FINAL_STATUSES: Final = frozenset({"ok", "error", "interrupted", "aborted"})
UNFINISHED_STATUSES: Final = ("queued", "running")
RESTART_NOTE: Final = "server stopped before this execution finished"

MAX_KEPT_OUTPUT_BYTES: Final = 1024 * 1024
"""Default ``ExecutionLog.max_kept_output_bytes``."""

_RETRY_DELAYS: Final = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
_CHUNK_ROWS: Final = 100
"""Rows per executemany: bounds each stretch of Python work in the writer thread (which
holds the GIL the event loop needs) before the driver runs them with the GIL released."""


class ExecutionLogError(Exception):
    """Some recorded executions could not be written; the details are in the server log."""


@dataclass(slots=True)
class _Batch:
    """What was recorded between two hand-overs to the writer, merged per execution.

    ``inserts`` holds the executions queued in this batch at their latest
    state; ``starts`` and ``finishes`` the first start and the first finish
    of executions queued in an earlier batch; ``outputs`` the outputs that
    came with the first finish of an execution, of either kind. ``retrying``
    is set once a commit of this batch has failed: it may have landed all
    the same.
    """

    inserts: dict[str, dict[str, Any]] = field(default_factory=dict)
    starts: dict[str, tuple[float, str | None]] = field(default_factory=dict)
    finishes: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    barriers: list[asyncio.Future[None]] = field(default_factory=list)
    retrying: bool = False

    def has_records(self) -> bool:
        return bool(self.inserts or self.starts or self.finishes)

    def by_execution(self) -> Iterator[tuple[str, _Batch]]:
        """One small batch per execution, in order (to find a record the database refuses)."""
        for execution_id, row in self.inserts.items():
            single = _Batch(inserts={execution_id: row}, retrying=True)
            if execution_id in self.outputs:
                single.outputs[execution_id] = self.outputs[execution_id]
            yield execution_id, single
        for execution_id in dict.fromkeys([*self.starts, *self.finishes]):
            single = _Batch(retrying=True)
            if execution_id in self.starts:
                single.starts[execution_id] = self.starts[execution_id]
            if execution_id in self.finishes:
                single.finishes[execution_id] = self.finishes[execution_id]
            if execution_id in self.outputs:
                single.outputs[execution_id] = self.outputs[execution_id]
            yield execution_id, single


class ExecutionLog:
    """Records every execution, from the event loop, without waiting for the database.

    Use ``async with ExecutionLog(engine) as execution_log:`` or
    ``start()``/``stop()``. ``start`` creates the tables and marks the rows a
    previous server left unfinished as "aborted" (``recovered`` says how
    many). ``stop`` commits everything recorded before it. All methods must be
    called from the event loop that started the log; ``record_*`` raise
    ``RuntimeError`` before ``start`` and after ``stop``.

    Updates are idempotent and keep their order: the first ``record_started``
    of an execution wins, the first ``record_finished`` wins (a finished row
    is never changed again), and a start arriving after the finish fills
    ``started_at`` without changing the status. This holds whether the three
    calls land in one commit or in three: records are merged per execution
    as they arrive (an execution queued, started and finished before the
    writer takes the batch is one INSERT), and the UPDATEs for executions
    queued earlier carry the same rules in their WHERE clauses. Updates for an
    id that was never queued change nothing.

    If a commit fails for a reason that may pass (database locked, connection
    lost), it is retried with back-off, with whatever was recorded meanwhile,
    so nothing is lost; while that lasts, ``barrier()`` waits. If the
    database refuses a record (a value it cannot store), that execution is
    dropped and logged, everything else is written, and the barriers waiting
    on it raise ``ExecutionLogError``.

    Args:
        engine: where the log's tables are (see ``collab_server.database.open_engine``).
        commit_delay: seconds the writer lets a batch grow before committing it
            (a barrier or ``stop()`` cuts it short). Nobody waits on a record,
            so this costs no latency and spares thousands of tiny commits
            (and the writer thread's share of the GIL) under load.
        max_kept_output_bytes: bytes of outputs (their canonical JSON) kept per
            execution, for rebuilding notebooks. Outputs are taken in order;
            one that does not fit in what is left is not kept (a later, smaller
            one may be), and is recorded with its size. 0 keeps none.
    """

    def __init__(
        self,
        engine: Engine,
        commit_delay: float = 0.005,
        max_kept_output_bytes: int = MAX_KEPT_OUTPUT_BYTES,
    ) -> None:
        if max_kept_output_bytes < 0:
            raise ValueError("max_kept_output_bytes cannot be negative")
        self.engine = engine
        self.commit_delay = commit_delay
        self.max_kept_output_bytes = max_kept_output_bytes
        self.recovered = 0
        """Rows marked "aborted" at start-up because a previous server left them unfinished."""
        self.commits = 0
        """Transactions the writer committed (each one holds one or more batches)."""
        self.failed_commits = 0
        """Commits that failed and were retried or split up."""
        self.dropped = 0
        """Executions the database refused (each one is in the server log)."""
        self.finished: collections.Counter[str] = collections.Counter()
        """``record_finished`` calls since start, by final status (the runner makes one a run)."""
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="execution-log")
        self._last_ns = 0
        self._batch = _Batch()
        self._wakeup = asyncio.Event()
        self._flush = asyncio.Event()  # a barrier or stop() cuts the commit delay short
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # ---- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Create the tables, mark unfinished rows of a previous run aborted, start the writer."""
        if self._task is not None or self._stopping:
            raise RuntimeError("an execution log starts once")
        loop = asyncio.get_running_loop()
        self.recovered = await loop.run_in_executor(self._executor, self._prepare)
        if self.recovered:
            log.warning(
                "marked %d executions left unfinished by a previous server as aborted",
                self.recovered,
            )
        self._task = asyncio.create_task(self._writer(), name="execution-log-writer")

    async def stop(self) -> None:
        """Commit everything recorded so far, then stop the writer and its thread.

        If the database cannot be written at that point, one more attempt is
        made and what it could not commit is logged as lost, rather than
        waited for forever.
        """
        self._stopping = True
        self._wakeup.set()
        self._flush.set()
        try:
            if self._task is not None:
                await self._task
        finally:
            await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _prepare(self) -> int:
        metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            result = conn.execute(
                update(executions)
                .where(executions.c.status.in_(UNFINISHED_STATUSES))
                .values(status="aborted", note=RESTART_NOTE)
            )
            return result.rowcount

    # ---- recording (event loop, never waits) --------------------------------------------

    def record_queued(
        self,
        *,
        notebook_id: str,
        notebook_path: str,
        cell_id: str | None,
        code: str,
        username: str,
        kernelspec: str | None = None,
        kernel_id: str | None = None,
        queued_at: float | None = None,
    ) -> str:
        """Record a run request as it is queued; return the new execution's id.

        ``username`` must be the authenticated user who asked (never a name
        the client sent); ``code`` is the source exactly as it will run.
        ``queued_at`` (seconds since the epoch) defaults to now. The id (32
        hex digits) is known at once, for ``record_started`` and
        ``record_finished``; ids increase in the order they are made, so
        executions queued together (same ``queued_at``) keep their order.
        """
        self._check_running()
        execution_id = self._new_id()
        self._batch.inserts[execution_id] = {
            "id": execution_id,
            "notebook_id": notebook_id,
            "notebook_path": notebook_path,
            "cell_id": cell_id,
            "code": code,
            "username": username,
            "kernel_id": kernel_id,
            "kernelspec": kernelspec,
            "queued_at": time.time() if queued_at is None else queued_at,
            "started_at": None,
            "finished_at": None,
            "status": "queued",
            "execution_count": None,
            "error_name": None,
            "error_value": None,
            "outputs_summary": None,
            "note": None,
        }
        self._wakeup.set()
        return execution_id

    def record_started(self, execution_id: str, started_at: float, kernel_id: str | None) -> None:
        """Record that kernel ``kernel_id`` started running the execution at ``started_at``."""
        self._check_running()
        batch = self._batch
        row = batch.inserts.get(execution_id)
        if row is None:
            batch.starts.setdefault(execution_id, (started_at, kernel_id))
        elif row["started_at"] is None:
            row["started_at"] = started_at
            if kernel_id is not None:
                row["kernel_id"] = kernel_id
            if row["status"] == "queued":
                row["status"] = "running"
        self._wakeup.set()

    def record_finished(
        self,
        execution_id: str,
        finished_at: float,
        status: FinalStatus,
        execution_count: int | None = None,
        error_name: str | None = None,
        error_value: str | None = None,
        outputs_summary: Mapping[str, Any] | None = None,
        outputs: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Record how the execution ended.

        ``status`` is "ok", "error", "interrupted", or "aborted" (the kernel
        died or the server stopped before it ended; ValueError otherwise).
        ``outputs_summary`` is what :func:`summarize_outputs` returns for
        ``outputs``, the cell's nbformat outputs as the document holds them
        (kept up to ``max_kept_output_bytes``). Both are serialized in the
        writer thread, so do not change them afterwards.
        """
        if status not in FINAL_STATUSES:
            raise ValueError(f"not a final execution status: {status!r}")
        self._check_running()
        self.finished[status] += 1
        batch = self._batch
        row = batch.inserts.get(execution_id)
        if row is None:
            if execution_id in batch.finishes:
                return
            batch.finishes[execution_id] = {
                "finished_at": finished_at,
                "status": status,
                "execution_count": execution_count,
                "error_name": error_name,
                "error_value": error_value,
                "outputs_summary": outputs_summary,
            }
        elif row["status"] in UNFINISHED_STATUSES:
            row["finished_at"] = finished_at
            row["status"] = status
            row["execution_count"] = execution_count
            row["error_name"] = error_name
            row["error_value"] = error_value
            row["outputs_summary"] = outputs_summary
        else:
            return
        if outputs:
            batch.outputs[execution_id] = outputs
        self._wakeup.set()

    async def barrier(self) -> None:
        """Return once everything recorded before this call is committed.

        Raises ExecutionLogError if some of it was refused by the database
        (or lost because the log stopped while the database was unreachable).
        """
        self._check_running()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch.barriers.append(future)
        self._wakeup.set()
        self._flush.set()
        await future

    def _new_id(self) -> str:
        """Nanoseconds since the epoch (strictly increasing here), then 64 random bits."""
        self._last_ns = max(time.time_ns(), self._last_ns + 1)
        return f"{self._last_ns:016x}{uuid.uuid4().hex[:16]}"

    def _check_running(self) -> None:
        if self._task is None:
            raise RuntimeError("execution log is not started")
        if self._stopping:
            raise RuntimeError("execution log is stopped")

    # ---- the writer ------------------------------------------------------------

    async def _writer(self) -> None:
        """Hand each batch to the database thread; retry with back-off if the commit may pass.

        Batches that could not be committed yet stay in ``pending`` and are
        written again, before newer ones and in the same transaction.
        """
        loop = asyncio.get_running_loop()
        pending: list[_Batch] = []
        failures = 0
        while True:
            if not self._stopping:
                await self._wakeup.wait()
                await self._linger()
            self._wakeup.clear()
            batch, self._batch = self._batch, _Batch()
            if batch.has_records() or batch.barriers:
                pending.append(batch)
            if not any(b.has_records() for b in pending):
                _resolve(pending, None)
                pending = []
                if self._stopping:
                    return
                continue
            try:
                dropped = await loop.run_in_executor(self._executor, self._write, pending)
            except Exception as e:  # only errors that may pass get here (see _write)
                self.failed_commits += 1
                for b in pending:
                    b.retrying = True
                if self._stopping:
                    pending.append(self._batch)  # recorded during the attempt
                    lost = sum(len(b.inserts) + len(b.starts) + len(b.finishes) for b in pending)
                    log.exception(
                        "execution log stopping: %d records could not be committed and are lost",
                        lost,
                    )
                    _resolve(pending, ExecutionLogError(f"{lost} records not committed: {e}"))
                    return
                delay = _RETRY_DELAYS[min(failures, len(_RETRY_DELAYS) - 1)]
                failures += 1
                log.warning(
                    "execution log commit failed (%s); retrying in %.2f s",
                    e,
                    delay,
                    exc_info=failures == 1,
                )
                await self._sleep_unless_stopping(delay)
                self._wakeup.set()
                continue
            failures = 0
            self.commits += 1
            if dropped is None:
                _resolve(pending, None)
            else:  # a barrier fails if anything recorded before it was dropped
                self.failed_commits += 1
                for batch, count in zip(pending, itertools.accumulate(dropped)):
                    error = ExecutionLogError(f"{count} executions could not be recorded")
                    _resolve([batch], error if count else None)
                self.dropped += sum(dropped)
            pending = []

    async def _linger(self) -> None:
        """Let a batch grow for ``commit_delay`` seconds, unless a barrier or stop() is waiting."""
        if self.commit_delay <= 0 or self._batch.barriers or self._stopping:
            return
        self._flush.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.commit_delay):
                await self._flush.wait()

    async def _sleep_unless_stopping(self, delay: float) -> None:
        deadline = time.monotonic() + delay
        while not self._stopping and (remaining := deadline - time.monotonic()) > 0:
            self._wakeup.clear()  # new records wait for the retry; stop() does not
            try:
                async with asyncio.timeout(remaining):
                    await self._wakeup.wait()
            except TimeoutError:
                return

    def _write(self, batches: list[_Batch]) -> list[int] | None:
        """Commit ``batches`` in one transaction (writer thread).

        Returns None, or how many executions of each batch were dropped.
        Raises the errors that may pass (the writer retries). Any other
        error splits the batches up: each execution is committed on its own,
        in order, and those the database refuses are logged and dropped.
        """
        try:
            with self.engine.begin() as conn:
                for batch in batches:
                    _apply(conn, batch, self.max_kept_output_bytes)
            return None
        except _TRANSIENT_ERRORS:
            raise
        except Exception:
            log.exception("execution log commit failed; writing each execution on its own")
        dropped = [0] * len(batches)
        for i, batch in enumerate(batches):
            for execution_id, single in batch.by_execution():
                try:
                    with self.engine.begin() as conn:
                        _apply(conn, single, self.max_kept_output_bytes)
                except _TRANSIENT_ERRORS:
                    raise  # the batches are retried whole, idempotently
                except Exception:
                    log.exception("execution %s could not be recorded: dropped", execution_id)
                    dropped[i] += 1
        return dropped


_TRANSIENT_ERRORS: Final = (
    sa_exc.OperationalError,  # SQLite "database is locked", server gone, ...
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # no connection from the pool
)


def _resolve(batches: list[_Batch], error: Exception | None) -> None:
    for batch in batches:
        for future in batch.barriers:
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)


# ---- applying a batch (writer thread) ------------------------------------------------

_start_update = (
    update(executions)
    .where(executions.c.id == bindparam("b_id"), executions.c.started_at.is_(None))
    .values(
        started_at=bindparam("b_started_at"),
        kernel_id=func.coalesce(bindparam("b_kernel_id", type_=String), executions.c.kernel_id),
        status=case((executions.c.status == "queued", "running"), else_=executions.c.status),
    )
)

_finish_update = (
    update(executions)
    .where(
        executions.c.id == bindparam("b_id"),
        or_(*(executions.c.status == s for s in UNFINISHED_STATUSES)),  # IN cannot executemany
    )
    .values(
        finished_at=bindparam("b_finished_at"),
        status=bindparam("b_status"),
        execution_count=bindparam("b_execution_count"),
        error_name=bindparam("b_error_name"),
        error_value=bindparam("b_error_value"),
        outputs_summary=bindparam("b_outputs_summary"),
    )
)

_FINISH_FIELDS: Final = (
    "finished_at",
    "status",
    "execution_count",
    "error_name",
    "error_value",
    "outputs_summary",
)


def _apply(conn: Connection, batch: _Batch, max_kept_output_bytes: int) -> None:
    """Write one batch: an INSERT per new row, guarded UPDATEs for the others, then outputs.

    A batch being retried may have been committed already: its rows that
    exist are not inserted again; their start and finish are applied as
    guarded UPDATEs instead, which change nothing if they are already there.
    Outputs are written with the finish that wins: for a new row, or for a
    row still unfinished before this batch's UPDATEs (so never twice).
    Parameters are built chunk by chunk, so that no long stretch of Python
    work keeps the GIL from the event loop.
    """
    rows = list(batch.inserts.values())
    starts: list[tuple[str, float, str | None]] = [(i, *s) for i, s in batch.starts.items()]
    finishes: list[tuple[str, Mapping[str, Any]]] = list(batch.finishes.items())
    if batch.retrying and rows:
        existing: set[str] = set()
        for chunk in _chunks(rows):
            ids = [row["id"] for row in chunk]
            query = select(executions.c.id).where(executions.c.id.in_(ids))
            existing.update(conn.execute(query).scalars())
        for row in rows:
            if row["id"] in existing and row["started_at"] is not None:
                starts.append((row["id"], row["started_at"], row["kernel_id"]))
            if row["id"] in existing and row["status"] in FINAL_STATUSES:
                finishes.append((row["id"], row))
        rows = [row for row in rows if row["id"] not in existing]
    with_outputs = [row["id"] for row in rows if row["id"] in batch.outputs]
    with_outputs += _unfinished(conn, [i for i, _ in finishes if i in batch.outputs])
    for some_rows in _chunks(rows):
        conn.execute(insert(executions), [_serialized(row) for row in some_rows])
    for some_starts in _chunks(starts):
        conn.execute(_start_update, [_start_params(*start) for start in some_starts])
    for some_finishes in _chunks(finishes):
        conn.execute(_finish_update, [_finish_params(*finish) for finish in some_finishes])
    for some_ids in _chunks(with_outputs):
        _write_outputs(conn, {i: batch.outputs[i] for i in some_ids}, max_kept_output_bytes)


def _unfinished(conn: Connection, execution_ids: list[str]) -> list[str]:
    """Which of these executions the log holds as queued or running, in this order."""
    found: set[str] = set()
    for chunk in _chunks(execution_ids):
        query = select(executions.c.id).where(
            executions.c.id.in_(chunk), executions.c.status.in_(UNFINISHED_STATUSES)
        )
        found.update(conn.execute(query).scalars())
    return [i for i in execution_ids if i in found]


def _write_outputs(
    conn: Connection, outputs: Mapping[str, Sequence[Mapping[str, Any]]], limit: int
) -> None:
    """Store each execution's outputs by hash (each bundle once) and its list of hashes."""
    refs: list[dict[str, Any]] = []
    bundles: dict[str, dict[str, Any]] = {}
    for execution_id, cell_outputs in outputs.items():
        room = limit
        for position, output in enumerate(cell_outputs):
            try:
                encoded = canonical_output(output)
            except (TypeError, ValueError):
                log.exception("output %d of execution %s is not JSON", position, execution_id)
                encoded = b""
            size = len(encoded)
            sha: str | None = None
            if encoded and size <= room:
                room -= size
                sha = hashlib.sha256(encoded).hexdigest()
                bundles[sha] = {"sha256": sha, "output": encoded.decode("ascii"), "size": size}
            refs.append(
                {"execution_id": execution_id, "position": position, "sha256": sha, "size": size}
            )
    stored: set[str] = set()
    for chunk in _chunks(list(bundles)):
        query = select(execution_outputs.c.sha256).where(execution_outputs.c.sha256.in_(chunk))
        stored.update(conn.execute(query).scalars())
    for some in _chunks([bundle for sha, bundle in bundles.items() if sha not in stored]):
        conn.execute(insert(execution_outputs), some)
    for some_refs in _chunks(refs):
        conn.execute(insert(execution_output_refs), some_refs)


def canonical_output(output: Mapping[str, Any]) -> bytes:
    """One nbformat output as canonical JSON: sorted keys, no spaces, ASCII (what is hashed).

    Raises TypeError or ValueError for what JSON cannot hold.
    """
    text = json.dumps(output, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.encode("ascii")


def _start_params(execution_id: str, started_at: float, kernel_id: str | None) -> dict[str, Any]:
    return {"b_id": execution_id, "b_started_at": started_at, "b_kernel_id": kernel_id}


def _finish_params(execution_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
    params = {f"b_{name}": values[name] for name in _FINISH_FIELDS}
    params["b_id"] = execution_id
    params["b_outputs_summary"] = _to_json(values["outputs_summary"])
    return params


def _serialized(row: dict[str, Any]) -> dict[str, Any]:
    summary = row["outputs_summary"]
    return row if summary is None else {**row, "outputs_summary": _to_json(summary)}


def _to_json(summary: Mapping[str, Any] | None) -> str | None:
    return None if summary is None else json.dumps(summary, ensure_ascii=False)


def _chunks(items: list[_T]) -> Iterator[list[_T]]:
    for i in range(0, len(items), _CHUNK_ROWS):
        yield items[i : i + _CHUNK_ROWS]

