// A code cell's outputs, kept in step with its `outputs` Y.Array (one Y.Map per
// nbformat output; a stream's `text` is a Y.Text that grows while it runs).
//
// What is shown where:
//   stream, text/plain, errors  in the page, as text (ANSI colours by ansi_up,
//                               which escapes HTML)
//   png / jpeg / gif / webp     in the page, as data: URLs
//   markdown, LaTeX             in the page, sanitized (./markdown.js)
//   HTML, JavaScript, SVG       only in a sandboxed frame (./frame.js); the
//                               document's `trusted` flag is ignored
//
// Exports: class OutputArea (constructor(container, onResult?); bind(youtputs | null);
//   destroy()). The container gets one `.output` element per output; `onResult`
//   hears the execution count of the execute_result among them (or null).
import * as Y from "yjs";
import { AnsiUp } from "ansi_up";
import { createOutputFrame, releaseOutputFrame, setOutputBundle } from "./frame.js";
import { renderLatex, renderMarkdown } from "./markdown.js";

const FRAMED = new Set(["text/html", "application/javascript", "image/svg+xml"]);
const IMAGES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
// JupyterLab's ranking of renderers (html, markdown, latex, svg, images, js, text).
const ORDER = [
  "text/html", "text/markdown", "text/latex", "image/svg+xml", "image/png", "image/jpeg",
  "image/gif", "image/webp", "application/javascript", "application/json", "text/plain",
];

/** @param {unknown} value */
const joined = (value) => (Array.isArray(value) ? value.join("") : String(value ?? ""));

/** @param {string} text */
function ansiHtml(text) {
  const converter = new AnsiUp();
  converter.escape_html = true;
  converter.use_classes = true; // colours from notebook.css, per theme
  return converter.ansi_to_html(text);
}

/** Terminal semantics for \r (back to column 0) and \b, as Jupyter shows streams. */
/** @param {string} text */
export function fixConsole(text) {
  let out = text.replace(/\r+\n/g, "\n");
  if (out.includes("\b")) {
    let previous;
    do {
      previous = out;
      out = out.replace(/[^\n\b]\x08/g, "");
    } while (out !== previous);
  }
  if (!out.includes("\r")) return out;
  return out
    .split("\n")
    .map((line) => line.split("\r").reduce((shown, part) => part + shown.slice(part.length), ""))
    .join("\n");
}

/** The Y.Map's plain value of `key` (Y types as JSON). */
/** @param {Y.Map<any>} ymap @param {string} key */
function plain(ymap, key) {
  const value = ymap.get(key);
  return value instanceof Y.AbstractType ? value.toJSON() : value;
}

class OutputView {
  /** @param {Y.Map<any>} youtput */
  constructor(youtput) {
    this.youtput = youtput;
    this.node = document.createElement("div");
    this.node.className = "output";
    /** @type {HTMLIFrameElement | null} */
    this.frame = null;
    /** @type {Y.Text | null} */
    this.stream = null;
    this.scheduled = 0;
    this.onStream = () => {
      if (this.scheduled) return;
      this.scheduled = requestAnimationFrame(() => {
        this.scheduled = 0;
        this.renderStream();
      });
    };
    this.onChange = () => this.render();
    youtput.observe(this.onChange);
    this.render();
  }

  render() {
    const type = String(this.youtput.get("output_type") || "");
    this.node.dataset.outputType = type;
    this.watchStream(null);
    if (type === "stream") {
      const text = this.youtput.get("text");
      if (text instanceof Y.Text) this.watchStream(text);
      this.renderStream();
    } else if (type === "error") {
      const traceback = plain(this.youtput, "traceback");
      const text = Array.isArray(traceback) && traceback.length
        ? traceback.join("\n")
        : `${plain(this.youtput, "ename") || "Error"}: ${plain(this.youtput, "evalue") || ""}`;
      this.setPre("output-error", ansiHtml(text), true);
    } else if (type === "execute_result" || type === "display_data" || type === "update_display_data") {
      this.renderData(plain(this.youtput, "data") || {}, plain(this.youtput, "metadata") || {});
    } else {
      this.setPre("output-text", `(unsupported output: ${type})`, false);
    }
  }

  /** @param {Y.Text | null} text */
  watchStream(text) {
    if (this.stream === text) return;
    if (this.stream) this.stream.unobserve(this.onStream);
    this.stream = text;
    if (text) text.observe(this.onStream);
  }

  renderStream() {
    const value = this.youtput.get("text");
    const text = value instanceof Y.Text ? value.toString() : joined(value);
    const name = String(this.youtput.get("name") || "stdout");
    this.setPre(name === "stderr" ? "output-stream output-stderr" : "output-stream", ansiHtml(fixConsole(text)), true);
  }

