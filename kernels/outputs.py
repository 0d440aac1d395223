"""What the executor writes into a notebook's document, from kernel messages.

* :func:`decode_iopub` reads an iopub message without parsing its content;
  the signature of a large one is checked in a thread, and a very large
  stream message is only partly decoded (:func:`split_large_stream`): a
  kernel printing 100 MB in one ``print`` must not stop the event loop for
  the second that parsing all of it takes.
* :class:`CellOutputs` turns one execution's messages (stream,
  display_data, execute_result, error, clear_output, update_display_data)
  into pending operations on its cell's ``outputs``, coalesced between two
  flushes, so a cell printing a million lines costs a handful of document
  updates, not a million: consecutive stream text of one name is joined
  (and appended to the last output's text when that is the same stream, as
  JupyterLab does); ``clear_output(wait=True)`` clears at the next output,
  ``clear_output()`` at once, and what was pending before is dropped
  unwritten; displays with a display id are remembered so that
  ``update_display_data`` replaces them; what the cell shows is capped at
  ``max_bytes``, beyond which output is dropped (errors excepted) and one
  note output says how much.
* :class:`NotebookWriter` applies all pending changes (outputs, cell
  fields, the ``executions``, ``kernel`` and ``input_requests`` maps) in one
  transaction per flush.

The layout follows jupyter-ydoc's ``YNotebook``: each output is a ``Map`` of
its nbformat keys; a stream output's ``text`` is a ``Text``. The layout of
the three maps is documented in :mod:`kernels.execution`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import zmq
from jupyter_client.session import Session
from jupyter_ydoc import YNotebook
from pycrdt import Array, Doc, Map, Text

log = logging.getLogger(__name__)

NOTE_MARKER: Final = "collab_server"
"""Key in the truncation note's ``metadata`` (``{"truncated_bytes": n}``)."""

DISPLAY_TYPES: Final = ("display_data", "execute_result")
OUTPUT_TYPES: Final = frozenset(
    {"stream", "display_data", "execute_result", "error", "clear_output"}
)

LARGE_MESSAGE: Final = 256 * 1024
"""iopub messages larger than this are verified off the loop and parsed only as needed."""

_DELIM: Final = b"<IDS|MSG>"


def utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def utf8_prefix(text: str, limit: int) -> str:
    """The longest prefix of ``text`` of at most ``limit`` UTF-8 bytes."""
    if limit <= 0:
        return ""
    return text[:limit].encode("utf-8")[:limit].decode("utf-8", "ignore")


def truncation_note(dropped: int, max_bytes: int) -> str:
    return (
        f"output truncated: {dropped:,} bytes not shown "
        f"(this server shows at most {_human(max_bytes)} of output per cell)"
    )


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024:
            break
    return f"{value:.3g} {unit}"


# ---- iopub messages -------------------------------------------------------------------


@dataclass
class IopubMessage:
    """An iopub message whose content is still the JSON frame (see :meth:`parse`)."""

    msg_type: str
    parent_id: str | None
    content: memoryview
    session: Session
    wire: tuple[memoryview, ...] = ()
    """The header, parent header, metadata and content frames, then the buffers."""

    def parse(self) -> dict[str, Any]:
        content: dict[str, Any] = self.session.unpack(bytes(self.content))
        return content


async def decode_iopub(session: Session, frames: Sequence[zmq.Frame]) -> IopubMessage:
    """Verify and decode one iopub message (as received with ``copy=False``).

    The signature of a large message is checked in a thread (hashing
    releases the GIL). Raises ValueError if the signature is wrong.
    """
    parts = [frame.buffer for frame in frames]
    delimiter = next(
        (i for i, p in enumerate(parts) if len(p) == len(_DELIM) and p.tobytes() == _DELIM), None
    )
    if delimiter is None or len(parts) < delimiter + 6:
        raise ValueError("malformed message")
    signature, header, parent, metadata, content = parts[delimiter + 1 : delimiter + 6]
    if session.auth is not None:
        signed = [header, parent, metadata, content]
        if len(content) > LARGE_MESSAGE:
            check = await asyncio.to_thread(session.sign, signed)
        else:
            check = session.sign(signed)
        if not hmac.compare_digest(bytes(signature), check):
            raise ValueError("invalid message signature")
    header_dict = session.unpack(bytes(header))
    parent_dict = session.unpack(bytes(parent))
    wire = tuple(parts[delimiter + 2 :])
    return IopubMessage(
        str(header_dict["msg_type"]), parent_dict.get("msg_id"), content, session, wire
    )


