// @ts-check
// The history panel's frame: title and export links, the person and status
// filters, the selection bar with "Rebuild as notebook", the rebuild form's
// place, the message line, the rows and the footer. What fills them is
// render.js's and rebuild.js's.
import { h, fill } from "../list/dom.js";
import { STATUS_LABELS } from "./row.js";

/**
 * @typedef {{
 *   userFilter: HTMLSelectElement,
 *   statusFilter: HTMLSelectElement,
 *   exportCsv: HTMLElement,
 *   exportJson: HTMLElement,
 *   selectedText: HTMLElement,
 *   rebuild: HTMLButtonElement,
 *   rebuildBox: HTMLElement,
 *   message: HTMLElement,
 *   list: HTMLElement,
 *   footer: HTMLElement,
 * }} HistoryParts
 */

/**
 * Fill `panel`; return the parts that change.
 * @param {HTMLElement} panel
 * @param {{setFilter: (key: "user" | "status", value: string) => void, openRebuild: () => void}} handlers
 * @returns {HistoryParts}
 */
export function mountLayout(panel, { setFilter, openRebuild }) {
  if (!panel.closest("[data-testid=history]")) panel.dataset.testid = "history";
  panel.classList.add("hist");

  const userFilter = h("select", {
    testid: "history-user",
    "aria-label": "Show runs by",
    onchange: () => setFilter("user", userFilter.value),
  });
  const statusFilter = h(
    "select",
    {
      testid: "history-status",
      "aria-label": "Show runs that ended",
      onchange: () => setFilter("status", statusFilter.value),
    },
    h("option", { value: "" }, "Any status"),
    Object.keys(STATUS_LABELS).map((s) => h("option", { value: s }, s)),
  );
  const exportCsv = h("a", { class: "btn btn-quiet", testid: "history-export", download: true }, "CSV");
  const exportJson = h("a", { class: "btn btn-quiet", testid: "history-export-json", download: true }, "JSON");
  const selectedText = h("span", { class: "muted small", testid: "history-selected" });
  const rebuild = h(
    "button",
    { type: "button", class: "btn", testid: "history-rebuild", disabled: true, onclick: () => openRebuild() },
    "Rebuild as notebook",
  );
  const rebuildBox = h("div", { class: "hist-rebuild", testid: "history-rebuild-form", hidden: true });
  const message = h("p", { class: "hist-message", role: "alert", testid: "history-error", hidden: true });
  const list = h("ol", { class: "hist-rows", "aria-label": "Executions, newest first" });
  const footer = h("div", { class: "hist-footer" });

  fill(
    panel,
    h(
      "div",
      { class: "hist-head" },
      h("h2", { class: "hist-title" }, "History"),
      h("span", { class: "hist-export muted small" }, "Export", exportCsv, exportJson),
    ),
    h(
      "div",
      { class: "hist-filters" },
      h("label", null, h("span", { class: "sr-only" }, "Person"), userFilter),
      h("label", null, h("span", { class: "sr-only" }, "Status"), statusFilter),
    ),
    h("div", { class: "hist-select-bar" }, selectedText, rebuild),
    rebuildBox,
    message,
    list,
    footer,
  );
  return { userFilter, statusFilter, exportCsv, exportJson, selectedText, rebuild, rebuildBox, message, list, footer };
}

/**
 * Point the export links at the runs the filters show.
 * @param {HistoryParts} parts
 * @param {(format: "csv" | "json") => string} linkFor the export URL, with the filters
 * @param {string | undefined} notebookPath
 */
export function updateExportLinks(parts, linkFor, notebookPath) {
  const name = (notebookPath || "notebook").split("/").pop()?.replace(/\.ipynb$/i, "") || "notebook";
  const { exportCsv, exportJson } = parts;
  exportCsv.setAttribute("href", linkFor("csv"));
  exportCsv.setAttribute("download", `${name}-history.csv`);
  exportCsv.title = "Download the executions (with the filters) as CSV";
  exportJson.setAttribute("href", linkFor("json"));
  exportJson.setAttribute("download", `${name}-history.json`);
  exportJson.title = "Download the executions (with the filters) as JSON";
}
