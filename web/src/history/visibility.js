// @ts-check
// Polling while a panel is visible: `task` runs now, then every `everyMs`
// while the tab is shown and the panel is on screen (it pauses by itself when
// the panel is hidden), at once when it becomes visible again, never two at a time.

/**
 * @param {HTMLElement} panel
 * @param {() => Promise<void>} task
 * @param {number} everyMs
 * @returns {{tick: () => Promise<void>, stop: () => void}} `tick` runs it now (if visible)
 */
export function pollWhileVisible(panel, task, everyMs) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  let stopped = false;
  let busy = false;
  const visible = () => document.visibilityState === "visible" && panel.isConnected && panel.getClientRects().length > 0;
  async function tick() {
    clearTimeout(timer);
    if (stopped) return;
    if (visible() && !busy) {
      busy = true;
      try {
        await task();
      } finally {
        busy = false;
      }
    }
    if (!stopped) timer = setTimeout(tick, everyMs);
  }
  // Shown again (the panel opened, the tab came back): run at once.
  let wasVisible = false;
  const resize = new ResizeObserver(() => {
    const now = visible();
    if (now && !wasVisible) tick();
    wasVisible = now;
  });
  resize.observe(panel);
  const onVisibility = () => {
    if (visible()) tick();
  };
  document.addEventListener("visibilitychange", onVisibility);
  return {
    tick,
    stop() {
      stopped = true;
      clearTimeout(timer);
      resize.disconnect();
      document.removeEventListener("visibilitychange", onVisibility);
    },
  };
}
