"""Server-side execution on real ipykernel kernels, into a real pycrdt document.

Most tests share one kernel (module scope; each builds its own document and
Executor, and nothing they do depends on the kernel's earlier state). Tests
that kill, restart or shut the kernel down start their own.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest
import pytest_asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_ydoc import YNotebook
from pycrdt import Doc, Map, MapEvent, Text, TransactionEvent

from kernels.execution import (
    Executor,
    KernelUnavailable,
    NotACodeCell,
    UnknownCell,
    UnknownInputRequest,
)
from tests.conftest import wait_until

pytestmark = pytest.mark.asyncio(loop_scope="module")

TIMEOUT = 30


# ---- the parts around the Executor ---------------------------------------------------


class ManagerKernel:
    """A KernelHandle over a jupyter_client kernel manager, as the pool provides one."""

    def __init__(self, manager: AsyncKernelManager, client: AsyncKernelClient) -> None:
        self.manager = manager
        self._client = client
        self.busy_calls: list[bool] = []

    @property
    def id(self) -> str:
        return str(self.manager.kernel_id)

    @property
    def kernel_name(self) -> str:
        return str(self.manager.kernel_name)

    @property
    def client(self) -> AsyncKernelClient:
        return self._client

    @property
    def pid(self) -> int:
        provisioner: Any = self.manager.provisioner
        return int(provisioner.process.pid)

    async def is_alive(self) -> bool:
        return bool(await self.manager.is_alive())

    async def interrupt(self) -> None:
        await self.manager.interrupt_kernel()

    async def restart(self) -> None:
        """A new process and a new client, as the pool's restart gives."""
        self._client.stop_channels()
        await self.manager.restart_kernel(now=True)
        client = self.manager.client()
        client.start_channels()
        await client.wait_for_ready(timeout=TIMEOUT)
        self._client = client

    async def shutdown(self) -> None:
        self._client.stop_channels()
        await self.manager.shutdown_kernel(now=True)

    def set_busy(self, busy: bool) -> None:
        self.busy_calls.append(busy)

    async def stop(self) -> None:
        self._client.stop_channels()
        if self.manager.has_kernel:
            await self.manager.shutdown_kernel(now=True)


async def start_kernel(folder: Path) -> ManagerKernel:
    """A python3 kernel over ipc, as ``start_new_async_kernel`` starts one."""
    manager = AsyncKernelManager(kernel_name="python3", transport="ipc")
    manager.ip = str(folder / "kernel")
    manager.connection_file = str(folder / "kernel.json")
    await manager.start_kernel()
    client = manager.client()
    client.start_channels()
    await client.wait_for_ready(timeout=TIMEOUT)
    return ManagerKernel(manager, client)


