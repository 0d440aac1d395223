// Small 16x16 icons drawn as SVG (no icon font: the machine may have no emoji).
// Exports: icon(name) -> SVGElement (aria-hidden; label the button instead).

const NS = "http://www.w3.org/2000/svg";

/** @type {Record<string, Array<[string, Record<string, string>]>>} */
const SHAPES = {
  plus: [["path", { d: "M7 2h2v5h5v2H9v5H7V9H2V7h5z" }]],
  up: [["path", { d: "M8 2l5 5h-3v7H6V7H3z" }]],
  down: [["path", { d: "M8 14l5-5h-3V2H6v7H3z" }]],
  trash: [["path", { d: "M6 1h4v1h4v2H2V2h4zM3 5h10l-1 10H4z" }]],
  play: [["path", { d: "M4 2l10 6-10 6z" }]],
  runall: [["path", { d: "M1 2l7 6-7 6zM8 2l7 6-7 6z" }]],
  stop: [["rect", { x: "3", y: "3", width: "10", height: "10", rx: "1" }]],
  restart: [["path", { d: "M13.5 2v5h-5l1.9-1.9A4 4 0 1 0 12 8h2a6 6 0 1 1-2.2-4.6z" }]],
  copy: [["path", { "fill-rule": "evenodd", d: "M6 1h8v10H6zm1.5 1.5v7h5v-7zM2 5h2.5v1.5h-1v7h5v-1H10V15H2z" }]],
  cut: [["path", { d: "M4 1l4 6 4-6h1.5L9 8l1.6 2.4A2.5 2.5 0 1 1 9.3 11L8 9l-1.3 2a2.5 2.5 0 1 1-1.3-.6L7 8 2.5 1zM4 11.2a1.3 1.3 0 1 0 0 2.6 1.3 1.3 0 0 0 0-2.6zm8 0a1.3 1.3 0 1 0 0 2.6 1.3 1.3 0 0 0 0-2.6z" }]],
  paste: [["path", { "fill-rule": "evenodd", d: "M5.5 1h5v1.5H13V15H3V2.5h2.5zM7 2.5V4h2V2.5zM4.5 4v9.5h7V4H10v1.5H6V4z" }]],
  history: [["path", { d: "M8 1a7 7 0 1 1-6.1 3.6L1 4V1h3L3.4 2.2A5.5 5.5 0 1 0 8 2.5zM7.25 4h1.5v3.7l2.6 1.5-.75 1.3L7.25 8.6z" }]],
  hand: [
    ["rect", { x: "4", y: "3.5", width: "2", height: "7", rx: "1" }],
    ["rect", { x: "6.5", y: "1.5", width: "2", height: "8", rx: "1" }],
    ["rect", { x: "9", y: "2.5", width: "2", height: "8", rx: "1" }],
    ["rect", { x: "11.5", y: "4.5", width: "2", height: "7", rx: "1" }],
    ["rect", { x: "4", y: "8", width: "9.5", height: "6.5", rx: "3" }],
    ["rect", { x: "1", y: "7", width: "2", height: "5", rx: "1", transform: "rotate(-30 2 9.5)" }],
  ],
  people: [["path", { d: "M5.5 2a2.5 2.5 0 1 1 0 5 2.5 2.5 0 0 1 0-5zM1 13c0-2.5 2-4.5 4.5-4.5S10 10.5 10 13v1H1zM11 3a2 2 0 1 1 0 4 2 2 0 0 1 0-4zm.5 5.5c2 0 3.5 1.6 3.5 3.6V13h-4a6 6 0 0 0-1.4-4.1c.6-.3 1.2-.4 1.9-.4z" }]],
};

/** @param {string} name @returns {SVGSVGElement} */
export function icon(name) {
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "16");
  svg.setAttribute("height", "16");
  svg.setAttribute("fill", "currentColor");
  svg.setAttribute("aria-hidden", "true");
  svg.classList.add("icon");
  for (const [tag, attrs] of SHAPES[name] || []) {
    const shape = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) shape.setAttribute(k, v);
    svg.append(shape);
  }
  return svg;
}
