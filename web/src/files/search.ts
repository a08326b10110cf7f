// Search by name below the current folder. The server answers in JSON lines while it walks the
// tree; they are read from the response's stream and shown as they come. A result opens its
// folder with it selected.

import type { App } from "./app";
import { api, basename, message, parent, type Found } from "./api";
import { h, icon, iconButton } from "./dom";
import { bytes, iconOf, when } from "./format";
import { VirtualList } from "./virtual";

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

const LIMIT = 10000;

export class Search {
  readonly box: HTMLElement;
  readonly el: HTMLElement;
  private readonly input: HTMLInputElement;
  private readonly head: HTMLElement;
  private readonly scroller: HTMLElement;
  private readonly list: VirtualList;
  private results: Found[] = [];
  private ctl: AbortController | null = null;
  private timer = 0;
  private query = "";
  private cursor = -1;

  constructor(private readonly app: App) {
    this.input = h("input", {
      type: "search",
      id: "search-input",
      placeholder: "Search names below this folder",
      "aria-label": "Search names below this folder",
      autocomplete: "off",
      spellcheck: "false",
    });
    this.box = h("label", { class: "searchbox" }, icon("search"), this.input);
    this.input.addEventListener("input", () => {
      clearTimeout(this.timer);
      const q = this.input.value.trim();
      if (!q) this.close();
      else if (q.length >= 2) this.timer = window.setTimeout(() => this.run(q), 250);
    });
    this.input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        clearTimeout(this.timer);
        const q = this.input.value.trim();
        if (q) {
          if (q === this.query && this.isOpen() && this.results.length) this.pick(Math.max(0, this.cursor));
          else this.run(q);
        }
      } else if (e.key === "Escape") {
        e.preventDefault();
        this.close();
        this.app.table.el.focus();
      } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        if (!this.isOpen() || !this.results.length) return;
        e.preventDefault();
        this.cursor = Math.max(0, Math.min(this.results.length - 1, this.cursor + (e.key === "ArrowDown" ? 1 : -1)));
        this.list.reveal(this.cursor);
        this.list.refresh();
      }
    });

    this.head = h("div", { class: "search-head" });
    this.scroller = h("div", { class: "files-list search-list", id: "search-list", role: "listbox" });
    this.list = new VirtualList(this.scroller, {
      create: () =>
        h("div", { class: "row result", role: "option" }, h("span", { class: "c-name" }, h("span", { class: "ficon" }), h("span", { class: "fname" })), h("span", { class: "c-where" }), h("span", { class: "c-size" }), h("span", { class: "c-modified" })),
      render: (row, i) => this.render(row, i),
    });
    this.scroller.addEventListener("click", (e) => {
      const row = (e.target as Element).closest(".row") as HTMLElement | null;
      if (row?.dataset.index !== undefined) this.pick(Number(row.dataset.index));
    });
    const close = iconButton("close", "Close the search (Esc)", { id: "search-close" });
    close.addEventListener("click", () => {
      this.close();
      this.app.table.el.focus();
    });
    this.el = h("div", { id: "search-results", class: "search-results", hidden: true }, h("div", { class: "search-bar" }, this.head, close), this.scroller);
  }

  isOpen(): boolean {
    return !this.el.hidden;
  }

  focus(): void {
    this.input.focus();
    this.input.select();
  }

  private run(q: string): void {
    this.ctl?.abort();
    const ctl = (this.ctl = new AbortController());
    this.query = q;
    this.results = [];
    this.cursor = -1;
    this.el.hidden = false;
    this.app.table.el.hidden = true;
    this.scroller.scrollTop = 0;
    this.list.setCount(0);
    const where = this.app.path;
    this.status(where, true);
    let frame = 0;
    api
      .search(
        where,
        q,
        (batch) => {
          if (ctl.signal.aborted) return;
          this.results.push(...batch);
          if (!frame)
            frame = requestAnimationFrame(() => {
              frame = 0;
              this.sortResults();
              this.list.setCount(this.results.length);
              this.status(where, true);
            });
        },
        ctl.signal,
      )
      .then(
        () => {
          if (ctl.signal.aborted) return;
          cancelAnimationFrame(frame);
          this.sortResults();
          this.list.setCount(this.results.length);
          this.status(where, false);
        },
        (e) => {
          if (ctl.signal.aborted) return;
          cancelAnimationFrame(frame);
          this.list.setCount(this.results.length);
          this.status(where, false, message(e));
        },
      );
  }

  /** Best first, not in the order the walk found them: names that start with the query, then
   * the shallowest, then by path (numbers in order). The row under the cursor stays under it. */
  private sortResults(): void {
    const q = this.query.toLowerCase();
    const at = this.results[this.cursor];
    const key = new Map(
      this.results.map((r) => [r, [basename(r.path).toLowerCase().startsWith(q) ? 0 : 1, r.path.split("/").length] as const]),
    );
    this.results.sort((a, b) => {
      const [ka, kb] = [key.get(a)!, key.get(b)!];
      return ka[0] - kb[0] || ka[1] - kb[1] || collator.compare(a.path, b.path);
    });
    if (at) this.cursor = this.results.indexOf(at);
  }

  private status(where: string, running: boolean, error?: string): void {
    const n = this.results.length;
    this.el.dataset.state = error ? "failed" : running ? "running" : "done";
    this.head.replaceChildren(
      running ? h("span", { class: "spinner", "aria-hidden": "true" }) : icon("search"),
      h(
        "span",
        { id: "search-status" },
        error
          ? `Search failed: ${error}`
          : `${n.toLocaleString("en-US")}${n >= LIMIT ? " (the first 10,000)" : ""} ${n === 1 ? "name" : "names"} with “${this.query}” below /${where}${running ? " — searching…" : ""}`,
      ),
    );
    if (!running && !n && !error) this.head.append(h("span", { class: "muted" }, " — nothing found"));
  }

  private render(row: HTMLElement, i: number): void {
    const r = this.results[i];
    const name = basename(r.path);
    row.dataset.path = r.path;
    row.dataset.name = name;
    row.classList.toggle("cursor", i === this.cursor);
    const [nameEl, where, size, modified] = Array.from(row.children) as HTMLElement[];
    const ficon = nameEl.firstChild as HTMLElement;
    ficon.dataset.icon = iconOf(name, r.kind, parent(r.path));
    ficon.replaceChildren(icon(iconOf(name, r.kind, parent(r.path))));
    const fname = nameEl.lastChild as HTMLElement;
    // The match, marked, without parsing anything as HTML.
    const at = name.toLowerCase().indexOf(this.query.toLowerCase());
    if (at >= 0) fname.replaceChildren(name.slice(0, at), h("mark", null, name.slice(at, at + this.query.length)), name.slice(at + this.query.length));
    else fname.textContent = name;
    fname.title = "/" + r.path;
    where.textContent = "/" + parent(r.path);
    size.textContent = r.kind === "file" ? bytes(r.size) : r.kind === "dir" ? "folder" : "";
    modified.textContent = r.modified ? when(r.modified) : "";
  }

  private pick(i: number): void {
    const r = this.results[i];
    if (!r) return;
    const name = basename(r.path);
    if (name.startsWith(".") && !this.app.showHidden) this.app.setHidden(true);
    this.app.go(parent(r.path), name);
  }

  close(): void {
    this.ctl?.abort();
    this.ctl = null;
    clearTimeout(this.timer);
    if (this.el.hidden) return;
    this.el.hidden = true;
    this.app.table.el.hidden = false;
    this.input.value = "";
    this.query = "";
  }
}