class RecordingSink:
    """An ExecutionSink that keeps every call, as the execution log receives them."""

    def __init__(self) -> None:
        self.queued: dict[str, dict[str, Any]] = {}
        self.started: list[tuple[str, float, str | None]] = []
        self.finished: dict[str, dict[str, Any]] = {}

    def record_queued(self, **row: Any) -> str:
        execution_id = uuid.uuid4().hex
        self.queued[execution_id] = row
        return execution_id

    def record_started(self, execution_id: str, started_at: float, kernel_id: str | None) -> None:
        self.started.append((execution_id, started_at, kernel_id))

    def record_finished(
        self,
        execution_id: str,
        finished_at: float,
        status: str,
        execution_count: int | None = None,
        error_name: str | None = None,
        error_value: str | None = None,
        outputs_summary: Mapping[str, Any] | None = None,
        outputs: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        assert execution_id not in self.finished, "finished twice"
        self.finished[execution_id] = {
            "status": status,
            "execution_count": execution_count,
            "error_name": error_name,
            "error_value": error_value,
            "outputs_summary": outputs_summary,
            "outputs": outputs,
        }

    @property
    def started_ids(self) -> list[str]:
        return [execution_id for execution_id, _, _ in self.started]


# ---- the document ------------------------------------------------------------------------


def code(cell_id: str, source: str, outputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": cell_id,
        "cell_type": "code",
        "source": source,
        "metadata": {},
        "outputs": outputs or [],
        "execution_count": 7 if outputs else None,
    }


def make_notebook(*cells: dict[str, Any]) -> YNotebook:
    notebook = YNotebook(Doc())
    notebook.set(
        {
            "cells": list(cells),
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )
    return notebook


STALE = [{"output_type": "stream", "name": "stdout", "text": "stale\n"}]


class View:
    """What a collaborator's client reads from the document."""

    def __init__(self, notebook: YNotebook) -> None:
        self.notebook = notebook
        self.doc = notebook.ydoc
        self.executions = self.doc.get("executions", type=Map)
        self.kernel = self.doc.get("kernel", type=Map)
        self.inputs = self.doc.get("input_requests", type=Map)

    def cell(self, cell_id: str) -> dict[str, Any]:
        for index in range(self.notebook.cell_number):
            cell = self.notebook.get_cell(index)
            if cell["id"] == cell_id:
                cell["execution_state"] = self.notebook.ycells[index].get("execution_state")
                return cell
        raise KeyError(cell_id)

    def outputs(self, cell_id: str) -> list[dict[str, Any]]:
        outputs: list[dict[str, Any]] = self.cell(cell_id)["outputs"]
        return outputs

    def texts(self, cell_id: str) -> list[tuple[str, str]]:
        """Each output as (kind, text): a stream's name, or the output type."""
        result = []
        for output in self.outputs(cell_id):
            if output["output_type"] == "stream":
                result.append((output["name"], output["text"]))
            elif output["output_type"] == "error":
                result.append(("error", f"{output['ename']}: {output['evalue']}"))
            else:
                result.append((output["output_type"], output["data"].get("text/plain", "")))
        return result

    def entry(self, cell_id: str) -> dict[str, Any]:
        entry: dict[str, Any] = self.executions.get(cell_id) or {}
        return entry

    def state(self, cell_id: str) -> str | None:
        return self.entry(cell_id).get("state")

    def idle(self, *cell_ids: str) -> bool:
        return all(self.state(c) == "idle" for c in cell_ids)

    async def wait(self, predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        """Wait until ``predicate()`` holds, re-checking after each transaction on the document."""
        changed = asyncio.Event()
        subscription = self.doc.observe(lambda _: changed.set())
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    changed.clear()
                    await changed.wait()
        finally:
            self.doc.unobserve(subscription)

    @contextmanager
    def record_states(self) -> Iterator[dict[str, list[str]]]:
        """Collect each cell's sequence of ``executions`` states, as clients see them."""
        states: dict[str, list[str]] = {}

        def on_change(event: MapEvent[Any]) -> None:
            for cell_id, change in event.keys.items():
                new = change.get("newValue") or {}
                sequence = states.setdefault(cell_id, [])
                if not sequence or sequence[-1] != new.get("state"):
                    sequence.append(new.get("state"))

        subscription = self.executions.observe(on_change)
        try:
            yield states
        finally:
            self.executions.unobserve(subscription)

    @contextmanager
    def count_transactions(self) -> Iterator[list[int]]:
        sizes: list[int] = []

        def on_transaction(event: TransactionEvent) -> None:
            sizes.append(len(event.update))

        subscription = self.doc.observe(on_transaction)
        try:
            yield sizes
        finally:
            self.doc.unobserve(subscription)

    def assert_valid(self) -> None:
        """The document still serializes to a valid nbformat 4 notebook."""
        nbformat.validate(nbformat.from_dict(self.notebook.get()))


# ---- fixtures ------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_kernel(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ManagerKernel]:
    kernel = await start_kernel(tmp_path_factory.mktemp("kernel"))
    yield kernel
    await kernel.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def own_kernel(tmp_path: Path) -> AsyncIterator[ManagerKernel]:
    kernel = await start_kernel(tmp_path)
    yield kernel
    await kernel.stop()


def assert_no_tasks_left() -> None:
    """Nothing the Executor started outlives it."""
    left = [t.get_name() for t in asyncio.all_tasks() if t.get_name().endswith("-nb-1")]
    assert left == []


def executor(
    notebook: YNotebook, kernel: ManagerKernel, sink: RecordingSink, **options: Any
) -> Executor:
    return Executor(
        notebook, kernel, sink, notebook_id="nb-1", notebook_path="alice/work.ipynb", **options
    )


# ---- queueing and running -----------------------------------------------------------------


async def test_three_users_run_in_fifo_order_credited_to_each(shared_kernel: ManagerKernel) -> None:
    notebook = make_notebook(
        code("a1", "import time\ntime.sleep(0.3)\norder = ['a1']\nprint('alice')"),
        code("b1", "order.append('b1')\nprint('bob')"),
        code("b2", "order.append('b2')\nprint(len(order))"),
        code("c1", "order.append('c1')\norder", outputs=STALE),
    )
    view, sink = View(notebook), RecordingSink()
    async with executor(notebook, shared_kernel, sink) as ex:
        with view.record_states() as states:
            a = ex.run_cells(["a1"], "alice")
            b = ex.run_cells(["b1", "b2"], "bob")
            c = ex.run_cells(["c1"], "carol")
            assert [view.state(c) for c in ("a1", "b1", "b2", "c1")] == ["queued"] * 4
            await view.wait(lambda: view.state("a1") == "running")
            # Queued, not yet started: the old output is still shown.
            assert view.texts("c1") == [("stdout", "stale\n")]
            assert view.cell("a1")["execution_state"] == "running"
            await view.wait(lambda: view.idle("a1", "b1", "b2", "c1"))

    ids = a + b + c
    assert sink.started_ids == ids  # FIFO across users
    assert [sink.queued[i]["username"] for i in ids] == ["alice", "bob", "bob", "carol"]
    assert all(sink.queued[i]["notebook_id"] == "nb-1" for i in ids)
    assert [sink.queued[i]["code"] for i in ids] == [
        view.cell(c)["source"] for c in ("a1", "b1", "b2", "c1")
    ]
    assert [sink.finished[i]["status"] for i in ids] == ["ok"] * 4
    for cell_id in ("a1", "b1", "b2", "c1"):
        assert states[cell_id] == ["queued", "running", "idle"]
    counts = [view.cell(c)["execution_count"] for c in ("a1", "b1", "b2", "c1")]
    assert counts == sorted(counts) and len(set(counts)) == 4
    assert counts == [sink.finished[i]["execution_count"] for i in ids]
    assert view.texts("a1") == [("stdout", "alice\n")]
    assert view.texts("b1") == [("stdout", "bob\n")]
    assert view.texts("b2") == [("stdout", "3\n")]
    assert view.texts("c1") == [("execute_result", "['a1', 'b1', 'b2', 'c1']")]
    for cell_id, user, execution_id in zip(
        ("a1", "b1", "b2", "c1"), ("alice", "bob", "bob", "carol"), ids
    ):
        entry = view.entry(cell_id)
        assert entry["by"] == user and entry["execution_id"] == execution_id
        assert entry["status"] == "ok" and entry["code"] == view.cell(cell_id)["source"]
        assert entry["queued_at"] <= entry["started_at"] <= entry["finished_at"]
        assert view.cell(cell_id)["execution_state"] == "idle"
    assert sink.finished[ids[0]]["outputs_summary"]["outputs"][0]["text"] == "alice\n"
    assert shared_kernel.busy_calls[-1] is False
    assert_no_tasks_left()
    view.assert_valid()


async def test_bad_run_requests_queue_nothing(shared_kernel: ManagerKernel) -> None:
    notebook = make_notebook(
        code("ok", "print('fine')"),
        {"id": "md", "cell_type": "markdown", "source": "# title", "metadata": {}},
    )
    view, sink = View(notebook), RecordingSink()
    async with executor(notebook, shared_kernel, sink) as ex:
        with pytest.raises(NotACodeCell):
            ex.run_cells(["ok", "md"], "alice")
        with pytest.raises(UnknownCell):
            ex.run_cells(["ok", "nope"], "alice")
        assert sink.queued == {} and view.entry("ok") == {}
        assert ex.run_cells([], "alice") == []
        assert not ex.busy
    assert_no_tasks_left()
    view.assert_valid()


async def test_trivial_cell_round_trip(shared_kernel: ManagerKernel) -> None:
    notebook = make_notebook(code("one", "1"))
    view, sink = View(notebook), RecordingSink()
    times = []
    async with executor(notebook, shared_kernel, sink) as ex:
        for _ in range(20):
            start = time.perf_counter()
            (execution_id,) = ex.run_cells(["one"], "alice")
            await view.wait(lambda: view.entry("one")["execution_id"] == execution_id)  # noqa: B023
            await view.wait(lambda: view.idle("one"))
            times.append(time.perf_counter() - start)
            assert view.texts("one") == [("execute_result", "1")]
    print(
        f"\ntrivial cell round trip: median {statistics.median(times) * 1000:.1f} ms, "
        f"max {max(times) * 1000:.1f} ms (20 runs)"
    )
    assert_no_tasks_left()
    view.assert_valid()


# ---- outputs -------------------------------------------------------------------------------


async def test_streams_are_coalesced_and_writes_batched(shared_kernel: ManagerKernel) -> None:
    notebook = make_notebook(
        code(
            "s",
            "import sys, time\n"
            "for i in range(30):\n"
            "    print(i, flush=True)\n"
            "    time.sleep(0.005)\n"
            "print('warn', file=sys.stderr, flush=True)\n"
            "print('end', flush=True)",
        ),
        code("many", "for i in range(1000):\n    print(i, flush=True)"),
    )
    view, sink = View(notebook), RecordingSink()
    async with executor(notebook, shared_kernel, sink) as ex:
        ex.run_cells(["s"], "alice")
        await view.wait(lambda: view.idle("s"))
        with view.count_transactions() as transactions:
            ex.run_cells(["many"], "alice")
            await view.wait(lambda: view.idle("many"))
    assert view.texts("s") == [
        ("stdout", "".join(f"{i}\n" for i in range(30))),
        ("stderr", "warn\n"),
        ("stdout", "end\n"),
    ]
    # jupyter-ydoc's layout: a stream's text is a shared Text.
    ycell = notebook.ycells[0]
    assert isinstance(ycell["outputs"][0]["text"], Text)
    assert view.texts("many") == [("stdout", "".join(f"{i}\n" for i in range(1000)))]
    # 1,000 flushed prints, yet far fewer document updates.
    print(f"\n1,000 flushed prints -> {len(transactions)} document transactions")
    assert len(transactions) < 200
    assert_no_tasks_left()
    view.assert_valid()


async def test_clear_output(shared_kernel: ManagerKernel) -> None:
    notebook = make_notebook(
        code(
            "progress",
            "from IPython.display import clear_output\nimport time\n"
            "for i in range(20):\n"
            "    clear_output(wait=True)\n"
            "    print(f'progress {i}', flush=True)\n"
            "    time.sleep(0.01)",
        ),
        code("now", "print('a', flush=True)\nclear_output()\nprint('b')"),
        code("waiting", "print('x', flush=True)\nclear_output(wait=True)"),
    )
    view, sink = View(notebook), RecordingSink()
    async with executor(notebook, shared_kernel, sink) as ex:
        ex.run_cells(["progress", "now", "waiting"], "alice")
        await view.wait(lambda: view.idle("progress", "now", "waiting"))
    assert view.texts("progress") == [("stdout", "progress 19\n")]
    assert view.texts("now") == [("stdout", "b\n")]
    # wait=True clears at the next output; there was none.
    assert view.texts("waiting") == [("stdout", "x\n")]
    assert_no_tasks_left()
    view.assert_valid()


async def test_update_display_data_replaces_the_displayed_output(
    shared_kernel: ManagerKernel,
) -> None:
    notebook = make_notebook(
        code("shown", "handle = display('first', display_id=True)\ndisplay('other')"),
        code("update", "handle.update('second')"),
        code("same", "h = display('x', display_id='same')\nh.update('y')\nprint('done')"),
    )
    view, sink = View(notebook), RecordingSink()
    async with executor(notebook, shared_kernel, sink) as ex:
        ex.run_cells(["shown"], "alice")
        await view.wait(lambda: view.idle("shown"))
        assert view.texts("shown") == [("display_data", "'first'"), ("display_data", "'other'")]
        ex.run_cells(["update", "same"], "bob")
        await view.wait(lambda: view.idle("update", "same"))
    assert view.texts("shown") == [("display_data", "'second'"), ("display_data", "'other'")]
    assert view.texts("update") == []
    assert view.texts("same") == [("display_data", "'y'"), ("stdout", "done\n")]
    assert_no_tasks_left()
    view.assert_valid()


async def test_error_stops_its_own_request_only(shared_kernel: ManagerKernel) -> None:
    notebook = make_notebook(
        code("ok1", "x = 1"),
        code("boom", "raise ValueError('bad value')"),
        code("after", "print('after')", outputs=STALE),
        code("bobs", "print('bob runs')"),
    )
    view, sink = View(notebook), RecordingSink()
    async with executor(notebook, shared_kernel, sink) as ex:
        ok1, boom, after = ex.run_cells(["ok1", "boom", "after"], "alice")
        (bobs,) = ex.run_cells(["bobs"], "bob")
        await view.wait(lambda: view.idle("ok1", "boom", "after", "bobs"))
    error = view.outputs("boom")[0]
    assert error["output_type"] == "error"
    assert (error["ename"], error["evalue"]) == ("ValueError", "bad value")
    assert any("ValueError" in line for line in error["traceback"])
    assert view.entry("boom")["status"] == "error"
    assert sink.finished[boom] | {"outputs_summary": None, "outputs": None} == {
        "status": "error",
        "execution_count": view.cell("boom")["execution_count"],
        "error_name": "ValueError",
        "error_value": "bad value",
        "outputs_summary": None,
        "outputs": None,
    }
    assert sink.finished[boom]["outputs"] == view.outputs("boom")  # as the document holds them
    # The rest of Alice's request is aborted without running; its old output stays.
    assert view.entry("after")["status"] == "aborted"
    assert view.entry("after")["started_at"] is None
    assert view.texts("after") == [("stdout", "stale\n")]
    assert after not in sink.started_ids and sink.finished[after]["status"] == "aborted"
    # Bob's request still runs.
    assert view.texts("bobs") == [("stdout", "bob runs\n")]
    assert sink.finished[bobs]["status"] == "ok" and sink.finished[ok1]["status"] == "ok"
    assert_no_tasks_left()
    view.assert_valid()


async def test_interrupt_a_busy_loop(shared_kernel: ManagerKernel) -> None:
    notebook = make_notebook(
        code("spin", "print('spinning', flush=True)\nwhile True:\n    pass"),
        code("spin_next", "print('alice next')"),
        code("bob_next", "print('bob next')"),
    )
    view, sink = View(notebook), RecordingSink()
    async with executor(notebook, shared_kernel, sink) as ex:
        spin, _ = ex.run_cells(["spin", "spin_next"], "alice")
        (bob_next,) = ex.run_cells(["bob_next"], "bob")
        await view.wait(lambda: view.texts("spin") == [("stdout", "spinning\n")])
        await ex.interrupt("alice")
        await view.wait(lambda: view.idle("spin", "spin_next", "bob_next"))
    assert view.entry("spin")["status"] == "interrupted"
    assert sink.finished[spin]["status"] == "interrupted"
    assert sink.finished[spin]["error_name"] == "KeyboardInterrupt"
    assert view.texts("spin")[-1][0] == "error"
    assert view.entry("spin_next")["status"] == "aborted"
    assert sink.finished[bob_next]["status"] == "ok"
    assert view.texts("bob_next") == [("stdout", "bob next\n")]
    assert view.kernel.get("by") == "alice" and "interrupted" in view.kernel.get("message")
    assert_no_tasks_left()
    view.assert_valid()


async def test_input_goes_to_the_user_who_ran_the_cell(shared_kernel: ManagerKernel) -> None:
    notebook = make_notebook(
        code("ask", "name = input('Name: ')\nprint('hello', name)"),
        code("secret", "import getpass\nprint(len(getpass.getpass('Secret: ')))"),
    )
    view, sink = View(notebook), RecordingSink()
    async with executor(notebook, shared_kernel, sink) as ex:
        (ask,) = ex.run_cells(["ask"], "alice")
        await view.wait(lambda: ask in view.inputs)
        assert view.inputs.get(ask) == {
            "cell_id": "ask",
            "prompt": "Name: ",
            "password": False,
            "for": "alice",
        }
        # Who may answer is the authorizer's rule (Action.ANSWER_INPUT): the one who ran it.
        assert ex.input_requester(ask) == "alice"
        with pytest.raises(UnknownInputRequest):
            ex.answer_input("no-such-execution", "x")
        with pytest.raises(UnknownInputRequest):
            ex.input_requester("no-such-execution")
        assert ask in view.inputs and view.state("ask") == "running"
        ex.answer_input(ask, "Alice")
        await view.wait(lambda: view.idle("ask"))
        assert view.texts("ask") == [("stdout", "Name: Alice\nhello Alice\n")]
        assert len(view.inputs) == 0

        (secret,) = ex.run_cells(["secret"], "bob")
        await view.wait(lambda: secret in view.inputs)
        assert view.inputs.get(secret)["password"] is True
        ex.answer_input(secret, "hunter2")
        await view.wait(lambda: view.idle("secret"))
    assert view.texts("secret") == [("stdout", "Secret: ········\n7\n")]
    assert "hunter2" not in str(notebook.get())
    assert sink.finished[ask]["status"] == sink.finished[secret]["status"] == "ok"
    assert_no_tasks_left()
    view.assert_valid()


async def test_huge_output_is_truncated_and_the_loop_stays_responsive(
    shared_kernel: ManagerKernel,
) -> None:
    cap = 1024 * 1024
    notebook = make_notebook(
        code(
            "lines",
            "import sys\nchunk = ('x' * 99 + '\\n') * 10_000\n"
            "for _ in range(100):\n    sys.stdout.write(chunk)\n    sys.stdout.flush()",
        ),
        code("one_print", "print('y' * 100_000_000)"),
        code("after", "print('still fine')"),
    )
    view, sink = View(notebook), RecordingSink()
    loop = asyncio.get_running_loop()
    stalls: list[tuple[float, float]] = []  # (late by, of which the loop thread's own CPU)
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            before, cpu = loop.time(), time.thread_time()
            await asyncio.sleep(0.005)
            stalls.append((loop.time() - before - 0.005, time.thread_time() - cpu))

    async with executor(notebook, shared_kernel, sink, max_output_bytes=cap) as ex:
        for cell_id in ("lines", "one_print"):
            stalls.clear()
            stop.clear()
            ticking = asyncio.create_task(ticker())
            start = time.perf_counter()
            with view.count_transactions() as transactions:
                ex.run_cells([cell_id], "alice")
                await view.wait(lambda: view.idle(cell_id), timeout=120)  # noqa: B023
            took = time.perf_counter() - start
            stop.set()
            await ticking
            worst = max(late for late, _ in stalls)
            busiest = max(cpu for _, cpu in stalls)
            print(
                f"\n{cell_id}: 100 MB printed in {took:.2f} s; worst event-loop stall "
                f"{worst * 1000:.1f} ms; most loop-thread CPU in one tick {busiest * 1000:.1f} ms; "
                f"{len(transactions)} document transactions"
            )
            # CPU time, not wall-clock (other processes may slow the machine): no single
            # step of the loop did the work of parsing 100 MB (~370 ms here with
            # jupyter_client's own deserialize), which would freeze every room for that long.
            assert busiest < 0.25
        ex.run_cells(["after"], "bob")
        await view.wait(lambda: view.idle("after"))

    for cell_id, letter in (("lines", "x"), ("one_print", "y")):
        (kind, text), (note_kind, note) = view.texts(cell_id)
        assert kind == "stdout" and len(text) == cap and set(text) <= {letter, "\n"}
        assert note_kind == "display_data" and note.startswith("output truncated: ")
        dropped = view.outputs(cell_id)[1]["metadata"]["collab_server"]["truncated_bytes"]
        assert f"{dropped:,} bytes not shown" in note
        # Counted as sent (JSON-escaped newlines count two bytes): 100 MB less the cap, about.
        assert 0.99 * (100_000_000 - cap) <= dropped <= 1.02 * 100_000_000
    assert view.texts("after") == [("stdout", "still fine\n")]
    assert_no_tasks_left()
    view.assert_valid()


# ---- the kernel's life -----------------------------------------------------------------------


async def test_kernel_death_fails_queued_and_running_cells(own_kernel: ManagerKernel) -> None:
    notebook = make_notebook(
        code("sleep", "print('sleeping', flush=True)\nimport time\ntime.sleep(60)"),
        code("q1", "print(1)", outputs=STALE),
        code("q2", "print(2)"),
        code("q3", "print(3)"),
        code("later", "print('back')"),
    )
    view, sink = View(notebook), RecordingSink()
    cells = ("sleep", "q1", "q2", "q3")
    async with executor(notebook, own_kernel, sink) as ex:
        ids = ex.run_cells(["sleep"], "alice") + ex.run_cells(["q1", "q2"], "bob")
        ids += ex.run_cells(["q3"], "carol")
        await view.wait(lambda: view.texts("sleep") == [("stdout", "sleeping\n")])
        assert [view.state(c) for c in cells] == ["running", "queued", "queued", "queued"]
        old_pid = own_kernel.pid
        os.kill(old_pid, signal.SIGKILL)
        ex.kernel_died()  # as the pool does when it sees the process exit

        for cell_id in cells:
            assert view.state(cell_id) == "idle"
            assert view.entry(cell_id)["status"] == "aborted"
            assert view.cell(cell_id)["execution_state"] == "idle"
            (kind, text) = view.texts(cell_id)[-1]
            assert kind == "error" and text.startswith("KernelDied: The kernel died")
        assert view.texts("sleep")[0] == ("stdout", "sleeping\n")
        assert len(view.texts("q1")) == 1  # the stale output was replaced by the error
        assert view.kernel.get("status") == "restarting"
        assert not ex.busy
        for execution_id in ids:
            assert sink.finished[execution_id]["status"] == "aborted"
            assert sink.finished[execution_id]["error_name"] == "KernelDied"

        await view.wait(lambda: view.kernel.get("status") == "idle")
        assert own_kernel.pid != old_pid
        assert "restarted" in view.kernel.get("message")
        ex.run_cells(["later"], "alice")
        await view.wait(lambda: view.idle("later"))
    assert view.texts("later") == [("stdout", "back\n")]
    assert_no_tasks_left()
    view.assert_valid()


async def test_kernel_death_noticed_without_the_pool(own_kernel: ManagerKernel) -> None:
    notebook = make_notebook(
        code("sleep", "print('sleeping', flush=True)\nimport time\ntime.sleep(60)"),
        code("queued", "print('queued')"),
        code("later", "print('back')"),
    )
    view, sink = View(notebook), RecordingSink()
    async with executor(notebook, own_kernel, sink, liveness_interval=0.5) as ex:
        ids = ex.run_cells(["sleep"], "alice") + ex.run_cells(["queued"], "bob")
        await view.wait(lambda: view.texts("sleep") == [("stdout", "sleeping\n")])
        os.kill(own_kernel.pid, signal.SIGKILL)
        await view.wait(lambda: view.idle("sleep", "queued"))
        assert [sink.finished[i]["status"] for i in ids] == ["aborted", "aborted"]
        assert view.texts("queued")[-1][0] == "error"
        await view.wait(lambda: view.kernel.get("status") == "idle")
        ex.run_cells(["later"], "alice")
        await view.wait(lambda: view.idle("later"))
    assert view.texts("later") == [("stdout", "back\n")]
    assert_no_tasks_left()
    view.assert_valid()


async def test_restart_and_shutdown(own_kernel: ManagerKernel) -> None:
    notebook = make_notebook(
        code("set", "x = 42"),
        code("busy", "print('busy', flush=True)\nimport time\ntime.sleep(60)"),
        code("queued", "print('never')", outputs=STALE),
        code("get", "print(x)"),
    )
    view, sink = View(notebook), RecordingSink()
    async with executor(notebook, own_kernel, sink) as ex:
        ex.run_cells(["set"], "alice")
        busy, queued = ex.run_cells(["busy", "queued"], "alice")
        await view.wait(lambda: view.texts("busy") == [("stdout", "busy\n")])
        await ex.restart("bob")
        assert view.kernel.get("status") == "idle" and view.kernel.get("by") == "bob"
        assert sink.finished[busy]["status"] == sink.finished[queued]["status"] == "aborted"
        assert view.texts("queued") == [("stdout", "stale\n")]
        ex.run_cells(["get"], "alice")
        await view.wait(lambda: view.idle("get"))
        assert view.texts("get")[-1] == ("error", "NameError: name 'x' is not defined")

        await ex.shutdown("carol")
        assert view.kernel.get("status") == "dead" and view.kernel.get("by") == "carol"
        assert not await own_kernel.is_alive()
        with pytest.raises(KernelUnavailable):
            ex.run_cells(["get"], "alice")
    assert_no_tasks_left()
    view.assert_valid()


async def test_a_previous_servers_leftovers_are_reset(shared_kernel: ManagerKernel) -> None:
    notebook = make_notebook(code("c", "1"))
    view, sink = View(notebook), RecordingSink()
    with notebook.ydoc.transaction():
        view.executions["c"] = {"state": "running", "by": "alice", "code": "1", "status": None}
        view.inputs["gone"] = {"cell_id": "c", "prompt": "?", "password": False, "for": "alice"}
        notebook.ycells[0]["execution_state"] = "running"
    async with executor(notebook, shared_kernel, sink):
        assert view.entry("c")["state"] == "idle" and view.entry("c")["status"] == "aborted"
        assert len(view.inputs) == 0
        assert view.cell("c")["execution_state"] == "idle"
        assert view.kernel.get("status") == "idle"
    assert_no_tasks_left()
    view.assert_valid()


# ---- code a kernel client sent -----------------------------------------------------------


class ClientSocket:
    """A kernel client's side: its execute_request, and the messages relayed to it."""

    def __init__(self, code: str) -> None:
        self.msg_id = uuid.uuid4().hex
        self.code = code
        self.got: list[Any] = []
        self.done = asyncio.Event()
        self.unanswered_with: tuple[str | None, str | None] | None = None

    # ClientRequest
    def send(self, client: Any) -> str:
        msg = client.session.msg("execute_request", {"code": self.code, "silent": False})
        msg["header"]["msg_id"] = msg["msg_id"] = self.msg_id
        client.shell_channel.send(msg)
        return self.msg_id

    def unanswered(self, run: Any, error_name: str | None, error_value: str | None) -> None:
        self.unanswered_with = (error_name, error_value)
        self.done.set()

    # MessageWatcher
    def wants(self, msg_type: str, parent_id: str | None) -> bool:
        return parent_id == self.msg_id

    def deliver(self, message: Any) -> None:
        self.got.append(message)
        if message.msg_type == "execute_reply":
            self.done.set()

    def kernel_closed(self) -> None:
        pass


async def test_client_code_runs_in_turn_logged_without_a_cell(shared_kernel: ManagerKernel) -> None:
    notebook = make_notebook(code("a", "import time\ntime.sleep(0.3)\nprint('cell')"))
    view, sink = View(notebook), RecordingSink()
    async with executor(notebook, shared_kernel, sink) as ex:
        client = ClientSocket("print('free')")
        stop = ex.watch(client)
        assert ex.connections == 1
        (cell_run,) = ex.run_cells(["a"], "alice")
        free_run = ex.run_code(client.code, "bob", client)
        async with asyncio.timeout(TIMEOUT):
            await client.done.wait()
        await wait_until(lambda: free_run in sink.finished, timeout=TIMEOUT)  # idle came too
        await view.wait(lambda: view.idle("a"))
        stop()
        assert ex.connections == 0
    assert sink.started_ids == [cell_run, free_run]  # FIFO with the cells
    assert sink.queued[free_run]["cell_id"] is None
    assert sink.queued[free_run]["code"] == "print('free')"
    assert sink.queued[free_run]["username"] == "bob"
    assert sink.finished[free_run]["status"] == "ok" and client.unanswered_with is None
    streams = [m for m in client.got if m.msg_type == "stream"]
    assert len(streams) == 1 and streams[0].channel == "iopub"
    assert json.loads(bytes(streams[0].parts[3]))["text"] == "free\n"
    assert {m.parent_id for m in client.got} == {client.msg_id}
    # The document shows only the cell's run.
    assert view.texts("a") == [("stdout", "cell\n")]
    assert list(view.executions.keys()) == ["a"]
    assert_no_tasks_left()
    view.assert_valid()
