// @ts-check
// One cell on the page: its prompt, its source (a light static copy until the
// cell comes near the viewport, then a CodeMirror editor), markdown rendered when
// not editing, its run state, stale mark, outputs and input() box.
//
// Exports: class CellView. The NotebookView creates one per cell Y.Map and
// destroys it when the Y.Map leaves the document (a move makes a new Y.Map, so a
// new view). It never writes to the document itself: edits go through the editor
// (y-codemirror.next) or ./model.js.
import * as Y from "yjs";
import { createEditor, setEditorReadOnly } from "./editor.js";
import { renderMarkdown } from "./markdown.js";
import { OutputArea } from "./outputs.js";
import { h } from "../lib/dom.js";

/**
 * What a cell needs from its notebook.
 * @typedef {{
 *   awareness: any, readOnly: boolean, me: string,
 *   keys: (view: CellView) => Record<string, (editor: any) => boolean>,
 *   onFocusEditor: (view: CellView) => void,
 *   onLocalChange: (view: CellView) => void,
 *   onSelect: (view: CellView, edit: boolean) => void,
 *   onRecreate: (view: CellView) => void,
 *   onSourceChange: (view: CellView) => void,
 *   answerInput: (executionId: string, value: string) => Promise<void>,
 *   help?: import("./completion.js").KernelHelp,
 * }} CellContext
 */

export class CellView {
  /** @param {Y.Map<any>} ycell @param {CellContext} ctx */
  constructor(ycell, ctx) {
    this.ycell = ycell;
    this.ctx = ctx;
    this.id = String(ycell.get("id") || "");
    this.type = String(ycell.get("cell_type") || "code");
    const source = ycell.get("source");
    /** @type {Y.Text} */
    this.ytext = source instanceof Y.Text ? source : new Y.Text(String(source ?? ""));
    this.sharedText = source instanceof Y.Text;
    /** @type {import("@codemirror/view").EditorView | null} */
    this.editor = null;
    /** @type {Y.UndoManager | null} */
    this.undoManager = null;
    /** @type {any} */
    this.execution = null;
    this.editingMarkdown = false;
    this.markdownRendered = false;
    this.visible = false;
    this.destroyed = false;
    this.markdownTimer = 0;

    this.count = h("span", { class: "count", testid: "execution-count" });
    this.outPrompt = h("div", { class: "cell-prompt", testid: "output-prompt" });
    this.state = h("span", { class: "cell-state", testid: "cell-state" });
    this.staleMark = h("span", {
      class: "stale", testid: "stale",
      title: "The source changed since these outputs were made",
    }, "edited since run");
    this.collab = h("div", { class: "cell-people" });
    this.source = h("div", { class: "cell-source" });
    this.static = h("pre", { class: "cell-static" });
    this.outputsEl = h("div", { class: "cell-outputs", testid: "outputs" });
    this.stdin = h("div", { class: "cell-stdin" });
    this.status = h("div", { class: "cell-status" }, this.state);
    this.el = h(
      "div",
      {
        class: "cell", testid: "cell", tabindex: "-1",
        dataset: { cellId: this.id, type: this.type },
      },
      this.collab,
      h("div", { class: "cell-input" }, h("div", { class: "cell-prompt" }, this.count), this.source),
      this.status,
      h("div", { class: "cell-output-row" }, this.outPrompt, this.outputsEl),
      this.stdin,
    );
    /** @type {any} */ (this.el).cellView = this;
    // Until it is first laid out, the cell's height is guessed from its source.
    const lines = this.ytext.toString().split("\n").length;
    this.el.style.containIntrinsicSize = `auto ${Math.round(28 + lines * 18.2)}px`;

    this.outputs = new OutputArea(this.outputsEl, (count) => {
      const text = count === null ? "" : `Out[${count}]:`;
      if (this.outPrompt.textContent !== text) this.outPrompt.textContent = text;
    });
    this.onText = () => this.textChanged();
    this.onKeys = (/** @type {Y.YMapEvent<any>} */ event) => this.keysChanged(event.keysChanged);
    this.ytext.observe(this.onText);
    ycell.observe(this.onKeys);

    this.el.addEventListener("mousedown", (event) => this.mousedown(event));
    this.el.addEventListener("dblclick", (event) => {
      if (this.type === "markdown" && !this.editingMarkdown && !ctx.readOnly) {
        event.preventDefault();
        this.editMarkdown(true);
        this.ctx.onSelect(this, true);
      }
    });

    if (this.type === "markdown") {
      this.markdown = h("div", { class: "rendered-markdown", testid: "markdown" });
      this.editingMarkdown = this.ytext.length === 0 && !ctx.readOnly;
    }
    this.showSource();
    this.bindOutputs();
    this.renderCount();
    this.renderStale();
  }

