// @ts-check
// The CodeMirror 6 editor of one cell, bound to the cell's shared Y.Text with
// y-codemirror.next (other people's cursors and selections in their server-given
// name and colour, read from awareness `user`), Python or Markdown highlighting,
// read-only for viewers, and the notebook keys Jupyter users expect.
//
// Exports:
//   createEditor({ytext, awareness, undoManager, language, readOnly, keys, onLocalChange,
//     onFocus, selection?, help?})  an EditorView (its `dom` is the `.cm-editor`); code
//     cells given `help` (a KernelHelp) complete on Tab and show help on Shift+Tab.
//   setEditorReadOnly(editor, language, readOnly)  switch an editor in place (a role change).
//   Keys (`keys`, each returns true when it handled the key):
//     runAndAdvance (Shift+Enter), runInPlace (Ctrl/Cmd+Enter), runAndInsert (Alt+Enter),
//     commandMode (Esc), leaveUp / leaveDown (arrow keys on the first / last line),
//     save (Ctrl/Cmd+S).
import { Compartment, EditorState, Prec } from "@codemirror/state";
import {
  EditorView, keymap, drawSelection, dropCursor, highlightSpecialChars, placeholder,
} from "@codemirror/view";
import { defaultKeymap, indentWithTab } from "@codemirror/commands";
import {
  HighlightStyle, LanguageSupport, bracketMatching, indentOnInput, indentUnit, syntaxHighlighting,
} from "@codemirror/language";
import { tags as t } from "@lezer/highlight";
import { python } from "@codemirror/lang-python";
// The markdown language alone: `markdown()` would also bundle the HTML, CSS and
// JavaScript parsers for embedded code (~150 kB) that notebook cells rarely need.
import { markdownLanguage, markdownKeymap } from "@codemirror/lang-markdown";
import { yCollab, yUndoManagerKeymap, ySyncAnnotation } from "y-codemirror.next";
import { completionStatus } from "@codemirror/autocomplete";
import { closeHelp, kernelHelp } from "./completion.js";

const theme = EditorView.theme({
  "&": { fontSize: "13px", backgroundColor: "transparent" },
  "&.cm-focused": { outline: "none" },
  ".cm-scroller": { fontFamily: "var(--mono)", lineHeight: "1.4", overflowX: "auto" },
  ".cm-content": { padding: "6px 0", caretColor: "var(--fg)" },
  ".cm-line": { padding: "0 8px" },
});

// Code colours from lib/base.css's --hl-* variables, so one style serves the
// light and the dark theme (CodeMirror's defaultHighlightStyle is light-only and
// its orange strings miss 4.5:1 contrast on the cell's grey).
const highlight = HighlightStyle.define([
  { tag: [t.keyword, t.controlKeyword, t.definitionKeyword, t.moduleKeyword, t.operatorKeyword], color: "var(--hl-keyword)" },
  { tag: [t.string, t.special(t.string), t.regexp, t.escape], color: "var(--hl-string)" },
  { tag: [t.number, t.bool, t.null, t.atom], color: "var(--hl-number)" },
  { tag: [t.comment, t.lineComment, t.blockComment], color: "var(--hl-comment)", fontStyle: "italic" },
  { tag: [t.function(t.definition(t.variableName)), t.definition(t.className), t.function(t.variableName)], color: "var(--hl-def)" },
  { tag: [t.className, t.typeName, t.standard(t.variableName)], color: "var(--hl-type)" },
  { tag: [t.propertyName, t.attributeName], color: "var(--hl-property)" },
  { tag: [t.meta, t.processingInstruction, t.self], color: "var(--hl-meta)" },
  { tag: t.heading, color: "var(--hl-heading)", fontWeight: "bold" },
  { tag: [t.link, t.url], color: "var(--hl-link)", textDecoration: "underline" },
  { tag: t.emphasis, fontStyle: "italic" },
  { tag: t.strong, fontWeight: "bold" },
  { tag: t.strikethrough, textDecoration: "line-through" },
  { tag: t.invalid, color: "var(--hl-invalid)" },
]);

/** What a screen reader calls the editor (the cell around it is a labelled region). */
const EDITOR_NAMES = { code: "Code", markdown: "Markdown source", raw: "Raw text" };

