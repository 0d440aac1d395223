// @ts-check
// The shared notebook document (jupyter-ydoc's YNotebook schema) and the edits
// the page makes to it. Cells are found by id at the time of each edit, inside
// the transaction, never through a reference kept from earlier: another person
// may have deleted or moved (= deleted and re-inserted) the cell meanwhile.
//
// Exports:
//   cellsOf(doc)                    the top-level `cells` Y.Array
//   cellId(ycell)                   the id of a cell Y.Map ("" if none)
//   indexOfCell(doc, id)            its index now, or -1
//   newCellId()                     a fresh nbformat cell id
//   insertCell(doc, index, type, source?, id?)  returns the new id
//   deleteCells(doc, ids)
//   moveCell(doc, id, delta)        up (-1) or down (+1); false if it cannot move
//   changeCellType(doc, id, type)   keeps id, source and metadata
//   cellSnapshot(doc, id)           a plain nbformat-ish copy (for copy/paste)
//   insertSnapshot(doc, index, snapshot)  pastes a copy under a new id
//   restoreCell(doc, index, snapshot)     puts a deleted cell back under its own id
//   deletedCellSnapshot(ycell, transaction)  a copy of a cell the transaction deleted
//   deletedText(ytext, transaction)       the text a just-deleted Y.Text held, and
//                                          which client typed each character
import * as Y from "yjs";

/** @typedef {"code" | "markdown" | "raw"} CellType */

/** @param {Y.Doc} doc @returns {Y.Array<Y.Map<any>>} */
export const cellsOf = (doc) => doc.getArray("cells");

/** @param {Y.Map<any>} ycell @returns {string} */
export const cellId = (ycell) => {
  const id = ycell.get("id");
  return typeof id === "string" ? id : "";
};

/** @param {Y.Doc} doc @param {string} id */
export function indexOfCell(doc, id) {
  const cells = cellsOf(doc);
  let i = 0;
  for (const ycell of cells) {
    if (cellId(ycell) === id) return i;
    i++;
  }
  return -1;
}

export function newCellId() {
  return crypto.randomUUID().replace(/-/g, "").slice(0, 16);
}

/**
 * A cell Y.Map as jupyter-ydoc makes it (`source` a Y.Text; code cells have an
 * `outputs` Y.Array of Y.Maps whose stream `text` is a Y.Text).
 * @param {{id: string, cell_type: CellType, source: string, metadata?: any,
 *   outputs?: any[], execution_count?: number | null, attachments?: any}} cell
 */
function makeCell(cell) {
  const ycell = new Y.Map();
  ycell.set("id", cell.id);
  ycell.set("cell_type", cell.cell_type);
  ycell.set("source", new Y.Text(cell.source));
  const metadata = new Y.Map();
  for (const [k, v] of Object.entries(cell.metadata || {})) metadata.set(k, v);
  ycell.set("metadata", metadata);
  if (cell.cell_type === "code") {
    const outputs = new Y.Array();
    outputs.push(
      (cell.outputs || []).map((output) => {
        const yout = new Y.Map();
        for (const [k, v] of Object.entries(output)) {
          yout.set(k, k === "text" && output.output_type === "stream" ? new Y.Text(String(v)) : v);
        }
        return yout;
      }),
    );
    ycell.set("outputs", outputs);
    ycell.set("execution_count", cell.execution_count ?? null);
    ycell.set("execution_state", "idle");
  } else if (cell.attachments && Object.keys(cell.attachments).length) {
    ycell.set("attachments", cell.attachments);
  }
  return ycell;
}

/**
 * @param {Y.Doc} doc @param {number} index @param {CellType} type
 * @param {string} [source] @param {string} [id]
 */
export function insertCell(doc, index, type, source = "", id = newCellId()) {
  doc.transact(() => {
    const cells = cellsOf(doc);
    cells.insert(Math.max(0, Math.min(index, cells.length)), [
      makeCell({ id, cell_type: type, source }),
    ]);
  });
  return id;
}

/** @param {Y.Doc} doc @param {string[]} ids */
export function deleteCells(doc, ids) {
  doc.transact(() => {
    for (const id of ids) {
      const i = indexOfCell(doc, id);
      if (i >= 0) cellsOf(doc).delete(i, 1);
    }
  });
}

/** A plain copy of a cell (nbformat fields), or null if it is gone. */
/** @param {Y.Doc} doc @param {string} id */
export function cellSnapshot(doc, id) {
  const i = indexOfCell(doc, id);
  if (i < 0) return null;
  const ycell = cellsOf(doc).get(i);
  const json = ycell.toJSON();
  return {
    id,
    cell_type: /** @type {CellType} */ (json.cell_type || "code"),
    source: String(json.source ?? ""),
    metadata: json.metadata || {},
    outputs: Array.isArray(json.outputs) ? json.outputs : [],
    execution_count: json.execution_count ?? null,
    attachments: json.attachments,
  };
}