  get text() {
    return this.ytext.toString();
  }

  /** @returns {"code" | "markdown" | "raw"} */
  get language() {
    return this.type === "markdown" ? "markdown" : this.type === "raw" ? "raw" : "code";
  }

  /** The person's role changed: make the editor (and markdown placeholder) follow `ctx.readOnly`. */
  applyReadOnly() {
    if (this.editor) setEditorReadOnly(this.editor, this.language, this.ctx.readOnly);
    if (this.type === "markdown" && !this.editingMarkdown && this.markdownRendered) this.renderMarkdownNow();
  }

  // ---- source: static copy, editor, rendered markdown ---------------------------

  showSource() {
    if (this.type === "markdown" && !this.editingMarkdown) {
      this.unmountEditor(true);
      this.markdownRendered = false;
      this.source.replaceChildren(/** @type {HTMLElement} */ (this.markdown));
      if (this.visible) this.renderMarkdownNow();
      else /** @type {HTMLElement} */ (this.markdown).textContent = this.text;
      return;
    }
    if (this.editor) {
      if (this.editor.dom.parentNode !== this.source) this.source.replaceChildren(this.editor.dom);
      return;
    }
    this.static.textContent = this.text || "\u200b";
    this.source.replaceChildren(this.static);
    if (this.visible) this.mountEditor();
  }

  renderMarkdownNow() {
    if (!this.markdown) return;
    const text = this.text;
    if (!text.trim()) {
      this.markdown.replaceChildren(h("p", { class: "placeholder" }, this.ctx.readOnly ? "(empty)" : "Empty markdown cell: double-click to edit"));
    } else {
      renderMarkdown(this.markdown, text, { attachments: this.plain("attachments") || {} });
    }
    this.markdownRendered = true;
  }

  /** @param {boolean} editing */
  editMarkdown(editing) {
    if (this.type !== "markdown" || this.editingMarkdown === editing) return;
    this.editingMarkdown = editing;
    this.showSource();
    if (editing) this.mountEditor();
  }

  /** Near the viewport: make the editor (or rendered markdown) real. */
  /** @param {boolean} visible */
  setVisible(visible) {
    this.visible = visible;
    if (!visible) return;
    if (this.type === "markdown" && !this.editingMarkdown) {
      if (!this.markdownRendered) this.renderMarkdownNow();
    } else {
      this.mountEditor();
    }
  }

  /** @param {{anchor: number, head?: number}} [selection] */
  mountEditor(selection) {
    if (this.editor || this.destroyed || !this.sharedText) return this.editor;
    if (this.type === "markdown" && !this.editingMarkdown) return null;
    this.undoManager ||= new Y.UndoManager(this.ytext);
    const keys = this.ctx.keys(this);
    this.editor = createEditor({
      ytext: this.ytext,
      awareness: this.ctx.awareness,
      undoManager: this.undoManager,
      language: this.language,
      readOnly: this.ctx.readOnly,
      keys,
      selection,
      help: this.ctx.help,
      onLocalChange: () => this.ctx.onLocalChange(this),
      onFocus: () => this.ctx.onFocusEditor(this),
    });
    this.source.replaceChildren(this.editor.dom);
    return this.editor;
  }

  /** Back to the static copy (far from the viewport, not focused unless `force`). */
  unmountEditor(force = false) {
    if (!this.editor) return;
    if (this.editor.hasFocus && !force) return;
    this.editor.destroy();
    this.editor = null;
    if (this.type !== "markdown" || this.editingMarkdown) {
      this.static.textContent = this.text || "\u200b";
      this.source.replaceChildren(this.static);
    }
  }

