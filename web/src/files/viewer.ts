// Opening a file: text in the editor (saved with Ctrl+S), pictures, video and sound inline,
// Markdown rendered (or edited), and for everything else what it is and what can be done with
// it. Nothing big is loaded whole: text past 2 MiB shows its first 2 MiB, read-only.

import type { App } from "./app";
import { api, ApiError, basename, fileUrl, message, parent, type Entry } from "./api";
import { confirmIt } from "./dialogs";
import { button, h, icon, iconButton } from "./dom";
import type { Editor } from "./editor";
import { bytes, extractable, family, fullDate, iconOf, typeLabel, type Family } from "./format";
import { viewerLib, type ViewerLib } from "./lazy";
import { notify } from "./notify";
import { Picture } from "./picture";

const TEXT_LIMIT = 2 * 1024 * 1024;
const SNIFF = 8192;

/** Text if it decodes as UTF-8 and has no NUL bytes; a cut-off last character is allowed. */
function asText(buf: ArrayBuffer, cut: boolean): string | null {
  const bytes8 = new Uint8Array(buf);
  if (bytes8.includes(0)) return null;
  try {
    return new TextDecoder("utf-8", { fatal: !cut }).decode(bytes8);
  } catch {
    return null;
  }
}

export class Viewer {
  readonly el: HTMLElement;
  private readonly titleEl: HTMLElement;
  private readonly metaEl: HTMLElement;
  private readonly tools: HTMLElement;
  private readonly body: HTMLElement;
  private readonly state: HTMLElement;
  private editor: Editor | null = null;
  private picture: Picture | null = null;
  private path = "";
  private entry: Entry | null = null;
  private ctl: AbortController | null = null;
  private saving = false;

  constructor(private readonly app: App) {
    const back = iconButton("close", "Close (Esc)", { id: "viewer-close" });
    back.addEventListener("click", () => void this.tryClose());
    this.titleEl = h("span", { class: "v-name", id: "viewer-name" });
    this.metaEl = h("span", { class: "v-meta" });
    this.state = h("span", { class: "v-state", id: "save-state", role: "status", "aria-live": "polite" });
    this.tools = h("div", { class: "v-tools" });
    this.body = h("div", { class: "v-body" });
    this.el = h(
      "section",
      { id: "viewer", class: "viewer", hidden: true, "aria-label": "File" },
      h("header", { class: "v-head" }, h("div", { class: "v-title" }, this.titleEl, this.metaEl), this.state, this.tools, back),
      this.body,
    );
    document.addEventListener("keydown", (e) => this.key(e));
  }

  isOpen(): boolean {
    return !this.el.hidden;
  }

  /** Has the editor changes that are not saved? */
  dirty(): boolean {
    return !!this.editor?.dirty();
  }

  private key(e: KeyboardEvent): void {
    if (!this.isOpen() || document.querySelector("dialog[open]")) return;
    const mod = e.ctrlKey || e.metaKey;
    if (mod && e.key.toLowerCase() === "s") {
      e.preventDefault(); // never the browser's "save page"
      if (this.editor) void this.save();
      return;
    }
    if (this.picture?.key(e)) {
      e.preventDefault();
      return;
    }
    const inEditor = e.composedPath().some((n) => n instanceof HTMLElement && n.classList.contains("cm-editor"));
    // In the editor, Escape closes too unless the editor used it (closing its search panel,
    // collapsing a multiple selection): it then marks the event handled.
    if (e.key === "Escape" && !e.defaultPrevented) {
      e.preventDefault();
      void this.tryClose();
    } else if ((e.key === "ArrowRight" || e.key === "ArrowLeft") && !inEditor && !(e.target as Element).closest?.("input, video, audio")) {
      const f = this.entry ? family(this.entry.name, this.entry.kind) : "other";
      if (f === "image" || f === "video" || f === "audio") {
        e.preventDefault();
        this.step(e.key === "ArrowRight" ? 1 : -1);
      }
    }
  }

  /** The next or previous picture (or video, or sound) in the folder. */
  private step(dir: 1 | -1): void {
    const media: Family[] = ["image", "video", "audio"];
    const view = this.app.view;
    const at = view.findIndex((e) => e.name === this.entry?.name);
    for (let i = at + dir; i >= 0 && i < view.length; i += dir) {
      if (view[i].kind === "file" && media.includes(family(view[i].name, "file"))) {
        this.app.selectName(view[i].name);
        void this.open(parent(this.path) ? `${parent(this.path)}/${view[i].name}` : view[i].name, view[i]);
        return;
      }
    }
  }