// Read-only or editable, switched in place when the person's role changes.
const access = new Compartment();

/** @param {"code" | "markdown" | "raw"} language @param {boolean} readOnly */
const accessExtensions = (language, readOnly) => [
  readOnly ? [] : placeholder(language === "markdown" ? "Markdown and LaTeX: $\\alpha^2$" : ""),
  EditorState.readOnly.of(readOnly),
  EditorView.editable.of(!readOnly),
];

/**
 * @param {EditorView} editor @param {"code" | "markdown" | "raw"} language @param {boolean} readOnly
 */
export function setEditorReadOnly(editor, language, readOnly) {
  editor.dispatch({ effects: access.reconfigure(accessExtensions(language, readOnly)) });
}

const languages = {
  code: () => python(),
  markdown: () => [new LanguageSupport(markdownLanguage), Prec.high(keymap.of(markdownKeymap))],
  raw: () => [],
};

/**
 * @param {{
 *   ytext: import("yjs").Text, awareness: any, undoManager: import("yjs").UndoManager,
 *   language: "code" | "markdown" | "raw", readOnly: boolean,
 *   keys: Record<string, (view: EditorView) => boolean>,
 *   onLocalChange: () => void, onFocus: () => void, selection?: {anchor: number, head?: number},
 *   help?: import("./completion.js").KernelHelp,
 * }} options
 * @returns {EditorView}
 */
export function createEditor(options) {
  const { keys } = options;
  const call = (/** @type {string} */ name) => (/** @type {EditorView} */ view) =>
    keys[name] ? keys[name](view) : false;
  const notebookKeys = Prec.highest(
    keymap.of([
      { key: "Shift-Enter", run: call("runAndAdvance") },
      { key: "Mod-Enter", run: call("runInPlace") },
      { key: "Ctrl-Enter", run: call("runInPlace") },
      { key: "Alt-Enter", run: call("runAndInsert") },
      // Escape first closes a completion popup or help tooltip, then leaves the editor.
      { key: "Escape", run: (view) => closeHelp(view) || call("commandMode")(view) },
      { key: "Mod-s", run: call("save"), preventDefault: true },
      {
        key: "ArrowUp",
        run: (view) => {
          if (completionStatus(view.state) === "active") return false; // the popup's own
          const sel = view.state.selection.main;
          if (!sel.empty || view.state.doc.lineAt(sel.head).number !== 1) return false;
          return call("leaveUp")(view);
        },
      },
      {
        key: "ArrowDown",
        run: (view) => {
          if (completionStatus(view.state) === "active") return false;
          const sel = view.state.selection.main;
          const doc = view.state.doc;
          if (!sel.empty || doc.lineAt(sel.head).number !== doc.lines) return false;
          return call("leaveDown")(view);
        },
      },
    ]),
  );
  const text = options.ytext.toString();
  const selection = options.selection
    ? {
        anchor: Math.min(options.selection.anchor, text.length),
        head: Math.min(options.selection.head ?? options.selection.anchor, text.length),
      }
    : undefined;
  const state = EditorState.create({
    doc: text,
    selection,
    extensions: [
      notebookKeys,
      highlightSpecialChars(),
      drawSelection(),
      dropCursor(),
      indentOnInput(),
      indentUnit.of("    "),
      bracketMatching(),
      syntaxHighlighting(highlight),
      // A name, and a tab stop even when read-only (a viewer scrolls long lines with the keyboard).
      EditorView.contentAttributes.of({ "aria-label": EDITOR_NAMES[options.language], tabindex: "0" }),
      languages[options.language](),
      options.language === "code" && options.help ? kernelHelp(options.help) : [],
      options.language === "markdown" ? EditorView.lineWrapping : [],
      access.of(accessExtensions(options.language, options.readOnly)),
      keymap.of([...yUndoManagerKeymap, indentWithTab, ...defaultKeymap]),
      yCollab(options.ytext, options.awareness, { undoManager: options.undoManager }),
      EditorView.updateListener.of((update) => {
        if (update.focusChanged && update.view.hasFocus) options.onFocus();
        if (update.docChanged && update.transactions.some((tr) => tr.annotation(ySyncAnnotation) === undefined)) {
          options.onLocalChange();
        }
      }),
      theme,
    ],
  });
  return new EditorView({ state });
}
