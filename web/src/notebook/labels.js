// @ts-check
// Cells as labelled regions for screen readers: "Code cell 3", "Markdown cell 1".
// The numbers follow inserts, moves and deletes (relabelled once per batch).
//
// Exports: labelCells(view)  keep every cell of a NotebookView labelled.

const KINDS = /** @type {Record<string, string>} */ ({ code: "Code", markdown: "Markdown", raw: "Raw" });

/** @param {import("./view.js").NotebookView} view */
export function labelCells(view) {
  let queued = false;
  const relabel = () => {
    queued = false;
    view.views.forEach((cell, i) => {
      const label = `${KINDS[cell.type] || "Cell"} cell ${i + 1}`;
      if (cell.el.getAttribute("aria-label") === label) return;
      cell.el.setAttribute("role", "region");
      cell.el.setAttribute("aria-label", label);
    });
  };
  const schedule = () => {
    if (queued) return;
    queued = true;
    queueMicrotask(relabel);
  };
  view.on("changed", schedule);
  view.on("created", schedule);
  relabel();
}