  /** Shows a file; `edit` opens Markdown in the editor rather than rendered (a new file). */
  async open(path: string, entry: Entry, edit = false): Promise<void> {
    if (this.editor?.dirty() && !(await this.discardOk())) return;
    this.reset();
    const ctl = (this.ctl = new AbortController());
    this.path = path;
    this.entry = entry;
    this.el.hidden = false;
    this.el.dataset.path = path;
    this.titleEl.replaceChildren(icon(iconOf(entry.name, entry.kind, parent(path))), h("span", null, entry.name));
    this.titleEl.title = "/" + path;
    this.metaEl.textContent = `${bytes(entry.size)} · ${fullDate(entry.modified)}`;
    const download = button("download", "Download", { id: "viewer-download" });
    download.addEventListener("click", () => this.app.actions.download(download, [entry]));
    this.tools.replaceChildren(download);
    const fam = family(entry.name, entry.kind, parent(path));
    this.el.dataset.kind = fam;
    const url = fileUrl(path, true);
    try {
      if (fam === "image") {
        const meta = this.metaEl.textContent;
        const pic = new Picture(path, entry.name, ctl.signal, (d) => this.step(d), (w, hh) => {
          if (this.picture === pic) this.metaEl.textContent = `${w}×${hh} px · ${meta}`;
        });
        this.picture = pic;
        this.tools.replaceChildren(pic.tools, download);
        this.body.replaceChildren(pic.el);
      } else if (fam === "video") {
        this.body.replaceChildren(h("div", { class: "media" }, h("video", { src: url, controls: true, preload: "metadata", id: "viewer-video" })));
      } else if (fam === "audio") {
        this.body.replaceChildren(h("div", { class: "media audio" }, icon("audio", "icon big"), h("audio", { src: url, controls: true, preload: "metadata", id: "viewer-audio" })));
      } else if (fam === "markdown" && entry.size <= TEXT_LIMIT && entry.size > 0 && !edit) {
        const { bytes: buf } = await api.head(path, TEXT_LIMIT, ctl.signal);
        if (ctl.signal.aborted) return;
        const text = asText(buf, false) ?? new TextDecoder().decode(buf);
        const lib = await viewerLib();
        if (ctl.signal.aborted) return;
        this.showMarkdown(lib, text);
      } else if (fam === "text" || fam === "markdown" || (fam === "other" && entry.size <= TEXT_LIMIT)) {
        await this.openText(path, entry, fam, ctl.signal);
      } else {
        this.showInfo(entry);
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
      this.body.replaceChildren(h("div", { class: "v-error" }, `Cannot open /${path}: ${message(e)}`));
    }
  }

  private async openText(path: string, entry: Entry, fam: Family, signal: AbortSignal): Promise<void> {
    this.body.replaceChildren(h("div", { class: "v-loading" }, "Loading…"));
    if (entry.size === 0) {
      // Nothing to read (a range of an empty file is refused, 416).
      const lib = await viewerLib();
      if (!signal.aborted) this.showEditor(lib, "", false);
      return;
    }
    const { bytes: buf, size } = await api.head(path, Math.min(entry.size, TEXT_LIMIT) || 1, signal);
    if (signal.aborted) return;
    const cut = size > buf.byteLength;
    // A name that says nothing: look at the start before calling it text.
    const sniffed = fam !== "other" || asText(buf.slice(0, SNIFF), true) !== null;
    const text = sniffed ? asText(buf, cut) : null;
    if (text === null) {
      this.showInfo(entry);
      return;
    }
    const notice = cut
      ? h(
          "div",
          { class: "v-notice", id: "truncated-notice" },
          `Showing the first ${bytes(buf.byteLength)} of ${bytes(size)}, read-only: the whole file is too big for the editor. Download it to see all of it.`,
        )
      : null;
    const lib = await viewerLib();
    if (signal.aborted) return;
    this.showEditor(lib, text, cut, notice);
  }

  private showEditor(lib: ViewerLib, text: string, readOnly: boolean, notice: Node | null = null): void {
    this.editor?.destroy();
    const ed = lib.createEditor(this.entry?.name ?? "", text, {
      readOnly,
      save: () => void this.save(),
      changed: () => this.setState(ed.dirty() ? "unsaved" : ""),
    });
    this.editor = ed;
    const tools: Node[] = [];
    if (!readOnly) {
      const save = button("save", "Save", { id: "save-file", class: "primary", title: "Save (Ctrl+S)" });
      save.addEventListener("click", () => void this.save());
      tools.push(save);
    }
    if (this.entry && family(this.entry.name, "file") === "markdown" && !readOnly) {
      const preview = button("eye", "Preview", { id: "preview-md" });
      preview.addEventListener("click", async () => {
        if (ed.dirty() && !(await this.discardOk("Preview the saved file and lose your changes?"))) return;
        this.showMarkdown(lib, ed.current().toString());
      });
      tools.push(preview);
    }
    this.tools.replaceChildren(...tools, this.tools.querySelector("#viewer-download") ?? "");
    this.body.replaceChildren(...(notice ? [notice] : []), ed.host);
    this.el.dataset.mode = readOnly ? "readonly" : "edit";
    this.setState(readOnly ? "read-only" : "");
    requestAnimationFrame(() => ed.focus());
  }

  private showMarkdown(lib: ViewerLib, text: string): void {
    this.editor?.destroy();
    this.editor = null;
    const edit = button("pencil", "Edit", { id: "edit-md" });
    edit.addEventListener("click", () => this.showEditor(lib, text, false));
    this.tools.replaceChildren(edit, this.tools.querySelector("#viewer-download") ?? "");
    const doc = lib.renderMarkdown(text, this.path, (p) => void this.openPath(p));
    this.body.replaceChildren(h("div", { class: "md-scroll" }, doc));
    this.el.dataset.mode = "preview";
    this.setState("");
  }

  /** A file that cannot be shown here: what it is, and what can be done with it. */
  private showInfo(entry: Entry): void {
    const actions = h("div", { class: "info-actions" });
    const dl = button("download", "Download", { class: "primary" });
    dl.addEventListener("click", () => this.app.actions.download(dl, [entry]));
    const sum = button("hash", "SHA-256");
    sum.addEventListener("click", () => void this.app.actions.sha256(entry));
    actions.append(dl, sum);
    if (extractable(entry.name)) {
      const ex = button("extract", "Extract here");
      ex.addEventListener("click", () => {
        void this.app.actions.extract(entry);
        this.close();
      });
      actions.append(ex);
    }
    const fam = family(entry.name, entry.kind);
    const why =
      fam === "model"
        ? "Model weights are binary: download them, or check them against the publisher's SHA-256."
        : fam === "archive"
          ? "An archive: extract it into a folder beside it, or download it."
          : entry.size > TEXT_LIMIT
            ? "This file is too big to show here."
            : "This file is not text, so it is not shown here.";
    this.body.replaceChildren(
      h(
        "div",
        { class: "info-card", id: "file-info" },
        icon(iconOf(entry.name, entry.kind), "icon big"),
        h("h2", null, entry.name),
        h("p", { class: "muted" }, `${typeLabel(entry.name, entry.kind, parent(this.path))} · ${bytes(entry.size)} · modified ${fullDate(entry.modified)}`),
        h("p", null, why),
        actions,
      ),
    );
  }

  /** A link from a Markdown file: a folder is opened in the list, a file here. */
  private async openPath(path: string): Promise<void> {
    try {
      const listing = await api.list(parent(path));
      const e = listing.entries.find((x) => x.name === basename(path));
      if (!e) throw new ApiError(404, "not_found", `/${path} does not exist`);
      if (e.kind === "dir") this.app.go(path);
      else {
        if (parent(path) !== this.app.path) this.app.go(parent(path), e.name);
        await this.open(path, e);
      }
    } catch (err) {
      notify(`Cannot open the link: ${message(err)}`, "error");
    }
  }

  private setState(s: string): void {
    this.state.textContent = s;
    this.state.dataset.state = s.replace(/[^a-z]/g, "") || "clean";
  }

  async save(): Promise<void> {
    const ed = this.editor;
    if (!ed || this.saving || this.el.dataset.mode !== "edit") return;
    this.saving = true;
    const doc = ed.current();
    this.setState("saving…");
    const path = this.path;
    const text = doc.toString();
    try {
      await api.save(path, text);
      ed.markSaved(doc);
      this.setState(ed.dirty() ? "unsaved" : "saved");
      // The header shows the file as saved: its size and time from the folder's new listing,
      // else as written (a file opened from search results may be in another folder).
      await this.app.refresh().catch(() => undefined);
      if (this.path === path && this.entry) {
        const listed = parent(path) === this.app.path ? this.app.view.find((x) => x.name === this.entry?.name) : undefined;
        this.entry = listed ?? { ...this.entry, size: new Blob([text]).size, modified: Date.now() };
        this.metaEl.textContent = `${bytes(this.entry.size)} · ${fullDate(this.entry.modified)}`;
      }
    } catch (e) {
      this.setState("not saved");
      notify(`Cannot save /${this.path}: ${message(e)}`, "error");
    } finally {
      this.saving = false;
    }
  }

  private discardOk(text = "Close it and lose your changes?"): Promise<boolean> {
    return confirmIt(`${this.entry?.name ?? "The file"} has unsaved changes`, [text], "Discard changes", true);
  }

  private async tryClose(): Promise<void> {
    if (this.editor?.dirty() && !(await this.discardOk())) return;
    this.close();
  }

  private reset(): void {
    this.ctl?.abort();
    this.editor?.destroy();
    this.editor = null;
    this.picture?.dispose();
    this.picture = null;
    // Stop any playing media before it goes.
    for (const m of Array.from(this.body.querySelectorAll("video, audio"))) (m as HTMLMediaElement).pause();
    this.body.replaceChildren();
    this.setState("");
    delete this.el.dataset.mode;
  }

  close(): void {
    if (this.el.hidden) return;
    this.reset();
    this.el.hidden = true;
    this.entry = null;
    this.app.table.el.focus({ preventScroll: true });
  }
}
