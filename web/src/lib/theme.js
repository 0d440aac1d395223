// @ts-check
// Light and dark: the person's choice (Light, Dark or System, kept in
// localStorage) resolved against the system's `prefers-color-scheme`, written
// as `data-theme="light" | "dark"` on <html>, which lib/base.css keys its
// colours on. ../theme.js runs this before the first paint (a blocking script
// in <head>); each page's bundle then follows changes (the system's, or a
// choice made in another tab) and offers the choice with themeSelect().
//
// Exports:
//   THEME_KEY           the localStorage key ("collab-server:theme").
//   themeChoice()       "light" | "dark" | "system" (system when unset or unknown).
//   applyTheme()        resolve the choice and set <html data-theme>; returns the theme.
//   setThemeChoice(c)   remember a choice and apply it.
//   followTheme()       apply on system and storage changes (once per page).
//   onTheme(listener)   call listener(theme) whenever the applied theme changes.
//   themeSelect()       a labelled <select> [data-testid=theme] that sets the choice.

export const THEME_KEY = "collab-server:theme";

/** @typedef {"light" | "dark"} Theme @typedef {Theme | "system"} ThemeChoice */

const CHOICES = /** @type {const} */ (["system", "light", "dark"]);
const LABELS = { system: "System", light: "Light", dark: "Dark" };

/** @type {Set<(theme: Theme) => void>} */
const listeners = new Set();

const systemDark = () => window.matchMedia("(prefers-color-scheme: dark)");

/** @returns {ThemeChoice} */
export function themeChoice() {
  let stored = null;
  try {
    stored = localStorage.getItem(THEME_KEY);
  } catch {
    stored = null; // storage refused (a privacy setting): follow the system
  }
  return stored === "light" || stored === "dark" ? stored : "system";
}

/** @returns {Theme} */
export function applyTheme() {
  const choice = themeChoice();
  /** @type {Theme} */
  const theme = choice === "system" ? (systemDark().matches ? "dark" : "light") : choice;
  const root = document.documentElement;
  root.dataset.themeChoice = choice;
  if (root.dataset.theme !== theme) {
    root.dataset.theme = theme;
    for (const listener of listeners) listener(theme);
  }
  return theme;
}

/** @param {ThemeChoice} choice */
export function setThemeChoice(choice) {
  try {
    if (choice === "system") localStorage.removeItem(THEME_KEY);
    else localStorage.setItem(THEME_KEY, choice);
  } catch {
    return; // storage refused: the choice cannot be kept, the system's stays
  }
  applyTheme();
}

let following = false;

export function followTheme() {
  if (following) return;
  following = true;
  systemDark().addEventListener("change", () => applyTheme());
  window.addEventListener("storage", (event) => {
    if (event.key === THEME_KEY || event.key === null) {
      applyTheme();
      syncSelects();
    }
  });
}

/** @param {(theme: Theme) => void} listener */
export function onTheme(listener) {
  listeners.add(listener);
}

function syncSelects() {
  const choice = themeChoice();
  for (const select of document.querySelectorAll("select[data-testid=theme]")) {
    /** @type {HTMLSelectElement} */ (select).value = choice;
  }
}

/** @returns {HTMLSelectElement} */
export function themeSelect() {
  followTheme();
  const select = document.createElement("select");
  select.dataset.testid = "theme";
  select.className = "theme-select";
  select.title = "Colours: light, dark, or as the system is set";
  select.setAttribute("aria-label", "Theme");
  for (const choice of CHOICES) {
    const option = document.createElement("option");
    option.value = choice;
    option.textContent = LABELS[choice];
    select.append(option);
  }
  select.value = themeChoice();
  select.addEventListener("change", () => setThemeChoice(/** @type {ThemeChoice} */ (select.value)));
  return select;
}
