// @ts-check
// What the list and tutor pages share: the boot data, the top bar, polling.
import { h } from "./dom.js";
import { avatar } from "./people.js";
import { readBoot } from "../lib/boot.js";
import { themeSelect } from "../lib/theme.js";

/** @typedef {import("../lib/boot.js").Boot} Boot */

export { readBoot };

/**
 * The top bar: the app's name, the pages this user has, who is logged in.
 * @param {Boot} boot
 * @param {"list" | "tutor"} current
 */
export function topBar(boot, current) {
  const link = (/** @type {string} */ href, /** @type {string} */ text, /** @type {boolean} */ here) =>
    h("a", { href, class: here ? "nav-link current" : "nav-link", "aria-current": here ? "page" : null }, text);
  return h(
    "header",
    { class: "topbar" },
    h("a", { class: "brand", href: "/" }, "collab-server"),
    h(
      "nav",
      { "aria-label": "Pages" },
      link("/", "Notebooks", current === "list"),
      boot.user.tutor &&
        h(
          "a",
          {
            href: "/tutor",
            testid: "tutor-link",
            class: current === "tutor" ? "nav-link current" : "nav-link",
            "aria-current": current === "tutor" ? "page" : null,
          },
          "Tutor dashboard",
        ),
    ),
    h(
      "div",
      { class: "me" },
      avatar(boot.user.name, { size: "m", title: `Logged in as ${boot.user.name}` }),
      h("span", { class: "me-name" }, boot.user.name, boot.user.admin && h("span", { class: "tag" }, "admin")),
      themeSelect(),
      h("a", { href: "/logout", class: "nav-link" }, "Log out"),
    ),
  );
}

/**
 * Call `task` now and then every `intervalMs` while the page is visible; calls
 * never overlap, and a hidden tab does not poll (it catches up when shown).
 * @param {() => Promise<void>} task
 * @param {number} intervalMs
 * @returns {{stop: () => void, now: () => Promise<void>}}
 */
export function poll(task, intervalMs) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  let running = false;
  let stopped = false;
  const run = async () => {
    clearTimeout(timer);
    if (stopped) return;
    if (!running && document.visibilityState !== "hidden") {
      running = true;
      try {
        await task();
      } catch (error) {
        console.error("polling failed", error);
      } finally {
        running = false;
      }
    }
    if (!stopped) timer = setTimeout(run, intervalMs);
  };
  const onVisible = () => {
    if (document.visibilityState === "visible") run();
  };
  document.addEventListener("visibilitychange", onVisible);
  run();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisible);
    },
    now: run,
  };
}
