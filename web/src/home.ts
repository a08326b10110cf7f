// The instance's home page (/.gpubox/ on every port), kept fresh: the page is fetched again every
// few seconds and its tiles and gauges swapped in when they changed (one source of truth: the
// server's HTML, no second renderer here). Copy buttons copy a tile's address; the Clipboard API
// needs https, so on plain http a selection is copied instead.

import { BACKGROUND } from "./common/api";
import { copyText } from "./common/clipboard";

const REFRESH_MS = 3000;

/** One refresh. Asked as a script asks (not as a page load), so that an open tab does not keep
 * its session alive forever, and as the page's own (background), so that it does not keep the
 * instance from its idle stop; a session that ended shows the login page by a reload. */
async function refresh(root: HTMLElement): Promise<void> {
  if (document.hidden) return;
  try {
    const res = await fetch(location.pathname, { headers: { Accept: "*/*", ...BACKGROUND }, cache: "no-store", redirect: "manual" });
    if (res.status === 401 || res.type === "opaqueredirect") {
      location.reload();
      return;
    }
    if (!res.ok) return;
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    const fresh = doc.getElementById("home");
    if (!fresh) {
      location.reload();
      return;
    }
    if (fresh.innerHTML !== root.innerHTML && !root.contains(document.activeElement)) {
      root.replaceChildren(...Array.from(fresh.childNodes).map((n) => document.importNode(n, true)));
    }
  } catch {
    // The next round tries again.
  }
}

/** Refreshes every few seconds, the next one only once this one is done (answers never pile
 * up or arrive out of order). */
function loop(root: HTMLElement): void {
  window.setTimeout(() => void refresh(root).finally(() => loop(root)), REFRESH_MS);
}

const root = document.getElementById("home");
if (root) {
  root.addEventListener("click", (e) => {
    const b = (e.target as HTMLElement).closest<HTMLButtonElement>("button.copy");
    if (!b) return;
    void copyText(b.dataset.copy ?? "").then((ok) => {
      b.textContent = ok ? "Copied" : "Copy failed";
      b.classList.toggle("done", ok);
      window.setTimeout(() => {
        b.textContent = "Copy";
        b.classList.remove("done");
        b.blur();
      }, 1500);
    });
  });
  loop(root);
}
