// The history panel of the notebook page: the notebook's executions from the
// log, newest first, with filters, export, and "rebuild as notebook".
//
// mountHistory(panel, {notebookId, api, boot, jumpToCell, currentSource})
// fills `panel` and keeps it current: while the panel is visible it asks for
// the newest page every 3 s and merges it (older pages loaded with "Load
// more" stay). Returns {refresh(), onShow(), onHide(), destroy()}.
// `jumpToCell` may return false when the cell is gone; `currentSource`
// returns null for a cell that is no longer in the notebook.
import "./history.css";
import { h, fill, errorText, encodePath } from "../list/dom.js";
import { api as defaultApi } from "../lib/api.js";
import { historyRow, STATUS_LABELS } from "./row.js";

/**
 * @typedef {import("./row.js").Execution} Execution
 * @typedef {{get: (url: string) => Promise<any>, post: (url: string, body?: unknown) => Promise<any>}} Api
 * @typedef {{
 *   notebookId: string,
 *   api?: Api,
 *   boot: {user: {name: string}, notebook?: {path: string}},
 *   jumpToCell: (cellId: string) => boolean | void,
 *   currentSource: (cellId: string) => string | null | undefined,
 * }} HistoryOptions
 */

const POLL_MS = 3000;
const PAGE_SIZE = 50;

/**
 * @param {HTMLElement} panel
 * @param {HistoryOptions} options
 * @returns {{refresh: () => Promise<void>, onShow: () => void, onHide: () => void, destroy: () => void}}
 */
