// The bar above the table: where you are (breadcrumbs, which turn into a path box to type a
// folder), search, what you can make (upload, new folder, new file, fetch) and what you can do
// with the selection.

import type { App } from "./app";
import { normalize, type Entry } from "./api";
import { button, h, icon, iconButton } from "./dom";
import { bytes, count } from "./format";
import { menuButton } from "./menu";

export class Toolbar {
  readonly el: HTMLElement;
  private readonly crumbs: HTMLElement;
  private readonly pathInput: HTMLInputElement;
  private readonly pathBox: HTMLElement;
  private readonly selBox: HTMLElement;
  private readonly selCount: HTMLElement;
  private readonly single: HTMLButtonElement[];
  private readonly upBtn: HTMLButtonElement;
  private readonly gridBtn: HTMLButtonElement;
  readonly fileInput: HTMLInputElement;
  readonly folderInput: HTMLInputElement;

  constructor(private readonly app: App) {
    const a = app.actions;
    this.upBtn = iconButton("up", "Up one folder (Backspace)", { id: "go-up" });
    this.upBtn.addEventListener("click", () => app.up());
    this.crumbs = h("nav", { id: "breadcrumbs", class: "crumbs", "aria-label": "Folder" });
    this.pathInput = h("input", {
      id: "path-input",
      type: "text",
      class: "path-input",
      spellcheck: "false",
      autocomplete: "off",
      "aria-label": "Go to folder",
      placeholder: "/path/to/folder",
    });
    const edit = iconButton("pencil", "Type a path (Ctrl+L)", { id: "path-edit", class: "icon-only path-edit" });
    this.pathBox = h("div", { class: "pathbox" }, this.crumbs, this.pathInput, edit);
    this.pathInput.hidden = true;
    edit.addEventListener("click", () => this.editPath());
    this.crumbs.addEventListener("click", (e) => {
      if (e.target === this.crumbs) this.editPath();
    });
    this.pathInput.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        const to = normalize(this.pathInput.value);
        this.stopEditing();
        app.go(to);
      } else if (e.key === "Escape") {
        e.preventDefault();
        this.stopEditing();
        app.table.el.focus();
      }
    });
    this.pathInput.addEventListener("blur", () => this.stopEditing());

    this.fileInput = h("input", { type: "file", id: "upload-input", multiple: true, hidden: true });
    this.folderInput = h("input", { type: "file", id: "upload-folder-input", webkitdirectory: true, hidden: true });
    const upload = button("upload", "Upload", { id: "upload-btn", class: "primary" });
    menuButton(upload, () => [
      { label: "Files…", icon: "file", id: "upload-files", run: () => this.fileInput.click() },
      { label: "A folder…", icon: "folder", id: "upload-folder", run: () => this.folderInput.click() },
    ]);
    const newFolder = button("newFolder", "New folder", { id: "new-folder" });
    newFolder.addEventListener("click", () => void a.newFolder());
    const newFile = button("newFile", "New file", { id: "new-file" });
    newFile.addEventListener("click", () => void a.newFile());
    const fetchUrl = button("fetch", "From URL", { id: "fetch-url", title: "Download a URL into this folder (on the server)" });
    fetchUrl.addEventListener("click", () => void a.fetchUrl());
    const create = h("div", { class: "group create" }, upload, newFolder, newFile, fetchUrl, this.fileInput, this.folderInput);

    const download = button("download", "Download", { id: "download" });
    download.setAttribute("aria-haspopup", "menu");
    download.addEventListener("click", () => a.download(download, app.selectedEntries()));
    const rename = button("rename", "Rename", { id: "rename", title: "Rename (F2)" });
    rename.addEventListener("click", () => void a.rename());
    const move = button("move", "Move", { id: "move" });
    move.addEventListener("click", () => void a.move());
    const copy = button("copy", "Copy", { id: "copy" });
    copy.addEventListener("click", () => void a.copy());
    const del = button("trash", "Delete", { id: "delete", class: "danger", title: "Delete permanently (Del)" });
    del.addEventListener("click", () => void a.remove());
    const more = iconButton("more", "More", { id: "more" });
    menuButton(more, () => a.moreItems(app.selectedEntries()));
    this.single = [rename];
    this.selCount = h("span", { id: "selection-count", class: "sel-count" });
    const clear = iconButton("close", "Clear the selection (Esc)", { class: "icon-only clear-sel" });
    clear.addEventListener("click", () => app.selectNone());
    this.selBox = h(
      "div",
      { id: "selection-actions", class: "group selection", hidden: true },
      clear,
      this.selCount,
      download,
      rename,
      move,
      copy,
      del,
      more,
    );

    const refresh = iconButton("refresh", "Refresh", { id: "refresh" });
    refresh.addEventListener("click", () => void app.refresh());
    const hidden = h("input", { type: "checkbox", id: "show-hidden" });
    hidden.checked = app.showHidden;
    hidden.addEventListener("change", () => app.setHidden(hidden.checked));
    const hiddenLabel = h("label", { class: "toggle", title: "Show names that start with a dot" }, hidden, h("span", { class: "long" }, "Hidden files"), h("span", { class: "short" }, "Hidden"));
    const shares = iconButton("link", "Shared links", { id: "shares" });
    shares.addEventListener("click", () => void a.sharesList());
    this.gridBtn = iconButton("grid", "Show as a grid", { id: "view-toggle" });
    this.gridBtn.addEventListener("click", () => app.toggleGrid());
    const models = button("model", "Models", { id: "models-btn", title: "Forge's models, and adding one from Civitai or Hugging Face" });
    models.addEventListener("click", () => app.models.open());
    const view = h("div", { class: "group view" }, models, this.gridBtn, refresh, shares, hiddenLabel);

    this.el = h(
      "div",
      { class: "files-toolbar" },
      h("div", { class: "bar nav" }, this.upBtn, this.pathBox, app.search.box),
      h("div", { class: "bar actions" }, create, this.selBox, view),
    );
  }

  /** The view button offers the other view. */
  showGrid(on: boolean): void {
    const label = on ? "Show as a list" : "Show as a grid";
    this.gridBtn.replaceChildren(icon(on ? "list" : "grid"));
    this.gridBtn.title = label;
    this.gridBtn.setAttribute("aria-label", label);
    this.gridBtn.setAttribute("aria-pressed", on ? "true" : "false");
  }

  setPath(path: string, loading: boolean): void {
    this.upBtn.disabled = path === "";
    this.el.classList.toggle("loading", loading);
    const parts = path ? path.split("/") : [];
    const home = h("a", { href: "#/", class: "crumb home", title: "The workspace", "data-path": "" }, icon("home"), h("span", null, "workspace"));
    const items: Node[] = [home];
    parts.forEach((p, i) => {
      const to = parts.slice(0, i + 1).join("/");
      items.push(icon("chevron", "icon sep"));
      const last = i === parts.length - 1;
      items.push(
        h(
          "a",
          { href: "#/" + parts.slice(0, i + 1).map(encodeURIComponent).join("/"), class: last ? "crumb current" : "crumb", "data-path": to, "aria-current": last ? "page" : undefined },
          p,
        ),
      );
    });
    this.crumbs.replaceChildren(...items);
    // The end of a long path is what matters.
    this.crumbs.scrollLeft = this.crumbs.scrollWidth;
  }

  editPath(): void {
    this.pathInput.value = "/" + this.app.path;
    this.crumbs.hidden = true;
    this.pathInput.hidden = false;
    this.pathBox.classList.add("editing");
    this.pathInput.focus();
    this.pathInput.select();
  }

  private stopEditing(): void {
    this.crumbs.hidden = false;
    this.pathInput.hidden = true;
    this.pathBox.classList.remove("editing");
  }

  selection(sel: Entry[]): void {
    this.selBox.hidden = sel.length === 0;
    this.el.classList.toggle("has-selection", sel.length > 0);
    const size = sel.reduce((s, e) => s + (e.kind === "file" ? e.size : 0), 0);
    this.selCount.replaceChildren(
      sel.length ? count(sel.length, "selected", "selected") : "",
      size ? h("span", { class: "sel-size" }, ` · ${bytes(size)}`) : "",
    );
    for (const b of this.single) b.disabled = sel.length !== 1;
  }
}