# ---- pending operations -------------------------------------------------------------


@dataclass
class _Clear:
    pass


@dataclass
class _Stream:
    name: str
    chunks: list[str] = field(default_factory=list)


@dataclass
class _Append:
    output: dict[str, Any]


@dataclass
class _Note:
    pass


@dataclass
class _Update:
    index: int
    data: dict[str, Any]
    metadata: dict[str, Any]


_Op = _Clear | _Stream | _Append | _Note | _Update


class CellOutputs:
    """The outputs one execution writes into one cell (see the module docstring).

    All methods are synchronous and cheap; nothing touches the document
    until :meth:`apply`, which the executor calls inside a transaction with
    the cell's ``outputs`` array. Indices of displayed outputs are tracked
    from what this object wrote; if a client edits the outputs while the
    cell runs, a display update only ever lands on a display-type output.
    """

    def __init__(self, cell_id: str, execution_id: str, max_bytes: int) -> None:
        self.cell_id = cell_id
        self.execution_id = execution_id
        self.max_bytes = max_bytes
        self._ops: list[_Op] = []
        self._clear_on_next = False
        self._shown = 0
        self._dropped = 0
        self._note_index: int | None = None
        self._note_dirty = False
        self._count = 0  # outputs this object has put in the cell since its last clear
        self._last_stream: str | None = None
        self._displays: dict[str, list[int]] = {}

    # ---- what the kernel sent ----------------------------------------------------------

    @property
    def pending(self) -> bool:
        return bool(self._ops) or self._note_dirty

    def stream_room(self) -> int:
        """How many bytes of the next output would be shown."""
        if self._clear_on_next:
            return self.max_bytes
        if self._note_index is not None:
            return 0
        return max(0, self.max_bytes - self._shown)

    def add_message(self, message: IopubMessage) -> None:
        """Take one of the execution's output messages (a type in ``OUTPUT_TYPES``).

        Content that would not be shown is not even parsed.
        """
        msg_type = message.msg_type
        size = len(message.content)
        if msg_type == "stream" and size > LARGE_MESSAGE:
            room = self.stream_room()
            if room == 0:
                self.add_dropped(size)
                return
            split = split_large_stream(message.content, room)
            if split is not None:
                self.add_stream(*split)
                return
        if msg_type in DISPLAY_TYPES and size > self.stream_room():
            self.add_dropped(size)
            return
        content = message.parse()
        if msg_type == "stream":
            self.add_stream(str(content.get("name", "stdout")), str(content.get("text", "")))
        elif msg_type in DISPLAY_TYPES:
            display_id = (content.get("transient") or {}).get("display_id")
            count = content.get("execution_count")
            self.add_data(
                msg_type,
                content.get("data") or {},
                content.get("metadata") or {},
                size,
                int(count) if isinstance(count, int | float) else None,
                None if display_id is None else str(display_id),
            )
        elif msg_type == "error":
            self.add_error(
                str(content.get("ename", "")),
                str(content.get("evalue", "")),
                [str(line) for line in content.get("traceback") or []],
            )
        elif msg_type == "clear_output":
            self.clear(wait=bool(content.get("wait")))

    def clear(self, wait: bool = False) -> None:
        """``clear_output``: now, or (``wait``) just before the next output."""
        if wait:
            self._clear_on_next = True
        else:
            self._clear_now()

    def add_stream(self, name: str, text: str, more_bytes: int = 0) -> None:
        """Append stream text; ``more_bytes`` is text that followed it but was not decoded."""
        self._before_output()
        room = self.stream_room()
        size = utf8_size(text)
        dropped = more_bytes
        if size > room:
            kept = utf8_prefix(text, room)
            kept_size = utf8_size(kept)
            dropped += size - kept_size
            text, size = kept, kept_size
        if text:
            self._shown += size
            last = self._ops[-1] if self._ops else None
            if isinstance(last, _Stream) and last.name == name:
                last.chunks.append(text)
            else:
                self._ops.append(_Stream(name, [text]))
            if self._last_stream != name:
                self._count += 1
                self._last_stream = name
        self._drop(dropped)

    def add_data(
        self,
        output_type: str,
        data: dict[str, Any],
        metadata: dict[str, Any],
        size: int,
        execution_count: int | None = None,
        display_id: str | None = None,
    ) -> None:
        """Append a ``display_data`` or ``execute_result`` output of ``size`` bytes."""
        self._before_output()
        if size > self.stream_room():
            self._drop(size)
            return
        output: dict[str, Any] = {"output_type": output_type, "data": data, "metadata": metadata}
        if output_type == "execute_result":
            output["execution_count"] = execution_count
        self._append(output, size)
        if display_id is not None:
            self._displays.setdefault(display_id, []).append(self._count - 1)

    def add_error(self, ename: str, evalue: str, traceback: Sequence[str]) -> None:
        """Append an error output; errors are shown even beyond the cap."""
        self._before_output()
        output = {
            "output_type": "error",
            "ename": ename,
            "evalue": evalue,
            "traceback": list(traceback),
        }
        self._append(output, sum(utf8_size(line) for line in traceback) + utf8_size(evalue))

    def add_dropped(self, size: int) -> None:
        """An output too large to show arrived (and was not even decoded)."""
        self._before_output()
        self._drop(size)

    def update_display(
        self, display_id: str, data: dict[str, Any], metadata: dict[str, Any]
    ) -> bool:
        """Replace the outputs displayed with ``display_id``; False if there are none here."""
        indices = self._displays.get(display_id)
        if not indices:
            return False
        for index in indices:
            if not self._replace_pending_update(index, data, metadata):
                self._ops.append(_Update(index, data, metadata))
        return True

    def _replace_pending_update(
        self, index: int, data: dict[str, Any], metadata: dict[str, Any]
    ) -> bool:
        """Fold an update into a pending one of the same output (a tight update loop)."""
        for op in reversed(self._ops):
            if not isinstance(op, _Update):
                return False
            if op.index == index:
                op.data, op.metadata = data, metadata
                return True
        return False

    def discard_pending(self) -> None:
        self._ops.clear()
        self._note_dirty = False

    def _before_output(self) -> None:
        if self._clear_on_next:
            self._clear_now()

    def _clear_now(self) -> None:
        self._ops = [_Clear()]
        self._clear_on_next = False
        self._shown = 0
        self._dropped = 0
        self._note_index = None
        self._note_dirty = False
        self._count = 0
        self._last_stream = None
        self._displays.clear()

    def _append(self, output: dict[str, Any], size: int) -> None:
        self._ops.append(_Append(output))
        self._shown += size
        self._count += 1
        self._last_stream = None

    def _drop(self, size: int) -> None:
        if size <= 0:
            return
        self._dropped += size
        self._note_dirty = True
        if self._note_index is None:
            self._note_index = self._count
            self._count += 1
            self._last_stream = None
            self._ops.append(_Note())

    # ---- into the document ---------------------------------------------------------

    def apply(self, outputs: Array[Any]) -> None:
        """Write the pending operations into the cell's ``outputs``; call inside a transaction."""
        ops, self._ops = self._ops, []
        for op in ops:
            if isinstance(op, _Clear):
                outputs.clear()
            elif isinstance(op, _Stream):
                _append_stream(outputs, op.name, "".join(op.chunks))
            elif isinstance(op, _Append):
                outputs.append(_output_map(op.output))
            elif isinstance(op, _Note):
                outputs.append(Map(self._note_output()))
            elif isinstance(op, _Update) and op.index < len(outputs):
                target = outputs[op.index]
                if isinstance(target, Map) and target.get("output_type") in DISPLAY_TYPES:
                    target["data"] = op.data
                    target["metadata"] = op.metadata
        if self._note_dirty and self._note_index is not None:
            self._note_dirty = False
            if self._note_index < len(outputs):
                note = outputs[self._note_index]
                if isinstance(note, Map) and NOTE_MARKER in (note.get("metadata") or {}):
                    fresh = self._note_output()
                    note["data"] = fresh["data"]
                    note["metadata"] = fresh["metadata"]

    def _note_output(self) -> dict[str, Any]:
        return {
            "output_type": "display_data",
            "data": {"text/plain": truncation_note(self._dropped, self.max_bytes)},
            "metadata": {NOTE_MARKER: {"truncated_bytes": self._dropped}},
        }


