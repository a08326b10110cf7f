// The page shell's own script, on every page of gpubox's own.
// - The default-login warning: "Hide" hides it for the browser's session, on every port (a
//   session cookie, which the server reads to leave the warning out of the next pages).
// - The idle stop's warning: while the instance is about to be stopped for want of use, a banner
//   says when, with "Keep running". Logged in only (the header's "Log out" says so): the state is
//   asked every 30 s, and also just after the moment the warning is due, so that a short warning
//   is not missed between two looks. Those requests are the page's own (not activity): an open
//   tab does not keep the instance from stopping, the button does.

import { ApiError } from "./common/api";
import { h } from "./common/dom";
import { describe, IdleState, idleState, keepRunning, warning } from "./common/idle";

const POLL_MS = 30000;
/** How often the countdown is redrawn. */
const TICK_MS = 1000;
/** A look this long after a due moment finds the server past it (it decides at each sample). */
const LATE_MS = 1000;

const banner = document.querySelector<HTMLElement>(".banner");
document.getElementById("banner-hide")?.addEventListener("click", () => {
  document.cookie = "gpubox_banner=hidden; path=/; SameSite=Lax";
  if (banner) banner.hidden = true;
});

/** When to look again: at the next due moment (the stop while warned, else the warning of the
 * idle spell now running, after a stop too), at most `POLL_MS` on. */
function nextLook(st: IdleState, now: number): number {
  let due = Infinity;
  if (st.phase === "warned" && st.stop_at_ms !== undefined) due = st.stop_at_ms;
  else if (st.after_s !== undefined && st.phase !== "stopping") {
    due = st.idle_since_ms + (st.after_s - st.warn_before_s) * 1000;
  }
  return Math.min(POLL_MS, Math.max(LATE_MS, due - now + LATE_MS));
}

function watchIdle(main: HTMLElement): void {
  const text = h("span");
  const keep = h("button", { type: "button", class: "dismiss", id: "idle-keep" }, "Keep running");
  // Put in the page the first time it is needed.
  let el: HTMLElement | null = null;
  let look = 0;
  let tick = 0;
  /** The phase the banner was last drawn for; whether this page's user put a failure away. */
  let shown = "";
  let seenFailure = false;

  const hide = (): void => {
    window.clearInterval(tick);
    if (el) el.hidden = true;
  };
  const show = (st: IdleState): void => {
    window.clearInterval(tick);
    // Warned: the countdown and "Keep running". A failed stop request (the instance still
    // costs): said, with "Hide". Anything else: nothing.
    shown = st.phase;
    if (st.phase !== "warned" && (st.phase !== "failed" || seenFailure)) {
      hide();
      return;
    }
    if (!el) {
      // Announced once when it appears; the countdown inside is not read out every second.
      text.setAttribute("aria-live", "off");
      el = h("div", { class: "banner", id: "idle-banner", role: "alert" }, text, keep);
      main.before(el);
    }
    keep.textContent = st.phase === "warned" ? "Keep running" : "Hide";
    const draw = () => {
      const now = Date.now();
      const said = st.phase === "warned" ? warning(st, now) : describe(st, now);
      if (text.textContent !== said) text.textContent = said;
    };
    draw();
    el.hidden = false;
    if (st.phase === "warned") tick = window.setInterval(draw, TICK_MS);
  };
  const lookAgain = (wait: number): void => {
    window.clearTimeout(look);
    look = window.setTimeout(() => void poll(), wait);
  };
  const poll = async (): Promise<void> => {
    window.clearTimeout(look);
    let wait = POLL_MS;
    if (!document.hidden) {
      try {
        const st = await idleState();
        // Off (it is set at start): nothing will ever be shown.
        if (!st.enabled) return;
        show(st);
        wait = nextLook(st, Date.now());
      } catch (e) {
        // Logged out (or no longer allowed): nothing to watch, and nothing shown.
        if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
          hide();
          return;
        }
      }
    }
    lookAgain(wait);
  };
  keep.addEventListener("click", async () => {
    // A failed stop's notice: read, put away for this page.
    if (shown === "failed") {
      seenFailure = true;
      hide();
      return;
    }
    keep.disabled = true;
    try {
      const st = await keepRunning();
      show(st);
      lookAgain(nextLook(st, Date.now()));
    } catch (e) {
      window.clearInterval(tick);
      text.textContent = `"Keep running" did not reach gpubox (${(e as Error).message}); try again.`;
    } finally {
      keep.disabled = false;
    }
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) void poll();
  });
  void poll();
}

const main = document.querySelector("main");
if (main && document.querySelector('header.shell form[action="/.gpubox/logout"]')) watchIdle(main);
