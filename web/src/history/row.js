// @ts-check
// One execution in the history panel: who ran it, when, how it ended, how
// long it took, its execution count, the code as it ran (collapsed), and
// the ways to go to its cell or compare that code with the cell now.
import { h } from "../list/dom.js";
import { avatar } from "../list/people.js";
import { timeElement, duration } from "../list/time.js";
import { lineDiff } from "./diff.js";

/**
 * @typedef {{id: string, notebook_id: string, notebook_path: string, cell_id: string | null,
 *   code: string, username: string, queued_at: number, started_at: number | null,
 *   finished_at: number | null, status: string, execution_count: number | null,
 *   error_name: string | null, error_value: string | null, note: string | null}} Execution
 * @typedef {{selected: boolean, codeOpen: boolean, diffOpen: boolean}} RowState
 * @typedef {{
 *   toggleSelected: (id: string, on: boolean) => void,
 *   toggleCode: (id: string, open: boolean) => void,
 *   toggleDiff: (id: string) => void,
 *   jump: (execution: Execution) => void,
 *   currentSource: (cellId: string) => string | null | undefined,
 * }} RowActions
 */

export const STATUS_LABELS = {
  ok: "ok",
  error: "error",
  interrupted: "interrupted",
  aborted: "aborted",
  running: "running",
  queued: "queued",
};

/**
 * How long it ran, or how long it has been running / waiting.
 * @param {Execution} run
 * @param {number} now
 */
function runTime(run, now) {
  if (run.started_at && run.finished_at) return duration(run.finished_at - run.started_at);
  if (run.status === "running" && run.started_at) return `${duration(now - run.started_at)} so far`;
  if (run.status === "queued") return "waiting";
  return "";
}

/**
 * The diff of the code as run against the cell's source now.
 * @param {Execution} run
 * @param {RowActions} actions
 */
function diffView(run, actions) {
  const current = run.cell_id ? actions.currentSource(run.cell_id) : null;
  if (current === null || current === undefined)
    return h("p", { class: "hist-diff-note", testid: "history-diff-view" }, "This cell is no longer in the notebook.");
  if (current === run.code)
    return h("p", { class: "hist-diff-note", testid: "history-diff-view", dataset: { same: "true" } }, "Unchanged: the cell's source is exactly the code that ran.");
  const lines = lineDiff(run.code, current);
  const added = lines.filter((l) => l.kind === "add").length;
  const removed = lines.filter((l) => l.kind === "del").length;
  return h(
    "div",
    { class: "hist-diff", testid: "history-diff-view", dataset: { same: "false" } },
    h(
      "p",
      { class: "hist-diff-legend" },
      "Since this run: ",
      h("span", { class: "add" }, `${added} line${added === 1 ? "" : "s"} added`),
      ", ",
      h("span", { class: "del" }, `${removed} removed`),
    ),
    h(
      "pre",
      { class: "hist-code" },
      lines.map((line) =>
        h(
          "span",
          { class: `line ${line.kind}` },
          h("span", { class: "sign", "aria-hidden": "true" }, line.kind === "add" ? "+" : line.kind === "del" ? "−" : " "),
          h("span", { class: "sr-only" }, line.kind === "add" ? "added: " : line.kind === "del" ? "removed: " : ""),
          line.text || " ",
          "\n",
        ),
      ),
    ),
  );
}

/**
 * The row element.
 * @param {Execution} run
 * @param {RowState} state
 * @param {RowActions} actions
 * @param {number} now seconds since the epoch
 */
export function historyRow(run, state, actions, now) {
  const firstLine = run.code.split("\n").find((line) => line.trim()) || "(empty cell)";
  const lineCount = run.code.split("\n").length;
  const checkbox = h("input", {
    type: "checkbox",
    class: "hist-check",
    testid: "history-select",
    checked: state.selected,
    "aria-label": `Select the run of ${firstLine.trim()} by ${run.username}`,
    onchange: () => actions.toggleSelected(run.id, checkbox.checked),
  });
  const code = h(
    "details",
    {
      class: "hist-run-code",
      open: state.codeOpen,
      ontoggle: () => actions.toggleCode(run.id, code.open),
    },
    h(
      "summary",
      { title: lineCount > 1 ? `Show all ${lineCount} lines` : "Show the code" },
      h("code", { class: "hist-first-line" }, firstLine),
      lineCount > 1 && h("span", { class: "muted small" }, ` +${lineCount - 1} line${lineCount > 2 ? "s" : ""}`),
    ),
    h("pre", { class: "hist-code", testid: "history-code" }, run.code),
  );
  const status = run.status in STATUS_LABELS ? run.status : "unknown";
  return h(
    "li",
    {
      class: `hist-row status-${status}${state.selected ? " selected" : ""}`,
      testid: "history-row",
      dataset: {
        executionId: run.id,
        user: run.username,
        status: run.status,
        cellId: run.cell_id || "",
      },
    },
    h(
      "div",
      { class: "hist-line" },
      checkbox,
      avatar(run.username),
      h("span", { class: "hist-user" }, run.username),
      h("span", { class: `hist-status hist-status-${status}`, testid: "history-status-badge" }, run.status),
      h("span", { class: "hist-spacer" }),
      h("span", { class: "hist-count", title: "Execution count" }, run.execution_count !== null ? `[${run.execution_count}]` : ""),
      h("span", { class: "hist-time" }, timeElement(run.started_at || run.queued_at, now)),
    ),
    h(
      "div",
      { class: "hist-sub muted small" },
      runTime(run, now) && h("span", { testid: "history-duration" }, runTime(run, now)),
      run.error_name && h("span", { class: "hist-error", title: `${run.error_name}: ${run.error_value || ""}` }, `${run.error_name}: ${run.error_value || ""}`),
      run.note && h("span", { class: "hist-note" }, run.note),
    ),
    code,
    h(
      "div",
      { class: "hist-actions" },
      h(
        "button",
        {
          type: "button",
          class: "btn btn-quiet",
          testid: "history-jump",
          disabled: !run.cell_id,
          onclick: () => actions.jump(run),
        },
        "Go to cell",
      ),
      h(
        "button",
        {
          type: "button",
          class: "btn btn-quiet",
          testid: "history-diff",
          disabled: !run.cell_id,
          "aria-expanded": String(state.diffOpen),
          onclick: () => actions.toggleDiff(run.id),
        },
        state.diffOpen ? "Hide comparison" : "Compare with current",
      ),
    ),
    state.diffOpen && diffView(run, actions),
  );
}