export function mountHistory(panel, options) {
  const { notebookId, boot, jumpToCell, currentSource } = options;
  const client = options.api || defaultApi;
  const me = boot.user.name;
  const base = `/api/notebooks/${notebookId}/history`;

  const state = {
    /** @type {Execution[]} newest first */
    rows: [],
    /** @type {string | null} cursor of the page after the loaded ones */
    cursor: null,
    loaded: false,
    loadingMore: false,
    error: "",
    user: "",
    status: "",
    /** @type {Set<string>} */
    users: new Set([me]),
    /** @type {Set<string>} */
    selected: new Set(),
    /** @type {Set<string>} */
    codeOpen: new Set(),
    /** @type {Set<string>} */
    diffOpen: new Set(),
    /** bumped when the filters change, so answers to older queries are dropped */
    generation: 0,
  };
  /** @type {Map<string, {signature: string, el: HTMLElement}>} */
  const rendered = new Map();

  // ---- layout
  if (!panel.closest("[data-testid=history]")) panel.dataset.testid = "history";
  panel.classList.add("hist");

  const userFilter = h("select", {
    testid: "history-user",
    "aria-label": "Show runs by",
    onchange: () => setFilter("user", /** @type {HTMLSelectElement} */ (userFilter).value),
  });
  const statusFilter = h(
    "select",
    {
      testid: "history-status",
      "aria-label": "Show runs that ended",
      onchange: () => setFilter("status", /** @type {HTMLSelectElement} */ (statusFilter).value),
    },
    h("option", { value: "" }, "Any status"),
    Object.keys(STATUS_LABELS).map((s) => h("option", { value: s }, s)),
  );
  const exportCsv = h("a", { class: "btn btn-quiet", testid: "history-export", download: true }, "CSV");
  const exportJson = h("a", { class: "btn btn-quiet", testid: "history-export-json", download: true }, "JSON");
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
    h(
      "div",
      { class: "hist-select-bar" },
      h("span", { class: "muted small", testid: "history-selected" }),
      rebuild,
    ),
    rebuildBox,
    message,
    list,
    footer,
  );

  // ---- queries
  /** @param {Record<string, string>} extra */
  function query(extra = {}) {
    const params = new URLSearchParams();
    if (state.user) params.append("user", state.user);
    if (state.status) params.append("status", state.status);
    for (const [k, v] of Object.entries(extra)) params.set(k, v);
    const text = params.toString();
    return text ? `?${text}` : "";
  }

  function updateExportLinks() {
    const name = (boot.notebook?.path || "notebook").split("/").pop()?.replace(/\.ipynb$/i, "") || "notebook";
    exportCsv.setAttribute("href", `${base}/export${query({ format: "csv" })}`);
    exportCsv.setAttribute("download", `${name}-history.csv`);
    exportCsv.title = "Download the executions (with the filters) as CSV";
    exportJson.setAttribute("href", `${base}/export${query({ format: "json" })}`);
    exportJson.setAttribute("download", `${name}-history.json`);
    exportJson.title = "Download the executions (with the filters) as JSON";
  }

  /**
   * @param {"user" | "status"} key
   * @param {string} value
   */
  function setFilter(key, value) {
    state[key] = value;
    state.generation++;
    state.rows = [];
    state.cursor = null;
    state.loaded = false;
    state.error = "";
    updateExportLinks();
    render();
    refresh();
  }

  /** Ask for the newest page and merge it into what is loaded. */
  async function refresh() {
    const generation = state.generation;
    try {
      const page = await client.get(`${base}${query({ limit: String(PAGE_SIZE) })}`);
      if (generation !== state.generation) return;
      merge(page.executions, page.next_cursor);
      state.error = "";
    } catch (e) {
      if (generation !== state.generation) return;
      state.error = `The history could not be loaded: ${errorText(e)}`;
    }
    state.loaded = true;
    render();
  }

  /**
   * @param {Execution[]} fresh newest first
   * @param {string | null} nextCursor
   */
  function merge(fresh, nextCursor) {
    for (const run of fresh) state.users.add(run.username);
    const known = new Map(state.rows.map((r) => [r.id, r]));
    const overlaps = fresh.some((r) => known.has(r.id));
    if (!state.loaded || !overlaps || state.rows.length <= fresh.length) {
      // First page, or so much happened that the pages no longer meet: start over.
      state.rows = fresh;
      state.cursor = nextCursor;
      return;
    }
    const freshIds = new Set(fresh.map((r) => r.id));
    // Rows older than the fresh page (from "Load more") are kept as they are.
    const oldest = fresh[fresh.length - 1];
    const older = state.rows.filter((r) => !freshIds.has(r.id) && isOlder(r, oldest));
    state.rows = [...fresh, ...older];
  }

  /**
   * Whether `a` comes after `b` in newest-first order.
   * @param {Execution} a
   * @param {Execution} b
   */
  function isOlder(a, b) {
    return a.queued_at < b.queued_at || (a.queued_at === b.queued_at && a.id < b.id);
  }

  async function loadMore() {
    if (!state.cursor || state.loadingMore) return;
    const generation = state.generation;
    state.loadingMore = true;
    render();
    try {
      const page = await client.get(`${base}${query({ limit: String(PAGE_SIZE), cursor: state.cursor })}`);
      if (generation !== state.generation) return;
      const have = new Set(state.rows.map((r) => r.id));
      for (const run of page.executions) state.users.add(run.username);
      state.rows = [...state.rows, ...page.executions.filter((/** @type {Execution} */ r) => !have.has(r.id))];
      state.cursor = page.next_cursor;
      state.error = "";
    } catch (e) {
      state.error = `More history could not be loaded: ${errorText(e)}`;
    } finally {
      state.loadingMore = false;
    }
    render();
  }

  // ---- actions
  const actions = {
    /**
     * @param {string} id
     * @param {boolean} on
     */
    toggleSelected(id, on) {
      if (on) state.selected.add(id);
      else state.selected.delete(id);
      render();
    },
    /**
     * @param {string} id
     * @param {boolean} open
     */
    toggleCode(id, open) {
      if (open) state.codeOpen.add(id);
      else state.codeOpen.delete(id);
    },
    /** @param {string} id */
    toggleDiff(id) {
      if (state.diffOpen.has(id)) state.diffOpen.delete(id);
      else state.diffOpen.add(id);
      render();
      rendered.get(id)?.el.querySelector("[data-testid=history-diff]")?.focus();
    },
    /** @param {Execution} run */
    jump(run) {
      if (!run.cell_id) return;
      const source = currentSource(run.cell_id);
      const found = source !== null && source !== undefined && jumpToCell(run.cell_id) !== false;
      showMessage(found ? "" : "That cell is no longer in the notebook.");
    },
    currentSource,
  };

  /** @param {string} text */
  function showMessage(text) {
    message.hidden = !text;
    message.textContent = text;
  }

  // ---- rebuild
  function openRebuild() {
    if (!state.selected.size) return;
    const stem = (boot.notebook?.path || "notebook.ipynb").split("/").pop()?.replace(/\.ipynb$/i, "") || "notebook";
    const path = h("input", {
      type: "text",
      testid: "history-rebuild-path",
      value: `${me}/${stem}-rebuilt.ipynb`,
      "aria-label": "Path of the new notebook (in your folder)",
      spellcheck: "false",
    });
    const error = h("p", { class: "hist-message", role: "alert", hidden: true });
    const go = h("button", { type: "submit", class: "btn btn-primary", testid: "history-rebuild-confirm" }, "Create");
    const form = h(
      "form",
      {
        onsubmit: async (/** @type {SubmitEvent} */ event) => {
          event.preventDefault();
          let target = /** @type {HTMLInputElement} */ (path).value.trim().replace(/^\/+/, "");
          if (!target.toLowerCase().endsWith(".ipynb")) target += ".ipynb";
          // Oldest first: the new notebook runs top to bottom in the order things ran.
          const ids = state.rows.filter((r) => state.selected.has(r.id)).sort((a, b) => (isOlder(a, b) ? -1 : 1)).map((r) => r.id);
          if (!ids.length) {
            error.hidden = false;
            error.textContent = "Select at least one run first.";
            return;
          }
          /** @type {HTMLButtonElement} */ (go).disabled = true;
          try {
            const entry = await client.post(`${base}/rebuild`, { execution_ids: ids, path: target });
            state.selected.clear();
            render();
            fill(
              rebuildBox,
              h(
                "p",
                { class: "hist-done", testid: "history-rebuild-result", role: "status" },
                `Created ${entry.path} from ${ids.length} run${ids.length > 1 ? "s" : ""}. `,
                h("a", { href: `/notebooks/${entry.id}`, target: "_blank", rel: "noopener", testid: "history-rebuild-open" }, "Open it"),
                " ",
                h("button", { type: "button", class: "btn btn-quiet", onclick: () => closeRebuild() }, "Close"),
              ),
            );
          } catch (e) {
            error.hidden = false;
            error.textContent = errorText(e);
            /** @type {HTMLButtonElement} */ (go).disabled = false;
          }
        },
      },
      h("p", { class: "small", dataset: { role: "rebuild-count" } }),
      h("div", { class: "hist-rebuild-row" }, path, go, h("button", { type: "button", class: "btn btn-quiet", onclick: () => closeRebuild() }, "Cancel")),
      error,
    );
    fill(rebuildBox, form);
    rebuildBox.hidden = false;
    render();
    path.focus();
    const p = /** @type {HTMLInputElement} */ (path);
    p.setSelectionRange(me.length + 1, p.value.length - ".ipynb".length);
  }

  function closeRebuild() {
    rebuildBox.hidden = true;
    fill(rebuildBox);
    rebuild.focus();
  }

  // ---- rendering
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
    /** @type {HTMLSelectElement} */ (userFilter).value = state.user;
  }

  function render() {
    const now = Date.now() / 1000;
    renderFilters();
    showMessage(state.error);
    // Selection only of rows still shown.
    const shownIds = new Set(state.rows.map((r) => r.id));
    for (const id of [...state.selected]) if (!shownIds.has(id)) state.selected.delete(id);
    const selectedText = panel.querySelector("[data-testid=history-selected]");
    if (selectedText)
      selectedText.textContent = state.selected.size
        ? `${state.selected.size} selected`
        : "Select runs to rebuild them as a notebook";
    /** @type {HTMLButtonElement} */ (rebuild).disabled = state.selected.size === 0;
    const count = state.selected.size;
    const countText = rebuildBox.querySelector("[data-role=rebuild-count]");
    if (countText)
      countText.textContent = count
        ? `A new notebook made of the ${count} selected run${count > 1 ? "s" : ""}, oldest first, in your folder:`
        : "Select the runs to put in the new notebook.";

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

  // ---- polling while visible
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  let destroyed = false;
  let busy = false;
  const visible = () => document.visibilityState === "visible" && panel.isConnected && panel.getClientRects().length > 0;
  async function tick() {
    clearTimeout(timer);
    if (destroyed) return;
    if (visible() && !busy) {
      busy = true;
      try {
        await refresh();
      } finally {
        busy = false;
      }
    }
    if (!destroyed) timer = setTimeout(tick, POLL_MS);
  }
  // Shown again (the panel opened, the tab came back): refresh at once.
  let wasVisible = false;
  const resize = new ResizeObserver(() => {
    const now = visible();
    if (now && !wasVisible) tick();
    wasVisible = now;
  });
  resize.observe(panel);
  const onVisibility = () => {
    if (visible()) tick();
  };
  document.addEventListener("visibilitychange", onVisibility);

  updateExportLinks();
  render();
  tick();

  return {
    refresh: async () => {
      await refresh();
    },
    /** The notebook page shows the panel: bring it up to date at once. */
    onShow() {
      tick();
    },
    /** Hidden: polling pauses by itself (it runs only while the panel is visible). */
    onHide() {},
    destroy() {
      destroyed = true;
      clearTimeout(timer);
      resize.disconnect();
      document.removeEventListener("visibilitychange", onVisibility);
    },
  };
}
