// What the buttons, the keys and the context menu do: make, rename, move, copy, delete,
// download, checksum, extract and fetch. Each tells the server (docs/files.md), says what
// happened, and lists the folder again.

import type { App } from "./app";
import { api, ApiError, archiveUrl, fileUrl, join, message, type Entry, type Share } from "./api";
import { ask, checkName, confirmIt, prompt, show } from "./dialogs";
import { h, icon } from "./dom";
import { bytes, extension, extractable } from "./format";
import { showMenu, type MenuItem } from "./menu";
import { notify } from "./notify";
import { pickFolder } from "./picker";

/** What a share link allows, in words. */
function describeShare(s: Share): string {
  const parts = [s.folder ? "folder" : "file"];
  parts.push(s.expires_ms ? `ends ${new Date(s.expires_ms).toLocaleString()}` : "no end");
  if (s.password) parts.push("password");
  if (s.max_downloads !== null) parts.push(`${s.downloads} of ${s.max_downloads} downloads used`);
  else if (s.downloads) parts.push(`${s.downloads} downloads`);
  return parts.join(" · ");
}

function listNames(entries: Entry[]): HTMLElement {
  const shown = entries.slice(0, 6).map((e) => h("li", null, icon(e.kind === "dir" ? "folder" : "file"), e.name));
  if (entries.length > 6) shown.push(h("li", { class: "muted" }, `and ${entries.length - 6} more`));
  return h("ul", { class: "names" }, ...shown);
}

