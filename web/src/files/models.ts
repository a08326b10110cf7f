// The Models view: Forge's model folders by category (size, date, SHA-256 and source once known,
// the preview Forge's cards show), and "Add model": a pasted Civitai or Hugging Face link is
// looked up on the server (what it is, its file, size and hash, the folder it goes to), then
// fetched as a job shown with the other tasks. docs/files.md, "Models".

import type { App } from "./app";
import { ApiError, message, thumbUrl } from "./api";
import { button, h, icon, iconButton } from "./dom";
import { bytes, fullDate, when } from "./format";
import { notify } from "./notify";

interface ModelFile {
  name: string;
  size: number;
  modified: number;
  sha256: string | null;
  source: string | null;
  page: string | null;
  preview: string | null;
  preview_version: string | null;
}

interface Category {
  id: string;
  label: string;
  folder: string;
  missing: boolean;
  files: ModelFile[];
}

interface Resolved {
  source: string;
  name: string;
  version: string | null;
  kind: string | null;
  base_model: string | null;
  category: string | null;
  file: string;
  size: number | null;
  sha256: string | null;
  url: string;
  preview: string | null;
  page: string;
}

async function post<T>(url: string, body: unknown): Promise<T> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, data?.error?.code ?? "error", data?.error?.message ?? `${res.status}`);
  return data as T;
}

export class ModelsView {
  readonly el: HTMLElement;
  private readonly list: HTMLElement;
  private readonly link: HTMLInputElement;
  private readonly token: HTMLInputElement;
  private readonly found: HTMLElement;
  private categories: Category[] = [];
  /** Answers to older lookups are dropped: only the last one asked is shown. */
  private asked = 0;

