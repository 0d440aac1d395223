// @ts-check
// Times from the server are seconds since the epoch.

const MINUTE = 60;
const HOUR = 3600;
const DAY = 86400;

/**
 * "just now", "5 min ago", "3 h ago", "yesterday", "4 days ago", or the date.
 * Future times (a link's expiry) read "in 5 min", "in 3 days".
 * @param {number} seconds
 * @param {number} [now] seconds since the epoch
 */
export function relativeTime(seconds, now = Date.now() / 1000) {
  const delta = now - seconds;
  const ahead = delta < 0;
  const d = Math.abs(delta);
  const say = (/** @type {string} */ text) => (ahead ? `in ${text}` : `${text} ago`);
  if (d < 45) return ahead ? "in a moment" : "just now";
  if (d < HOUR) return say(`${Math.max(1, Math.round(d / MINUTE))} min`);
  if (d < DAY) return say(`${Math.round(d / HOUR)} h`);
  if (d < 2 * DAY && !ahead) return "yesterday";
  if (d < 7 * DAY) return say(`${Math.round(d / DAY)} days`);
  return new Date(seconds * 1000).toLocaleDateString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
  });
}

/**
 * The exact local date and time, for a tooltip.
 * @param {number} seconds
 */
export function exactTime(seconds) {
  return new Date(seconds * 1000).toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

/**
 * A duration: "35 ms", "1.2 s", "4 min 3 s", "2 h 5 min".
 * @param {number} seconds
 */
export function duration(seconds) {
  if (seconds < 1) return `${Math.max(0, Math.round(seconds * 1000))} ms`;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < MINUTE) return `${Math.round(seconds)} s`;
  if (seconds < HOUR) return `${Math.floor(seconds / MINUTE)} min ${Math.round(seconds % MINUTE)} s`;
  return `${Math.floor(seconds / HOUR)} h ${Math.round((seconds % HOUR) / MINUTE)} min`;
}

/**
 * A `<time>` element showing the relative time with the exact one on hover.
 * @param {number} seconds
 * @param {number} [now]
 */
export function timeElement(seconds, now) {
  const el = document.createElement("time");
  el.dateTime = new Date(seconds * 1000).toISOString();
  el.title = exactTime(seconds);
  el.textContent = relativeTime(seconds, now);
  return el;
}