/** Replace the cell at `index` by a new Y.Map built from `cell`, in the caller's transaction. */
/** @param {Y.Doc} doc @param {number} from @param {number} to @param {any} cell */
function reinsert(doc, from, to, cell) {
  const cells = cellsOf(doc);
  cells.delete(from, 1);
  cells.insert(to, [makeCell(cell)]);
}

/** @param {Y.Doc} doc @param {string} id @param {-1 | 1} delta */
export function moveCell(doc, id, delta) {
  let moved = false;
  doc.transact(() => {
    const i = indexOfCell(doc, id);
    const to = i + delta;
    if (i < 0 || to < 0 || to >= cellsOf(doc).length) return;
    const cell = cellSnapshot(doc, id);
    reinsert(doc, i, to, cell);
    moved = true;
  });
  return moved;
}

/** @param {Y.Doc} doc @param {string} id @param {CellType} type */
export function changeCellType(doc, id, type) {
  doc.transact(() => {
    const i = indexOfCell(doc, id);
    if (i < 0) return;
    const cell = cellSnapshot(doc, id);
    if (!cell || cell.cell_type === type) return;
    reinsert(doc, i, i, {
      id,
      cell_type: type,
      source: cell.source,
      metadata: cell.metadata,
      attachments: type === "code" ? undefined : cell.attachments,
    });
  });
}

/** @param {Y.Doc} doc @param {number} index @param {any} snapshot @returns {string} */
export function insertSnapshot(doc, index, snapshot) {
  const id = newCellId();
  doc.transact(() => {
    const cells = cellsOf(doc);
    cells.insert(Math.max(0, Math.min(index, cells.length)), [makeCell({ ...snapshot, id })]);
  });
  return id;
}

/** Put a deleted cell back with its own id; null if a cell with that id is there. */
/** @param {Y.Doc} doc @param {number} index @param {any} snapshot @returns {string | null} */
export function restoreCell(doc, index, snapshot) {
  let restored = null;
  doc.transact(() => {
    if (indexOfCell(doc, snapshot.id) >= 0) return;
    const cells = cellsOf(doc);
    cells.insert(Math.max(0, Math.min(index, cells.length)), [makeCell(snapshot)]);
    restored = snapshot.id;
  });
  return restored;
}

// ---- what a deleting transaction removed ------------------------------------------
//
// Inside the observer of the transaction that deleted a cell, its Y.Map and
// Y.Text read as empty, but their items still hold their content (Yjs garbage-
// collects deleted content only after the observers ran). Items alive before
// the transaction are those not deleted, or deleted by this very transaction.

/** @param {any} item @param {Y.Transaction} transaction */
const wasAlive = (item, transaction) => !item.deleted || Y.isDeleted(transaction.deleteSet, item.id);

/** @param {any} type @param {Y.Transaction} transaction @returns {any} */
function rawValue(type, transaction) {
  if (type instanceof Y.Text) return deletedText(type, transaction).text;
  if (type instanceof Y.Map) {
    /** @type {Record<string, any>} */
    const out = {};
    /** @type {Map<string, any>} */ (/** @type {any} */ (type)._map).forEach((item, key) => {
      if (!wasAlive(item, transaction)) return;
      const values = item.content.getContent();
      if (values.length) out[key] = rawItemValue(values[values.length - 1], transaction);
    });
    return out;
  }
  if (type instanceof Y.Array) {
    const out = [];
    for (let item = /** @type {any} */ (type)._start; item; item = item.right) {
      if (!wasAlive(item, transaction)) continue;
      for (const value of item.content.getContent()) out.push(rawItemValue(value, transaction));
    }
    return out;
  }
  return null;
}

/** @param {any} value @param {Y.Transaction} transaction */
const rawItemValue = (value, transaction) =>
  value instanceof Y.AbstractType ? rawValue(value, transaction) : value;

/**
 * @param {Y.Text} ytext @param {Y.Transaction} transaction
 * @returns {{text: string, clients: number[]}} clients[i]: who typed text[i]
 */
export function deletedText(ytext, transaction) {
  let text = "";
  /** @type {number[]} */
  const clients = [];
  for (let item = /** @type {any} */ (ytext)._start; item; item = item.right) {
    if (!(item.content instanceof Y.ContentString) || !wasAlive(item, transaction)) continue;
    const str = /** @type {string} */ (item.content.str);
    text += str;
    for (let i = 0; i < str.length; i++) clients.push(item.id.client);
  }
  return { text, clients };
}

/** @param {Y.Map<any>} ycell @param {Y.Transaction} transaction */
export function deletedCellSnapshot(ycell, transaction) {
  const json = rawValue(ycell, transaction) || {};
  return {
    id: String(json.id ?? ""),
    cell_type: /** @type {CellType} */ (json.cell_type || "code"),
    source: String(json.source ?? ""),
    metadata: json.metadata || {},
    outputs: Array.isArray(json.outputs) ? json.outputs : [],
    execution_count: json.execution_count ?? null,
    attachments: json.attachments,
  };
}
