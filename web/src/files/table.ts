// The folder's entries as a table: a sticky header whose columns sort, and the rows in a
// virtual list; or as a grid of tiles with thumbnails (the same virtual list, several tiles a
// row). It only draws; what a click or a key means is the app's business.

import { join, THUMBNAILED, thumbUrl, type Entry } from "./api";
import { h, icon, type IconName } from "./dom";
import { bytes, extension, fullDate, iconOf, typeLabel, when } from "./format";
import { VirtualList } from "./virtual";

export type SortKey = "name" | "size" | "modified" | "type";

export interface TableSource {
  /** The folder shown, relative to the workspace. */
  folder(): string;
  count(): number;
  entry(i: number): Entry;
  selected(name: string): boolean;
  selectedCount(): number;
  cursor(): number;
}

export interface TableEvents {
  click(i: number, e: MouseEvent): void;
  open(i: number): void;
  toggle(i: number, shift: boolean): void;
  toggleAll(): void;
  sort(key: SortKey): void;
}

const COLUMNS: [SortKey, string][] = [
  ["name", "Name"],
  ["size", "Size"],
  ["modified", "Modified"],
  ["type", "Type"],
];

export class Table {
  readonly el: HTMLElement;
  readonly list: VirtualList;
  private readonly all: HTMLInputElement;
  private readonly heads = new Map<SortKey, HTMLButtonElement>();
  private readonly empty: HTMLElement;
  private readonly icons = new Map<IconName, SVGSVGElement>();
  private gridOn = false;

  constructor(
    private readonly src: TableSource,
    private readonly on: TableEvents,
  ) {
    this.all = h("input", { type: "checkbox", id: "select-all", "aria-label": "Select all" });
    this.all.addEventListener("click", (e) => {
      e.stopPropagation();
      this.on.toggleAll();
    });
    const header = h("div", { class: "thead", role: "row" }, h("span", { class: "c-check" }, this.all));
    for (const [key, label] of COLUMNS) {
      const b = h(
        "button",
        { type: "button", class: `sort c-${key}`, "data-sort": key, title: `Sort by ${label.toLowerCase()}` },
        label,
        icon("up", "icon arrow"),
      );
      b.addEventListener("click", () => this.on.sort(key));
      this.heads.set(key, b);
      header.append(b);
    }
    this.empty = h("div", { class: "empty", hidden: true });
    this.el = h("div", {
      id: "files-list",
      class: "files-list",
      tabindex: "0",
      role: "grid",
      "aria-label": "Files",
      "aria-multiselectable": "true",
    });
    this.el.append(header);
    this.list = new VirtualList(this.el, { create: () => this.createRow(), render: (row, i) => this.render(row, i) });
    this.el.append(this.empty);

    // One set of listeners for every row, present and future.
    this.el.addEventListener("click", (e) => {
      const i = this.indexOf(e.target);
      if (i === null) return;
      // (No preventDefault on the checkbox: that would undo its tick after the handler.)
      if ((e.target as Element).closest(".c-check")) this.on.toggle(i, e.shiftKey);
      else this.on.click(i, e);
    });
    this.el.addEventListener("dblclick", (e) => {
      const i = this.indexOf(e.target);
      if (i !== null && !(e.target as Element).closest(".c-check")) this.on.open(i);
    });
  }

  /** The entry a click landed on: a list's row or a grid's tile. */
  indexOf(target: EventTarget | null): number | null {
    const el = target as Element | null;
    const tile = el?.closest?.(".tile") as HTMLElement | null;
    if (tile) return tile.dataset.item === undefined ? null : Number(tile.dataset.item);
    const row = el?.closest?.(".row") as HTMLElement | null;
    if (!row || row.dataset.index === undefined || this.gridOn) return null;
    return Number(row.dataset.index);
  }

  get grid(): boolean {
    return this.gridOn;
  }

  /** Tiles with thumbnails, or the list. */
  setGrid(on: boolean): void {
    this.gridOn = on;
    this.el.classList.toggle("grid", on);
    this.list.setGrid(on);
  }

  /** Entries in a row: arrow keys up and down move by this much. */
  get cols(): number {
    return this.list.cols;
  }

  private createRow(): HTMLElement {
    if (this.gridOn) {
      const row = h("div", { class: "row tiles", role: "row" });
      for (let k = 0; k < this.list.cols; k++) row.append(this.createTile());
      return row;
    }
    const check = h("input", { type: "checkbox", tabindex: "-1", "aria-label": "Select" });
    return h(
      "div",
      { class: "row", role: "row" },
      h("span", { class: "c-check" }, check),
      h("span", { class: "c-name" }, h("span", { class: "ficon" }), h("span", { class: "fname" })),
      h("span", { class: "c-size" }),
      h("span", { class: "c-modified" }),
      h("span", { class: "c-type" }),
    );
  }

  /** Puts the type's icon in `el`, unless it shows that one already. */
  private setIcon(el: HTMLElement, name: IconName): void {
    if (el.dataset.icon === name) return;
    el.dataset.icon = name;
    el.replaceChildren(this.iconNode(name));
  }

  private iconNode(name: IconName): SVGSVGElement {
    let svg = this.icons.get(name);
    if (!svg) {
      svg = icon(name);
      this.icons.set(name, svg);
    }
    return svg.cloneNode(true) as SVGSVGElement;
  }

