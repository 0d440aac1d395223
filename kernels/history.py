"""Reading the execution log: queries, CSV and JSON export, rebuilding a notebook.

Every database read runs in a worker thread (``asyncio.to_thread``), never
on the event loop. Reads see what the log's writer has committed; call
``ExecutionLog.barrier()`` first to include everything recorded so far.

Authorization is the caller's job: pass the notebooks a user may read as
``notebook_id``, and check the notebooks of the executions given to
``rebuild_notebook`` (or use ``get`` and :func:`notebook_from_executions`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import io
import json
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Engine, Row, and_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from .log import STATUSES, TEXT_LIMIT, execution_output_refs, execution_outputs, executions

MAX_PAGE: Final = 1000
MAX_REBUILD: Final = 10_000
MAX_REBUILD_OUTPUT_BYTES: Final = 64 * 1024 * 1024
"""Kept outputs one rebuilt notebook takes (bytes of their JSON); the rest are left out."""
_Key = tuple[float, str]  # (queued_at, id): the order of pages, what a cursor holds


class HistoryError(Exception):
    """Base class of errors about a history request."""


class InvalidHistoryQuery(HistoryError, ValueError):
    """A filter, limit or cursor is not valid."""


class ExecutionNotFound(HistoryError, LookupError):
    """Some of the execution ids asked for are not in the log."""

    def __init__(self, missing: Sequence[str]) -> None:
        super().__init__(f"no execution with id {', '.join(missing[:5])}")
        self.missing = list(missing)


@dataclass(frozen=True, slots=True)
class Execution:
    """One row of the log. Times are seconds since the epoch; see ``ExecutionLog``."""

    id: str
    notebook_id: str
    notebook_path: str
    cell_id: str | None
    code: str
    username: str
    kernel_id: str | None
    kernelspec: str | None
    queued_at: float
    started_at: float | None
    finished_at: float | None
    status: str
    execution_count: int | None
    error_name: str | None
    error_value: str | None
    outputs_summary: dict[str, Any] | None
    note: str | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (the summary as a nested object)."""
        return asdict(self)


EXPORT_FIELDS: Final = tuple(f.name for f in fields(Execution))
"""Columns of the CSV export and keys of the JSON export, in order."""


@dataclass(frozen=True, slots=True)
class KeptOutput:
    """One output of an execution as the log kept it: ``output`` is None if it was not kept.

    ``size`` is the bytes of its canonical JSON (``kernels.log.canonical_output``).
    ``left_out``: the log has it, but it did not fit in what was asked for.
    """

    output: dict[str, Any] | None
    size: int
    left_out: bool = False


@dataclass(frozen=True, slots=True)
class _Filter:
    notebook_ids: tuple[str, ...] | None
    usernames: tuple[str, ...] | None
    since: float | None
    until: float | None
    statuses: tuple[str, ...] | None
    text: str | None

    def clauses(self) -> list[ColumnElement[bool]]:
        c = executions.c
        where: list[ColumnElement[bool]] = []
        if self.notebook_ids is not None:
            where.append(c.notebook_id.in_(self.notebook_ids))
        if self.usernames is not None:
            where.append(c.username.in_(self.usernames))
        if self.since is not None:
            where.append(c.queued_at >= self.since)
        if self.until is not None:
            where.append(c.queued_at < self.until)
        if self.statuses is not None:
            where.append(c.status.in_(self.statuses))
        if self.text:
            where.append(c.code.icontains(self.text, autoescape=True))
        return where


def _filter(
    notebook_id: str | Collection[str] | None,
    username: str | Collection[str] | None,
    since: float | datetime | None,
    until: float | datetime | None,
    status: str | Collection[str] | None,
    text: str | None,
) -> _Filter:
    statuses = _strings(status)
    if statuses is not None and not set(statuses) <= STATUSES:
        unknown = sorted(set(statuses) - STATUSES)
        raise InvalidHistoryQuery(f"unknown status {', '.join(unknown)}")
    return _Filter(
        _strings(notebook_id), _strings(username), _seconds(since), _seconds(until), statuses, text
    )


