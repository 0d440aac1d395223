"""Writing runs, their outputs and the kernel's status into a notebook's document.

:class:`RunWriter` keeps each cell's latest :class:`~kernels.outputs.CellOutputs`
and which run's messages feed it, and writes through one
:class:`~kernels.outputs.NotebookWriter` (batched transactions). It follows
the document contract written down in :mod:`kernels.execution`, and needs
no kernel: iopub messages are handed to it already decoded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jupyter_ydoc import YNotebook

from .errors import NotACodeCell, UnknownCell
from .outputs import OUTPUT_TYPES, CellOutputs, IopubMessage, NotebookWriter
from .runs import InputRequest, Run

log = logging.getLogger(__name__)

Summarize = Callable[[Sequence[Mapping[str, Any]]], Mapping[str, Any]]


class RunWriter:
    """One notebook's run results, written into its document.

    Changes are pending until :meth:`flush` (one transaction) or the
    :meth:`schedule`\\ d flush ``flush_interval`` later. Call everything on
    the document's event loop; :meth:`close` cancels a scheduled flush.
    """

    def __init__(
        self,
        notebook: YNotebook,
        *,
        max_output_bytes: int,
        summarize: Summarize,
        flush_interval: float = 0.05,
    ) -> None:
        self.max_output_bytes = max_output_bytes
        self._writer = NotebookWriter(notebook, flush_interval)
        self._summarize = summarize
        self._produced_by: dict[str, str | None] = {}  # cell id -> code behind its outputs
        self._cells: dict[str, CellOutputs] = {}  # each cell's latest outputs
        self._by_msg: dict[str, CellOutputs] = {}  # execute msg id -> outputs it feeds

    def flush(self) -> None:
        self._writer.flush()

    def schedule(self) -> None:
        self._writer.schedule()

    def close(self) -> None:
        self._writer.close()

    def reset_leftovers(self) -> None:
        """End what a previous server left queued or running as aborted (now, flushed)."""
        self._produced_by.update(self._writer.reset_leftovers())

    def sources(self, cell_ids: Sequence[str]) -> list[str]:
        """Each cell's source now, in order.

        Raises UnknownCell or NotACodeCell for the first cell that is missing
        or not a code cell.
        """
        cells = self._writer.find_cells(set(cell_ids))
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

    # ---- a run's lifecycle ----------------------------------------------------------------

    def publish(self, cell_id: str, run: Run | None) -> None:
        """Make ``run`` the cell's ``executions`` entry (nothing if None)."""
        if run is not None:
            self._writer.set_entry(cell_id, run.entry(self._produced_by.get(cell_id)))

    def start_outputs(self, run: Run) -> None:
        """Give the cell a fresh outputs writer, clearing what it shows."""
        cell_id = cell_of(run)
        old = self._cells.get(cell_id)
        if old is not None:
            self._writer.discard_outputs(old)
            self._by_msg = {k: v for k, v in self._by_msg.items() if v is not old}
        outputs = CellOutputs(cell_id, run.id, self.max_output_bytes)
        outputs.clear()
        run.outputs = outputs
        self._cells[cell_id] = outputs
        self._writer.set_outputs(outputs)
        self._produced_by[cell_id] = run.code

    def running(self, run: Run, msg_id: str) -> None:
        """``run`` was sent as ``msg_id``: its outputs arrive with that parent."""
        assert run.outputs is not None
        self._by_msg[msg_id] = run.outputs
        self._writer.set_cell(cell_of(run), execution_state="running", execution_count=None)

    def stop_outputs(self, run: Run) -> None:
        """Later output messages of ``run`` are ignored."""
        if run.msg_id is not None:
            self._by_msg.pop(run.msg_id, None)

    def add_error(self, run: Run, ename: str, evalue: str) -> None:
        """Add an error output to ``run``'s cell (starting its outputs if it never ran)."""
        if run.outputs is None:
            self.start_outputs(run)
        assert run.outputs is not None
        run.outputs.add_error(ename, evalue, [f"{ename}: {evalue}"])
        self._writer.set_outputs(run.outputs)

    def finished(self, run: Run, execution_count: int | None) -> None:
        """Mark a run's cell idle with its count (only if it started)."""
        if run.outputs is not None:
            self._writer.set_cell(
                cell_of(run), execution_state="idle", execution_count=execution_count
            )

    def document_outputs(self, cell_id: str) -> list[dict[str, Any]] | None:
        """The outputs the document holds for the cell, as the .ipynb has them (flush first).

        Yjs numbers come back as floats; whole ones are made ints again, as
        ``YNotebook.get()`` does, so ``execution_count`` stays valid nbformat.
        """
        outputs = self._writer.cell_outputs(cell_id)
        return None if outputs is None else [_whole_floats_as_ints(o) for o in outputs]

    def summary(self, cell_id: str) -> Mapping[str, Any] | None:
        """The summary of the outputs the document holds for the cell (flush first)."""
        outputs = self._writer.cell_outputs(cell_id)
        return None if outputs is None else self.summarize(cell_id, outputs)

    def summarize(
        self, cell_id: str, outputs: Sequence[Mapping[str, Any]]
    ) -> Mapping[str, Any] | None:
        """The summary of a cell's ``outputs``, or None (logged) if summarizing failed."""
        try:
            return self._summarize(outputs)
        except Exception:
            log.exception("summarizing the outputs of cell %s failed", cell_id)
            return None

    # ---- messages -------------------------------------------------------------------------

    def add_output(self, message: IopubMessage) -> bool:
        """Add an output message to the cell its parent feeds; whether one took it."""
        if message.msg_type not in OUTPUT_TYPES:
            return False
        outputs = self._by_msg.get(message.parent_id or "")
        if outputs is None:
            return False
        outputs.add_message(message)
        self._writer.set_outputs(outputs)
        return True

    def update_display(self, message: IopubMessage) -> None:
        """Apply an ``update_display_data`` to every output with its display id."""
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

    # ---- input requests and the kernel ----------------------------------------------------

    def input_requested(self, request: InputRequest) -> None:
        run = request.run
        self._writer.set_input_request(
            run.id,
            {
                "cell_id": run.cell_id,
                "prompt": request.prompt,
                "password": request.password,
                "for": run.username,
            },
        )

    def input_answered(self, request: InputRequest, value: str | None) -> None:
        """Remove the request; echo the answer (``value``) into the cell, as JupyterLab does."""
        self._writer.set_input_request(request.run.id, None)
        outputs = request.run.outputs
        if value is not None and outputs is not None:
            shown = "········" if request.password else value
            outputs.add_stream("stdout", f"{request.prompt}{shown}\n")
            self._writer.set_outputs(outputs)

    def set_kernel(self, status: str, name: str, message: str, by: str | None) -> None:
        self._writer.set_kernel({"status": status, "name": name, "message": message, "by": by})


def _whole_floats_as_ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_floats_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_floats_as_ints(v) for v in value]
    return value




def cell_of(run: Run) -> str:
    """The cell ``run`` writes into; ValueError for a kernel client's code (it has none)."""
    if run.cell_id is None:
        raise ValueError(f"execution {run.id} runs a kernel client's code: it has no cell")
    return run.cell_id


__all__ = ["RunWriter", "Summarize", "cell_of"]
