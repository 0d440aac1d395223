"""Server-side execution: run a notebook's cells on its kernel, into the shared document.

One :class:`Executor` per notebook room. It queues run requests FIFO across
all users, runs them one at a time on the notebook's kernel, and writes
everything into the room's document, so every collaborator sees it and it
survives every browser closing. The room stores and broadcasts those writes
like any other transaction (credited to no client).

The document contract (for the browser front end)
-------------------------------------------------

Cells follow jupyter-ydoc's ``YNotebook`` schema, so JupyterLab-style
clients render them and ``YNotebook.get()`` gives valid nbformat:

* ``cells[i]["outputs"]``: an ``Array`` of ``Map``s, one per nbformat output;
  a stream output's ``"text"`` is a ``Text`` that grows as output arrives
  (consecutive text of one stream is one output). Cleared when the cell
  *starts* running, not when it is queued. Outputs beyond the cap end with
  one ``display_data`` note whose ``metadata.collab_server.truncated_bytes``
  says how much was not shown.
* ``cells[i]["execution_count"]``: ``None`` while running, then the count.
* ``cells[i]["execution_state"]``: ``"running"`` or ``"idle"`` (JupyterLab's
  shared busy marker; ``YNotebook.get()`` leaves it out of the .ipynb).

Three top-level maps, with plain JSON values (times are seconds since the
epoch, as floats):

* ``executions``: cell id -> ``{"state": "queued"|"running"|"idle", "by":
  username, "execution_id", "queued_at", "started_at", "finished_at",
  "status": None|"ok"|"error"|"interrupted"|"aborted", "code"}``. The entry
  describes the cell's running run, else its oldest queued one, else its
  last finished one. ``code`` is the source that produced the outputs the
  cell shows now (None if not run on this server): a cell whose source
  differs is stale.
* ``kernel``: ``{"status": "idle"|"busy"|"starting"|"restarting"|"dead"|None,
  "name": kernelspec name, "message": text for people (who interrupted or
  restarted it, that it died), "by": username or None}``. ``None`` (or no
  map at all) means the notebook has no kernel and the next run starts one:
  after a server restart, or once an idle kernel was culled
  (:func:`kernels.running.write_no_kernel`); the page shows "no kernel".
* ``input_requests``: execution id -> ``{"cell_id", "prompt", "password",
  "for": username}`` while the kernel waits for ``input()``; only that user
  may answer (:meth:`Executor.answer_input`); removed when answered or when
  the execution ends.

Semantics
---------

* An error (or an interrupt) stops the rest of *its own* run request, like
  Jupyter's stop-on-error in "Run all": the later cells of that request end
  "aborted" without running and keep their outputs. Cells queued by other
  requests (other users, or another Shift+Enter) still run: one person's
  error must not cancel another's work.
* ``restart`` and ``shutdown`` end the running and queued cells as "aborted"
  (outputs kept, as Jupyter does). A kernel *death* (:meth:`kernel_died`,
  or noticed here when the kernel stops answering and its handle says it
  is not alive) gives every running and queued cell an error output
  ("KernelDied"), logs them "aborted", and restarts the kernel.
* Output is batched: at most one document transaction per ``flush_interval``
  (50 ms) while a cell streams, besides the start and end of each cell.

Everything runs on the room's event loop. While an Executor is open it is
the only reader of its kernel client's channels.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Self

import zmq
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_ydoc import YNotebook

from .errors import (
    KernelUnavailable,
    NotACodeCell,
    NotYourInputRequest,
    UnknownCell,
    UnknownInputRequest,
)
from .log import summarize_outputs
from .outputs import OUTPUT_TYPES, CellOutputs, IopubMessage, NotebookWriter, decode_iopub

log = logging.getLogger(__name__)

FinalStatus = Literal["ok", "error", "interrupted", "aborted"]
KernelState = Literal["idle", "busy", "starting", "restarting", "dead"]


# ---- what the Executor depends on ----------------------------------------------------


class KernelHandle(Protocol):
    """The notebook's kernel, as the pool provides it.

    ``client`` is a started ``AsyncKernelClient`` (shell, iopub, stdin);
    it is read again after ``restart``, which may replace it. ``restart``
    must work on a dead kernel too (it gives it a new process).
    """

    @property
    def id(self) -> str: ...

    @property
    def kernel_name(self) -> str: ...

    @property
    def client(self) -> AsyncKernelClient: ...

    async def is_alive(self) -> bool: ...

    async def interrupt(self) -> None: ...

    async def restart(self) -> None: ...

    async def shutdown(self) -> None: ...

    def set_busy(self, busy: bool) -> None:
        """Called with True when a cell starts, False when nothing is left to run."""


class ExecutionSink(Protocol):
    """Where executions are recorded (:class:`kernels.log.ExecutionLog`); calls never wait."""

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
    ) -> str: ...

    def record_started(
        self, execution_id: str, started_at: float, kernel_id: str | None
    ) -> None: ...

    def record_finished(
        self,
        execution_id: str,
        finished_at: float,
        status: FinalStatus,
        execution_count: int | None = None,
        error_name: str | None = None,
        error_value: str | None = None,
        outputs_summary: Mapping[str, Any] | None = None,
    ) -> None: ...


Summarize = Callable[[Sequence[Mapping[str, Any]]], Mapping[str, Any]]


# ---- one run of one cell ------------------------------------------------------------------


@dataclass(eq=False)
class _Batch:
    """The cells of one run request; an error stops the rest of them."""


@dataclass(eq=False)
class _Run:
    id: str
    cell_id: str
    code: str
    username: str
    batch: _Batch
    queued_at: float
    state: Literal["queued", "running", "idle"] = "queued"
    started_at: float | None = None
    finished_at: float | None = None
    status: FinalStatus | None = None
    msg_id: str | None = None
    outputs: CellOutputs | None = None
    reply: dict[str, Any] | None = None
    idle: bool = False
    output_seen: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def entry(self, code: str | None) -> dict[str, Any]:
        return {
            "state": self.state,
            "by": self.username,
            "execution_id": self.id,
            "queued_at": self.queued_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "status": self.status,
            "code": code,
        }


@dataclass
class _InputRequest:
    run: _Run
    prompt: str
    password: bool


# ---- the executor -----------------------------------------------------------------------------


class Executor:
    """Runs one notebook's cells on its kernel and writes the results into its document.

    Use ``async with Executor(...) as executor:`` or ``start()``/``close()``.
    ``start`` waits until the kernel answers and resets what a previous
    server left "running" in the document; ``close`` ends what is queued or
    running as "aborted" (the kernel itself belongs to the pool and is left
    running) and stops every task the executor started. Call everything
    from the room's event loop; ``username`` arguments must be the
    authenticated user, never a name a client sent.
    """

    def __init__(
        self,
        notebook: YNotebook,
        kernel: KernelHandle,
        sink: ExecutionSink,
        *,
        notebook_id: str,
        notebook_path: str,
        max_output_bytes: int = 1024 * 1024,
        flush_interval: float = 0.05,
        liveness_interval: float = 1.0,
        ready_timeout: float = 60.0,
        summarize: Summarize = summarize_outputs,
    ) -> None:
        self.notebook_id = notebook_id
        self.notebook_path = notebook_path
        """Recorded with each execution; the web layer updates it when the file moves."""
        self._notebook = notebook
        self._writer = NotebookWriter(notebook, flush_interval)
        self._kernel = kernel
        self._sink = sink
        self._summarize = summarize
        self.max_output_bytes = max_output_bytes
        self._liveness_interval = liveness_interval
        self._ready_timeout = ready_timeout

        self._queue: deque[_Run] = deque()
        self._running: _Run | None = None
        self._interrupted_run: _Run | None = None
        self._last_finished: dict[str, _Run] = {}
        self._produced_by: dict[str, str | None] = {}
        self._cells: dict[str, CellOutputs] = {}  # each cell's latest outputs writer
        self._runs_by_msg: dict[str, _Run] = {}
        self._outputs_by_msg: dict[str, CellOutputs] = {}
        self._inputs: dict[str, _InputRequest] = {}
        self._probes: dict[str, asyncio.Future[dict[str, Any]]] = {}

        self._client: AsyncKernelClient | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._reviving: asyncio.Task[None] | None = None
        self._queued = asyncio.Event()
        self._ready = asyncio.Event()
        self._lifecycle = asyncio.Lock()
        self._kernel_state: KernelState = "starting"
        self._kernel_message = ""
        self._kernel_by: str | None = None
        self._started = False
        self._shut_down = False
        self._closing = False
        self._closed = asyncio.Event()
        self._last_message_at = 0.0

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Attach to the kernel, wait until it answers, and start running requests.

        Raises KernelUnavailable if the kernel does not answer within ``ready_timeout``.
        """
        if self._started:
            raise RuntimeError("an Executor starts once")
        self._started = True
        self._produced_by.update(self._writer.reset_leftovers())
        self._attach(self._kernel.client)
        try:
            async with asyncio.timeout(self._ready_timeout):
                await self._probe()
        except TimeoutError as e:
            self._set_kernel("dead", "The kernel does not answer.")
            raise KernelUnavailable(f"the kernel of {self.notebook_id!r} does not answer") from e
        self._set_kernel("idle", "")
        self._ready.set()
        self._worker = self._spawn(self._work(), "executor-worker")

    async def close(self) -> None:
        """End queued and running cells as "aborted", stop every task; idempotent."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        try:
            self._abort_all("close")
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._writer.flush()
        finally:
            self._writer.close()
            self._client = None
            self._closed.set()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def busy(self) -> bool:
        """Whether a cell is running or queued (the room should stay open meanwhile)."""
        return self._running is not None or bool(self._queue)

    @property
    def kernel_status(self) -> KernelState:
        return self._kernel_state

    # ---- the API ----------------------------------------------------------------------------

    def run_cells(self, cell_ids: Sequence[str], username: str) -> list[str]:
        """Queue the code cells ``cell_ids`` (in this order) for ``username``; return execution ids.

        Each cell's code is its source now. Cells run FIFO with everyone's
        requests; an error stops the rest of this request only.

        Raises:
            UnknownCell, NotACodeCell: nothing was queued.
            KernelUnavailable: the kernel was shut down, is dead, or the executor is closed.
        """
        self._check_open()
        if self._kernel_state == "dead":
            raise KernelUnavailable("the kernel is not running; restart it")
        sources = self._sources(cell_ids)
        batch = _Batch()
        now = time.time()
        runs: list[_Run] = []
        for cell_id, code in zip(cell_ids, sources, strict=True):
            execution_id = self._sink.record_queued(
                notebook_id=self.notebook_id,
                notebook_path=self.notebook_path,
                cell_id=cell_id,
                code=code,
                username=username,
                kernelspec=self._kernel.kernel_name,
                kernel_id=self._kernel.id,
                queued_at=now,
            )
            runs.append(_Run(execution_id, cell_id, code, username, batch, now))
        self._queue.extend(runs)
        for run in runs:
            self._publish(run.cell_id)
        self._writer.flush()
        self._queued.set()
        return [run.id for run in runs]

    async def interrupt(self, username: str) -> None:
        """Interrupt the running cell (it ends "interrupted"; the rest of its request is aborted)."""
        self._check_open()
        if self._kernel_state not in ("idle", "busy"):
            raise KernelUnavailable(f"the kernel is {self._kernel_state}")
        self._interrupted_run = self._running
        await self._kernel.interrupt()
        self._set_kernel(self._kernel_state, f"{username} interrupted the kernel.", username)

    async def restart(self, username: str) -> None:
        """Restart the kernel; running and queued cells end "aborted".

        Raises KernelUnavailable if it was shut down or does not come back.
        """
        self._check_open()
        async with self._lifecycle:
            self._check_open()
            self._ready.clear()
            self._set_kernel("restarting", f"{username} is restarting the kernel.", username)
            self._abort_all("restart")
            try:
                await self._restart_kernel()
            except Exception as e:
                log.exception("kernel of notebook %s could not be restarted", self.notebook_id)
                self._set_kernel("dead", "The kernel could not be restarted.", username)
                raise KernelUnavailable("the kernel could not be restarted") from e
            self._set_kernel("idle", f"{username} restarted the kernel.", username)
            self._ready.set()

    async def shutdown(self, username: str) -> None:
        """Shut the kernel down; running and queued cells end "aborted"; later runs are refused."""
        self._check_open()
        async with self._lifecycle:
            if self._shut_down:
                return
            self._shut_down = True
            self._ready.clear()
            self._abort_all("shutdown")
            self._set_kernel("dead", f"{username} shut the kernel down.", username)
            self._detach()
            await self._kernel.shutdown()

    def answer_input(self, username: str, execution_id: str, value: str) -> None:
        """Send ``value`` to the ``input()`` the execution waits on.

        Raises:
            UnknownInputRequest: that execution is not waiting for input.
            NotYourInputRequest: ``username`` did not run that cell (nothing is sent).
        """
        request = self._inputs.get(execution_id)
        if request is None or self._client is None:
            raise UnknownInputRequest(f"execution {execution_id!r} is not waiting for input")
        if request.run.username != username:
            raise NotYourInputRequest(
                f"only {request.run.username} may answer the input of execution {execution_id!r}"
            )
        del self._inputs[execution_id]
        self._writer.set_input_request(execution_id, None)
        self._client.input(value)
        outputs = request.run.outputs
        if outputs is not None:  # echo it, as JupyterLab does
            shown = "········" if request.password else value
            outputs.add_stream("stdout", f"{request.prompt}{shown}\n")
            self._writer.set_outputs(outputs)
        self._writer.flush()

    def kernel_died(self) -> None:
        """The kernel process died: fail what is queued and running, then restart it.

        Every running and queued cell gets a "KernelDied" error output and is
        logged "aborted"; the kernel status is "restarting" until the new
        process answers ("idle"), or "dead" if it cannot be restarted.
        Requests made meanwhile wait for it. Idempotent while restarting.
        """
        if self._closing or self._shut_down or not self._started or self._reviving is not None:
            return
        if self._lifecycle.locked():  # a restart or shutdown is replacing the process anyway
            return
        log.warning("kernel of notebook %s died; restarting it", self.notebook_id)
        self._ready.clear()
        self._set_kernel("restarting", "The kernel died; restarting it.", flush=False)
        self._abort_all("died")
        self._reviving = self._spawn(self._revive(), "executor-revive")

    # ---- running the queue ---------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            run = await self._next_run()
            try:
                await self._execute(run)
            except Exception:
                log.exception(
                    "running cell %s of notebook %s failed", run.cell_id, self.notebook_id
                )
                if run.state != "idle":
                    self._abort(run, "ExecutionFailed", "The server could not run this cell.")
                    self._writer.flush()

    async def _next_run(self) -> _Run:
        while True:
            if self._queue and self._ready.is_set():
                return self._queue.popleft()
            if not self._queue:
                self._queued.clear()
                await self._queued.wait()
            else:
                await self._ready.wait()

    async def _execute(self, run: _Run) -> None:
        if self._kernel.client is not self._client:
            self._attach(self._kernel.client)
        client = self._client
        assert client is not None
        self._running = run
        run.state = "running"
        run.started_at = time.time()
        self._start_outputs(run)
        self._record(self._sink.record_started, run.id, run.started_at, self._kernel.id)
        self._kernel.set_busy(True)
        msg_id = str(
            client.execute(
                run.code, silent=False, store_history=True, allow_stdin=True, stop_on_error=False
            )
        )
        run.msg_id = msg_id
        self._runs_by_msg[msg_id] = run
        assert run.outputs is not None
        self._outputs_by_msg[msg_id] = run.outputs
        self._writer.set_cell(run.cell_id, execution_state="running", execution_count=None)
        self._publish(run.cell_id)
        self._writer.flush()
        await self._wait(run)
        if run.status is not None:  # aborted meanwhile
            return
        reply = run.reply or {}
        count = reply.get("execution_count")
        count = int(count) if isinstance(count, int | float) else None
        if reply.get("status") == "ok":
            self._finish(run, "ok", count)
            return
        if reply.get("status") == "error":
            ename, evalue = str(reply.get("ename", "")), str(reply.get("evalue", ""))
            status: FinalStatus = "interrupted" if ename == "KeyboardInterrupt" else "error"
            self._finish(run, status, count, ename, evalue)
        else:
            self._finish(run, "aborted", count)
        self._abort_batch(run.batch)

    async def _wait(self, run: _Run) -> None:
        """Wait for the reply and the kernel's idle status; notice a kernel that went away."""
        loop = asyncio.get_running_loop()
        while not run.done.is_set():
            try:
                async with asyncio.timeout(self._liveness_interval):
                    await run.done.wait()
                return
            except TimeoutError:
                pass
            quiet = loop.time() - self._last_message_at
            if quiet < self._liveness_interval:
                continue
            if run.reply is not None:
                # The reply came on shell; iopub (outputs, then idle) may lag behind
                # on a loaded machine. Give up on the idle status only after a long silence.
                if quiet > 10 * self._liveness_interval:
                    log.warning("no idle status for cell %s; finishing it", run.cell_id)
                    return
                continue
            if run.idle:
                # ipykernel loses the reply of a cell interrupted before its code
                # started: the kernel went idle and no reply will come.
                log.warning("kernel idle without a reply for cell %s; finishing it", run.cell_id)
                if self._interrupted_run is run:
                    run.reply = {"status": "error", "ename": "KeyboardInterrupt", "evalue": ""}
                else:
                    run.reply = {"status": "aborted"}
                return
            readers_ok = bool(self._readers) and not any(t.done() for t in self._readers)
            if readers_ok and await self._kernel.is_alive():
                continue
            if not run.done.is_set():
                self.kernel_died()
            return

    def _start_outputs(self, run: _Run) -> None:
        """Give the cell a fresh outputs writer, clearing what it shows."""
        old = self._cells.get(run.cell_id)
        if old is not None:
            self._writer.discard_outputs(old)
            self._outputs_by_msg = {k: v for k, v in self._outputs_by_msg.items() if v is not old}
        outputs = CellOutputs(run.cell_id, run.id, self.max_output_bytes)
        outputs.clear()
        run.outputs = outputs
        self._cells[run.cell_id] = outputs
        self._writer.set_outputs(outputs)
        self._produced_by[run.cell_id] = run.code

    def _finish(
        self,
        run: _Run,
        status: FinalStatus,
        execution_count: int | None = None,
        error_name: str | None = None,
        error_value: str | None = None,
        flush: bool = True,
    ) -> None:
        run.state = "idle"
        run.status = status
        run.finished_at = time.time()
        run.done.set()
        if run.msg_id is not None:
            self._runs_by_msg.pop(run.msg_id, None)
        if self._running is run:
            self._running = None
        if self._inputs.pop(run.id, None) is not None:
            self._writer.set_input_request(run.id, None)
        if run.outputs is not None:
            self._writer.set_cell(
                run.cell_id, execution_state="idle", execution_count=execution_count
            )
        self._last_finished[run.cell_id] = run
        self._publish(run.cell_id)
        if flush or run.outputs is not None:
            self._writer.flush()  # the summary is read from the document
        summary = self._summary(run.cell_id) if run.outputs is not None else None
        self._record(
            self._sink.record_finished,
            run.id,
            run.finished_at,
            status,
            execution_count,
            error_name,
            error_value,
            summary,
        )
        if self._running is None and not self._queue:
            self._kernel.set_busy(False)

    def _abort(self, run: _Run, ename: str | None = None, evalue: str = "") -> None:
        """End ``run`` as "aborted", with an error output when ``ename`` is given."""
        if run.msg_id is not None:
            self._outputs_by_msg.pop(run.msg_id, None)
        if ename is not None:
            if run.outputs is None:
                self._start_outputs(run)
            assert run.outputs is not None
            run.outputs.add_error(ename, evalue, [f"{ename}: {evalue}"])
            self._writer.set_outputs(run.outputs)
        self._finish(run, "aborted", None, ename, evalue or None, flush=False)

    def _abort_batch(self, batch: _Batch) -> None:
        skipped = [run for run in self._queue if run.batch is batch]
        if not skipped:
            return
        self._queue = deque(run for run in self._queue if run.batch is not batch)
        for run in skipped:
            self._abort(run)
        self._writer.flush()

    def _abort_all(self, why: Literal["died", "dead", "restart", "shutdown", "close"]) -> None:
        runs = ([self._running] if self._running is not None else []) + list(self._queue)
        self._queue.clear()
        for run in runs:
            if why == "died":
                when = (
                    "while this cell was running"
                    if run.state == "running"
                    else "before this cell ran"
                )
                self._abort(run, "KernelDied", f"The kernel died {when}; it is being restarted.")
            elif why == "dead":
                self._abort(run, "KernelDied", "The kernel died and could not be restarted.")
            else:
                self._abort(run)
        self._writer.flush()

    # ---- kernel lifecycle -------------------------------------------------------------------

    async def _revive(self) -> None:
        try:
            async with self._lifecycle:
                if self._shut_down or self._closing:
                    return
                try:
                    await self._restart_kernel()
                except Exception:
                    log.exception("kernel of notebook %s could not be restarted", self.notebook_id)
                    self._set_kernel("dead", "The kernel died and could not be restarted.")
                    self._abort_all("dead")
                    return
                self._set_kernel("idle", "The kernel died and was restarted.")
                self._ready.set()
        finally:
            self._reviving = None

    async def _restart_kernel(self) -> None:
        async with asyncio.timeout(self._ready_timeout):
            await self._kernel.restart()
            self._attach(self._kernel.client)
            await self._probe()

    async def _probe(self) -> dict[str, Any]:
        """Ask for kernel_info until the kernel answers (callers bound the wait)."""
        while True:
            client = self._client
            if client is None:
                raise KernelUnavailable("no kernel client")
            msg_id = str(client.kernel_info())
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._probes[msg_id] = future
            try:
                async with asyncio.timeout(1.0):
                    return await future
            except TimeoutError:
                continue
            finally:
                self._probes.pop(msg_id, None)

    def _check_open(self) -> None:
        if not self._started:
            raise RuntimeError("the Executor was not started")
        if self._closing:
            raise KernelUnavailable("the notebook's executor is closed")
        if self._shut_down:
            raise KernelUnavailable("the kernel was shut down")

    # ---- reading the kernel's channels ----------------------------------------------------

    def _attach(self, client: AsyncKernelClient) -> None:
        if self._closing:
            raise KernelUnavailable("the notebook's executor is closed")
        self._detach()
        self._client = client
        self._last_message_at = asyncio.get_running_loop().time()
        self._readers = [
            self._spawn(self._read_iopub(client), "executor-iopub"),
            self._spawn(self._read_replies(client, "shell"), "executor-shell"),
            self._spawn(self._read_replies(client, "stdin"), "executor-stdin"),
        ]

    def _detach(self) -> None:
        for task in self._readers:
            task.cancel()
        self._readers = []
        self._client = None

    async def _read_iopub(self, client: AsyncKernelClient) -> None:
        socket = client.iopub_channel.socket
        loop = asyncio.get_running_loop()
        while socket is not None and not socket.closed:
            try:
                frames = await socket.recv_multipart(copy=False)
            except asyncio.CancelledError:
                if _cancelled():
                    raise
                return  # the client's channels were stopped
            except zmq.ZMQError:
                log.warning("iopub of notebook %s closed", self.notebook_id, exc_info=True)
                return
            try:
                message = await decode_iopub(client.session, frames)
            except Exception:
                log.exception("dropping an iopub message of notebook %s", self.notebook_id)
                continue
            self._last_message_at = loop.time()
            try:
                self._on_iopub(message)
            except Exception:
                log.exception(
                    "handling iopub %s of notebook %s failed", message.msg_type, self.notebook_id
                )

    async def _read_replies(
        self, client: AsyncKernelClient, name: Literal["shell", "stdin"]
    ) -> None:
        channel = client.shell_channel if name == "shell" else client.stdin_channel
        loop = asyncio.get_running_loop()
        while channel.socket is not None and not channel.socket.closed:
            try:
                msg = await channel.get_msg()
            except asyncio.CancelledError:
                if _cancelled():
                    raise
                return
            except zmq.ZMQError:
                log.warning(
                    "%s channel of notebook %s closed", name, self.notebook_id, exc_info=True
                )
                return
            except Exception:
                log.exception("dropping a %s message of notebook %s", name, self.notebook_id)
                continue
            self._last_message_at = loop.time()
            try:
                self._on_reply(msg)
            except Exception:
                log.exception("handling %s %s failed", name, msg.get("msg_type"))

    def _on_reply(self, msg: dict[str, Any]) -> None:
        msg_type = msg["msg_type"]
        parent_id = msg["parent_header"].get("msg_id")
        content = msg["content"]
        if msg_type == "execute_reply":
            run = self._runs_by_msg.get(parent_id)
            if run is not None:
                run.reply = content
                self._check_done(run)
        elif msg_type == "kernel_info_reply":
            future = self._probes.get(parent_id)
            if future is not None and not future.done():
                future.set_result(content)
        elif msg_type == "input_request":
            run = self._runs_by_msg.get(parent_id)
            if run is None:
                log.warning(
                    "input requested by an unknown execution in notebook %s", self.notebook_id
                )
                return
            request = _InputRequest(
                run, str(content.get("prompt", "")), bool(content.get("password"))
            )
            self._inputs[run.id] = request
            self._writer.set_input_request(
                run.id,
                {
                    "cell_id": run.cell_id,
                    "prompt": request.prompt,
                    "password": request.password,
                    "for": run.username,
                },
            )
            self._writer.flush()

    def _on_iopub(self, message: IopubMessage) -> None:
        msg_type = message.msg_type
        if msg_type == "status":
            state = message.parse().get("execution_state")
            run = self._runs_by_msg.get(message.parent_id or "")
            if run is not None and state == "idle":
                run.idle = True
                self._check_done(run)
            kernel_up = self._kernel_state in ("busy", "idle")
            if kernel_up and state in ("busy", "idle") and state != self._kernel_state:
                self._set_kernel(state, self._kernel_message, self._kernel_by, flush=False)
                self._writer.schedule()
        elif msg_type in OUTPUT_TYPES:
            outputs = self._outputs_by_msg.get(message.parent_id or "")
            if outputs is not None:
                outputs.add_message(message)
                self._writer.set_outputs(outputs)
                run = self._runs_by_msg.get(message.parent_id or "")
                if run is not None and not run.output_seen:
                    run.output_seen = True
                    self._writer.flush()  # a run's first output shows at once
                else:
                    self._writer.schedule()
        elif msg_type == "update_display_data":
            if len(message.content) > self.max_output_bytes:
                log.warning("dropping an update_display_data of %d bytes", len(message.content))
                return
            content = message.parse()
            display_id = (content.get("transient") or {}).get("display_id")
            if display_id is None:
                return
            data, metadata = content.get("data") or {}, content.get("metadata") or {}
            for outputs in self._cells.values():
                if outputs.update_display(str(display_id), data, metadata):
                    self._writer.set_outputs(outputs)
            self._writer.schedule()

    def _check_done(self, run: _Run) -> None:
        if run.reply is not None and run.idle:
            run.done.set()

    # ---- the document ------------------------------------------------------------------------

    def _sources(self, cell_ids: Sequence[str]) -> list[str]:
        wanted = set(cell_ids)
        cells = self._writer.find_cells(wanted)
        sources = []
        for cell_id in cell_ids:
            ycell = cells.get(cell_id)
            if ycell is None:
                raise UnknownCell(cell_id)
            cell_type = str(ycell.get("cell_type"))
            if cell_type != "code":
                raise NotACodeCell(cell_id, cell_type)
            sources.append(str(ycell.get("source") or ""))
        return sources

    def _publish(self, cell_id: str) -> None:
        """Put the cell's current entry in the ``executions`` map at the next flush."""
        run: _Run | None = None
        if self._running is not None and self._running.cell_id == cell_id:
            run = self._running
        else:
            run = next((r for r in self._queue if r.cell_id == cell_id), None)
        run = run or self._last_finished.get(cell_id)
        if run is not None:
            self._writer.set_entry(cell_id, run.entry(self._produced_by.get(cell_id)))

    def _set_kernel(
        self, status: KernelState, message: str, by: str | None = None, flush: bool = True
    ) -> None:
        self._kernel_state = status
        self._kernel_message = message
        self._kernel_by = by
        self._writer.set_kernel(
            {"status": status, "name": self._kernel.kernel_name, "message": message, "by": by}
        )
        if flush:
            self._writer.flush()

    def _summary(self, cell_id: str) -> Mapping[str, Any] | None:
        outputs = self._writer.cell_outputs(cell_id)
        if outputs is None:
            return None
        try:
            return self._summarize(outputs)
        except Exception:
            log.exception("summarizing the outputs of cell %s failed", cell_id)
            return None

    # ---- helpers ------------------------------------------------------------------------

    def _record(self, method: Callable[..., None], *args: Any) -> None:
        try:
            method(*args)
        except Exception:
            log.exception("recording an execution of notebook %s failed", self.notebook_id)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=f"{name}-{self.notebook_id}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())


def _cancelled() -> bool:
    """Whether the current task was asked to stop (not just a closed socket's future)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


__all__ = [
    "ExecutionSink",
    "Executor",
    "FinalStatus",
    "KernelHandle",
    "KernelState",
    "KernelUnavailable",
    "NotACodeCell",
    "NotYourInputRequest",
    "Summarize",
    "UnknownCell",
    "UnknownInputRequest",
]
