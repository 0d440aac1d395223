"""Writing runs into a real pycrdt YNotebook, without a kernel.

:class:`kernels.results.RunWriter` gets iopub messages packed by a real
jupyter_client ``Session``, as the kernel's channels hand them over, and a
second document synced from the first shows what every collaborator reads.
"""

from __future__ import annotations

from typing import Any

import nbformat
import pytest
from jupyter_client.session import Session
from jupyter_ydoc import YNotebook
from pycrdt import Doc, Map

from kernels.errors import NotACodeCell, UnknownCell
from kernels.log import summarize_outputs
from kernels.outputs import IopubMessage
from kernels.results import RunWriter
from kernels.runs import Batch, InputRequest, Run

pytestmark = pytest.mark.asyncio

STALE = [{"output_type": "stream", "name": "stdout", "text": "stale\n"}]


def notebook() -> YNotebook:
    nb = YNotebook(Doc())
    nb.set(
        {
            "cells": [
                {
                    "id": "c1",
                    "cell_type": "code",
                    "source": "print('hi')",
                    "metadata": {},
                    "outputs": STALE,
                    "execution_count": 3,
                },
                {"id": "m1", "cell_type": "markdown", "source": "# Title", "metadata": {}},
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )
    return nb


def peer_of(source: YNotebook) -> YNotebook:
    """Another client's copy: the source document's full state applied to a new Doc."""
    doc: Doc[Any] = Doc()
    doc.apply_update(source.ydoc.get_update())
    return YNotebook(doc)


def message(
    session: Session, msg_type: str, parent_id: str, content: dict[str, Any]
) -> IopubMessage:
    return IopubMessage(msg_type, parent_id, memoryview(session.pack(content)), session)


def writer(nb: YNotebook) -> RunWriter:
    return RunWriter(nb, max_output_bytes=1024 * 1024, summarize=summarize_outputs)


def cell(nb: YNotebook, cell_id: str) -> dict[str, Any]:
    for index in range(nb.cell_number):
        found = nb.get_cell(index)
        if found["id"] == cell_id:
            found["execution_state"] = nb.ycells[index].get("execution_state")
            return found
    raise KeyError(cell_id)


async def test_a_run_clears_the_cell_streams_into_it_and_ends_idle_with_its_count() -> None:
    nb, session = notebook(), Session()
    results = writer(nb)
    run = Run("ex-1", "c1", "print('hi')", "alice", Batch(), 1.0)
    try:
        results.start_outputs(run)
        run.msg_id = "msg-1"
        results.running(run, "msg-1")
        results.flush()
        peer = peer_of(nb)
        assert cell(peer, "c1")["outputs"] == []  # cleared when it starts
        assert cell(peer, "c1")["execution_state"] == "running"
        assert cell(peer, "c1")["execution_count"] is None

        stream = {"name": "stdout", "text": "hi\n"}
        assert results.add_output(message(session, "stream", "msg-1", stream))
        more = {**stream, "text": "there\n"}
        assert results.add_output(message(session, "stream", "msg-1", more))
        assert not results.add_output(message(session, "stream", "other", stream))  # not ours
        status = {"execution_state": "idle"}
        assert not results.add_output(message(session, "status", "msg-1", status))
        results.finished(run, 4)
        run.state, run.status = "idle", "ok"
        results.publish("c1", run)
        results.flush()

        peer = peer_of(nb)
        shown = cell(peer, "c1")
        assert shown["outputs"] == [
            {"output_type": "stream", "name": "stdout", "text": "hi\nthere\n"}
        ]
        assert (shown["execution_state"], shown["execution_count"]) == ("idle", 4)
        entry = peer.ydoc.get("executions", type=Map).to_py()["c1"]
        assert (entry["by"], entry["status"], entry["code"]) == ("alice", "ok", "print('hi')")
        assert results.summary("c1") == summarize_outputs(shown["outputs"])
        nbformat.validate(nbformat.from_dict(peer.get()))

        results.stop_outputs(run)  # a late message of an ended run changes nothing
        assert not results.add_output(message(session, "stream", "msg-1", stream))
    finally:
        results.close()


async def test_sources_refuse_missing_and_non_code_cells() -> None:
    nb = notebook()
    results = writer(nb)
    assert results.sources(["c1"]) == ["print('hi')"]
    with pytest.raises(UnknownCell):
        results.sources(["c1", "nope"])
    with pytest.raises(NotACodeCell):
        results.sources(["m1"])


async def test_an_error_for_a_run_that_never_started_replaces_the_stale_outputs() -> None:
    nb = notebook()
    results = writer(nb)
    run = Run("ex-2", "c1", "print('hi')", "bob", Batch(), 1.0)
    results.add_error(run, "KernelDied", "The kernel died before this cell ran.")
    results.flush()
    outputs = cell(peer_of(nb), "c1")["outputs"]
    assert [(o["output_type"], o["ename"], o["evalue"]) for o in outputs] == [
        ("error", "KernelDied", "The kernel died before this cell ran.")
    ]


async def test_update_display_data_replaces_the_output_with_that_display_id() -> None:
    nb, session = notebook(), Session()
    results = writer(nb)
    run = Run("ex-3", "c1", "display", "alice", Batch(), 1.0)
    results.start_outputs(run)
    results.running(run, "msg-3")
    shown = {"data": {"text/plain": "0%"}, "metadata": {}, "transient": {"display_id": "bar"}}
    results.add_output(message(session, "display_data", "msg-3", shown))
    update = {**shown, "data": {"text/plain": "100%"}}
    results.update_display(message(session, "update_display_data", "later", update))
    results.flush()
    outputs = cell(peer_of(nb), "c1")["outputs"]
    assert [o["data"]["text/plain"] for o in outputs] == ["100%"]


async def test_an_input_request_shows_for_its_user_and_the_answer_is_echoed() -> None:
    nb = notebook()
    results = writer(nb)
    run = Run("ex-4", "c1", "input()", "alice", Batch(), 1.0)
    results.start_outputs(run)
    results.running(run, "msg-4")
    request = InputRequest(run, "Name: ", False)
    results.input_requested(request)
    results.flush()
    inputs = peer_of(nb).ydoc.get("input_requests", type=Map).to_py()
    assert inputs == {
        "ex-4": {"cell_id": "c1", "prompt": "Name: ", "password": False, "for": "alice"}
    }
    results.input_answered(request, "Ada")
    secret = InputRequest(run, "Password: ", True)
    results.input_requested(secret)
    results.input_answered(secret, "hunter2")
    results.flush()
    peer = peer_of(nb)
    assert peer.ydoc.get("input_requests", type=Map).to_py() == {}
    assert cell(peer, "c1")["outputs"] == [
        {"output_type": "stream", "name": "stdout", "text": "Name: Ada\nPassword: ········\n"}
    ]


async def test_the_kernel_status_is_written_as_the_page_reads_it() -> None:
    nb = notebook()
    results = writer(nb)
    results.set_kernel("restarting", "python3", "bob is restarting the kernel.", "bob")
    results.flush()
    assert peer_of(nb).ydoc.get("kernel", type=Map).to_py() == {
        "status": "restarting",
        "name": "python3",
        "message": "bob is restarting the kernel.",
        "by": "bob",
    }


async def test_leftovers_of_a_previous_server_end_aborted_and_keep_their_code() -> None:
    nb = notebook()
    nb.ydoc.get("executions", type=Map)["c1"] = {
        "state": "running",
        "by": "alice",
        "execution_id": "old",
        "queued_at": 1.0,
        "started_at": 2.0,
        "finished_at": None,
        "status": None,
        "code": "print('old')",
    }
    results = writer(nb)
    results.reset_leftovers()
    entry = peer_of(nb).ydoc.get("executions", type=Map).to_py()["c1"]
    assert (entry["state"], entry["status"]) == ("idle", "aborted")
    run = Run("ex-5", "c1", "print('hi')", "bob", Batch(), 3.0)
    results.publish("c1", run)  # queued: the outputs shown still come from the old code
    results.flush()
    assert peer_of(nb).ydoc.get("executions", type=Map).to_py()["c1"]["code"] == "print('old')"
