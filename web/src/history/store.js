// @ts-check
// What the history panel knows (the loaded runs, newest first, the filters,
// what is selected or open) and the requests that fetch it: the newest page
// merged into what is loaded, and older pages ("Load more") appended. Answers
// to a query made before the filters changed are dropped.
import { errorText } from "../list/dom.js";

/**
 * @typedef {import("./row.js").Execution} Execution
 * @typedef {{get: (url: string) => Promise<unknown>, post: (url: string, body?: unknown) => Promise<unknown>}} Api
 * @typedef {{
 *   rows: Execution[],
 *   cursor: string | null,
 *   loaded: boolean,
 *   loadingMore: boolean,
 *   error: string,
 *   user: string,
 *   status: string,
 *   users: Set<string>,
 *   selected: Set<string>,
 *   codeOpen: Set<string>,
 *   diffOpen: Set<string>,
 *   generation: number,
 * }} HistoryState
 * `rows` newest first; `cursor` of the page after the loaded ones; `generation`
 * bumped when the filters change.
 * @typedef {ReturnType<typeof createStore>} HistoryStore
 * @typedef {{executions: Execution[], next_cursor: string | null}} HistoryPage
 */

const PAGE_SIZE = 50;

/**
 * Whether `a` comes after `b` in newest-first order.
 * @param {Execution} a
 * @param {Execution} b
 */
export function isOlder(a, b) {
  return a.queued_at < b.queued_at || (a.queued_at === b.queued_at && a.id < b.id);
}

/**
 * @param {{client: Api, base: string, me: string, onChange: () => void}} options
 */
export function createStore({ client, base, me, onChange }) {
  /** @type {HistoryState} */
  const state = {
    rows: [],
    cursor: null,
    loaded: false,
    loadingMore: false,
    error: "",
    user: "",
    status: "",
    users: new Set([me]),
    selected: new Set(),
    codeOpen: new Set(),
    diffOpen: new Set(),
    generation: 0,
  };

  /**
   * The query string of the filters, plus `extra`.
   * @param {Record<string, string>} extra
   */
  function query(extra = {}) {
    const params = new URLSearchParams();
    if (state.user) params.append("user", state.user);
    if (state.status) params.append("status", state.status);
    for (const [k, v] of Object.entries(extra)) params.set(k, v);
    const text = params.toString();
    return text ? `?${text}` : "";
  }

  /**
   * Filter by person or status: what is loaded is dropped.
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

  /** Ask for the newest page and merge it into what is loaded. */
  async function refresh() {
    const generation = state.generation;
    try {
      const page = /** @type {HistoryPage} */ (await client.get(`${base}${query({ limit: String(PAGE_SIZE) })}`));
      if (generation !== state.generation) return;
      merge(page.executions, page.next_cursor);
      state.error = "";
    } catch (e) {
      if (generation !== state.generation) return;
      state.error = `The history could not be loaded: ${errorText(e)}`;
    }
    state.loaded = true;
    onChange();
  }

  /** Append the page after the loaded ones. */
  async function loadMore() {
    if (!state.cursor || state.loadingMore) return;
    const generation = state.generation;
    state.loadingMore = true;
    onChange();
    try {
      const page = /** @type {HistoryPage} */ (await client.get(`${base}${query({ limit: String(PAGE_SIZE), cursor: state.cursor })}`));
      if (generation !== state.generation) return;
      const have = new Set(state.rows.map((r) => r.id));
      for (const run of page.executions) state.users.add(run.username);
      state.rows = [...state.rows, ...page.executions.filter((r) => !have.has(r.id))];
      state.cursor = page.next_cursor;
      state.error = "";
    } catch (e) {
      state.error = `More history could not be loaded: ${errorText(e)}`;
    } finally {
      state.loadingMore = false;
    }
    onChange();
  }

  return { state, query, setFilter, refresh, loadMore };
}