  /** @param {"start" | "end" | null} [where] */
  focusEditor(where = null) {
    if (this.type === "markdown") this.editMarkdown(true);
    const editor = this.mountEditor();
    if (!editor) return false;
    editor.focus();
    if (where) {
      const pos = where === "start" ? 0 : editor.state.doc.length;
      editor.dispatch({ selection: { anchor: pos }, scrollIntoView: true });
    }
    return true;
  }

  /** Put the caret back where it was (`selection` in this cell's text), keyboard here. */
  /** @param {{anchor: number, head: number}} selection */
  focusAt(selection) {
    if (this.type === "markdown") this.editMarkdown(true);
    const editor = this.mountEditor();
    if (!editor) return false;
    const length = editor.state.doc.length;
    editor.focus();
    editor.dispatch({
      selection: { anchor: Math.min(selection.anchor, length), head: Math.min(selection.head, length) },
      scrollIntoView: true,
    });
    return true;
  }

  /** @param {MouseEvent} event */
  mousedown(event) {
    const target = /** @type {HTMLElement} */ (event.target);
    if (target.closest(".cm-editor") || target.closest(".cell-stdin") || target.closest("a, button, input")) {
      if (!target.closest(".cm-editor")) this.ctx.onSelect(this, false);
      return;
    }
    if (target.closest(".cell-static") && this.sharedText) {
      // Turn the static copy into the editor under the pointer, caret where clicked.
      event.preventDefault();
      const editor = this.mountEditor();
      if (editor) {
        editor.focus();
        const pos = editor.posAtCoords({ x: event.clientX, y: event.clientY });
        if (pos != null) editor.dispatch({ selection: { anchor: pos } });
      }
      return;
    }
    this.ctx.onSelect(this, false);
  }

  textChanged() {
    if (!this.editor && (this.type !== "markdown" || this.editingMarkdown)) {
      this.static.textContent = this.text || "\u200b";
    }
    if (this.type === "markdown" && !this.editingMarkdown) {
      if (this.visible) this.scheduleMarkdown();
      else {
        this.markdownRendered = false;
        /** @type {HTMLElement} */ (this.markdown).textContent = this.text;
      }
    }
    this.renderStale();
    this.ctx.onSourceChange(this);
  }

  scheduleMarkdown() {
    if (this.markdownTimer) return;
    this.markdownTimer = setTimeout(() => {
      this.markdownTimer = 0;
      if (!this.destroyed && !this.editingMarkdown) this.renderMarkdownNow();
    }, 150);
  }

  // ---- cell keys: outputs, execution count, state ---------------------------------

  /** @param {Set<string>} keys */
  keysChanged(keys) {
    if (keys.has("cell_type") || keys.has("source")) {
      this.ctx.onRecreate(this);
      return;
    }
    if (keys.has("outputs")) this.bindOutputs();
    if (keys.has("execution_count") || keys.has("execution_state")) this.renderCount();
    if (keys.has("attachments") && this.type === "markdown" && !this.editingMarkdown && this.visible) {
      this.renderMarkdownNow();
    }
  }

  /** @param {string} key */
  plain(key) {
    const value = this.ycell.get(key);
    return value instanceof Y.AbstractType ? value.toJSON() : value;
  }

  bindOutputs() {
    const outputs = this.ycell.get("outputs");
    this.outputs.bind(this.type === "code" && outputs instanceof Y.Array ? outputs : null);
  }

  /** The cell's entry of the `executions` map (or null). */
  /** @param {any} entry */
  setExecution(entry) {
    this.execution = entry && typeof entry === "object" ? entry : null;
    const state = this.execution?.state;
    const by = this.execution?.by ? String(this.execution.by) : "someone";
    const text = state === "queued" ? `queued by ${by}` : state === "running" ? `running by ${by}` : "";
    if (this.state.textContent !== text) this.state.textContent = text;
    this.el.dataset.state = state === "queued" || state === "running" ? state : "idle";
    if (this.execution?.status) this.el.dataset.status = String(this.execution.status);
    else delete this.el.dataset.status;
    this.renderCount();
    this.renderStale();
  }

