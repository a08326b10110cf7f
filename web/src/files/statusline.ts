// The line under the table: how many entries, what is selected, and the workspace disk's used
// and free space as a bar (always in view: a Vast disk cannot grow, so it is worth watching).

import type { Entry } from "./api";
import { h } from "./dom";
import { bytes, count } from "./format";

export class StatusLine {
  readonly el: HTMLElement;
  private readonly countsEl: HTMLElement;
  private readonly bar: HTMLElement;
  private readonly fillEl: HTMLElement;
  private readonly text: HTMLElement;

  constructor() {
    this.countsEl = h("span", { id: "counts", class: "counts" });
    this.fillEl = h("span", { class: "fill" });
    this.bar = h("span", { class: "meter", role: "meter", "aria-label": "Workspace disk used", "aria-valuemin": "0", "aria-valuemax": "100" }, this.fillEl);
    this.text = h("span", { class: "space-text" }, "…");
    this.el = h(
      "footer",
      { class: "files-status" },
      this.countsEl,
      h("span", { id: "disk-space", class: "space", title: "The workspace disk" }, h("span", { class: "space-label" }, "Disk"), this.bar, this.text),
    );
  }

  counts(view: Entry[], sel: Entry[], hidden: number): void {
    const dirs = view.reduce((n, e) => n + (e.kind === "dir" ? 1 : 0), 0);
    const files = view.length - dirs;
    const parts = [count(dirs, "folder"), count(files, "file")];
    if (hidden) parts.push(`${count(hidden, "hidden", "hidden")}`);
    this.countsEl.textContent = parts.join(" · ");
    if (sel.length) {
      const size = sel.reduce((s, e) => s + (e.kind === "file" ? e.size : 0), 0);
      this.countsEl.append(h("span", { class: "sel" }, ` · ${count(sel.length, "selected", "selected")}${size ? ` (${bytes(size)})` : ""}`));
    }
  }

  space(free: number, total: number): void {
    if (!total) {
      this.text.textContent = "unknown";
      return;
    }
    const used = total - free;
    const pct = (used / total) * 100;
    this.fillEl.style.width = `${Math.min(100, Math.max(0.5, pct)).toFixed(1)}%`;
    this.bar.setAttribute("aria-valuenow", pct.toFixed(0));
    this.bar.dataset.level = pct >= 95 ? "full" : pct >= 85 ? "high" : "ok";
    this.text.textContent = `${bytes(used)} used of ${bytes(total)} · ${bytes(free)} free`;
    this.el.dataset.free = String(free);
  }
}
