// @ts-check
// Completion (Tab) and help (Shift+Tab) from the notebook's shared kernel, as in
// JupyterLab: Tab after a name opens a popup of the kernel's completions (arrows,
// Enter or Tab to pick, Escape to close); Tab at the start of a line indents.
// Shift+Tab after a name shows the kernel's help on it in a tooltip (Escape or
// moving on closes it); elsewhere it dedents. Editors only: read-only editors
// get neither (the server refuses viewers too).
//
// Exports: class KernelHelp ({api, notebookId}); kernelHelp(help) -> CodeMirror
// extensions for a code cell's editor; closeHelp(view) -> whether it closed a
// popup or tooltip (the notebook's Escape asks it first).
import { autocompletion, acceptCompletion, closeCompletion, completionStatus, startCompletion } from "@codemirror/autocomplete";
import { Prec, StateEffect, StateField } from "@codemirror/state";
import { EditorView, keymap, showTooltip, tooltips } from "@codemirror/view";
import { indentLess, indentMore } from "@codemirror/commands";
import { h } from "../lib/dom.js";

/** @typedef {{text: string, type: string}} Match */
/** @typedef {{matches: Match[], cursor_start: number, cursor_end: number}} CompleteReply */
/** @typedef {{found: boolean, text: string}} InspectReply */

/** Jupyter counts the cursor in code points; JavaScript strings in UTF-16 units. */
/** @param {string} text @param {number} offset */
export function codePoints(text, offset) {
  let count = 0;
  for (let i = 0; i < offset; i++) {
    const low = text.charCodeAt(i) >= 0xdc00 && text.charCodeAt(i) <= 0xdfff;
    const afterHigh = i > 0 && text.charCodeAt(i - 1) >= 0xd800 && text.charCodeAt(i - 1) <= 0xdbff;
    if (!(low && afterHigh)) count++; // the second half of a pair is the same code point
  }
  return count;
}

/** @param {string} text @param {number} points */
export function utf16Offset(text, points) {
  let i = 0;
  for (let n = 0; n < points && i < text.length; n++) {
    const c = text.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff ? 2 : 1;
  }
  return i;
}

export class KernelHelp {
  /** @param {{api: typeof import("../lib/api.js").api, notebookId: string}} options */
  constructor({ api, notebookId }) {
    this.api = api;
    this.base = `/api/notebooks/${notebookId}`;
  }

  /** @param {string} code @param {number} offset @returns {Promise<CompleteReply>} */
  async complete(code, offset) {
    const reply = /** @type {CompleteReply} */ (await this.api.post(`${this.base}/complete`, { code, cursor_pos: codePoints(code, offset) }));
    return { ...reply, cursor_start: utf16Offset(code, reply.cursor_start), cursor_end: utf16Offset(code, reply.cursor_end) };
  }

  /** @param {string} code @param {number} offset @returns {Promise<InspectReply>} */
  async inspect(code, offset) {
    return /** @type {InspectReply} */ (await this.api.post(`${this.base}/inspect`, { code, cursor_pos: codePoints(code, offset), detail_level: 0 }));
  }
}

// Jupyter's completion types -> CodeMirror's icons.
/** @type {Record<string, string>} */
const TYPES = {
  function: "function", builtin_function_or_method: "function", method: "method", class: "class",
  module: "namespace", keyword: "keyword", instance: "variable", statement: "variable",
  param: "variable", property: "property", path: "text", magic: "keyword",
};

/** Whether the text just before the cursor is part of a name, an attribute or a call. */
/** @param {import("@codemirror/state").EditorState} state */
function afterName(state) {
  const selection = state.selection.main;
  if (!selection.empty) return false;
  const line = state.doc.lineAt(selection.head);
  return /[\w.)\]'"(]$/.test(line.text.slice(0, selection.head - line.from));
}

// ---- the help tooltip (Shift+Tab) -----------------------------------------------------

/** @type {import("@codemirror/state").StateEffectType<{pos: number, text: string} | null>} */
const setHelp = StateEffect.define();

const helpField = StateField.define({
  /** @returns {{pos: number, text: string} | null} */
  create: () => null,
  update(value, tr) {
    for (const effect of tr.effects) if (effect.is(setHelp)) return effect.value;
    // Typing or moving the cursor puts the help away, as in JupyterLab.
    return tr.docChanged || tr.selection ? null : value;
  },
  provide: (field) => showTooltip.from(field, (help) => help && {
    pos: help.pos,
    above: true,
    create: () => {
      const dom = h("div", { class: "nb-help", testid: "inspect-tooltip", role: "tooltip" }, h("pre", null, help.text));
      return { dom };
    },
  }),
});

/** Close the completion popup or the help tooltip, if either is open. */
/** @param {EditorView} view */
export function closeHelp(view) {
  if (completionStatus(view.state) !== null) return closeCompletion(view);
  if (view.state.field(helpField, false)) {
    view.dispatch({ effects: setHelp.of(null) });
    return true;
  }
  return false;
}

/** @param {EditorView} view @param {KernelHelp} help */
async function showHelp(view, help) {
  const code = view.state.doc.toString();
  const pos = view.state.selection.main.head;
  let text;
  try {
    const reply = await help.inspect(code, pos);
    text = reply.found ? reply.text : "No help found for this name.";
  } catch (error) {
    text = error instanceof Error ? error.message : String(error);
  }
  // Only if nothing moved meanwhile.
  if (view.state.doc.toString() === code && view.state.selection.main.head === pos) {
    view.dispatch({ effects: setHelp.of({ pos, text }) });
  }
}

/**
 * The extensions of a code cell's editor.
 * @param {KernelHelp} help
 */
export function kernelHelp(help) {
  /** @param {import("@codemirror/autocomplete").CompletionContext} context */
  const source = async (context) => {
    if (!context.explicit) return null;
    const code = context.state.doc.toString();
    let reply;
    try {
      reply = await help.complete(code, context.pos);
    } catch {
      return null; // no kernel answer: no popup (the kernel status says why)
    }
    if (context.aborted || !reply.matches.length) return null;
    return {
      from: reply.cursor_start,
      to: reply.cursor_end,
      options: reply.matches.map((m) => ({ label: m.text, type: TYPES[m.type] || undefined })),
      validFor: /^[\w$]*$/,
    };
  };
  return [
    // The popup opens only on Tab, so keys that follow it are meant for it: no delay
    // before arrows and Enter act on it (CodeMirror's guards popups that open as you type).
    autocompletion({ override: [source], activateOnTyping: false, interactionDelay: 0, icons: true }),
    helpField,
    // Cells clip what overflows them (content-visibility): tooltips go on the page instead.
    tooltips({ parent: document.body }),
    Prec.high(keymap.of([
      {
        key: "Tab",
        run: (view) => {
          if (view.state.readOnly) return false;
          if (completionStatus(view.state) === "active") return acceptCompletion(view);
          return afterName(view.state) ? startCompletion(view) : indentMore(view);
        },
      },
      {
        key: "Shift-Tab",
        run: (view) => {
          if (view.state.readOnly) return false;
          if (!afterName(view.state)) return indentLess(view);
          void showHelp(view, help);
          return true;
        },
      },
    ])),
    EditorView.theme({
      ".nb-help": { maxWidth: "640px", maxHeight: "280px", overflow: "auto", padding: "6px 10px" },
      ".nb-help pre": { margin: 0, whiteSpace: "pre-wrap", font: "12px/1.4 var(--mono)" },
    }),
  ];
}
