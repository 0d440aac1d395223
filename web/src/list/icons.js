// @ts-check
// A few 16px line icons (inline SVG, no icon font to load).

const PATHS = {
  notebook: "M4 1.5h7.5a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1H4zM4 1.5v13M2.5 4.5h3M2.5 8h3M2.5 11.5h3",
  folder: "M1.5 4a1 1 0 0 1 1-1h3.6l1.5 1.5h5.9a1 1 0 0 1 1 1V12.5a1 1 0 0 1-1 1h-11a1 1 0 0 1-1-1z",
  file: "M3.5 1.5h6l3 3v10h-9zM9.5 1.5v3h3M5.5 8h5M5.5 10.5h5",
  up: "M8 13V3M3.5 7.5 8 3l4.5 4.5",
  plus: "M8 3v10M3 8h10",
  link: "M6.5 9.5l3-3M7 4.5l1.2-1.2a2.5 2.5 0 0 1 3.5 3.5L10.5 8M9 11.5l-1.2 1.2a2.5 2.5 0 0 1-3.5-3.5L5.5 8",
  group: "M5.5 7a2 2 0 1 0 0-4 2 2 0 0 0 0 4zM1.5 13c0-2.2 1.8-4 4-4s4 1.8 4 4M11 7a1.7 1.7 0 1 0 0-3.4M11.5 9c1.7.3 3 1.8 3 3.6",
  hand: "M5 8V3.5a1 1 0 0 1 2 0V7M7 7V2.5a1 1 0 0 1 2 0V7M9 7V3.5a1 1 0 0 1 2 0V9M11 6.5a1 1 0 0 1 2 0V10c0 2.5-2 4.5-4.5 4.5S4 12.5 3.5 11L2.2 8.2a1 1 0 0 1 1.8-.9L5 9",
  eye: "M1 8s2.5-5 7-5 7 5 7 5-2.5 5-7 5-7-5-7-5zM8 10a2 2 0 1 0 0-4 2 2 0 0 0 0 4z",
  alert: "M8 1.8 14.8 13.5H1.2zM8 6v3.5M8 11.3v.2",
  trash: "M2.5 4h11M6 4V2.5h4V4M4 4l.7 9.5h6.6L12 4M6.5 6.5v4.5M9.5 6.5v4.5",
};

/**
 * @param {keyof typeof PATHS} name
 * @returns {SVGSVGElement}
 */
export function icon(name) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "16");
  svg.setAttribute("height", "16");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", `icon icon-${name}`);
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", PATHS[name]);
  svg.append(path);
  return svg;
}