  constructor(private readonly app: App) {
    const close = iconButton("close", "Close (Esc)", { id: "models-close" });
    close.addEventListener("click", () => this.close());
    this.link = h("input", {
      id: "model-link",
      type: "text",
      spellcheck: "false",
      autocomplete: "off",
      placeholder: "A Civitai or Hugging Face link, an AIR, or owner/repo/file",
      "aria-label": "Model link",
    });
    this.token = h("input", {
      id: "model-token",
      type: "password",
      autocomplete: "off",
      placeholder: "Token, only if the site asks",
      "aria-label": "Token for this download",
    });
    const look = button("search", "Look up", { id: "model-resolve", class: "primary", type: "submit" });
    const form = h("form", { class: "model-add", id: "model-add" }, this.link, this.token, look);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.resolve();
    });
    this.found = h("div", { class: "model-found", id: "model-found", hidden: true });
    this.list = h("div", { class: "model-list", id: "model-list" });
    this.el = h(
      "section",
      { id: "models-view", class: "models-view", hidden: true, "aria-label": "Models" },
      h("header", { class: "v-head" }, h("div", { class: "v-title" }, h("span", { class: "v-name" }, icon("model"), h("span", null, "Models"))), close),
      h(
        "div",
        { class: "models-body" },
        h("h2", null, "Add a model"),
        h("p", { class: "muted" }, "Paste a Civitai model page or download link, an AIR (urn:air:…:civitai:MODEL@VERSION), a Hugging Face file link or owner/repo/file. gpubox looks it up, shows what it will fetch and where, then downloads it (resumable, its SHA-256 checked) with its preview for Forge's cards."),
        form,
        this.found,
        this.list,
      ),
    );
    // On the document: focus may have left the view (a button it disabled, a card it hid).
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.isOpen() && !document.querySelector("dialog[open]")) {
        e.preventDefault();
        this.close();
      }
    });
  }

  isOpen(): boolean {
    return !this.el.hidden;
  }

  open(): void {
    this.el.hidden = false;
    this.link.focus();
    void this.refresh();
  }

  close(): void {
    this.el.hidden = true;
    this.token.value = ""; // kept for no longer than the view is open
    this.app.table.el.focus({ preventScroll: true });
  }

  /** Lists the folders again (a model job ended). */
  async refresh(): Promise<void> {
    if (this.el.hidden) return;
    try {
      const res = await fetch("/api/models", { cache: "no-store", headers: { Accept: "application/json" } });
      if (!res.ok) throw new ApiError(res.status, "error", `the server answered ${res.status}`);
      this.categories = ((await res.json()) as { categories: Category[] }).categories;
    } catch (e) {
      this.list.replaceChildren(h("p", { class: "v-error" }, `Cannot list the models: ${message(e)}`));
      return;
    }
    this.list.replaceChildren(...this.categories.map((c) => this.category(c)));
  }

  private category(c: Category): HTMLElement {
    const open = h("a", { href: `#/${c.folder.split("/").map(encodeURIComponent).join("/")}`, class: "muted" }, `/${c.folder}`);
    open.addEventListener("click", () => (this.el.hidden = true));
    const head = h("div", { class: "cat-head" }, h("h3", null, c.label, h("span", { class: "count" }, String(c.files.length))), open);
    const items = c.files.map((f) => {
      const path = `${c.folder}/${f.name}`;
      const pic = f.preview
        ? h("img", { src: `${thumbUrl(f.preview, 0, 0)}&pv=${encodeURIComponent(f.preview_version ?? "")}`, alt: "", loading: "lazy" })
        : icon("model", "icon big");
      const facts: (Node | string)[] = [`${bytes(f.size)} · ${when(f.modified)}`];
      if (f.sha256) facts.push(" · ", h("code", { title: `SHA-256 ${f.sha256}` }, f.sha256.slice(0, 10)));
      if (f.page && f.source) facts.push(" · ", h("a", { href: f.page, target: "_blank", rel: "noopener noreferrer" }, f.source === "civitai" ? "Civitai" : "Hugging Face"));
      const li = h(
        "li",
        { "data-name": f.name, "data-path": path, title: `${f.name}\n${fullDate(f.modified)}` },
        h("span", { class: "m-pic" }, pic),
        h("span", { class: "m-main" }, h("span", { class: "m-name" }, f.name), h("span", { class: "m-facts muted" }, ...facts)),
      );
      if (!f.sha256) {
        const find = button("hash", "Identify", { class: "small m-identify", title: "Hash it and look it up on Civitai (its page, its preview)" });
        find.addEventListener("click", async () => {
          find.disabled = true;
          try {
            const r = await post<{ id: number }>("/api/models/identify", { path });
            this.app.transfers.jobStarted(r.id);
          } catch (e) {
            find.disabled = false;
            notify(message(e), "error");
          }
        });
        li.append(find);
      }
      return li;
    });
    const body = c.files.length
      ? h("ul", { class: "model-files" }, ...items)
      : h("p", { class: "muted small" }, c.missing ? "No folder yet: it is made with the first model." : "None yet.");
    return h("section", { class: "model-cat", "data-category": c.id }, head, body);
  }

  private async resolve(): Promise<void> {
    const input = this.link.value.trim();
    if (!input) return;
    const n = ++this.asked;
    this.found.hidden = false;
    this.found.replaceChildren(h("p", { class: "muted" }, "Looking it up…"));
    try {
      const r = await post<{ model: Resolved; folder: string | null; free: number | null }>("/api/models/resolve", { input, token: this.token.value || null });
      // The folders to choose from, if they were not listed yet.
      if (!this.categories.length) await this.refresh();
      if (n === this.asked) this.showFound(r.model, r.free);
    } catch (e) {
      if (n === this.asked) this.found.replaceChildren(h("p", { class: "v-error", id: "model-error" }, message(e)));
    }
  }

  private showFound(m: Resolved, free: number | null): void {
    const select = h("select", { id: "model-category", "aria-label": "Folder" });
    select.append(h("option", { value: "" }, "Choose a folder…"));
    for (const c of this.categories) select.append(h("option", { value: c.id, selected: c.id === m.category }, `${c.label} (/${c.folder})`));
    const name = h("input", { id: "model-filename", type: "text", value: m.file, spellcheck: "false", "aria-label": "Save as" });
    const add = button("download", "Download", { id: "model-add-btn", class: "primary" });
    const tooBig = m.size !== null && free !== null && m.size > free;
    if (tooBig) add.disabled = true;
    add.addEventListener("click", () => void this.add(m, select.value, name.value.trim(), add));
    const facts = [m.kind, m.base_model, m.version ? `version ${m.version}` : null].filter(Boolean).join(" · ");
    this.found.replaceChildren(
      h(
        "div",
        { class: "found-card" },
        // (The site's preview is fetched by the server with the model: the page loads nothing
        // from other sites.)
        icon("model", "icon big"),
        h(
          "div",
          { class: "found-main" },
          h("strong", { id: "model-name" }, m.name),
          h("span", { class: "muted" }, facts),
          h("span", null, h("code", null, m.file), ` · ${m.size !== null ? bytes(m.size) : "size unknown"}`, m.sha256 ? ` · SHA-256 ${m.sha256.slice(0, 10)}… (checked after the download)` : " · no SHA-256 given (it is noted after the download)"),
          m.preview ? h("span", { class: "muted" }, "Its preview is saved beside it for Forge's cards.") : "",
          tooBig ? h("span", { class: "v-error" }, `The disk has ${bytes(free ?? 0)} free: not enough.`) : "",
          h("a", { href: m.page, target: "_blank", rel: "noopener noreferrer" }, "Its page"),
        ),
        h("div", { class: "found-to" }, h("label", null, "Into ", select), h("label", null, "as ", name), add),
      ),
    );
  }

  private async add(m: Resolved, category: string, filename: string, btn: HTMLButtonElement): Promise<void> {
    if (!category) {
      notify("Choose the folder it goes to.", "error");
      return;
    }
    btn.disabled = true;
    try {
      const r = await post<{ id: number }>("/api/models/add", { model: m, category, filename, token: this.token.value || null });
      this.app.transfers.jobStarted(r.id);
      notify(`Downloading ${filename}: its progress is with the other tasks.`, "info");
      this.found.hidden = true;
      this.link.value = "";
      this.token.value = "";
    } catch (e) {
      btn.disabled = false;
      notify(message(e), "error");
    }
  }
}
