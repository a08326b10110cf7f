// The instance's home page (/.gpubox/ on every port), kept fresh: the page is fetched again every
// few seconds and its tiles and gauges swapped in when they changed (one source of truth: the
// server's HTML, no second renderer here). Copy buttons copy a tile's address; the Clipboard API
// needs https, so on plain http a selection is copied instead.

export {};

const REFRESH_MS = 3000;

async function refresh(root: HTMLElement): Promise<void> {
  if (document.hidden) return;
  try {
    const res = await fetch(location.pathname, { headers: { Accept: "text/html" }, cache: "no-store" });
    if (!res.ok) return;
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    const fresh = doc.getElementById("home");
    if (fresh && fresh.innerHTML !== root.innerHTML && !root.contains(document.activeElement)) {
      root.replaceChildren(...Array.from(fresh.childNodes).map((n) => document.importNode(n, true)));
    }
  } catch {
    // The next round tries again.
  }
}

async function copy(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to a selection
  }
  const area = document.createElement("textarea");
  area.className = "copy-buffer";
  area.value = text;
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

const root = document.getElementById("home");
if (root) {
  root.addEventListener("click", (e) => {
    const b = (e.target as HTMLElement).closest<HTMLButtonElement>("button.copy");
    if (!b) return;
    void copy(b.dataset.copy ?? "").then((ok) => {
      b.textContent = ok ? "Copied" : "Copy failed";
      b.classList.toggle("done", ok);
      window.setTimeout(() => {
        b.textContent = "Copy";
        b.classList.remove("done");
        b.blur();
      }, 1500);
    });
  });
  window.setInterval(() => void refresh(root), REFRESH_MS);
}