  renderCount() {
    if (this.type !== "code") {
      this.count.textContent = "";
      return;
    }
    const state = this.execution?.state;
    const busy = state === "queued" || state === "running" ||
      (!this.execution && this.ycell.get("execution_state") === "running");
    const n = this.ycell.get("execution_count");
    const text = busy ? "In [*]:" : typeof n === "number" ? `In [${n}]:` : "In [ ]:";
    if (this.count.textContent !== text) this.count.textContent = text;
  }

  get isStale() {
    const code = this.execution?.code;
    return this.type === "code" && typeof code === "string" && code !== this.text;
  }

  renderStale() {
    const stale = this.isStale;
    if (stale && !this.staleMark.isConnected) this.status.append(this.staleMark);
    else if (!stale && this.staleMark.isConnected) this.staleMark.remove();
  }

  /** input() prompts of this cell's running execution. */
  /** @param {Array<[string, any]>} requests  [execution id, request] */
  setInputRequests(requests) {
    const shown = new Set();
    for (const [executionId, request] of requests) {
      shown.add(executionId);
      if (this.stdin.querySelector(`[data-execution-id="${CSS.escape(executionId)}"]`)) continue;
      this.stdin.append(this.inputBox(executionId, request));
    }
    for (const box of Array.from(this.stdin.children)) {
      if (!shown.has(/** @type {HTMLElement} */ (box).dataset.executionId || "")) box.remove();
    }
  }

  /** @param {string} executionId @param {any} request */
  inputBox(executionId, request) {
    const prompt = String(request.prompt ?? "");
    if (request.for !== this.ctx.me) {
      return h("div", { class: "stdin-box waiting", dataset: { executionId }, testid: "stdin-waiting" },
        `${prompt}`, h("em", null, ` waiting for ${request.for} to answer`));
    }
    const input = /** @type {HTMLInputElement} */ (h("input", {
      type: request.password ? "password" : "text", class: "stdin-input", testid: "stdin",
      autocomplete: "off", spellcheck: "false", "aria-label": prompt || "input",
    }));
    const box = h("form", { class: "stdin-box", dataset: { executionId } },
      h("label", null, h("span", { class: "stdin-prompt" }, prompt), input));
    box.addEventListener("submit", async (event) => {
      event.preventDefault();
      input.disabled = true;
      try {
        await this.ctx.answerInput(executionId, input.value);
      } catch {
        input.disabled = false;
        input.focus();
      }
    });
    input.addEventListener("keydown", (event) => event.stopPropagation());
    // Take the keyboard as Jupyter does, unless the person is busy in another editor.
    queueMicrotask(() => {
      const focused = document.activeElement;
      if (!focused || focused === document.body || focused.classList.contains("cell") || this.el.contains(focused)) {
        input.focus();
      }
    });
    return box;
  }

  // ---- selection and people --------------------------------------------------------

  /** @param {boolean} active */
  setActive(active) {
    // Roving tabindex: Tab reaches the notebook at its selected cell.
    this.el.tabIndex = active ? 0 : -1;
    if (active) this.el.dataset.active = "true";
    else delete this.el.dataset.active;
  }

  /** Avatars of the other people whose active cell this is. */
  /** @param {Array<{username: string, initials: string, color: string, name: string}>} people */
  setPeople(people) {
    const key = people.map((p) => p.username).join(",");
    if (this.collab.dataset.key === key) return;
    this.collab.dataset.key = key;
    this.collab.replaceChildren(
      ...people.map((p) =>
        h("span", { class: "avatar avatar-small", title: p.name, style: { background: p.color } }, p.initials)),
    );
    this.el.style.setProperty("--peer-color", people[0]?.color || "");
    this.el.classList.toggle("has-peers", people.length > 0);
  }

  destroy() {
    this.destroyed = true;
    clearTimeout(this.markdownTimer);
    this.ytext.unobserve(this.onText);
    this.ycell.unobserve(this.onKeys);
    this.outputs.destroy();
    if (this.editor) {
      this.editor.destroy();
      this.editor = null;
    }
    this.undoManager?.destroy();
    this.el.remove();
  }
}