def _strings(value: str | Collection[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


def _seconds(value: float | datetime | None) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else value


def _encode_cursor(row: Execution, oldest_first: bool) -> str:
    raw = json.dumps([row.queued_at, row.id, oldest_first]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, oldest_first: bool) -> _Key:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        queued_at, execution_id, order = json.loads(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError) as e:
        raise InvalidHistoryQuery("invalid cursor") from e
    valid = isinstance(queued_at, (int, float)) and isinstance(execution_id, str)
    if not valid or order is not oldest_first:
        raise InvalidHistoryQuery("invalid cursor (or one from a query in the other order)")
    return float(queued_at), execution_id


def _row_to_execution(row: Row[Any]) -> Execution:
    values = row._asdict()
    summary = values["outputs_summary"]
    values["outputs_summary"] = None if summary is None else json.loads(summary)
    return Execution(**values)


class ExecutionHistory:
    """Queries over the execution log's tables.

    Needs no running ``ExecutionLog`` (a command-line tool can read the
    log); create the tables first (``ExecutionLog.start`` does).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def query(
        self,
        *,
        notebook_id: str | Collection[str] | None = None,
        username: str | Collection[str] | None = None,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
        status: str | Collection[str] | None = None,
        text: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        oldest_first: bool = False,
    ) -> tuple[list[Execution], str | None]:
        """One page of executions, newest first (or oldest first), and the cursor of the next.

        Filters combine with AND; a collection matches any of its values (an
        empty one matches nothing). ``since`` (inclusive) and ``until``
        (exclusive) bound the time the execution was queued. ``text`` is a
        case-insensitive substring of the code, taken literally (``%`` and
        ``_`` are not wildcards). Pages are ordered by (queued_at, id), so
        following ``next_cursor`` (None on the last page) visits every
        matching row exactly once, even while new executions are recorded.
        A cursor only fits a query in the same order. Raises
        InvalidHistoryQuery for an unknown status, a limit outside 1..1000
        or a bad cursor.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidHistoryQuery(f"limit must be between 1 and {MAX_PAGE}")
        where = _filter(notebook_id, username, since, until, status, text)
        after = None if cursor is None else _decode_cursor(cursor, oldest_first)
        rows = await asyncio.to_thread(self._page, where, after, oldest_first, limit + 1)
        if len(rows) <= limit:
            return rows, None
        return rows[:limit], _encode_cursor(rows[limit - 1], oldest_first)

    def _page(
        self, where: _Filter, after: _Key | None, oldest_first: bool, limit: int
    ) -> list[Execution]:
        c = executions.c
        clauses = where.clauses()
        if after is not None and oldest_first:
            q, i = after
            clauses.append(or_(c.queued_at > q, and_(c.queued_at == q, c.id > i)))
        elif after is not None:
            q, i = after
            clauses.append(or_(c.queued_at < q, and_(c.queued_at == q, c.id < i)))
        if oldest_first:
            order = (c.queued_at.asc(), c.id.asc())
        else:
            order = (c.queued_at.desc(), c.id.desc())
        query = select(executions).where(*clauses).order_by(*order).limit(limit)
        with self.engine.connect() as conn:
            return [_row_to_execution(row) for row in conn.execute(query)]

    async def notebooks_of(self, username: str | Collection[str]) -> list[str]:
        """Ids of the notebooks these users ran code in, for filtering by who may see them."""
        names = _strings(username) or ()

        def run() -> list[str]:
            query = select(executions.c.notebook_id).where(executions.c.username.in_(names))
            with self.engine.connect() as conn:
                return sorted(conn.execute(query.distinct()).scalars())

        return await asyncio.to_thread(run)

    async def get(self, execution_ids: Sequence[str]) -> list[Execution]:
        """The executions with these ids, in this order (repeats included).

        Raises ExecutionNotFound naming the ids that are not in the log, and
        InvalidHistoryQuery for more than 10,000 ids.
        """
        if len(execution_ids) > MAX_REBUILD:
            raise InvalidHistoryQuery(f"at most {MAX_REBUILD} executions at a time")
        found = await asyncio.to_thread(self._get, list(dict.fromkeys(execution_ids)))
        missing = [i for i in dict.fromkeys(execution_ids) if i not in found]
        if missing:
            raise ExecutionNotFound(missing)
        return [found[i] for i in execution_ids]

    def _get(self, ids: list[str]) -> dict[str, Execution]:
        found: dict[str, Execution] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                query = select(executions).where(executions.c.id.in_(ids[start : start + 500]))
                for row in conn.execute(query):
                    found[row.id] = _row_to_execution(row)
        return found

    async def kept_outputs(
        self, execution_ids: Sequence[str], max_bytes: int = MAX_REBUILD_OUTPUT_BYTES
    ) -> dict[str, list[KeptOutput]]:
        """The outputs the log kept for these executions, in each one's order.

        At most ``max_bytes`` of outputs are read, taken in the order of
        ``execution_ids``; those that do not fit come back ``left_out``.
        Executions recorded without outputs (none, or logged before outputs
        were kept) are not in the result. Outputs kept once for several
        executions are the same dicts: copy one before changing it.
        """
        ids = list(dict.fromkeys(execution_ids))
        return await asyncio.to_thread(self._kept_outputs, ids, max_bytes)

    def _kept_outputs(self, ids: list[str], max_bytes: int) -> dict[str, list[KeptOutput]]:
        refs, bundles = execution_output_refs.c, execution_outputs.c
        listed: dict[str, list[tuple[str | None, int]]] = {}
        parsed: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                query = (
                    select(refs.execution_id, refs.sha256, refs.size)
                    .where(refs.execution_id.in_(ids[start : start + 500]))
                    .order_by(refs.execution_id, refs.position)
                )
                for execution_id, sha, size in conn.execute(query):
                    listed.setdefault(execution_id, []).append((sha, size))
            room = max_bytes
            taken: list[tuple[str, str | None, int, bool]] = []
            for execution_id in ids:
                for sha, size in listed.get(execution_id, []):
                    fits = sha is not None and size <= room
                    room -= size if fits else 0
                    taken.append((execution_id, sha if fits else None, size, sha is not None))
            wanted = list({sha for _, sha, _, _ in taken if sha is not None})
            for start in range(0, len(wanted), 500):
                bundle_query = select(bundles.sha256, bundles.output).where(
                    bundles.sha256.in_(wanted[start : start + 500])
                )
                for sha, text in conn.execute(bundle_query):
                    parsed[sha] = json.loads(text)
        kept: dict[str, list[KeptOutput]] = {}
        for execution_id, sha, size, in_log in taken:
            value = None if sha is None else parsed.get(sha)
            left_out = in_log and value is None
            kept.setdefault(execution_id, []).append(KeptOutput(value, size, left_out))
        return kept

    async def rebuild_notebook(
        self, execution_ids: Sequence[str], max_output_bytes: int = MAX_REBUILD_OUTPUT_BYTES
    ) -> dict[str, Any]:
        """A new notebook of these executions, in this order; see :func:`notebook_from_executions`.

        It takes at most ``max_output_bytes`` of kept outputs, in order (see
        :meth:`kept_outputs`). Raises ExecutionNotFound if an id is not in the log.
        """
        rows = await self.get(execution_ids)
        kept = await self.kept_outputs(execution_ids, max_output_bytes)
        return notebook_from_executions(rows, kept)

    # ---- export ----------------------------------------------------------------

    def export_csv(
        self,
        *,
        notebook_id: str | Collection[str] | None = None,
        username: str | Collection[str] | None = None,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
        status: str | Collection[str] | None = None,
        text: str | None = None,
        oldest_first: bool = True,
        page_size: int = 500,
    ) -> AsyncIterator[str]:
        """The matching executions as CSV, in chunks of ``page_size`` rows.

        A header row of ``EXPORT_FIELDS``, then one row per execution: None
        as an empty field, times in ISO 8601 UTC to the microsecond
        (``2026-12-07T23:40:01.123456Z``, what spreadsheets and pandas read
        as dates), the output summary as JSON. Values are written verbatim, so
        code beginning with ``=`` or ``+`` is not neutralised for
        spreadsheets. Each chunk is read and formatted in a worker thread,
        one page at a time, so a long history is never in memory at once.
        Filters as in :meth:`query`.
        """
        where = _filter(notebook_id, username, since, until, status, text)
        return self._export(where, oldest_first, page_size, _csv_chunk, _CSV_HEADER, "")

    def export_json(
        self,
        *,
        notebook_id: str | Collection[str] | None = None,
        username: str | Collection[str] | None = None,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
        status: str | Collection[str] | None = None,
        text: str | None = None,
        oldest_first: bool = True,
        page_size: int = 500,
    ) -> AsyncIterator[str]:
        """The matching executions as one JSON array of ``Execution.to_json()`` objects.

        Streamed in chunks of ``page_size`` rows, as :meth:`export_csv`.
        """
        where = _filter(notebook_id, username, since, until, status, text)
        return self._export(where, oldest_first, page_size, _json_chunk, "[", "]\n")

    async def _export(
        self,
        where: _Filter,
        oldest_first: bool,
        page_size: int,
        format_page: Callable[[list[Execution], bool], str],
        head: str,
        tail: str,
    ) -> AsyncIterator[str]:
        if not 1 <= page_size <= MAX_PAGE:
            raise InvalidHistoryQuery(f"page_size must be between 1 and {MAX_PAGE}")

        def page(after: _Key | None, first: bool) -> tuple[str, _Key | None]:
            rows = self._page(where, after, oldest_first, page_size)
            if len(rows) < page_size:
                return format_page(rows, first), None
            return format_page(rows, first), (rows[-1].queued_at, rows[-1].id)

        yield head
        after: _Key | None = None
        first = True
        while True:
            chunk, after = await asyncio.to_thread(page, after, first)
            if chunk:
                yield chunk
                first = False
            if after is None:
                break
        if tail:
            yield tail


def _csv_value(execution: Execution, name: str) -> str:
    value = getattr(execution, name)
    if value is None:
        return ""
    if name == "outputs_summary":
        return json.dumps(value, ensure_ascii=False)
    if name in _TIME_FIELDS:
        return iso_time(value)
    return str(value)


_TIME_FIELDS: Final = frozenset({"queued_at", "started_at", "finished_at"})


def iso_time(seconds: float) -> str:
    """Seconds since the epoch as ISO 8601 UTC with microseconds and a ``Z``."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _csv_chunk(rows: list[Execution], first: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerows([_csv_value(row, name) for name in EXPORT_FIELDS] for row in rows)
    return out.getvalue()


def _csv_header() -> str:
    out = io.StringIO()
    csv.writer(out).writerow(EXPORT_FIELDS)
    return out.getvalue()


_CSV_HEADER: Final = _csv_header()


def _json_chunk(rows: list[Execution], first: bool) -> str:
    if not rows:
        return ""
    body = ",\n".join(json.dumps(row.to_json(), ensure_ascii=False) for row in rows)
    return ("\n" if first else ",\n") + body


# ---- rebuild as notebook ------------------------------------------------------------

_TRUNCATED: Final = f"\n[truncated: the execution log keeps the first {TEXT_LIMIT} bytes of text]\n"


def notebook_from_executions(
    rows: Sequence[Execution], kept_outputs: Mapping[str, Sequence[KeptOutput]] | None = None
) -> dict[str, Any]:
    """A new nbformat 4.5 notebook with one code cell per execution, in order.

    What is rebuilt exactly: each cell's source (the code as it ran), its
    execution count, the order of the runs, and in the cell metadata under
    ``collab_execution`` who ran it, when, and how it ended; the notebook's
    kernelspec name (the first one recorded; its display name is unknown,
    so it repeats the name). Outputs are the ones the log kept
    (``kept_outputs``, by execution id: :meth:`ExecutionHistory.kept_outputs`),
    exactly as the document held them: images, HTML and text, in order.
    Where an output was not kept (beyond ``max_kept_output_bytes``, or run
    before the log kept outputs) or was left out of ``kept_outputs``, it is
    rebuilt from the summary: a stream's or ``text/plain``'s text as the
    summary kept it (the first KB over all of a run's outputs) with a note
    when cut; rich data as a ``text/plain`` note naming each MIME type and
    size that was dropped, and why; an error with its name and value but no
    traceback. ``outputs_are_summaries`` in the
    cell metadata says whether any output was rebuilt that way. Kept HTML and
    JavaScript outputs are in the notebook as they were: the page renders
    them in its sandboxed frames, as it did the originals.
    """
    kept_outputs = kept_outputs or {}
    seen: dict[str, int] = {}
    cells = []
    for row in rows:
        count = seen[row.id] = seen.get(row.id, 0) + 1
        outputs, from_summary = _rebuilt_outputs(row, kept_outputs.get(row.id))
        cells.append(
            {
                "id": row.id if count == 1 else f"{row.id}-{count}",
                "cell_type": "code",
                "source": row.code,
                "execution_count": row.execution_count,
                "metadata": {
                    "collab_execution": {
                        "id": row.id,
                        "notebook_id": row.notebook_id,
                        "notebook_path": row.notebook_path,
                        "cell_id": row.cell_id,
                        "username": row.username,
                        "status": row.status,
                        "queued_at": row.queued_at,
                        "started_at": row.started_at,
                        "finished_at": row.finished_at,
                        "outputs_are_summaries": from_summary,
                    }
                },
                "outputs": outputs,
            }
        )
    kernelspec = next((r.kernelspec for r in rows if r.kernelspec), None)
    metadata: dict[str, Any] = {}
    if kernelspec:
        metadata["kernelspec"] = {"name": kernelspec, "display_name": kernelspec}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": cells}


def _rebuilt_outputs(
    row: Execution, kept: Sequence[KeptOutput] | None
) -> tuple[list[dict[str, Any]], bool]:
    """The run's outputs, and whether any of them was rebuilt from its summary."""
    summary = row.outputs_summary or {}
    entries: list[dict[str, Any]] = list(summary.get("outputs", []))
    if kept is None or len(kept) != len(entries):  # no outputs kept: all from the summary
        outputs = [_from_summary(row, entry, None) for entry in entries]
        return outputs, bool(outputs)
    outputs = []
    for entry, one in zip(entries, kept, strict=True):
        outputs.append(one.output if one.output is not None else _from_summary(row, entry, one))
    return outputs, any(one.output is None for one in kept)


def _from_summary(
    row: Execution, entry: dict[str, Any], dropped: KeptOutput | None
) -> dict[str, Any]:
    """An output rebuilt from its summary entry; ``dropped`` if it was beyond the size limit."""
    output_type = entry.get("output_type")
    mime_types: dict[str, int] = entry.get("mime_types", {})
    text = str(entry.get("text", "")) + (_TRUNCATED if entry.get("truncated") else "")
    if output_type == "stream":
        name = entry.get("name")
        if dropped is not None:
            text += _beyond_limit(dropped)
        return {
            "output_type": "stream",
            "name": name if name in ("stdout", "stderr") else "stdout",
            "text": text,
        }
    if output_type == "error":
        ename, evalue = str(entry.get("ename", "")), str(entry.get("evalue", ""))
        return {
            "output_type": "error",
            "ename": ename,
            "evalue": evalue,
            "traceback": [f"{ename}: {evalue}", "(the execution log keeps no traceback)"],
        }
    not_kept = [f"{mime} ({size:,} characters)" for mime, size in mime_types.items()]
    not_kept = [n for n in not_kept if not n.startswith("text/plain ")]
    if not_kept:
        text += f"[not kept by the execution log: {', '.join(not_kept)}]\n"
    if dropped is not None:
        text += _beyond_limit(dropped)
    rebuilt: dict[str, Any] = {"data": {"text/plain": text}, "metadata": {}}
    if output_type == "execute_result":
        rebuilt["output_type"] = "execute_result"
        rebuilt["execution_count"] = row.execution_count
    else:
        rebuilt["output_type"] = "display_data"
    return rebuilt


def _beyond_limit(dropped: KeptOutput) -> str:
    if dropped.left_out:
        return (
            f"[this output ({dropped.size:,} bytes) is in the execution log but was left out:"
            " the runs chosen have more outputs than one rebuilt notebook takes]\n"
        )
    return (
        f"[this output ({dropped.size:,} bytes) was beyond the execution log's limit"
        " of outputs kept per run (max_kept_output_bytes)]\n"
    )
