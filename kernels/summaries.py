"""Summaries of a cell's outputs, as the execution log stores them with each run.

A summary is small JSON that any history listing can show: each output's
type, MIME types and sizes, and the first KB of the run's text. The outputs
themselves are kept apart (:mod:`kernels.log`), up to a size limit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

TEXT_LIMIT: Final = 1024
"""Bytes (UTF-8) of text output kept per execution in its summary, over all its outputs."""


def summarize_outputs(outputs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Summarize a cell's nbformat outputs for the log.

    Returns ``{"outputs": [...], "total_size": n}`` with, for each output in
    order: ``output_type``; ``mime_types`` mapping each MIME type to the
    size of its data (characters as nbformat stores it: base64 for binary
    data), with a stream's text counted as "text/plain"; ``name`` for a
    stream; ``ename`` and ``evalue`` (its first KB) for an error. Text
    outputs (streams, "text/plain" data) also get ``text``: the first
    ``TEXT_LIMIT`` bytes of text over all outputs together, in order, and
    ``truncated`` when an output's text is longer than what was kept.
    The summary is the row's ``outputs_summary``; the outputs themselves are
    kept apart, up to ``ExecutionLog.max_kept_output_bytes``. Tolerates
    malformed entries (missing keys are taken as empty).
    """
    summary: list[dict[str, Any]] = []
    budget = TEXT_LIMIT
    total = 0
    for output in outputs:
        output_type = str(output.get("output_type", "unknown"))
        entry: dict[str, Any] = {"output_type": output_type}
        text: str | None = None
        if output_type == "stream":
            text = _joined(output.get("text", ""))
            entry["name"] = str(output.get("name", "stdout"))
            entry["mime_types"] = {"text/plain": len(text)}
        elif output_type == "error":
            traceback = output.get("traceback", [])
            evalue = str(output.get("evalue", ""))
            entry["ename"] = str(output.get("ename", ""))
            entry["evalue"] = _prefix(evalue, TEXT_LIMIT)[0]
            entry["mime_types"] = {}
            entry["traceback_size"] = sum(len(str(line)) for line in traceback)
            total += entry["traceback_size"] + len(evalue)
        else:
            data = output.get("data", {})
            sizes = {str(mime): _size(value) for mime, value in data.items()}
            entry["mime_types"] = sizes
            if "text/plain" in data:
                text = _joined(data["text/plain"])
        total += sum(entry["mime_types"].values())
        if text is not None:
            kept, used = _prefix(text, budget)
            budget -= used
            if kept:
                entry["text"] = kept
            if len(kept) < len(text):
                entry["truncated"] = True
        summary.append(entry)
    return {"outputs": summary, "total_size": total}


def _joined(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return json.dumps(value, ensure_ascii=False)


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return sum(len(v) for v in value)
    return len(json.dumps(value, ensure_ascii=False))


def _prefix(text: str, limit: int) -> tuple[str, int]:
    """The longest prefix of ``text`` of at most ``limit`` UTF-8 bytes, and its size."""
    if limit <= 0:
        return "", 0
    encoded = text[:limit].encode("utf-8")[:limit]
    kept = encoded.decode("utf-8", "ignore")
    return kept, len(kept.encode("utf-8"))