def _append_stream(outputs: Array[Any], name: str, text: str) -> None:
    if len(outputs):
        last = outputs[len(outputs) - 1]
        if (
            isinstance(last, Map)
            and last.get("output_type") == "stream"
            and last.get("name") == name
        ):
            current = last.get("text")
            if isinstance(current, Text):
                current += text
            else:
                last["text"] = Text(f"{current or ''}{text}")
            return
    outputs.append(_output_map({"output_type": "stream", "name": name, "text": text}))


def _output_map(output: Mapping[str, Any]) -> Map[Any]:
    """An nbformat output as jupyter-ydoc stores it (a stream's text as ``Text``)."""
    values = dict(output)
    if values.get("output_type") == "stream":
        values["text"] = Text(str(values.get("text", "")))
    return Map(values)


# ---- the document ---------------------------------------------------------------------


class NotebookWriter:
    """Applies the executor's changes to the notebook's document, batched.

    Changes wait here until :meth:`flush` writes them all in one
    transaction: at once (a cell starting or ending, the kernel changing
    state) or, with :meth:`schedule`, at most once per ``interval`` seconds
    (output streaming in). Cells are found by id at each flush, so a cell
    moved or deleted meanwhile is handled (a deleted cell's outputs are
    dropped). Call from the event loop only.
    """

    def __init__(self, notebook: YNotebook, interval: float) -> None:
        self._positions: dict[str, int] = {}
        self.notebook = notebook
        self.doc: Doc[Any] = notebook.ydoc
        self.executions: Map[Any] = self.doc.get("executions", type=Map)
        self.kernel: Map[Any] = self.doc.get("kernel", type=Map)
        self.input_requests: Map[Any] = self.doc.get("input_requests", type=Map)
        self.interval = interval
        self._outputs: dict[CellOutputs, None] = {}
        self._cells: dict[str, dict[str, Any]] = {}
        self._entries: dict[str, dict[str, Any]] = {}
        self._kernel: dict[str, Any] | None = None
        self._inputs: dict[str, dict[str, Any] | None] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._last_flush = 0.0

    def set_outputs(self, outputs: CellOutputs) -> None:
        """Write ``outputs``' pending operations at the next flush."""
        self._outputs[outputs] = None

    def discard_outputs(self, outputs: CellOutputs) -> None:
        self._outputs.pop(outputs, None)

    def set_cell(self, cell_id: str, **fields: Any) -> None:
        """Set keys of the cell (``execution_state``, ``execution_count``)."""
        self._cells.setdefault(cell_id, {}).update(fields)

    def set_entry(self, cell_id: str, entry: dict[str, Any]) -> None:
        self._entries[cell_id] = entry

    def set_kernel(self, fields: dict[str, Any]) -> None:
        self._kernel = fields

    def set_input_request(self, execution_id: str, request: dict[str, Any] | None) -> None:
        self._inputs[execution_id] = request

    def schedule(self) -> None:
        """Flush soon: now if the last flush is ``interval`` old, else when it is."""
        if self._handle is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last_flush + self.interval - loop.time())
        self._handle = loop.call_later(delay, self.flush)

    def flush(self) -> None:
        """Write everything pending in one transaction (nothing if nothing is)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._last_flush = asyncio.get_running_loop().time()
        if self._outputs or self._cells or self._entries or self._kernel or self._inputs:
            try:
                self._write()
            except Exception:
                log.exception("writing execution results into the document failed")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _write(self) -> None:
        outputs, self._outputs = list(self._outputs), {}
        cells, self._cells = self._cells, {}
        entries, self._entries = self._entries, {}
        kernel, self._kernel = self._kernel, None
        inputs, self._inputs = self._inputs, {}
        with self.doc.transaction():
            ycells = self.find_cells({o.cell_id for o in outputs} | set(cells))
            for writer in outputs:
                ycell = ycells.get(writer.cell_id)
                if ycell is None:
                    writer.discard_pending()
                    continue
                if not isinstance(ycell.get("outputs"), Array):
                    ycell["outputs"] = Array()
                writer.apply(ycell["outputs"])
            for cell_id, values in cells.items():
                if (ycell := ycells.get(cell_id)) is not None:
                    for key, value in values.items():
                        ycell[key] = value
            for cell_id, entry in entries.items():
                self.executions[cell_id] = entry
            for key, value in (kernel or {}).items():
                if key not in self.kernel or self.kernel[key] != value:
                    self.kernel[key] = value
            for execution_id, request in inputs.items():
                if request is not None:
                    self.input_requests[execution_id] = request
                elif execution_id in self.input_requests:
                    del self.input_requests[execution_id]

    def find_cells(self, cell_ids: set[str]) -> dict[str, Map[Any]]:
        """The cells with these ids (the first one, if a client duplicated an id)."""
        found: dict[str, Map[Any]] = {}
        if not cell_ids:
            return found
        cells = self.notebook.ycells
        count = len(cells)
        # Where each cell was last seen: a hint, checked before use (never a
        # reference to a shared type, which another client may delete).
        for cell_id in cell_ids:
            index = self._positions.get(cell_id)
            if index is not None and index < count:
                ycell = cells[index]
                if isinstance(ycell, Map) and ycell.get("id") == cell_id:
                    found[cell_id] = ycell
        if len(found) == len(cell_ids):
            return found
        first: dict[str, int] = {}
        for index, ycell in enumerate(cells):
            if not isinstance(ycell, Map):  # a client put something else in the list
                continue
            seen_id = ycell.get("id")
            if isinstance(seen_id, str) and seen_id not in first:
                first[seen_id] = index
                if seen_id in cell_ids:
                    found[seen_id] = ycell
        self._positions = first
        return found

    def cell_outputs(self, cell_id: str) -> list[dict[str, Any]] | None:
        """The cell's outputs as nbformat dicts, or None if it has none (or is gone)."""
        ycell = self.find_cells({cell_id}).get(cell_id)
        outputs = ycell.get("outputs") if ycell is not None else None
        if not isinstance(outputs, Array):
            return None
        result: list[dict[str, Any]] = outputs.to_py() or []
        return result

    def reset_leftovers(self) -> dict[str, str | None]:
        """Mark what a previous server left queued or running as aborted; flush.

        Returns each cell's ``code`` from its entry (what produced its outputs).
        """
        codes: dict[str, str | None] = {}
        for cell_id, entry in self.executions.items():
            if not isinstance(entry, dict):
                continue
            codes[cell_id] = entry.get("code")
            if entry.get("state") != "idle":
                self.set_entry(cell_id, {**entry, "state": "idle", "status": "aborted"})
                self.set_cell(cell_id, execution_state="idle")
        for execution_id in list(self.input_requests.keys()):
            self.set_input_request(execution_id, None)
        self.flush()
        return codes


