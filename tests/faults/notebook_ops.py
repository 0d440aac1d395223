"""Edit intents on a YNotebook document, and the document's comparable form.

An edit is an *intent* (``{"kind": ..., random fractions, the marker}``)
resolved against the document as it is when the edit runs: "insert this
marker at the 0.37th marker boundary of the 0.81th cell". So an edit never
splits another marker, whatever arrived meanwhile, and the Python and Node
clients (``fault_client.mjs``, which must stay equal to this) make the same
kinds of edit. Every edit runs in one transaction, so it is one update.

Every cell source is a sequence of markers ``[<instance>.<n><suffix>]``
(``TOKEN``); ``snapshot`` returns what tests compare: cells (id, type,
source, metadata) in order and the notebook metadata keys the edits touch.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from pycrdt import Array, Doc, Map, Text

TOKEN = re.compile(r"\[[^\[\]]*\]")

Json = dict[str, Any]


def token_spans(source: str) -> list[tuple[int, int]]:
    """The markers of a source as [start, end) offsets (Python str indices)."""
    return [m.span() for m in TOKEN.finditer(source)]


def tokens_of(source: str) -> list[str]:
    return TOKEN.findall(source)


def is_well_formed(source: str) -> bool:
    """True if the source is made of whole markers only (none split or mangled)."""
    return "".join(tokens_of(source)) == source


def utf8_offset(source: str, index: int) -> int:
    """pycrdt's Text counts UTF-8 bytes: the offset of the Python str ``index``.

    (pycrdt 0.14 ``Text.insert``/``del text[a:b]`` take byte offsets; an offset
    inside a character silently appends at the end instead.)
    """
    return len(source[:index].encode("utf-8"))


def _pick(r: float, n: int) -> int:
    return min(n - 1, int(r * n))


def make_cell(cell_id: str, cell_type: str, source: str, metadata: Json) -> Map[Any]:
    """A YNotebook cell, shaped as jupyter_ydoc and the Node client make it."""
    fields: dict[str, Any] = {
        "id": cell_id,
        "cell_type": cell_type,
        "source": Text(source),
        "metadata": Map(dict(metadata)),
    }
    if cell_type == "code":
        fields["outputs"] = Array()
        fields["execution_count"] = None
    return Map(fields)


def apply_op(doc: Doc[Any], op: Json) -> Json:
    """Run one edit intent in one transaction; returns what it did (or ``{"skipped"}``)."""
    with doc.transaction():
        return _apply(doc, op)


def _apply(doc: Doc[Any], op: Json) -> Json:
    cells: Array[Any] = doc.get("cells", type=Array)
    nb_meta: Map[Any] = doc.get("meta", type=Map)["metadata"]
    n = len(cells)
    kind = op["kind"]
    if kind == "insert_token":
        if n == 0:
            return {"skipped": "no cells"}
        cell = cells[_pick(op["cell"], n)]
        text: Text = cell["source"]
        source = str(text)
        bounds = [0, *(end for _, end in token_spans(source))]
        text.insert(utf8_offset(source, bounds[_pick(op["pos"], len(bounds))]), op["token"])
        return {"cell_id": cell["id"], "inc": cell["metadata"].get("inc"), "token": op["token"]}
    if kind == "delete_tokens":
        if n == 0:
            return {"skipped": "no cells"}
        cell = cells[_pick(op["cell"], n)]
        text = cell["source"]
        source = str(text)
        spans = token_spans(source)
        if not spans:
            return {"skipped": "no markers"}
        first = _pick(op["pos"], len(spans))
        last = min(len(spans), first + op["count"]) - 1
        start, end = spans[first][0], spans[last][1]
        del text[utf8_offset(source, start) : utf8_offset(source, end)]
        return {"cell_id": cell["id"], "tokens": [source[a:b] for a, b in spans[first : last + 1]]}
    if kind == "insert_cell":
        index = min(n, int(op["index"] * (n + 1)))
        cells.insert(
            index,
            make_cell(
                op["cell_id"],
                op["cell_type"],
                op["token"],
                {"inc": op["inc"], "owner": op["owner"]},
            ),
        )
        return {"cell_id": op["cell_id"], "inc": op["inc"], "token": op["token"]}
    if kind in ("delete_cell", "move_cell"):
        own = [i for i in range(n) if cells[i]["metadata"].get("owner") == op["owner"]]
        if not own:
            return {"skipped": "no own cells"}
        index = own[_pick(op["pick"], len(own))]
        cell = cells[index]
        source = str(cell["source"])
        meta = cell["metadata"].to_py()
        result: Json = {
            "cell_id": cell["id"],
            "old_inc": meta.get("inc"),
            "tokens": tokens_of(source),
            "meta_markers": [k[2:] for k in meta if k.startswith("m_")],
        }
        if kind == "delete_cell":
            del cells[index]
            return result
        # Yjs 13 has no move (pycrdt's would break Node clients): delete and insert a copy.
        copy = make_cell(cell["id"], cell["cell_type"], source, {**meta, "inc": op["new_inc"]})
        del cells[index]
        cells.insert(min(n - 1, int(op["to"] * n)), copy)
        return {**result, "new_inc": op["new_inc"]}
    if kind == "cell_meta":
        if n == 0:
            return {"skipped": "no cells"}
        cell = cells[_pick(op["cell"], n)]
        cell["metadata"]["m_" + op["token"]] = op["token"]
        return {"cell_id": cell["id"], "inc": cell["metadata"].get("inc"), "token": op["token"]}
    if kind == "nb_meta":
        nb_meta["m_" + op["token"]] = op["token"]
        return {"token": op["token"]}
    if kind == "nb_meta_del":
        keys = list(nb_meta.keys())  # (pycrdt's Map types its iteration loosely)
        own_keys = sorted(k for k in keys if k.startswith(f"m_[{op['author']}."))
        if not own_keys:
            return {"skipped": "no own keys"}
        key = own_keys[_pick(op["pick"], len(own_keys))]
        del nb_meta[key]
        return {"token": key[2:]}
    if kind == "shared_meta":
        nb_meta["shared"] = op["token"]
        return {"token": op["token"]}
    raise ValueError(f"unknown op {kind!r}")


def snapshot(doc: Doc[Any], full: bool = False) -> Json:
    """The document in comparable form (the same shape as the Node client's ``snapshot``).

    ``cells`` (id, type, source, metadata) and ``meta`` (the notebook metadata
    keys edits touch); with ``full`` also ``outputs`` (code cell id ->
    execution count and outputs) and ``executions`` (the server's map).
    """
    cells: Array[Any] = doc.get("cells", type=Array)
    meta_root: Map[Any] = doc.get("meta", type=Map)
    result_cells = []
    for cell in cells:
        source = cell.get("source")
        metadata = cell.get("metadata")
        result_cells.append(
            {
                "id": cell.get("id"),
                "type": cell.get("cell_type"),
                "source": None if source is None else str(source),
                "metadata": {}
                if metadata is None
                else _plain(metadata.to_py() if isinstance(metadata, Map) else metadata),
            }
        )
    nb_meta = meta_root.get("metadata")
    meta: Json = {}
    if isinstance(nb_meta, Map):
        meta = {k: _plain(v) for k, v in nb_meta.items() if k.startswith("m_") or k == "shared"}
    if not full:
        return {"cells": result_cells, "meta": meta}
    outputs: Json = {}
    for cell in cells:
        cell_outputs = cell.get("outputs")
        if isinstance(cell_outputs, Array):
            outputs[cell.get("id")] = {
                "execution_count": _plain(cell.get("execution_count")),
                "outputs": _plain(cell_outputs.to_py() or []),
            }
    executions = _plain(doc.get("executions", type=Map).to_py() or {})
    return {"cells": result_cells, "meta": meta, "outputs": outputs, "executions": executions}


def notebook_part(state: Json) -> Json:
    """Only what the .ipynb and the ledger look at: cells and notebook metadata."""
    return {"cells": state["cells"], "meta": state["meta"]}


def snapshot_of_ipynb(nb: Json) -> Json:
    """A saved .ipynb in the same comparable form."""
    cells = []
    for cell in nb["cells"]:
        source = cell["source"]
        cells.append(
            {
                "id": cell.get("id"),
                "type": cell["cell_type"],
                "source": "".join(source) if isinstance(source, list) else source,
                "metadata": _plain(cell.get("metadata", {})),
            }
        )
    meta = {k: v for k, v in nb.get("metadata", {}).items() if k.startswith("m_") or k == "shared"}
    return {"cells": cells, "meta": meta}


def load_store(store_path: Path, room_id: str) -> Json | None:
    """The room's document as stored (snapshot + tail, read in one transaction)."""
    conn = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    try:
        conn.execute("BEGIN")
        row = conn.execute(
            "SELECT snapshot FROM ystore_documents WHERE room_id = ?", (room_id,)
        ).fetchone()
        if row is None:
            return None
        tail = conn.execute(
            "SELECT data FROM ystore_updates WHERE room_id = ? ORDER BY id", (room_id,)
        ).fetchall()
        conn.execute("COMMIT")
    finally:
        conn.close()
    doc: Doc[Any] = Doc()
    with doc.transaction():
        doc.apply_update(row[0])
        for (update,) in tail:
            doc.apply_update(update)
    return snapshot(doc, full=True)


def describe_difference(a: Json, b: Json, a_name: str, b_name: str) -> str:
    """A short human description of how two snapshots differ."""
    lines = []
    ids_a = [c["id"] for c in a["cells"]]
    ids_b = [c["id"] for c in b["cells"]]
    if ids_a != ids_b:
        lines.append(f"cell ids differ: {a_name}={ids_a} {b_name}={ids_b}")
    by_id_b = {c["id"]: c for c in b["cells"]}
    for cell in a["cells"]:
        other = by_id_b.get(cell["id"])
        if other is not None and other != cell:
            for key in ("type", "source", "metadata"):
                if cell[key] != other[key]:
                    lines.append(
                        f"cell {cell['id']} {key}: {a_name}={cell[key]!r} {b_name}={other[key]!r}"
                    )
    if a["meta"] != b["meta"]:
        ka, kb = set(a["meta"]), set(b["meta"])
        lines.append(
            f"notebook metadata: only in {a_name}: {sorted(ka - kb)}, only in {b_name}: {sorted(kb - ka)}, "
            f"shared {a['meta'].get('shared')!r} vs {b['meta'].get('shared')!r}"
        )
    for part in ("outputs", "executions"):
        part_a, part_b = a.get(part, {}), b.get(part, {})
        for key in sorted(set(part_a) | set(part_b)):
            if part_a.get(key) != part_b.get(key):
                lines.append(
                    f"{part} of {key}: {a_name}={part_a.get(key)!r:.300} {b_name}={part_b.get(key)!r:.300}"
                )
    return "; ".join(lines) or "equal"


def _plain(value: Any) -> Any:
    """Numbers as Yjs holds them (floats) compare equal to ints: normalise whole floats."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
