// @ts-check
// Drawing the history panel's state: the person filter's choices, the
// selection bar, the rows (a row is rebuilt only when what it shows changed,
// and a rebuilt row gets back the focus its old self had) and the footer.
import { h, fill } from "../list/dom.js";
import { historyRow } from "./row.js";

/**
 * @typedef {import("./store.js").HistoryState} HistoryState
 * @typedef {import("./layout.js").HistoryParts} HistoryParts
 * @typedef {import("./row.js").RowActions} RowActions
 */

/**
 * @param {{state: HistoryState, parts: HistoryParts, actions: RowActions, me: string, loadMore: () => void}} options
 * @returns {{render: () => void, rowOf: (id: string) => HTMLElement | undefined}} `render` after
 *   every change of the state; `rowOf` a run's drawn row
 */
export function historyRenderer({ state, parts, actions, me, loadMore }) {
  const { userFilter, selectedText, rebuild, rebuildBox, message, list, footer } = parts;
  /** @type {Map<string, {signature: string, el: HTMLElement}>} */
  const rendered = new Map();

  function renderFilters() {
    const names = [...state.users].sort((a, b) => a.localeCompare(b));
    const current = [...userFilter.querySelectorAll("option")].map((o) => o.value).join("\n");
    const wanted = ["", ...names].join("\n");
    if (current !== wanted) {
      fill(
        userFilter,
        h("option", { value: "" }, "Everyone"),
        names.map((n) => h("option", { value: n }, n === me ? `${n} (you)` : n)),
      );
    }
    userFilter.value = state.user;
  }

  function renderSelection() {
    selectedText.textContent = state.selected.size
      ? `${state.selected.size} selected`
      : "Select runs to rebuild them as a notebook";
    rebuild.disabled = state.selected.size === 0;
    const count = state.selected.size;
    const countText = rebuildBox.querySelector("[data-role=rebuild-count]");
    if (countText)
      countText.textContent = count
        ? `A new notebook made of the ${count} selected run${count > 1 ? "s" : ""}, oldest first, in your folder:`
        : "Select the runs to put in the new notebook.";
  }

  /** @param {number} now */
  function renderRows(now) {
    const shownIds = new Set(state.rows.map((r) => r.id));
    const focused = document.activeElement;
    const focusedRow = focused && list.contains(focused) ? focused.closest("[data-execution-id]") : null;
    const focusedTestid = focused instanceof HTMLElement ? focused.dataset.testid : undefined;
    /** @type {HTMLElement[]} */
    const els = [];
    for (const run of state.rows) {
      const rowState = { selected: state.selected.has(run.id), codeOpen: state.codeOpen.has(run.id), diffOpen: state.diffOpen.has(run.id) };
      const signature = JSON.stringify([run, rowState, Math.floor(now / 30)]);
      let entry = rendered.get(run.id);
      if (!entry || entry.signature !== signature || rowState.diffOpen) {
        entry = { signature, el: historyRow(run, rowState, actions, now) };
        rendered.set(run.id, entry);
      }
      els.push(entry.el);
    }
    for (const id of [...rendered.keys()]) if (!shownIds.has(id)) rendered.delete(id);
    const same = els.length === list.children.length && els.every((el, i) => list.children[i] === el);
    if (!same) list.replaceChildren(...els);
    // A rebuilt row takes the focus its old self had.
    if (focusedRow && !focusedRow.isConnected && focusedTestid) {
      const id = /** @type {HTMLElement} */ (focusedRow).dataset.executionId || "";
      /** @type {HTMLElement | null | undefined} */ (rendered.get(id)?.el.querySelector(`[data-testid="${focusedTestid}"]`))?.focus();
    }
  }

  function render() {
    const now = Date.now() / 1000;
    renderFilters();
    message.hidden = !state.error;
    message.textContent = state.error;
    // Selection only of rows still shown.
    const shownIds = new Set(state.rows.map((r) => r.id));
    for (const id of [...state.selected]) if (!shownIds.has(id)) state.selected.delete(id);
    renderSelection();

    if (!state.loaded) {
      rendered.clear();
      fill(list, h("li", { class: "hist-empty" }, "Loading…"));
      fill(footer);
      return;
    }
    if (!state.rows.length) {
      rendered.clear();
      const filtered = state.user || state.status;
      fill(
        list,
        h(
          "li",
          { class: "hist-empty", testid: "history-empty" },
          filtered ? "No runs match these filters." : "Nothing has run in this notebook yet. Runs appear here as they happen, for everyone.",
        ),
      );
      fill(footer);
      return;
    }
    renderRows(now);
    fill(
      footer,
      state.cursor
        ? h(
            "button",
            { type: "button", class: "btn", testid: "history-more", disabled: state.loadingMore, onclick: () => loadMore() },
            state.loadingMore ? "Loading…" : "Load more",
          )
        : h("span", { class: "muted small" }, state.rows.length === 1 ? "1 run" : `${state.rows.length} runs`),
    );
  }

  return { render, rowOf: (id) => rendered.get(id)?.el };
}