/** Starts a download in the browser's own download manager. */
function saveAs(url: string): void {
  const a = h("a", { href: url, download: "", hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
}

export class Actions {
  constructor(private readonly app: App) {}

  private fail(what: string, e: unknown): void {
    notify(`${what}: ${message(e)}`, "error");
  }

  async newFolder(): Promise<void> {
    const names = this.app.names();
    const name = await prompt("New folder", "New folder", "Create", {
      label: "Name",
      body: [`In /${this.app.path}`],
      validate: (v) => checkName(v.trim()) ?? (names.has(v.trim()) ? `“${v.trim()}” already exists here.` : null),
    });
    if (name === null) return;
    try {
      await api.mkdir(join(this.app.path, name.trim()));
      await this.app.refresh(name.trim());
    } catch (e) {
      this.fail("Cannot create the folder", e);
    }
  }

  async newFile(): Promise<void> {
    const names = this.app.names();
    const name = await prompt("New file", "untitled.txt", "Create", {
      label: "Name",
      body: [`In /${this.app.path}`],
      select: [0, 8],
      validate: (v) => checkName(v.trim()) ?? (names.has(v.trim()) ? `“${v.trim()}” already exists here.` : null),
    });
    if (name === null) return;
    const path = join(this.app.path, name.trim());
    try {
      await api.save(path, "");
      await this.app.refresh(name.trim());
      const e = this.app.view.find((x) => x.name === name.trim());
      if (e) void this.app.viewer.open(path, e, true);
    } catch (e) {
      this.fail("Cannot create the file", e);
    }
  }

  async rename(): Promise<void> {
    const t = this.app.targets();
    if (t.length !== 1) {
      if (t.length > 1) notify("Rename one item at a time (select just one).", "info");
      return;
    }
    const old = t[0].name;
    const names = this.app.names();
    const ext = t[0].kind === "dir" ? "" : extension(old);
    const stem = ext && old.length > ext.length + 1 ? old.length - ext.length - 1 : old.length;
    const name = await prompt(`Rename ${t[0].kind === "dir" ? "folder" : "file"}`, old, "Rename", {
      label: "New name",
      select: [0, stem],
      validate: (v) => checkName(v.trim()) ?? (v.trim() !== old && names.has(v.trim()) ? `“${v.trim()}” already exists here.` : null),
    });
    if (name === null || name.trim() === old) return;
    try {
      await api.rename(join(this.app.path, old), join(this.app.path, name.trim()));
      await this.app.refresh(name.trim());
    } catch (e) {
      this.fail(`Cannot rename ${old}`, e);
    }
  }

  async move(): Promise<void> {
    const t = this.app.targets();
    if (!t.length) return;
    const to = await pickFolder(`Move ${t.length === 1 ? `“${t[0].name}”` : `${t.length} items`}`, this.app.path, "Move here", [listNames(t)]);
    if (to === null || to === this.app.path) return;
    const problems: string[] = [];
    for (const e of t) {
      const from = join(this.app.path, e.name);
      if (to === from || to.startsWith(from + "/")) {
        problems.push(`${e.name}: a folder cannot go inside itself`);
        continue;
      }
      try {
        await api.rename(from, join(to, e.name));
      } catch (err) {
        problems.push(err instanceof ApiError && err.code === "exists" ? `${e.name}: /${join(to, e.name)} already exists` : `${e.name}: ${message(err)}`);
      }
    }
    await this.app.refresh();
    if (problems.length) notify(`Not moved: ${problems.join("; ")}`, "error");
    else notify(`Moved ${t.length === 1 ? t[0].name : `${t.length} items`} to /${to}`, "ok");
  }

  async copy(): Promise<void> {
    const t = this.app.targets();
    if (!t.length) return;
    const to = await pickFolder(`Copy ${t.length === 1 ? `“${t[0].name}”` : `${t.length} items`}`, this.app.path, "Copy here", [
      listNames(t),
      h("p", { class: "muted" }, "A name that exists there gets “ (copy)”. Big copies run in the background."),
    ]);
    if (to === null) return;
    try {
      const job = await api.startJob({ kind: "copy", paths: t.map((e) => join(this.app.path, e.name)), to });
      this.app.transfers.jobStarted(job.id);
    } catch (e) {
      this.fail("Cannot copy", e);
    }
  }

  async remove(): Promise<void> {
    const t = this.app.targets();
    if (!t.length) return;
    const what = t.length === 1 ? `“${t[0].name}”` : `${t.length} items`;
    const folders = t.some((e) => e.kind === "dir");
    const ok = await confirmIt(
      `Delete ${what} permanently?`,
      [
        listNames(t),
        h(
          "p",
          { class: "warning" },
          `There is no trash: ${t.length === 1 ? "it is" : "they are"} deleted at once and cannot be recovered${folders ? ", folders with everything in them" : ""}.`,
        ),
      ],
      "Delete permanently",
      true,
    );
    if (!ok) return;
    try {
      await api.remove(t.map((e) => join(this.app.path, e.name)));
      notify(`Deleted ${what}`, "ok");
    } catch (e) {
      this.fail(`Cannot delete ${what}`, e);
    }
    await this.app.refresh();
    void this.app.refreshSpace();
  }

  /** Download: a file as itself; folders and several items as a ZIP or a tar (asks which). */
  download(anchor: HTMLElement | null, entries = this.app.targets()): void {
    if (!entries.length) return;
    if (entries.length === 1 && entries[0].kind === "file") {
      saveAs(fileUrl(join(this.app.path, entries[0].name)));
      return;
    }
    showMenu(this.archiveItems(entries), anchor);
  }

  archiveItems(entries: Entry[]): MenuItem[] {
    const paths = entries.map((e) => join(this.app.path, e.name));
    return [
      { label: "As a ZIP", icon: "archive", id: "download-zip", run: () => saveAs(archiveUrl(paths, "zip")) },
      { label: "As a tar", icon: "archive", id: "download-tar", run: () => saveAs(archiveUrl(paths, "tar")) },
    ];
  }

  async sha256(e = this.app.targets()[0]): Promise<void> {
    if (!e || e.kind !== "file") return;
    const ctl = new AbortController();
    const value = h("code", { id: "sha256-value", class: "hash" }, "computing…");
    const copyBtn = h("button", { type: "button", class: "dlg-btn plain", id: "copy-sha256", disabled: true }, "Copy");
    const { dialog } = show(`SHA-256 of ${e.name}`, [
      h("p", { class: "muted" }, `${bytes(e.size)} · reading the whole file${e.size > 1e9 ? " (a few seconds per GB)" : ""}`),
      h("div", { class: "hash-row" }, value, copyBtn),
    ], "sha256-dialog");
    dialog.addEventListener("close", () => ctl.abort());
    copyBtn.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(value.textContent ?? "");
        copyBtn.textContent = "Copied";
      } catch {
        getSelection()?.selectAllChildren(value);
        copyBtn.textContent = "Press Ctrl+C";
      }
    });
    try {
      const r = await api.sha256(join(this.app.path, e.name), ctl.signal);
      value.textContent = r.sha256;
      copyBtn.disabled = false;
    } catch (err) {
      if (!ctl.signal.aborted) value.textContent = `cannot compute it: ${message(err)}`;
    }
  }

  async extract(e = this.app.targets()[0]): Promise<void> {
    if (!e || !extractable(e.name)) return;
    try {
      const job = await api.startJob({ kind: "extract", path: join(this.app.path, e.name) });
      this.app.transfers.jobStarted(job.id);
    } catch (err) {
      this.fail(`Cannot extract ${e.name}`, err);
    }
  }

  async fetchUrl(): Promise<void> {
    const a = await ask({
      title: "Download from a URL",
      body: [
        `The server downloads it into /${this.app.path}, resumably; you can close this page meanwhile.`,
        h("p", { class: "muted" }, "Hugging Face and Civitai links get HF_TOKEN and CIVITAI_TOKEN from the instance's environment (only those hosts)."),
      ],
      input: { value: "", label: "URL", placeholder: "https://huggingface.co/…/resolve/main/model.safetensors" },
      choices: [{ label: "Download", value: "ok", kind: "primary" }],
      validate: (v) => (/^https?:\/\/\S+$/i.test(v.trim()) ? null : "Give an http:// or https:// URL."),
    });
    if (!a) return;
    try {
      const job = await api.startJob({ kind: "fetch", url: a.value.trim(), to: this.app.path });
      this.app.transfers.jobStarted(job.id);
    } catch (e) {
      this.fail("Cannot start the download", e);
    }
  }

  /** "Share link…": a read-only link that works without the login, with an end, a password
   * and a download limit to choose; then the link, to copy. */
  async share(e = this.app.targets()[0]): Promise<void> {
    if (!e || (e.kind !== "file" && e.kind !== "dir")) return;
    const path = join(this.app.path, e.name);
    const expires = h(
      "select",
      { id: "share-expires" },
      h("option", { value: "1h" }, "1 hour"),
      h("option", { value: "1d" }, "1 day"),
      h("option", { value: "7d", selected: true }, "7 days"),
      h("option", { value: "never" }, "Never"),
    );
    const password = h("input", { type: "password", id: "share-password", autocomplete: "new-password", placeholder: "none" });
    const limit = h("input", { type: "number", id: "share-limit", min: "1", step: "1", placeholder: "no limit" });
    const a = await ask({
      title: `Share ${e.kind === "dir" ? "folder" : "file"} “${e.name}”`,
      body: [
        h("p", { class: "muted" }, `Anyone with the link can ${e.kind === "dir" ? "see and download what is in the folder" : "download the file"}, without logging in; nothing can be changed through it.`),
      ],
      extra: () =>
        h(
          "div",
          { class: "share-options" },
          h("label", { class: "dialog-field" }, h("span", null, "Ends after"), expires),
          h("label", { class: "dialog-field" }, h("span", null, "Password (optional)"), password),
          h("label", { class: "dialog-field" }, h("span", null, "Downloads allowed (optional)"), limit),
        ),
      choices: [{ label: "Make the link", value: "ok", kind: "primary" }],
    });
    if (!a) return;
    const n = limit.value.trim() ? Number(limit.value) : null;
    if (n !== null && (!Number.isInteger(n) || n < 1)) {
      notify("The download limit is a whole number of at least 1.", "error");
      return;
    }
    try {
      const s = await api.share({ path, expires: expires.value, password: password.value, max_downloads: n });
      this.showLink(s, e.name);
    } catch (err) {
      this.fail(`Cannot share ${e.name}`, err);
    }
  }

  private showLink(s: Share, name: string): void {
    const url = new URL(s.url, location.href).href;
    const value = h("code", { id: "share-url", class: "hash" }, url);
    const copyBtn = h("button", { type: "button", class: "dlg-btn plain", id: "copy-share" }, "Copy");
    copyBtn.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(url);
        copyBtn.textContent = "Copied";
      } catch {
        getSelection()?.selectAllChildren(value);
        copyBtn.textContent = "Press Ctrl+C";
      }
    });
    show(`Link to ${name}`, [h("p", { class: "muted" }, describeShare(s)), h("div", { class: "hash-row" }, value, copyBtn)], "share-dialog");
  }

  /** "Shared links": every live link, each to copy or take back at once. */
  async sharesList(): Promise<void> {
    let shares: Share[];
    try {
      shares = await api.shares();
    } catch (err) {
      this.fail("Cannot list the shared links", err);
      return;
    }
    const list = h("ul", { id: "shares-list", class: "shares" });
    const fill = () => {
      list.replaceChildren();
      if (!shares.length) list.append(h("li", { class: "muted" }, "Nothing is shared."));
      for (const s of shares) {
        const url = new URL(s.url, location.href).href;
        const copyBtn = h("button", { type: "button", class: "dlg-btn plain" }, "Copy");
        copyBtn.addEventListener("click", () => void navigator.clipboard.writeText(url).then(() => (copyBtn.textContent = "Copied"), () => undefined));
        const revoke = h("button", { type: "button", class: "dlg-btn danger", "data-id": s.id }, "Take back");
        revoke.addEventListener("click", async () => {
          try {
            await api.revokeShare(s.id);
            shares = shares.filter((x) => x.id !== s.id);
            fill();
          } catch (err) {
            this.fail("Cannot take the link back", err);
          }
        });
        list.append(
          h(
            "li",
            { "data-id": s.id, "data-path": s.path },
            h("div", { class: "share-what" }, icon(s.folder ? "folder" : "file"), h("a", { href: url, target: "_blank", rel: "noopener" }, `/${s.path}`)),
            h("div", { class: "muted small" }, describeShare(s)),
            h("div", { class: "share-buttons" }, copyBtn, revoke),
          ),
        );
      }
    };
    fill();
    show("Shared links", [list], "shares-dialog");
  }

  /** The ⋯ button: what is left over for the selection. */
  moreItems(sel: Entry[]): MenuItem[] {
    const one = sel.length === 1 ? sel[0] : null;
    const items: MenuItem[] = [];
    if (one?.kind === "file") items.push({ label: "SHA-256 checksum", icon: "hash", id: "sha256", run: () => void this.sha256(one) });
    if (one && extractable(one.name)) items.push({ label: "Extract here", icon: "extract", id: "extract", run: () => void this.extract(one) });
    if (one && (one.kind === "file" || one.kind === "dir")) items.push({ label: "Share link…", icon: "link", id: "share", run: () => void this.share(one) });
    items.push(...this.archiveItems(sel));
    return items;
  }

  /** The context menu of a row (right click). */
  menuFor(sel: Entry[]): (MenuItem | "-")[] {
    const one = sel.length === 1 ? sel[0] : null;
    const items: (MenuItem | "-")[] = [];
    if (one) items.push({ label: one.kind === "dir" ? "Open" : "Open / edit", icon: one.kind === "dir" ? "folder" : "eye", run: () => this.app.open(one) });
    items.push({ label: "Download", icon: "download", run: () => this.download(null, sel) });
    if (one) items.push({ label: "Rename", icon: "rename", run: () => void this.rename() });
    items.push({ label: "Move…", icon: "move", run: () => void this.move() });
    items.push({ label: "Copy…", icon: "copy", run: () => void this.copy() });
    if (one?.kind === "file") items.push({ label: "SHA-256 checksum", icon: "hash", run: () => void this.sha256(one) });
    if (one && extractable(one.name)) items.push({ label: "Extract here", icon: "extract", run: () => void this.extract(one) });
    if (one && (one.kind === "file" || one.kind === "dir")) items.push({ label: "Share link…", icon: "link", run: () => void this.share(one) });
    items.push("-", { label: "Delete permanently…", icon: "trash", danger: true, run: () => void this.remove() });
    return items;
  }
}
