"""What every client did and saw, and what must therefore be in the final notebook.

Every edit leaves a unique *marker*: a text token ``[p1-2.17é]`` in a cell
source, a cell metadata key ``m_<token>``, a notebook metadata key
``m_<token>``, or a cell id. The ledger records each edit's result as the
client reported it (``record``) and every marker each client instance has
in its document (``observe``, polled during the run).

**Acknowledged.** A marker is acknowledged once a client instance other than
the one that made it has had it in its document (or the fresh client of the
final check has). Since the server broadcasts only what it has stored, an
acknowledged marker is durable: it must survive any crash, restart or loss
of its author.

**Must be present at the end** (exactly once): every marker that is
acknowledged, or whose author instance survived to the end (a live client
never loses its own edits: it uploads them on reconnect), unless an edit
deliberately removed it:

- a text token is excused if any client deleted it, or if the cell
  incarnation it last lived in was deleted (a cell deleted, or moved: a move
  is a delete plus an inserted copy, so a token typed into the old copy
  concurrently with the move is legitimately gone, as in JupyterLab);
- a cell metadata marker is excused like a text token (its cell incarnation);
- a notebook metadata marker is excused if its author deleted it;
- a cell id is excused if its owner deleted the cell.

Only a cell's owner instance (its creator; ``owner`` in its metadata)
moves or deletes it, so moves never race into duplicated cells, and a
cell id appearing twice is always a failure.

**Must be absent**: a text token deleted by a surviving instance (unless a
move copied it, racing the deletion), a notebook metadata key deleted by its
surviving author, a cell deleted by its surviving owner.

Instances that crashed (their document thrown away) are "uncertain": what
they did counts only once acknowledged.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any

from . import notebook_ops

Json = dict[str, Any]


@dataclass
class Marker:
    kind: str  # "text" | "cmeta" | "nbmeta"
    author: str
    home: str | None = None  # cell incarnation (text, cmeta)
    made_at: float = 0.0


@dataclass
class CellRecord:
    owner: str
    deleted_by: str | None = None


@dataclass
class Ledger:
    markers: dict[str, Marker] = field(default_factory=dict)
    cells: dict[str, CellRecord] = field(default_factory=dict)
    deleted_incs: dict[str, str] = field(default_factory=dict)
    text_deleted_by: dict[str, set[str]] = field(
        default_factory=lambda: collections.defaultdict(set)
    )
    nbmeta_deleted_by: dict[str, str] = field(default_factory=dict)
    moved_markers: set[str] = field(default_factory=set)
    acked: dict[str, float] = field(default_factory=dict)
    crashed: set[str] = field(default_factory=set)
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    anomalies: list[str] = field(default_factory=list)

    # ---- during the run ------------------------------------------------------------

    def add_initial(self, nb: Json) -> None:
        """The notebook as created (its cells' owners are the first instances)."""
        for cell in nb["cells"]:
            self.cells[cell["id"]] = CellRecord(cell["metadata"]["owner"])
            for token in notebook_ops.tokens_of("".join(cell["source"])):
                self.markers[token] = Marker("text", "init", cell["metadata"]["inc"])
        for key in nb["metadata"]:
            if key.startswith("m_"):
                self.markers[key[2:]] = Marker("nbmeta", "init")

    def record(self, instance: str, op: Json, result: Json) -> None:
        """An edit ``instance`` made and what it did (``result`` as the client returned it)."""
        kind = op["kind"]
        if "skipped" in result:
            self.counts["edits skipped"] += 1
            return
        self.counts["edits"] += 1
        self.counts[f"edit {kind}"] += 1
        now = time.monotonic()
        if kind == "insert_token":
            self.markers[result["token"]] = Marker("text", instance, result["inc"], now)
        elif kind == "delete_tokens":
            for token in result["tokens"]:
                self.text_deleted_by[token].add(instance)
        elif kind == "insert_cell":
            self.cells[result["cell_id"]] = CellRecord(instance)
            self.markers[result["token"]] = Marker("text", instance, result["inc"], now)
        elif kind in ("delete_cell", "move_cell"):
            if result["old_inc"] is not None:
                self.deleted_incs[result["old_inc"]] = instance
            if kind == "delete_cell":
                self.cells[result["cell_id"]].deleted_by = instance
            else:
                for token in [*result["tokens"], *result["meta_markers"]]:
                    self.moved_markers.add(token)
                    if token in self.markers:
                        self.markers[token].home = result["new_inc"]
        elif kind == "cell_meta":
            self.markers[result["token"]] = Marker("cmeta", instance, result["inc"], now)
        elif kind == "nb_meta":
            self.markers[result["token"]] = Marker("nbmeta", instance, None, now)
        elif kind == "nb_meta_del":
            self.nbmeta_deleted_by[result["token"]] = instance

    def crash(self, instance: str) -> None:
        self.crashed.add(instance)
        self.counts["client crashes"] += 1

    def observe(self, instance: str, state: Json, detail: str = "") -> None:
        """What ``instance`` holds now: acknowledges others' markers; checks invariants.

        ``detail`` (e.g. the client's connection state) goes into anomaly reports.
        """
        now = time.monotonic()
        ids = [cell["id"] for cell in state["cells"]]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            copies = [
                (cell["id"], cell["metadata"].get("inc"), cell["source"])
                for cell in state["cells"]
                if cell["id"] in duplicates
            ]
            self._anomaly(
                f"DUPLICATED (transient): {instance} holds duplicated cell ids {duplicates} "
                f"(id, incarnation, source: {copies}) {detail}"
            )
        for cell in state["cells"]:
            source = cell["source"] or ""
            if not notebook_ops.is_well_formed(source):
                self._anomaly(
                    f"MANGLED: {instance} holds a mangled source in cell {cell['id']}: {source!r}"
                )
            for token in notebook_ops.tokens_of(source):
                self._ack(token, instance, now)
            for key in cell["metadata"]:
                if key.startswith("m_"):
                    self._ack(key[2:], instance, now)
            owner = self.cells.get(cell["id"])
            if owner is not None and owner.owner != instance:
                self.acked.setdefault("cell:" + cell["id"], now)
        for key in state["meta"]:
            if key.startswith("m_"):
                self._ack(key[2:], instance, now)

    def _ack(self, token: str, instance: str, now: float) -> None:
        marker = self.markers.get(token)
        if marker is not None and marker.author != instance:
            self.acked.setdefault(token, now)

    def _anomaly(self, text: str) -> None:
        if text not in self.anomalies:
            self.anomalies.append(text)

    # ---- at the end ---------------------------------------------------------------------

    def verify(self, final: Json) -> list[str]:
        """Failures of ``final`` (the converged notebook) against everything recorded."""
        failures = list(self.anomalies)
        self.observe("fresh", final)
        text_count: collections.Counter[str] = collections.Counter()
        cmeta_count: collections.Counter[str] = collections.Counter()
        for cell in final["cells"]:
            text_count.update(notebook_ops.tokens_of(cell["source"] or ""))
            cmeta_count.update(k[2:] for k in cell["metadata"] if k.startswith("m_"))
        nbmeta_count = collections.Counter(k[2:] for k in final["meta"] if k.startswith("m_"))
        id_count = collections.Counter(cell["id"] for cell in final["cells"])

        def certain(instance: str) -> bool:
            return instance not in self.crashed

        for token, marker in self.markers.items():
            count = {"text": text_count, "cmeta": cmeta_count, "nbmeta": nbmeta_count}[marker.kind][
                token
            ]
            label = f"{marker.kind} marker {token} by {marker.author}"
            if count > 1:
                failures.append(f"DUPLICATED: {label} appears {count} times")
            if marker.kind == "nbmeta":
                deleter = self.nbmeta_deleted_by.get(token)
                excused = deleter is not None
                must_go = deleter is not None and certain(deleter)
            else:
                home_deleted = marker.home in self.deleted_incs
                deleters = (
                    self.text_deleted_by.get(token, set()) if marker.kind == "text" else set()
                )
                excused = home_deleted or bool(deleters)
                must_go = (
                    any(certain(d) for d in deleters)
                    and token not in self.moved_markers
                    and not home_deleted
                )
            needed = (certain(marker.author) or token in self.acked) and not excused
            if needed and count == 0:
                acked = self.acked.get(token)
                seen = (
                    f"acknowledged {acked - marker.made_at:+.2f}s after it was made"
                    if acked
                    else "never acknowledged"
                )
                failures.append(f"LOST: {label} (home {marker.home}, {seen})")
            if must_go and count > 0:
                failures.append(f"DELETION UNDONE: {label} was deleted but is present")
        for cell_id, record in self.cells.items():
            count = id_count[cell_id]
            needed = (
                certain(record.owner) or "cell:" + cell_id in self.acked
            ) and record.deleted_by is None
            if needed and count == 0:
                failures.append(f"LOST: cell {cell_id} (owner {record.owner})")
            if record.deleted_by is not None and certain(record.deleted_by) and count > 0:
                failures.append(
                    f"DELETION UNDONE: cell {cell_id} deleted by {record.deleted_by} is present"
                )
        for cell_id, count in id_count.items():
            if count > 1:
                failures.append(f"DUPLICATED: cell id {cell_id} appears {count} times")
            if cell_id not in self.cells:
                failures.append(f"UNKNOWN: cell {cell_id} was never made by any client")
        known = set(self.markers)
        for token in (set(text_count) | set(cmeta_count) | set(nbmeta_count)) - known:
            failures.append(f"UNKNOWN: marker {token} was never made by any client")
        self.counts["markers made"] = len(self.markers)
        self.counts["markers acknowledged"] = sum(1 for t in self.markers if t in self.acked)
        self.counts["markers present"] = sum(
            1
            for t, m in self.markers.items()
            if {"text": text_count, "cmeta": cmeta_count, "nbmeta": nbmeta_count}[m.kind][t] > 0
        )
        self.counts["cells present"] = len(final["cells"])
        return failures
