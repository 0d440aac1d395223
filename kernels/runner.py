"""Running one notebook's queued cells on its kernel, one at a time, into its document.

:class:`CellRunner` takes runs from the :class:`~kernels.runs.RunQueue`,
sends them on the kernel client the :class:`~kernels.channels.KernelChannels`
read, matches the kernel's messages to them, writes the results through
the :class:`~kernels.results.RunWriter` and records them in the
:class:`ExecutionSink`. The kernel's lifecycle (start, restart, death) is
the :class:`~kernels.execution.Executor`'s; the runner tells it when the
kernel stopped answering. Everything runs on one event loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol

from jupyter_client.asynchronous.client import AsyncKernelClient

from .channels import KernelChannels
from .errors import UnknownInputRequest
from .outputs import IopubMessage
from .results import RunWriter
from .runs import Batch, ClientRequest, FinalStatus, InputRequest, Run, RunQueue

log = logging.getLogger(__name__)

AbortReason = Literal["died", "dead", "restart", "shutdown", "close"]


# ---- what the runner depends on ----------------------------------------------------


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
        outputs: Sequence[Mapping[str, Any]] | None = None,
    ) -> None: ...


class CellRunner:
    """Runs queued cells on the kernel and ends them: ok, error, interrupted or aborted.

    An error (or an interrupt) aborts the rest of its own run request only.
    ``kernel_gone`` is called when the kernel stops answering mid-run and
    its handle says it is not alive; ``attach`` when the kernel's client was
    replaced (a restart). :meth:`work` is the worker task's body.
    """

    def __init__(
        self,
        kernel: KernelHandle,
        sink: ExecutionSink,
        runs: RunQueue,
        results: RunWriter,
        channels: KernelChannels,
        *,
        notebook_id: str,
        liveness_interval: float,
        kernel_gone: Callable[[], None],
        attach: Callable[[AsyncKernelClient], None],
    ) -> None:
        self.notebook_id = notebook_id
        self.runs = runs
        self.results = results
        self.channels = channels
        self.interrupted: Run | None = None
        """The run that was running when someone interrupted the kernel."""
        self._kernel = kernel
        self._sink = sink
        self._liveness_interval = liveness_interval
        self._kernel_gone = kernel_gone
        self._attach = attach
        self._runs_by_msg: dict[str, Run] = {}
        self._inputs: dict[str, InputRequest] = {}

    def queue(self, cell_ids: Sequence[str], username: str, notebook_path: str) -> list[str]:
        """Queue the code cells ``cell_ids`` (in this order) for ``username``; return execution ids.

        Each cell's code is its source now. Cells run FIFO with everyone's
        requests; an error stops the rest of this request only.

        Raises UnknownCell or NotACodeCell; then nothing was queued.
        """
        sources = self.results.sources(cell_ids)
        batch = Batch()
        now = time.time()
        runs: list[Run] = []
        for cell_id, code in zip(cell_ids, sources, strict=True):
            execution_id = self._sink.record_queued(
                notebook_id=self.notebook_id,
                notebook_path=notebook_path,
                cell_id=cell_id,
                code=code,
                username=username,
                kernelspec=self._kernel.kernel_name,
                kernel_id=self._kernel.id,
                queued_at=now,
            )
            runs.append(Run(execution_id, cell_id, code, username, batch, now))
        self.runs.add(runs)
        for cell_id in cell_ids:
            self._publish(cell_id)
        self.results.flush()
        return [run.id for run in runs]

    def queue_code(
        self, code: str, username: str, notebook_path: str, request: ClientRequest
    ) -> str:
        """Queue code a kernel client sent, for ``username``; return its execution id.

        It runs in turn with the cells, is recorded with no cell id, and
        writes nothing into the document: ``request`` sends the client's own
        request, so the kernel's messages answer it.
        """
        now = time.time()
        execution_id = self._sink.record_queued(
            notebook_id=self.notebook_id,
            notebook_path=notebook_path,
            cell_id=None,
            code=code,
            username=username,
            kernelspec=self._kernel.kernel_name,
            kernel_id=self._kernel.id,
            queued_at=now,
        )
        self.runs.add([Run(execution_id, None, code, username, Batch(), now, request=request)])
        return execution_id

    def input_requester(self, execution_id: str) -> str:
        """Who ran the execution waiting on ``input()``: the one person who may answer it.

        Raises UnknownInputRequest if that execution is not waiting for input.
        """
        request = self._inputs.get(execution_id)
        if request is None or self.channels.client is None:
            raise UnknownInputRequest(f"execution {execution_id!r} is not waiting for input")
        return request.run.username

    def answer_input(self, execution_id: str, value: str) -> None:
        """Send ``value`` to the ``input()`` the execution waits on (callers check who may).

        Raises UnknownInputRequest if that execution is not waiting for input.
        """
        request = self._inputs.get(execution_id)
        client = self.channels.client
        if request is None or client is None:
            raise UnknownInputRequest(f"execution {execution_id!r} is not waiting for input")
        del self._inputs[execution_id]
        client.input(value)
        self.results.input_answered(request, value)
        self.results.flush()

    async def work(self) -> None:
        """Run queued cells one at a time, forever (cancel the task to stop)."""
        while True:
            run = await self.runs.next()
            try:
                await self._execute(run)
            except Exception:
                log.exception(
                    "running cell %s of notebook %s failed", run.cell_id, self.notebook_id
                )
                if run.state != "idle":
                    self._abort(run, "ExecutionFailed", "The server could not run this cell.")
                    self.results.flush()

    async def _execute(self, run: Run) -> None:
        if self._kernel.client is not self.channels.client:
            self._attach(self._kernel.client)
        client = self.channels.client
        assert client is not None
        self.runs.start(run)
        assert run.started_at is not None
        if run.cell_id is not None:
            self.results.start_outputs(run)
        self._record(self._sink.record_started, run.id, run.started_at, self._kernel.id)
        self._kernel.set_busy(True)
        if run.request is not None:
            msg_id = run.request.send(client)
        else:
            msg_id = str(
                client.execute(
                    run.code, silent=False, store_history=True, allow_stdin=True, stop_on_error=False
                )
            )
        run.msg_id = msg_id
        self._runs_by_msg[msg_id] = run
        if run.cell_id is not None:
            self.results.running(run, msg_id)
            self._publish(run.cell_id)
            self.results.flush()
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

    async def _wait(self, run: Run) -> None:
        """Wait for the reply and the kernel's idle status; notice a kernel that went away."""
        loop = asyncio.get_running_loop()
        while not run.done.is_set():
            try:
                async with asyncio.timeout(self._liveness_interval):
                    await run.done.wait()
                return
            except TimeoutError:
                pass
            quiet = loop.time() - self.channels.last_message_at
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
                if self.interrupted is run:
                    # Say so in the cell, as the traceback the kernel did not send would.
                    evalue = "interrupted before it started"
                    if run.cell_id is not None:
                        self.results.add_error(run, "KeyboardInterrupt", evalue)
                    run.reply = {"status": "error", "ename": "KeyboardInterrupt", "evalue": evalue}
                else:
                    run.reply = {"status": "aborted"}
                return
            if self.channels.readers_ok and await self._kernel.is_alive():
                continue
            if not run.done.is_set():
                self._kernel_gone()
            return

    def _finish(
        self,
        run: Run,
        status: FinalStatus,
        execution_count: int | None = None,
        error_name: str | None = None,
        error_value: str | None = None,
        flush: bool = True,
    ) -> None:
        self.runs.finish(run, status)
        if run.msg_id is not None:
            self._runs_by_msg.pop(run.msg_id, None)
        request = self._inputs.pop(run.id, None)
        if request is not None:
            self.results.input_answered(request, None)
        outputs: list[dict[str, Any]] | None = None
        summary: Mapping[str, Any] | None = None
        if run.cell_id is not None:
            self.results.finished(run, execution_count)
            self._publish(run.cell_id)
            if flush or run.outputs is not None:
                self.results.flush()  # the outputs and their summary are read from the document
            if run.outputs is not None:
                outputs = self.results.document_outputs(run.cell_id)
            if outputs is not None:
                summary = self.results.summarize(run.cell_id, outputs)
        self._record(
            self._sink.record_finished,
            run.id,
            run.finished_at,
            status,
            execution_count,
            error_name,
            error_value,
            summary,
            outputs,
        )
        if run.request is not None and not run.replied:
            try:
                run.request.unanswered(run, error_name, error_value)
            except Exception:
                log.exception("telling a kernel client of notebook %s failed", self.notebook_id)
        if not self.runs.busy:
            self._kernel.set_busy(False)

    def _abort(self, run: Run, ename: str | None = None, evalue: str = "") -> None:
        """End ``run`` as "aborted", with an error output when ``ename`` is given."""
        if run.cell_id is not None:
            self.results.stop_outputs(run)
            if ename is not None:
                self.results.add_error(run, ename, evalue)
        self._finish(run, "aborted", None, ename, evalue or None, flush=False)

    def _abort_batch(self, batch: Batch) -> None:
        skipped = self.runs.drop_batch(batch)
        if not skipped:
            return
        for run in skipped:
            self._abort(run)
        self.results.flush()

    def abort_all(self, why: AbortReason) -> None:
        """End the running and queued runs as "aborted" (with a KernelDied error if it died)."""
        for run in self.runs.take_all():
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
        self.results.flush()

    def on_reply(self, msg: dict[str, Any]) -> None:
        msg_type = msg["msg_type"]
        run = self._runs_by_msg.get(msg["parent_header"].get("msg_id"))
        content = msg["content"]
        if msg_type == "execute_reply":
            if run is not None:
                run.reply = content
                run.replied = True
                run.reply_done()
        elif msg_type == "input_request":
            if run is not None and run.cell_id is None:
                return  # the kernel client that sent the code answers it
            if run is None:
                log.warning(
                    "input requested by an unknown execution in notebook %s", self.notebook_id
                )
                return
            request = InputRequest(
                run, str(content.get("prompt", "")), bool(content.get("password"))
            )
            self._inputs[run.id] = request
            self.results.input_requested(request)
            self.results.flush()

    def on_iopub(self, message: IopubMessage) -> None:
        msg_type = message.msg_type
        if msg_type == "status":
            state = message.parse().get("execution_state")
            run = self._runs_by_msg.get(message.parent_id or "")
            if run is not None and state == "idle":
                run.idle = True
                run.reply_done()
        elif msg_type == "update_display_data":
            self.results.update_display(message)
        elif self.results.add_output(message):
            run = self._runs_by_msg.get(message.parent_id or "")
            if run is not None and not run.output_seen:
                run.output_seen = True
                self.results.flush()  # a run's first output shows at once
            else:
                self.results.schedule()

    # ---- helpers ------------------------------------------------------------------------

    def _publish(self, cell_id: str) -> None:
        """Put the cell's current entry in the ``executions`` map at the next flush."""
        self.results.publish(cell_id, self.runs.shown(cell_id))

    def _record(self, method: Callable[..., None], *args: Any) -> None:
        try:
            method(*args)
        except Exception:
            log.exception("recording an execution of notebook %s failed", self.notebook_id)


__all__ = ["AbortReason", "CellRunner", "ExecutionSink", "KernelHandle"]