  /** @param {string} className @param {string} content @param {boolean} html */
  setPre(className, content, html) {
    this.dropFrame();
    let pre = this.node.firstElementChild;
    if (!(pre instanceof HTMLPreElement) || this.node.childElementCount !== 1) {
      pre = document.createElement("pre");
      this.node.replaceChildren(pre);
    }
    pre.className = className;
    if (html) pre.innerHTML = content; // ansi_up output: HTML-escaped text in colour spans
    else pre.textContent = content;
  }

  /** @param {Record<string, unknown>} data @param {Record<string, any>} metadata */
  renderData(data, metadata) {
    const mime = ORDER.find((m) => m in data) || Object.keys(data).find((m) => m.startsWith("text/"));
    if (!mime) {
      this.setPre("output-text", "(an output with no displayable data)", false);
      return;
    }
    if (metadata && metadata.collab_server && "truncated_bytes" in metadata.collab_server) {
      this.setPre("output-text output-note", joined(data["text/plain"]), false);
      return;
    }
    if (FRAMED.has(mime)) {
      /** @type {Record<string, unknown>} */
      const bundle = { [mime]: data[mime] };
      if ("text/plain" in data) bundle["text/plain"] = data["text/plain"];
      if (this.frame && this.frame.parentNode === this.node) {
        setOutputBundle(this.frame, bundle);
      } else {
        this.dropFrame();
        this.frame = createOutputFrame(bundle);
        this.node.replaceChildren(this.frame);
      }
      return;
    }
    this.dropFrame();
    if (IMAGES.has(mime)) {
      const img = document.createElement("img");
      img.className = "output-image";
      img.alt = joined(data["text/plain"]).slice(0, 200) || "image output";
      img.src = `data:${mime};base64,${joined(data[mime]).replace(/\s/g, "")}`;
      const size = metadata && metadata[mime];
      if (size && typeof size === "object") {
        if (Number(size.width) > 0) img.width = Number(size.width);
        if (Number(size.height) > 0) img.height = Number(size.height);
      }
      this.node.replaceChildren(img);
    } else if (mime === "text/markdown") {
      const div = document.createElement("div");
      div.className = "output-markdown rendered-markdown";
      renderMarkdown(div, joined(data[mime]));
      this.node.replaceChildren(div);
    } else if (mime === "text/latex") {
      const div = document.createElement("div");
      div.className = "output-latex";
      renderLatex(div, joined(data[mime]));
      this.node.replaceChildren(div);
    } else if (mime === "application/json") {
      this.setPre("output-text", JSON.stringify(data[mime], null, 2), false);
    } else {
      this.setPre("output-text", ansiHtml(joined(data[mime])), true);
    }
  }

  dropFrame() {
    if (this.frame) releaseOutputFrame(this.frame);
    this.frame = null;
  }

  destroy() {
    this.dropFrame();
    this.youtput.unobserve(this.onChange);
    this.watchStream(null);
    if (this.scheduled) cancelAnimationFrame(this.scheduled);
    this.node.remove();
  }
}

export class OutputArea {
  /** @param {HTMLElement} container @param {(count: number | null) => void} [onResult] */
  constructor(container, onResult) {
    this.container = container;
    this.onResult = onResult;
    /** @type {Y.Array<Y.Map<any>> | null} */
    this.youtputs = null;
    /** @type {Map<Y.Map<any>, OutputView>} */
    this.views = new Map();
    this.onChange = () => this.sync();
  }

  /** @param {Y.Array<Y.Map<any>> | null} youtputs */
  bind(youtputs) {
    if (this.youtputs === youtputs) return;
    if (this.youtputs) this.youtputs.unobserve(this.onChange);
    this.youtputs = youtputs;
    if (youtputs) youtputs.observe(this.onChange);
    this.sync();
  }

  sync() {
    const items = this.youtputs ? this.youtputs.toArray().filter((o) => o instanceof Y.Map) : [];
    const keep = new Set(items);
    for (const [ymap, view] of this.views) {
      if (!keep.has(ymap)) {
        view.destroy();
        this.views.delete(ymap);
      }
    }
    let previous = null;
    for (const ymap of items) {
      let view = this.views.get(ymap);
      if (!view) {
        view = new OutputView(ymap);
        this.views.set(ymap, view);
      }
      const expected = previous ? previous.nextSibling : this.container.firstChild;
      if (expected !== view.node) this.container.insertBefore(view.node, expected);
      previous = view.node;
    }
    this.container.classList.toggle("has-outputs", items.length > 0);
    const result = items.find((o) => o.get("output_type") === "execute_result");
    const count = result?.get("execution_count");
    this.onResult?.(typeof count === "number" ? count : null);
  }

  destroy() {
    this.bind(null);
  }
}
