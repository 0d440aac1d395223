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
* Code a kernel client sent (:meth:`Executor.run_code`, the Jupyter kernel
  channels WebSocket) queues with the cells and runs in turn, is logged with
  no cell id, and writes nothing into the document: the kernel's messages go
  to that client's :class:`~kernels.relay.MessageWatcher` only.
* Output is batched: at most one document transaction per ``flush_interval``
  (50 ms) while a cell streams, besides the start and end of each cell.

Everything runs on the room's event loop. While an Executor is open it is
the only reader of its kernel client's channels.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Literal, Self

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_ydoc import YNotebook

from .channels import KernelChannels, Send
from .errors import (
    KernelUnavailable,
    NotACodeCell,
    UnknownCell,
    UnknownInputRequest,
)
from .log import summarize_outputs
from .outputs import IopubMessage
from .relay import MessageWatcher, from_iopub, from_reply
from .results import RunWriter, Summarize
from .runner import CellRunner, ExecutionSink, KernelHandle
from .runs import ClientRequest, FinalStatus, RunQueue

log = logging.getLogger(__name__)

KernelState = Literal["idle", "busy", "starting", "restarting", "dead"]
KERNEL_STATES: tuple[KernelState, ...] = ("idle", "busy", "starting", "restarting", "dead")


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

    The parts: a :class:`~kernels.runs.RunQueue` (what runs next), a
    :class:`~kernels.channels.KernelChannels` (the kernel's messages) and a
    :class:`~kernels.results.RunWriter` (the document); this class runs the
    queue on the kernel and owns the kernel's lifecycle.
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
        ask_timeout: float = 10.0,
        summarize: Summarize = summarize_outputs,
    ) -> None:
        self.notebook_id = notebook_id
        self.notebook_path = notebook_path
        """Recorded with each execution; the web layer updates it when the file moves."""
        self._kernel = kernel
        self._ready_timeout = ready_timeout
        self._ask_timeout = ask_timeout
        self._runs = RunQueue()
        self._results = RunWriter(
            notebook,
            max_output_bytes=max_output_bytes,
            summarize=summarize,
            flush_interval=flush_interval,
        )
        self._channels = KernelChannels(notebook_id, self._on_iopub, self._on_reply)
        self._runner = CellRunner(
            kernel,
            sink,
            self._runs,
            self._results,
            self._channels,
            notebook_id=notebook_id,
            liveness_interval=liveness_interval,
            kernel_gone=self.kernel_died,
            attach=self._attach,
        )

        self._tasks: set[asyncio.Task[Any]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._reviving: asyncio.Task[None] | None = None
        self._lifecycle = asyncio.Lock()
        self._kernel_state: KernelState = "starting"
        self._kernel_message = ""
        self._kernel_by: str | None = None
        self._started = False
        self._shut_down = False
        self._closing = False
        self._closed = asyncio.Event()
        self._watchers: list[MessageWatcher] = []

    @property
    def max_output_bytes(self) -> int:
        return self._results.max_output_bytes

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Attach to the kernel, wait until it answers, and start running requests.

        Raises KernelUnavailable if the kernel does not answer within ``ready_timeout``.
        """
        if self._started:
            raise RuntimeError("an Executor starts once")
        self._started = True
        self._results.reset_leftovers()
        self._attach(self._kernel.client)
        try:
            async with asyncio.timeout(self._ready_timeout):
                await self._channels.probe()
        except TimeoutError as e:
            self._set_kernel("dead", "The kernel does not answer.")
            raise KernelUnavailable(f"the kernel of {self.notebook_id!r} does not answer") from e
        self._set_kernel("idle", "")
        self._runs.resume()
        self._worker = self._spawn(self._runner.work(), "executor-worker")

    async def close(self) -> None:
        """End queued and running cells as "aborted", stop every task; idempotent."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        try:
            self._runner.abort_all("close")
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(self._channels.close(), *tasks, return_exceptions=True)
            self._results.flush()
        finally:
            self._results.close()
            self._closed.set()
            for watcher in list(self._watchers):
                watcher.kernel_closed()
            self._watchers.clear()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def busy(self) -> bool:
        """Whether a cell is running or queued (the room should stay open meanwhile)."""
        return self._runs.busy

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
        return self._runner.queue(cell_ids, username, self.notebook_path)

    def run_code(self, code: str, username: str, request: ClientRequest) -> str:
        """Queue code a kernel client sent (FIFO with the cells); return its execution id.

        ``request`` sends the client's ``execute_request`` on the kernel
        client when its turn comes; the kernel's answers go to the watcher
        that wants its msg_id (and ``request.unanswered`` says when none will). Nothing is written into the
        document; the execution is recorded with no cell id.
        Raises KernelUnavailable as :meth:`run_cells` does.
        """
        self._check_open()
        if self._kernel_state == "dead":
            raise KernelUnavailable("the kernel is not running; restart it")
        return self._runner.queue_code(code, username, self.notebook_path, request)

    def send_request(self, channel: Literal["shell", "stdin"], msg: dict[str, Any]) -> None:
        """Send a kernel client's request (not an execute_request) to the kernel as it is.

        Its busy/idle status does not change the notebook's kernel status.
        Raises KernelUnavailable unless the kernel is idle or busy.
        """
        self._check_open()
        client = self._channels.client
        if self._kernel_state not in ("idle", "busy") or client is None:
            raise KernelUnavailable(f"the kernel is {self._kernel_state}")
        if channel == "shell":
            self._channels.note_asked(str(msg["header"]["msg_id"]))
            client.shell_channel.send(msg)
        else:
            client.stdin_channel.send(msg)

    def watch(self, watcher: MessageWatcher) -> Callable[[], None]:
        """Hand ``watcher`` the kernel's messages it wants; returns the function that stops it."""
        self._check_open()
        self._watchers.append(watcher)

        def stop() -> None:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

        return stop

    @property
    def connections(self) -> int:
        """How many kernel clients watch this kernel (Jupyter's ``connections``)."""
        return len(self._watchers)

    async def interrupt(self, username: str) -> None:
        """Interrupt the running cell (it ends "interrupted"; the rest of its request is aborted)."""
        self._check_open()
        if self._kernel_state not in ("idle", "busy"):
            raise KernelUnavailable(f"the kernel is {self._kernel_state}")
        self._runner.interrupted = self._runs.running
        await self._kernel.interrupt()
        self._set_kernel(self._kernel_state, f"{username} interrupted the kernel.", username)

    async def restart(self, username: str) -> None:
        """Restart the kernel; running and queued cells end "aborted".

        Raises KernelUnavailable if it was shut down or does not come back.
        """
        self._check_open()
        async with self._lifecycle:
            self._check_open()
            self._runs.pause()
            self._set_kernel("restarting", f"{username} is restarting the kernel.", username)
            self._runner.abort_all("restart")
            try:
                await self._restart_kernel()
            except Exception as e:
                log.exception("kernel of notebook %s could not be restarted", self.notebook_id)
                self._set_kernel("dead", "The kernel could not be restarted.", username)
                raise KernelUnavailable("the kernel could not be restarted") from e
            self._set_kernel("idle", f"{username} restarted the kernel.", username)
            self._runs.resume()

    async def shutdown(self, username: str) -> None:
        """Shut the kernel down; running and queued cells end "aborted"; later runs are refused."""
        self._check_open()
        async with self._lifecycle:
            if self._shut_down:
                return
            self._shut_down = True
            self._runs.pause()
            self._runner.abort_all("shutdown")
            self._set_kernel("dead", f"{username} shut the kernel down.", username)
            self._channels.detach()
            await self._kernel.shutdown()

    def input_requester(self, execution_id: str) -> str:
        """Who may answer the ``input()`` an execution waits on; UnknownInputRequest if none."""
        return self._runner.input_requester(execution_id)

    def answer_input(self, execution_id: str, value: str) -> None:
        """Send ``value`` to the ``input()`` the execution waits on; UnknownInputRequest if none."""
        self._runner.answer_input(execution_id, value)

    async def complete(self, code: str, cursor_pos: int) -> dict[str, Any]:
        """The kernel's ``complete_reply`` content for ``code`` at ``cursor_pos`` (code points)."""
        return await self._ask(lambda client: str(client.complete(code, cursor_pos)))

    async def inspect(self, code: str, cursor_pos: int, detail_level: int = 0) -> dict[str, Any]:
        """The kernel's ``inspect_reply`` content (help on the name at ``cursor_pos``)."""
        return await self._ask(lambda client: str(client.inspect(code, cursor_pos, detail_level)))

    async def _ask(self, send: Send) -> dict[str, Any]:
        """A shell request outside the run queue; KernelUnavailable if no answer in time.

        ipykernel answers between cells, so during a long run this times out.
        """
        self._check_open()
        if self._kernel_state not in ("idle", "busy"):
            raise KernelUnavailable(f"the kernel is {self._kernel_state}")
        try:
            async with asyncio.timeout(self._ask_timeout):
                return await self._channels.ask(send)
        except TimeoutError:
            raise KernelUnavailable("the kernel is busy running a cell; try again after it") from None

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
        self._runs.pause()
        self._set_kernel("restarting", "The kernel died; restarting it.", flush=False)
        self._runner.abort_all("died")
        self._reviving = self._spawn(self._revive(), "executor-revive")

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
                    self._runner.abort_all("dead")
                    return
                self._set_kernel("idle", "The kernel died and was restarted.")
                self._runs.resume()
        finally:
            self._reviving = None

    async def _restart_kernel(self) -> None:
        async with asyncio.timeout(self._ready_timeout):
            await self._kernel.restart()
            self._attach(self._kernel.client)
            await self._channels.probe()

    def _check_open(self) -> None:
        if not self._started:
            raise RuntimeError("the Executor was not started")
        if self._closing:
            raise KernelUnavailable("the notebook's executor is closed")
        if self._shut_down:
            raise KernelUnavailable("the kernel was shut down")

    def _attach(self, client: AsyncKernelClient) -> None:
        if self._closing:
            raise KernelUnavailable("the notebook's executor is closed")
        self._channels.attach(client)

    # ---- the kernel's messages --------------------------------------------------------------

    def _on_reply(self, msg: dict[str, Any]) -> None:
        self._runner.on_reply(msg)
        parent_id = msg["parent_header"].get("msg_id")
        client = self._channels.client
        for watcher in self._watchers:
            if client is not None and watcher.wants(msg["msg_type"], parent_id):
                watcher.deliver(from_reply(client.session, msg))

    def _on_iopub(self, message: IopubMessage) -> None:
        # A completion or help request makes the kernel busy for a moment too: that is
        # not a run, so the notebook's kernel status does not flicker for everyone.
        if message.msg_type == "status" and not self._channels.asked(message.parent_id):
            state = message.parse().get("execution_state")
            kernel_up = self._kernel_state in ("busy", "idle")
            if kernel_up and state in ("busy", "idle") and state != self._kernel_state:
                self._set_kernel(state, self._kernel_message, self._kernel_by, flush=False)
                self._results.schedule()
        self._runner.on_iopub(message)
        for watcher in self._watchers:
            if watcher.wants(message.msg_type, message.parent_id):
                watcher.deliver(from_iopub(message))

    # ---- helpers ------------------------------------------------------------------------

    def _set_kernel(
        self, status: KernelState, message: str, by: str | None = None, flush: bool = True
    ) -> None:
        self._kernel_state = status
        self._kernel_message = message
        self._kernel_by = by
        self._results.set_kernel(status, self._kernel.kernel_name, message, by)
        if flush:
            self._results.flush()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=f"{name}-{self.notebook_id}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())


__all__ = [
    "ExecutionSink",
    "Executor",
    "FinalStatus",
    "KernelHandle",
    "KERNEL_STATES",
    "KernelState",
    "KernelUnavailable",
    "NotACodeCell",
    "Summarize",
    "UnknownCell",
    "UnknownInputRequest",
]