# ---- reading very large stream messages ------------------------------------------------

_STREAM_START = re.compile(rb'\{\s*"name"\s*:\s*"(stdout|stderr)"\s*,\s*"text"\s*:\s*"')


def split_large_stream(content: memoryview, limit: int) -> tuple[str, str, int] | None:
    """Decode only the first ``limit`` bytes of a stream message's text.

    ``content`` is the message's JSON content frame. Returns ``(name,
    text_prefix, undecoded_bytes)``: the prefix is ``limit`` UTF-8 bytes of
    text (or all of it), and ``undecoded_bytes`` counts the rest as encoded
    in the message (a JSON-escaped newline counts two). Returns None when
    the frame does not have the shape kernels send (``{"name": ...,
    "text": ...}``); the caller then parses it whole.
    """
    match = _STREAM_START.match(bytes(content[:64]))
    if match is None or bytes(content[-2:]) != b'"}':
        return None
    position, end = match.end(), len(content) - 2
    pieces: list[str] = []
    size = 0
    # JSON escapes make the encoded text longer than the text: decode in
    # rounds until the prefix reaches ``limit``.
    for _ in range(100):
        want = limit - size
        if want <= 0 or position >= end:
            break
        chunk = bytes(content[position : min(end, position + max(want, 12))])
        decoded = _decode_json_string_prefix(chunk)
        if decoded is None:
            return None
        text, used = decoded
        kept = utf8_prefix(text, want)
        if len(kept) < len(text):  # the last round: count what was cut as encoded
            pieces.append(kept)
            position += len(json.dumps(kept, ensure_ascii=False).encode()) - 2
            break
        pieces.append(text)
        size += utf8_size(text)
        position += used
    return match.group(1).decode(), "".join(pieces), end - position


def _decode_json_string_prefix(chunk: bytes) -> tuple[str, int] | None:
    """Decode the longest prefix of ``chunk`` (the inside of a JSON string) that is whole.

    Backs off over a cut escape sequence or a cut UTF-8 character; returns
    the text and how many bytes of ``chunk`` it used.
    """
    for cut in range(len(chunk), max(len(chunk) - 12, 0) - 1, -1):
        try:
            text = json.loads(b'"' + chunk[:cut] + b'"')
        except ValueError:
            continue
        if isinstance(text, str):
            return text, cut
    return None
