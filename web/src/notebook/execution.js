// Run state for everyone, from the maps the server writes into the document
// (see kernels/execution.py): `executions` (cell id -> {state, by, code, ...}),
// `kernel` ({status, name, message, by}) and `input_requests` (execution id ->
// {cell_id, prompt, password, for}).
//
// Exports: class ExecutionState ({doc, view, me, statusEl, notice}); calls
//   `onMine(running)` listeners when whether a cell we asked for is queued or
//   running changes (presence shows "running").
import * as Y from "yjs";

/** @param {unknown} value */
const plain = (value) => (value instanceof Y.AbstractType ? value.toJSON() : value);

export class ExecutionState {
  /**
   * @param {{doc: Y.Doc, view: import("./view.js").NotebookView, me: string,
   *   statusEl: HTMLElement, notice: (text: string, testid?: string) => void}} options
   */
  constructor(options) {
    this.options = options;
    this.view = options.view;
    this.executions = options.doc.getMap("executions");
    this.kernel = options.doc.getMap("kernel");
    this.inputs = options.doc.getMap("input_requests");
    /** @type {Array<(running: boolean) => void>} */
    this.mineListeners = [];
    this.mine = false;
    this.lastMessage = /** @type {string | null} */ (null);
    this.kernelReady = false;

    this.view.on("created", (cell) => this.decorate(cell));
    for (const cell of this.view.views) this.decorate(cell);
    this.executions.observe((event) => {
      for (const id of event.keysChanged) {
        const entry = plain(this.executions.get(id));
        for (const cell of this.view.views) if (cell.id === id) cell.setExecution(entry);
      }
      this.updateMine();
    });
    this.kernel.observe(() => this.renderKernel());
    this.inputs.observe(() => this.renderInputs());
    this.renderKernel();
    this.renderInputs();
    this.updateMine();
  }

  /** @param {import("./cell.js").CellView} cell */
  decorate(cell) {
    const entry = this.executions.get(cell.id);
    if (entry !== undefined) cell.setExecution(plain(entry));
    const requests = this.requestsFor(cell.id);
    if (requests.length) cell.setInputRequests(requests);
  }

  /** @param {(running: boolean) => void} fn */
  onMine(fn) {
    this.mineListeners.push(fn);
  }

  updateMine() {
    let mine = false;
    this.executions.forEach((value) => {
      const entry = /** @type {any} */ (plain(value));
      if (entry && entry.by === this.options.me && (entry.state === "running" || entry.state === "queued")) mine = true;
    });
    if (mine !== this.mine) {
      this.mine = mine;
      this.mineListeners.forEach((f) => f(mine));
    }
  }

  renderKernel() {
    const kernel = /** @type {any} */ (this.kernel.toJSON());
    const status = typeof kernel.status === "string" ? kernel.status : "no kernel";
    const el = this.options.statusEl;
    el.textContent = status;
    el.dataset.status = status;
    el.title = [kernel.name ? `Kernel: ${kernel.name}` : "", kernel.message || ""].filter(Boolean).join("\n");
    const message = typeof kernel.message === "string" ? kernel.message : "";
    // Tell people what happened to the kernel (restarted by bob, died), once.
    if (this.kernelReady && message && message !== this.lastMessage) {
      this.options.notice(message, "kernel-message");
    }
    this.lastMessage = message;
  }

  /** Start announcing kernel messages (not the one found on opening). */
  ready() {
    this.kernelReady = true;
    this.lastMessage = String(/** @type {any} */ (this.kernel.toJSON()).message || "");
  }

  /** @param {string} cellId @returns {Array<[string, any]>} */
  requestsFor(cellId) {
    /** @type {Array<[string, any]>} */
    const found = [];
    this.inputs.forEach((value, executionId) => {
      const request = /** @type {any} */ (plain(value));
      if (request && request.cell_id === cellId) found.push([executionId, request]);
    });
    return found;
  }

  renderInputs() {
    /** @type {Map<string, Array<[string, any]>>} */
    const byCell = new Map();
    this.inputs.forEach((value, executionId) => {
      const request = /** @type {any} */ (plain(value));
      if (!request || typeof request.cell_id !== "string") return;
      if (!byCell.has(request.cell_id)) byCell.set(request.cell_id, []);
      /** @type {Array<[string, any]>} */ (byCell.get(request.cell_id)).push([executionId, request]);
    });
    for (const cell of this.view.views) {
      const requests = byCell.get(cell.id) || [];
      if (requests.length || cell.stdin.childElementCount) cell.setInputRequests(requests);
    }
  }
}
