// @ts-check
// The history panel of the notebook page: the notebook's executions from the
// log, newest first, with filters, export, and "rebuild as notebook".
//
// mountHistory(panel, {notebookId, api, boot, jumpToCell, currentSource})
// fills `panel` and keeps it current: while the panel is visible it asks for
// the newest page every 3 s and merges it (older pages loaded with "Load
// more" stay). Returns {refresh(), onShow(), onHide(), destroy()}.
// `jumpToCell` may return false when the cell is gone; `currentSource`
// returns null for a cell that is no longer in the notebook.
//
// The parts: store.js (state and fetching), layout.js (the frame), render.js
// (rows), rebuild.js (the rebuild form), visibility.js (polling while shown);
// this module wires them together and holds the rows' actions.
import "./history.css";
import { api as defaultApi } from "../lib/api.js";
import { createStore } from "./store.js";
import { mountLayout, updateExportLinks } from "./layout.js";
import { historyRenderer } from "./render.js";
import { rebuildForm } from "./rebuild.js";
import { pollWhileVisible } from "./visibility.js";

/**
 * @typedef {import("./row.js").Execution} Execution
 * @typedef {import("./row.js").RowActions} RowActions
 * @typedef {import("./store.js").Api} Api
 * @typedef {{
 *   notebookId: string,
 *   api?: Api,
 *   boot: {user: {name: string}, notebook?: {path: string}},
 *   jumpToCell: (cellId: string) => boolean | void,
 *   currentSource: (cellId: string) => string | null | undefined,
 * }} HistoryOptions
 */

const POLL_MS = 3000;

/**
 * @param {HTMLElement} panel
 * @param {HistoryOptions} options
 * @returns {{refresh: () => Promise<void>, onShow: () => void, onHide: () => void, destroy: () => void}}
 */
export function mountHistory(panel, options) {
  const { notebookId, boot, jumpToCell, currentSource } = options;
  const client = options.api || defaultApi;
  const me = boot.user.name;
  const notebookPath = boot.notebook?.path;
  const base = `/api/notebooks/${notebookId}/history`;

  const store = createStore({ client, base, me, onChange: () => render() });
  const { state } = store;
  const parts = mountLayout(panel, {
    setFilter(key, value) {
      store.setFilter(key, value);
      exportLinks();
      render();
      store.refresh();
    },
    openRebuild: () => rebuild.open(),
  });
  const exportLinks = () => updateExportLinks(parts, (format) => `${base}/export${store.query({ format })}`, notebookPath);

  /** @param {string} text */
  function showMessage(text) {
    parts.message.hidden = !text;
    parts.message.textContent = text;
  }

  /** @type {RowActions} */
  const actions = {
    toggleSelected(id, on) {
      if (on) state.selected.add(id);
      else state.selected.delete(id);
      render();
    },
    toggleCode(id, open) {
      if (open) state.codeOpen.add(id);
      else state.codeOpen.delete(id);
    },
    toggleDiff(id) {
      if (state.diffOpen.has(id)) state.diffOpen.delete(id);
      else state.diffOpen.add(id);
      render();
      /** @type {HTMLElement | null | undefined} */ (rowOf(id)?.querySelector("[data-testid=history-diff]"))?.focus();
    },
    jump(run) {
      if (!run.cell_id) return;
      const source = currentSource(run.cell_id);
      const found = source !== null && source !== undefined && jumpToCell(run.cell_id) !== false;
      showMessage(found ? "" : "That cell is no longer in the notebook.");
    },
    currentSource,
  };

  const { render, rowOf } = historyRenderer({ state, parts, actions, me, loadMore: store.loadMore });
  const rebuild = rebuildForm({ state, client, base, me, notebookPath, box: parts.rebuildBox, opener: parts.rebuild, render });
  const polling = pollWhileVisible(panel, store.refresh, POLL_MS);

  exportLinks();
  render();
  polling.tick();

  return {
    refresh: async () => {
      await store.refresh();
    },
    /** The notebook page shows the panel: bring it up to date at once. */
    onShow() {
      polling.tick();
    },
    /** Hidden: polling pauses by itself (it runs only while the panel is visible). */
    onHide() {},
    destroy() {
      polling.stop();
    },
  };
}