  private createTile(): HTMLElement {
    const img = h("img", { alt: "", draggable: "false", decoding: "async", hidden: true });
    const tile = h(
      "div",
      { class: "tile", role: "gridcell" },
      h("span", { class: "c-check" }, h("input", { type: "checkbox", tabindex: "-1", "aria-label": "Select" })),
      h("span", { class: "thumb" }, img, h("span", { class: "ficon" })),
      h("span", { class: "fname" }),
    );
    img.addEventListener("load", () => tile.classList.add("loaded"));
    // 503 (many waiting) or a slow start: asked again twice, then the type's icon stays.
    img.addEventListener("error", () => {
      const src = tile.dataset.src;
      const tries = Number(tile.dataset.tries ?? "0");
      if (!src || tries >= 2) {
        img.hidden = true;
        return;
      }
      tile.dataset.tries = String(tries + 1);
      setTimeout(() => {
        // Not for a tile that scrolled away (its row went back to the pool) or shows another.
        if (tile.dataset.src === src && !tile.hidden && !tile.parentElement?.hidden) img.src = `${src}&retry=${tries + 1}`;
      }, 800 * (tries + 1));
    });
    return tile;
  }

  private renderTile(tile: HTMLElement, i: number): void {
    if (i >= this.src.count()) {
      tile.hidden = true;
      delete tile.dataset.item;
      delete tile.dataset.src;
      (tile.querySelector("img") as HTMLImageElement).removeAttribute("src");
      return;
    }
    tile.hidden = false;
    const e = this.src.entry(i);
    const sel = this.src.selected(e.name);
    tile.dataset.item = String(i);
    tile.dataset.name = e.name;
    tile.dataset.kind = e.kind;
    tile.setAttribute("aria-selected", sel ? "true" : "false");
    tile.classList.toggle("selected", sel);
    tile.classList.toggle("cursor", this.src.cursor() === i);
    tile.classList.toggle("hidden-file", e.name.startsWith("."));
    const [check, thumb, fname] = Array.from(tile.children) as HTMLElement[];
    (check.firstChild as HTMLInputElement).checked = sel;
    fname.textContent = e.name;
    tile.title = e.kind === "file" ? `${e.name}\n${bytes(e.size)} · ${fullDate(e.modified)}` : e.name;
    const img = thumb.firstChild as HTMLImageElement;
    const ficon = thumb.lastChild as HTMLElement;
    const src = e.kind === "file" && THUMBNAILED.has(extension(e.name)) ? thumbUrl(join(this.src.folder(), e.name), e.modified, e.size) : "";
    if (tile.dataset.src !== src) {
      tile.dataset.src = src;
      delete tile.dataset.tries;
      tile.classList.remove("loaded");
      if (src) img.src = src;
      else img.removeAttribute("src");
      img.hidden = !src;
    }
    this.setIcon(ficon, iconOf(e.name, e.kind, this.src.folder()));
  }

  private render(row: HTMLElement, i: number): void {
    if (this.gridOn) {
      const cols = this.list.cols;
      Array.from(row.children).forEach((tile, k) => this.renderTile(tile as HTMLElement, i * cols + k));
      return;
    }
    const e = this.src.entry(i);
    const sel = this.src.selected(e.name);
    row.dataset.name = e.name;
    row.dataset.kind = e.kind;
    row.setAttribute("aria-selected", sel ? "true" : "false");
    row.classList.toggle("selected", sel);
    row.classList.toggle("cursor", this.src.cursor() === i);
    row.classList.toggle("hidden-file", e.name.startsWith("."));
    const [check, name, size, modified, type] = Array.from(row.children) as HTMLElement[];
    (check.firstChild as HTMLInputElement).checked = sel;
    this.setIcon(name.firstChild as HTMLElement, iconOf(e.name, e.kind, this.src.folder()));
    const fname = name.lastChild as HTMLElement;
    fname.textContent = e.name;
    fname.title = e.symlink ? `${e.name} (a symbolic link)` : e.name;
    name.classList.toggle("symlink", !!e.symlink);
    size.textContent = e.kind === "file" ? bytes(e.size) : e.kind === "dir" ? "—" : "";
    modified.textContent = e.modified ? when(e.modified) : "";
    modified.title = e.modified ? fullDate(e.modified) : "";
    type.textContent = typeLabel(e.name, e.kind, this.src.folder());
  }

  /** Draws again after the data, the selection or the sort changed. */
  update(sort: { key: SortKey; dir: 1 | -1 }, emptyText: string | null): void {
    const n = this.src.count();
    this.list.setCount(n);
    for (const [key, b] of this.heads) {
      b.classList.toggle("active", key === sort.key);
      b.classList.toggle("desc", key === sort.key && sort.dir < 0);
      b.setAttribute("aria-sort", key === sort.key ? (sort.dir > 0 ? "ascending" : "descending") : "none");
    }
    this.empty.hidden = !emptyText;
    this.empty.textContent = emptyText ?? "";
    this.syncAll();
  }

  /** Only the selection changed: the rows in view and the header's checkbox. */
  repaint(): void {
    this.list.refresh();
    this.syncAll();
  }

  private syncAll(): void {
    const n = this.src.count();
    const sel = this.src.selectedCount();
    this.all.checked = n > 0 && sel === n;
    this.all.indeterminate = sel > 0 && sel < n;
    this.el.classList.toggle("has-selection", sel > 0);
  }
}
