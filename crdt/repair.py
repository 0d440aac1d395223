"""Turn whatever a document holds into a valid nbformat 4.5 notebook.

Editors may write any valid Yjs update into a room, including ones that put
unexpected types where the YNotebook schema expects cells (a string in
``cells``, a number as ``source``, an unknown ``cell_type``). The document
keeps what they wrote (a CRDT cannot refuse half of a peer's history), but
what the server derives from it, the saved ``.ipynb`` and downloads, is
always a notebook nbformat accepts: unusable entries are dropped, wrong
types replaced by empty values, duplicate ids renamed.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

import nbformat
from jupyter_ydoc import YNotebook
from pycrdt import Array, Doc, Map

log = logging.getLogger(__name__)

CELL_TYPES = ("code", "markdown", "raw")
OUTPUT_TYPES = ("stream", "display_data", "execute_result", "error")
CELL_ID = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")


def notebook_from_doc(doc: Doc[Any]) -> dict[str, Any]:
    """The document as a valid nbformat notebook (see the module docstring)."""
    raw_ids = _raw_ids(doc)  # before get(), which rewrites duplicate ids in the document
    try:
        nb: dict[str, Any] = YNotebook(doc).get()
    except Exception:
        log.warning("the document does not follow the notebook schema; salvaging what it can")
        nb = _salvage(doc)
    _stable_ids(raw_ids, nb)
    return repair_notebook(nb)


def _raw_ids(doc: Doc[Any]) -> list[Any]:
    try:
        return [c.get("id") if isinstance(c, Map) else None for c in doc.get("cells", type=Array)]
    except Exception:
        return []


def _stable_ids(raw: list[Any], nb: dict[str, Any]) -> None:
    """Give cells the ids the document holds, made unique the same way every time.

    ``YNotebook.get()`` invents a random id for a cell without one or with a
    duplicate, and nbformat's writer does too; either would make every save
    and download differ. A cell whose id is missing, invalid or already used
    gets ``<id or "cell">-<position>``.
    """
    cells = nb.get("cells")
    if not isinstance(cells, list):
        return
    raw = [i for i in raw if i is not None] if len(raw) != len(cells) else raw
    dicts = [c for c in cells if isinstance(c, dict)]
    if len(raw) != len(dicts):
        raw = [c.get("id") for c in dicts]
    seen: set[str] = set()
    for index, (cell, cell_id) in enumerate(zip(dicts, raw, strict=True)):
        if not isinstance(cell_id, str) or not CELL_ID.match(cell_id) or cell_id in seen:
            base = cell_id if isinstance(cell_id, str) and CELL_ID.match(cell_id) else "cell"
            cell_id = f"{base[:50]}-{index}"
            while cell_id in seen:
                cell_id += "x"
        seen.add(cell_id)
        cell["id"] = cell_id


def _salvage(doc: Doc[Any]) -> dict[str, Any]:
    cells: list[Any] = []
    meta: dict[str, Any] = {}
    try:
        raw_cells = doc.get("cells", type=Array)
        cells = [c.to_py() if isinstance(c, Map) else None for c in raw_cells]
    except Exception:
        log.warning("the document's cells are not a list; the notebook is saved without them")
    try:
        meta = doc.get("meta", type=Map).to_py() or {}
    except Exception:
        log.warning("the document's notebook metadata is unreadable")
    return {
        "cells": cells,
        "metadata": meta.get("metadata", {}) if isinstance(meta, dict) else {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def repair_notebook(nb: dict[str, Any]) -> dict[str, Any]:
    """A valid copy of ``nb``; returns it unchanged (but copied) when already valid."""
    nb = copy.deepcopy(nb)
    if _valid(nb):
        return nb
    metadata = nb.get("metadata")
    fixed: dict[str, Any] = {
        "cells": [],
        "metadata": metadata if isinstance(metadata, dict) else {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    seen: set[str] = set()
    cells = nb.get("cells")
    for index, cell in enumerate(cells if isinstance(cells, list) else []):
        if isinstance(cell, dict):
            fixed["cells"].append(_repair_cell(cell, index, seen))
    if not _valid(fixed):
        fixed["metadata"] = {}
        for cell in fixed["cells"]:
            cell["metadata"] = {}
            if cell["cell_type"] == "code":
                cell["outputs"] = []
    return fixed


def _repair_cell(cell: dict[str, Any], index: int, seen: set[str]) -> dict[str, Any]:
    cell_type = cell.get("cell_type")
    if cell_type not in CELL_TYPES:
        cell_type = "raw"
    cell_id = cell.get("id")
    if not isinstance(cell_id, str) or not CELL_ID.match(cell_id) or cell_id in seen:
        base = cell_id if isinstance(cell_id, str) and CELL_ID.match(cell_id) else "cell"
        cell_id = f"{base[:50]}-{index}"
        while cell_id in seen:
            cell_id += "x"
    seen.add(cell_id)
    metadata = cell.get("metadata")
    fixed: dict[str, Any] = {
        "id": cell_id,
        "cell_type": cell_type,
        "metadata": metadata if isinstance(metadata, dict) else {},
        "source": _text(cell.get("source")),
    }
    if cell_type == "code":
        count = cell.get("execution_count")
        valid_count = isinstance(count, int) and not isinstance(count, bool) and count >= 0
        fixed["execution_count"] = count if valid_count else None
        outputs = cell.get("outputs")
        fixed["outputs"] = [
            o for o in (outputs if isinstance(outputs, list) else [])
            if isinstance(o, dict) and o.get("output_type") in OUTPUT_TYPES and _valid_output(o)
        ]
    elif isinstance(cell.get("attachments"), dict):
        fixed["attachments"] = cell["attachments"]
    return fixed


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return ""


def _valid_output(output: dict[str, Any]) -> bool:
    try:
        nbformat.validate(
            {"cells": [{"id": "x", "cell_type": "code", "metadata": {}, "source": "",
                        "execution_count": None, "outputs": [output]}],
             "metadata": {}, "nbformat": 4, "nbformat_minor": 5},
            version=4,
        )
    except nbformat.ValidationError:
        return False
    return True


def _valid(nb: dict[str, Any]) -> bool:
    try:
        nbformat.validate(nbformat.from_dict(nb), version=4)
    except (nbformat.ValidationError, TypeError, AttributeError, KeyError):
        return False
    return nb.get("nbformat") == 4
