// The file manager's page: the folder shown (named in the URL's hash, `#/models/x`, so reload
// and back/forward work), its entries sorted and filtered, the selection, the keyboard, and the
// parts around them: the toolbar (./toolbar), the table (./table), uploads, jobs, the viewer,
// search and the status line.

import { api, ApiError, basename, join, message, normalize, parent, THUMBNAILED, type Entry } from "./api";
import { Actions } from "./actions";
import { h } from "./dom";
import { showMenu } from "./menu";
import { notify } from "./notify";
import { Search } from "./search";
import { StatusLine } from "./statusline";
import { Table, type SortKey } from "./table";
import { Toolbar } from "./toolbar";
import { Transfers } from "./transfers";
import { Viewer } from "./viewer";
import { ModelsView } from "./models";
import { extension, typeLabel } from "./format";

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
const coarse = matchMedia("(pointer: coarse)");

function hashPath(): string {
  const raw = location.hash.replace(/^#\/?/, "");
  try {
    return normalize(raw.split("/").map(decodeURIComponent).join("/"));
  } catch {
    return normalize(raw);
  }
}

/** Forge's (and ComfyUI's, and most tools') output folders: a grid, newest first. */
const OUTPUTS = /(^|\/)outputs?(\/|$)/i;

function hashOf(path: string): string {
  return "#/" + path.split("/").map(encodeURIComponent).join("/");
}

export class App {
  path = "";
  entries: Entry[] = [];
  view: Entry[] = [];
  sort: { key: SortKey; dir: 1 | -1 } = { key: "name", dir: 1 };
  showHidden = localStorage.getItem("files.hidden") === "1";
  selected = new Set<string>();
  anchor = -1;
  cursorIndex = -1;
  loadError: string | null = null;

  readonly root: HTMLElement;
  readonly toolbar: Toolbar;
  readonly table: Table;
  readonly status: StatusLine;
  readonly transfers: Transfers;
  readonly viewer: Viewer;
  readonly models: ModelsView;
  readonly search: Search;
  readonly actions: Actions;
  private readonly dropZone: HTMLElement;
  private pendingSelect: string | null = null;
  /** The folder whose view (grid or list) and sort are set. */
  private viewPath: string | null = null;
  private loadCtl: AbortController | null = null;
  private typed = "";
  private typedAt = 0;

  constructor(root: HTMLElement) {
    this.root = root;
    document.body.classList.add("files-page");
    this.sort = this.savedSort("");
    this.actions = new Actions(this);
    this.search = new Search(this);
    this.toolbar = new Toolbar(this);
    this.table = new Table(
      {
        folder: () => this.path,
        count: () => this.view.length,
        entry: (i) => this.view[i],
        selected: (name) => this.selected.has(name),
        selectedCount: () => this.selected.size,
        cursor: () => this.cursorIndex,
      },
      {
        click: (i, e) => this.clickRow(i, e),
        open: (i) => this.open(this.view[i]),
        toggle: (i, shift) => this.toggleRow(i, shift),
        toggleAll: () => (this.selected.size === this.view.length ? this.selectNone() : this.selectAll()),
        sort: (key) => this.setSort(key),
      },
    );
    this.status = new StatusLine();
    this.transfers = new Transfers(this);
    this.viewer = new Viewer(this);
    this.models = new ModelsView(this);
    this.dropZone = h("div", { id: "drop-zone", class: "drop-zone", hidden: true }, h("div", { class: "drop-card" }));

    const body = h("div", { class: "files-body" }, this.table.el, this.search.el, this.viewer.el, this.models.el, this.dropZone);
    root.append(this.toolbar.el, body, this.status.el, this.transfers.el);

    window.addEventListener("hashchange", () => {
      // Back and forward leave an editor with unsaved changes open over the new folder.
      if (!this.viewer.dirty()) this.viewer.close();
      this.search.close();
      void this.load(hashPath());
    });
    document.addEventListener("keydown", (e) => this.key(e));
    this.table.el.addEventListener("contextmenu", (e) => this.contextMenu(e));
    this.transfers.wireDrop(root, this.dropZone);
  }

  start(): void {
    this.load(hashPath());
    this.transfers.start();
    setInterval(() => void this.refreshSpace(), 30000);
  }

  // ---- how a folder is shown

  /** Output folders keep their own sort, newest first until the user sorts otherwise. */
  private sortStore(path: string): string {
    return OUTPUTS.test(path) ? "files.sort.outputs" : "files.sort";
  }

  private savedSort(path: string): { key: SortKey; dir: 1 | -1 } {
    const saved = localStorage.getItem(this.sortStore(path));
    if (saved) {
      const [key, dir] = saved.split(":");
      if (["name", "size", "modified", "type"].includes(key)) return { key: key as SortKey, dir: dir === "-1" ? -1 : 1 };
    }
    return OUTPUTS.test(path) ? { key: "modified", dir: -1 } : { key: "name", dir: 1 };
  }

  /** A grid for a folder the user showed as one, an output folder, or one that is mostly
   * pictures; else the list. */
  private gridFor(path: string, entries: Entry[]): boolean {
    const saved = localStorage.getItem(`files.view:${path}`);
    if (saved) return saved === "grid";
    const files = entries.filter((e) => e.kind === "file");
    const pictures = files.filter((e) => THUMBNAILED.has(extension(e.name))).length;
    return (OUTPUTS.test(path) && (pictures > 0 || files.length === 0)) || (pictures >= 12 && pictures * 2 >= files.length);
  }

  /** Switches this folder between the grid and the list, and remembers it. */
  toggleGrid(): void {
    const on = !this.table.grid;
    localStorage.setItem(`files.view:${this.path}`, on ? "grid" : "list");
    this.table.setGrid(on);
    this.toolbar.showGrid(on);
    this.table.update(this.sort, this.emptyText());
    if (this.cursorIndex >= 0) this.table.list.reveal(this.cursorIndex, true);
  }

  // ---- loading and navigating

  /** Shows `path`; `select` (a name in it) is selected and scrolled to. */
  go(path: string, select?: string): void {
    this.pendingSelect = select ?? null;
    this.search.close();
    if (!this.viewer.dirty()) this.viewer.close();
    const hash = hashOf(path);
    if (location.hash === hash || (location.hash === "" && path === "")) void this.load(path);
    else location.hash = hash;
  }

  up(): void {
    if (this.path) this.go(parent(this.path), basename(this.path));
  }

  async load(path: string, keep = false): Promise<void> {
    this.loadCtl?.abort();
    const ctl = (this.loadCtl = new AbortController());
    const changed = path !== this.path;
    this.toolbar.setPath(path, true);
    try {
      const listing = await api.list(path, ctl.signal);
      if (ctl.signal.aborted) return;
      this.path = listing.path;
      this.entries = listing.entries;
      this.loadError = null;
      this.status.space(listing.free, listing.total);
    } catch (e) {
      if (ctl.signal.aborted) return;
      this.path = path;
      this.entries = [];
      this.loadError =
        e instanceof ApiError && e.status === 404 ? `/${path} does not exist (any more).` : `Cannot list /${path}: ${message(e)}`;
    }
    const fresh = this.viewPath !== this.path;
    if (fresh) {
      this.viewPath = this.path;
      this.sort = this.savedSort(this.path);
    }
    if (changed || !keep) {
      if (changed) this.selected.clear();
      this.anchor = this.cursorIndex = -1;
      if (changed) this.table.el.scrollTop = 0;
    }
    this.toolbar.setPath(this.path, false);
    document.title = `${this.path ? basename(this.path) : "Files"} · ${document.title.split(" · ").pop()}`;
    this.applyView();
    // After the view holds this folder's entries: the grid's first tiles ask for its pictures.
    if (fresh) {
      const grid = this.gridFor(this.path, this.entries);
      this.table.setGrid(grid);
      this.toolbar.showGrid(grid);
    }
    const select = this.pendingSelect;
    this.pendingSelect = null;
    if (select !== null) this.selectName(select, true);
    if (!this.viewer.isOpen() && !this.search.isOpen() && !this.root.contains(document.activeElement))
      this.table.el.focus({ preventScroll: true });
  }

  /** Lists the folder again, keeping the selection and the scroll position. */
  refresh(select?: string): Promise<void> {
    if (select) this.pendingSelect = select;
    return this.load(this.path, true);
  }

  async refreshSpace(): Promise<void> {
    try {
      const s = await api.space();
      this.status.space(s.free, s.total);
    } catch {
      // the next listing brings it
    }
  }

  /** Sorts and filters the listing into `view`, keeping the selection to what is shown. */
  applyView(): void {
    const { key, dir } = this.sort;
    const shown = this.showHidden ? this.entries.slice() : this.entries.filter((e) => !e.name.startsWith("."));
    const isDir = (e: Entry) => (e.kind === "dir" ? 0 : 1);
    const byName = (a: Entry, b: Entry) => collator.compare(a.name, b.name);
    let cmp: (a: Entry, b: Entry) => number;
    if (key === "size") cmp = (a, b) => a.size - b.size || byName(a, b);
    else if (key === "modified") cmp = (a, b) => a.modified - b.modified || byName(a, b);
    else if (key === "type") {
      const labels = new Map(shown.map((e) => [e, typeLabel(e.name, e.kind, this.path)]));
      cmp = (a, b) => collator.compare(labels.get(a) ?? "", labels.get(b) ?? "") || byName(a, b);
    } else cmp = byName;
    // Folders first; a folder's size says nothing about what is in it, so by size they keep to names.
    const folderCmp = key === "size" ? byName : (a: Entry, b: Entry) => dir * cmp(a, b);
    shown.sort((a, b) => isDir(a) - isDir(b) || (a.kind === "dir" ? folderCmp(a, b) : dir * cmp(a, b)));
    const cursorName = this.view[this.cursorIndex]?.name;
    this.view = shown;
    const names = new Set(shown.map((e) => e.name));
    for (const n of this.selected) if (!names.has(n)) this.selected.delete(n);
    this.cursorIndex = cursorName ? shown.findIndex((e) => e.name === cursorName) : -1;
    this.table.update(this.sort, this.emptyText());
    this.table.el.classList.toggle("failed", !!this.loadError);
    this.selectionChanged();
  }

  private emptyText(): string | null {
    if (this.loadError) return this.loadError;
    if (this.view.length) return null;
    return this.entries.length
      ? `Only hidden files here. Show them with “Hidden files”.`
      : "This folder is empty. Drop files here to upload them.";
  }

  setSort(key: SortKey): void {
    this.sort = { key, dir: this.sort.key === key ? (-this.sort.dir as 1 | -1) : key === "name" || key === "type" ? 1 : -1 };
    localStorage.setItem(this.sortStore(this.path), `${this.sort.key}:${this.sort.dir}`);
    this.applyView();
  }

  setHidden(on: boolean): void {
    this.showHidden = on;
    const box = document.getElementById("show-hidden") as HTMLInputElement | null;
    if (box) box.checked = on;
    localStorage.setItem("files.hidden", on ? "1" : "0");
    this.applyView();
  }

  // ---- selection

  selectedEntries(): Entry[] {
    return this.view.filter((e) => this.selected.has(e.name));
  }

  /** What an action applies to: the selection, or else the row under the keyboard cursor. */
  targets(): Entry[] {
    const sel = this.selectedEntries();
    if (sel.length) return sel;
    const c = this.view[this.cursorIndex];
    return c ? [c] : [];
  }

  selectionChanged(): void {
    this.table.repaint();
    this.toolbar.selection(this.selectedEntries());
    this.status.counts(this.view, this.selectedEntries(), this.entries.length - this.view.length);
  }

  private range(a: number, b: number): void {
    const [lo, hi] = a < b ? [a, b] : [b, a];
    for (let i = Math.max(0, lo); i <= hi; i++) this.selected.add(this.view[i].name);
  }

  clickRow(i: number, e: MouseEvent): void {
    const name = this.view[i].name;
    if (e.shiftKey && this.anchor >= 0) {
      if (!(e.ctrlKey || e.metaKey)) this.selected.clear();
      this.range(this.anchor, i);
    } else if (e.ctrlKey || e.metaKey) {
      if (this.selected.has(name)) this.selected.delete(name);
      else this.selected.add(name);
      this.anchor = i;
    } else if (coarse.matches && this.selected.size === 0) {
      // On a touch screen a tap opens (there is no double tap); the checkboxes select.
      this.cursorIndex = i;
      this.open(this.view[i]);
      return;
    } else {
      this.selected.clear();
      this.selected.add(name);
      this.anchor = i;
    }
    this.cursorIndex = i;
    this.table.el.focus({ preventScroll: true });
    this.selectionChanged();
  }

  toggleRow(i: number, shift: boolean): void {
    const name = this.view[i].name;
    if (shift && this.anchor >= 0) this.range(this.anchor, i);
    else if (this.selected.has(name)) this.selected.delete(name);
    else this.selected.add(name);
    this.anchor = this.cursorIndex = i;
    this.selectionChanged();
  }

  selectAll(): void {
    for (const e of this.view) this.selected.add(e.name);
    this.selectionChanged();
  }

  selectNone(): void {
    this.selected.clear();
    this.selectionChanged();
  }

  selectName(name: string, center = false): void {
    const i = this.view.findIndex((e) => e.name === name);
    if (i < 0) return;
    this.selected.clear();
    this.selected.add(name);
    this.anchor = this.cursorIndex = i;
    this.table.list.reveal(i, center);
    this.selectionChanged();
  }

  private moveCursor(to: number, e: KeyboardEvent): void {
    if (!this.view.length) return;
    const i = Math.max(0, Math.min(this.view.length - 1, to));
    if (e.shiftKey) {
      if (this.anchor < 0) this.anchor = Math.max(0, this.cursorIndex);
      this.selected.clear();
      this.range(this.anchor, i);
    } else if (!(e.ctrlKey || e.metaKey)) {
      this.selected.clear();
      this.selected.add(this.view[i].name);
      this.anchor = i;
    }
    this.cursorIndex = i;
    this.table.list.reveal(i);
    this.selectionChanged();
  }

  // ---- opening

  open(e: Entry | undefined): void {
    if (!e) return;
    const path = join(this.path, e.name);
    if (e.kind === "dir") this.go(path);
    else if (e.kind === "file") this.viewer.open(path, e);
    else notify(e.kind === "link" ? `${e.name} is a link that leads outside the workspace or nowhere.` : `${e.name} is a pipe, socket or device: it cannot be opened.`, "info");
  }

  // ---- the keyboard

  private key(e: KeyboardEvent): void {
    const t = e.target as HTMLElement;
    if (document.querySelector("dialog[open]") || this.viewer.isOpen() || this.models.isOpen()) return;
    const mod = e.ctrlKey || e.metaKey;
    if (mod && e.key.toLowerCase() === "l") {
      e.preventDefault();
      this.toolbar.editPath();
      return;
    }
    if (mod && e.key.toLowerCase() === "f") {
      e.preventDefault();
      this.search.focus();
      return;
    }
    if (t.closest("input, textarea, select, [contenteditable], .cm-editor")) return;
    if (this.search.isOpen()) return;
    const list = this.table.list;
    const c = this.cursorIndex;
    // In the grid, up and down move a row of tiles; left and right one tile.
    const row = this.table.cols;
    switch (e.key) {
      case "ArrowDown":
        this.moveCursor(c < 0 ? 0 : c + row, e);
        break;
      case "ArrowUp":
        if (e.altKey) this.up();
        else this.moveCursor(c < 0 ? 0 : c - row, e);
        break;
      case "ArrowRight":
      case "ArrowLeft":
        if (!this.table.grid) return;
        this.moveCursor(c < 0 ? 0 : c + (e.key === "ArrowRight" ? 1 : -1), e);
        break;
      case "PageDown":
        this.moveCursor(c + list.page(), e);
        break;
      case "PageUp":
        this.moveCursor(c - list.page(), e);
        break;
      case "Home":
        this.moveCursor(0, e);
        break;
      case "End":
        this.moveCursor(this.view.length - 1, e);
        break;
      case "Enter":
        this.open(this.view[c] ?? (this.selected.size === 1 ? this.selectedEntries()[0] : undefined));
        break;
      case "Backspace":
        this.up();
        break;
      case "Delete":
        void this.actions.remove();
        break;
      case "F2":
        void this.actions.rename();
        break;
      case "Escape":
        if (this.selected.size) this.selectNone();
        else return;
        break;
      case " ":
        if (c >= 0) this.toggleRow(c, e.shiftKey);
        break;
      default:
        if (mod && e.key.toLowerCase() === "a") {
          this.selectAll();
          break;
        }
        if (e.key.length === 1 && !mod && !e.altKey) {
          this.typeAhead(e.key);
          break;
        }
        return;
    }
    e.preventDefault();
  }

  /** Typing a name's first letters moves to it. */
  private typeAhead(ch: string): void {
    const now = performance.now();
    this.typed = now - this.typedAt > 800 ? ch : this.typed + ch;
    this.typedAt = now;
    const want = this.typed.toLowerCase();
    const n = this.view.length;
    const from = this.typed.length === 1 ? this.cursorIndex + 1 : Math.max(0, this.cursorIndex);
    for (let k = 0; k < n; k++) {
      const i = (from + k) % n;
      if (this.view[i].name.toLowerCase().startsWith(want)) {
        this.selectName(this.view[i].name);
        return;
      }
    }
  }

  private contextMenu(e: MouseEvent): void {
    const i = this.table.indexOf(e.target);
    if (i === null) return;
    e.preventDefault();
    if (!this.selected.has(this.view[i].name)) {
      this.selected.clear();
      this.selected.add(this.view[i].name);
      this.anchor = i;
    }
    this.cursorIndex = i;
    this.selectionChanged();
    showMenu(this.actions.menuFor(this.selectedEntries()), null, { x: e.clientX, y: e.clientY });
  }

  /** The current folder's names, for conflict checks. */
  names(): Set<string> {
    return new Set(this.entries.map((e) => e.name));
  }
}
