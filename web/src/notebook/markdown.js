// Markdown as Jupyter renders it: marked (GitHub flavour) with TeX math,
// `$...$` / `\(...\)` inline and `$$...$$` / `\[...\]` display, typeset by
// KaTeX. Raw HTML in the markdown is sanitized (./sanitize.js); math is
// typeset after sanitizing, from the TeX text only (KaTeX with trust off).
//
// Exports:
//   renderMarkdown(target, source, {attachments?})  replaces target's content.
//   renderLatex(target, source)  a text/latex output (one or more $$...$$ blocks).
import { Marked } from "marked";
import katex from "katex";
import "katex/dist/katex.min.css";
import { sanitize } from "./sanitize.js";

/** @param {string} text */
const escapeAttr = (text) =>
  text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** @param {string} tex @param {boolean} display */
const placeholder = (tex, display) =>
  `<span class="math ${display ? "math-display" : "math-inline"}" data-math="${escapeAttr(tex)}"></span>`;

const marked = new Marked({
  gfm: true,
  breaks: false,
  extensions: [
    {
      name: "mathBlock",
      level: "block",
      start: (src) => src.match(/\$\$|\\\[/)?.index,
      tokenizer(src) {
        const m = /^\$\$([\s\S]+?)\$\$[^\S\n]*(?:\n|$)/.exec(src) || /^\\\[([\s\S]+?)\\\][^\S\n]*(?:\n|$)/.exec(src);
        if (m) return { type: "mathBlock", raw: m[0], text: m[1].trim() };
        return undefined;
      },
      renderer: (token) => `<div>${placeholder(token.text, true)}</div>\n`,
    },
    {
      name: "mathInline",
      level: "inline",
      start: (src) => src.match(/\$|\\\(/)?.index,
      tokenizer(src) {
        const m =
          /^\$\$([^$]+?)\$\$/.exec(src) ||
          /^\$((?:\\.|[^\\$\n])+?)\$(?!\d)/.exec(src) ||
          /^\\\(([\s\S]+?)\\\)/.exec(src);
        if (m) return { type: "mathInline", raw: m[0], text: m[1], display: m[0].startsWith("$$") };
        return undefined;
      },
      renderer: (token) => placeholder(token.text, Boolean(token.display)),
    },
  ],
});

/** @param {ParentNode} root */
function typeset(root) {
  for (const el of root.querySelectorAll("span.math[data-math]")) {
    const tex = el.getAttribute("data-math") || "";
    el.removeAttribute("data-math");
    katex.render(tex, /** @type {HTMLElement} */ (el), {
      displayMode: el.classList.contains("math-display"),
      throwOnError: false,
      trust: false,
      strict: "ignore",
      output: "htmlAndMathml",
    });
  }
}

/**
 * @param {HTMLElement} target @param {string} source
 * @param {{attachments?: Record<string, Record<string, string>>}} [options]
 */
export function renderMarkdown(target, source, options = {}) {
  const html = /** @type {string} */ (marked.parse(source, { async: false }));
  const fragment = sanitize(html, options);
  typeset(fragment);
  target.replaceChildren(fragment);
}

/** @param {HTMLElement} target @param {string} source */
export function renderLatex(target, source) {
  const text = source.trim();
  const blocks = /^\$\$[\s\S]*\$\$$/.test(text) || /^\\\[[\s\S]*\\\]$/.test(text)
    ? [text.slice(2, -2)]
    : null;
  if (blocks) {
    target.replaceChildren();
    for (const tex of blocks) {
      const div = document.createElement("div");
      katex.render(tex, div, { displayMode: true, throwOnError: false, trust: false, strict: "ignore" });
      target.append(div);
    }
  } else {
    renderMarkdown(target, text);
  }
}
