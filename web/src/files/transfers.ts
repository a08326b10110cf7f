// The transfers panel (bottom right; a sheet on a phone): every upload with its progress bar,
// speed and time left, the uploads an earlier visit left unfinished, and the server's jobs
// (copy, extract, fetch). Also where dropped and chosen files come in.

import type { App } from "./app";
import { api, ApiError, join, message, type Job } from "./api";
import { ask } from "./dialogs";
import { h, icon, iconButton } from "./dom";
import { bytes, count, duration } from "./format";
import { notify } from "./notify";
import { fromDrop, fromInput, forget, FileUpload, offsetOf, unfinished, type Batch, type Conflict, type State } from "./uploads";

const PARALLEL = 3;
const SPEED_WINDOW_MS = 5000;

interface Item {
  id: number;
  file: File;
  dir: string;
  conflict: Conflict;
  state: State;
  sent: number;
  resumedFrom: number;
  samples: [number, number][];
  message: string;
  upload: FileUpload | null;
  /** Uploaded; waiting for the folder's listing before it says "done" (not counted as running). */
  listing?: boolean;
  row: HTMLElement;
  drawn: number;
}

export class Transfers {
  readonly el: HTMLElement;
  private readonly list: HTMLElement;
  private readonly leftover: HTMLElement;
  private readonly jobsEl: HTMLElement;
  private readonly title: HTMLElement;
  private readonly summary: HTMLElement;
  private readonly closeBtn: HTMLButtonElement;
  private items: Item[] = [];
  private nextId = 1;
  private jobs = new Map<number, { job: Job; row: HTMLElement }>();
  private watching = new Set<number>();
  private polling = 0;
  private refreshTimer = 0;
  /** The listing being fetched for finished uploads, and the one queued after it. */
  private listingNow: Promise<void> | null = null;
  private listingNext: Promise<void> | null = null;
  private collapseTimer = 0;
  /** Uploads or tasks were running at the last look (the panel collapses when they stop). */
  private busy = false;

  constructor(private readonly app: App) {
    this.title = h("strong", null, "Uploads");
    this.summary = h("span", { class: "summary" });
    const collapse = iconButton("chevron", "Collapse", { class: "icon-only collapse" });
    collapse.addEventListener("click", () => this.el.classList.toggle("collapsed"));
    this.closeBtn = iconButton("close", "Close (clears finished uploads)", { id: "uploads-close" });
    this.closeBtn.addEventListener("click", () => this.clearFinished(true));
    this.list = h("ul", { class: "up-list", id: "upload-list" });
    this.leftover = h("ul", { class: "up-list leftover", id: "unfinished-list" });
    this.jobsEl = h("ul", { class: "up-list jobs", id: "jobs-list" });
    this.el = h(
      "section",
      { id: "uploads-panel", class: "transfers", hidden: true, "aria-label": "Uploads and tasks" },
      h("header", null, collapse, h("div", { class: "titles" }, this.title, this.summary), this.closeBtn),
      h("div", { class: "up-body" }, this.leftover, this.list, this.jobsEl),
    );
  }

  start(): void {
    const { fileInput, folderInput } = this.app.toolbar;
    for (const input of [fileInput, folderInput]) {
      input.addEventListener("change", () => {
        const batch = fromInput(input);
        input.value = "";
        void this.add(batch);
      });
    }
    void this.showUnfinished();
    void this.pollJobs(true);
  }

  /** The whole app takes drops; an overlay says where they go. */
  wireDrop(root: HTMLElement, zone: HTMLElement): void {
    let depth = 0;
    const hasFiles = (e: DragEvent) => Array.from(e.dataTransfer?.types ?? []).includes("Files");
    root.addEventListener("dragenter", (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth++;
      (zone.firstChild as HTMLElement).replaceChildren(
        icon("upload"),
        h("strong", null, "Drop to upload"),
        h("span", null, `into /${this.app.path}`),
      );
      zone.hidden = false;
    });
    root.addEventListener("dragover", (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
    });
    root.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (!depth) zone.hidden = true;
    });
    root.addEventListener("drop", (e) => {
      depth = 0;
      zone.hidden = true;
      if (!e.dataTransfer || !hasFiles(e)) return;
      e.preventDefault();
      fromDrop(e.dataTransfer).then(
        (batch) => this.add(batch),
        (err) => notify(`Cannot read what was dropped: ${message(err)}`, "error"),
      );
    });
  }

  /** A batch into the current folder: check space and names, make the folders, queue the files. */
  async add(batch: Batch): Promise<void> {
    if (!batch.files.length && !batch.dirs.length) return;
    const target = this.app.path;
    const need = batch.files.reduce((s, f) => s + f.file.size, 0);
    const free = Number(this.app.status.el.dataset.free ?? NaN);
    if (need > free) {
      await ask({
        title: "Not enough space",
        body: [
          `${count(batch.files.length, "file")} need ${bytes(need)}, and the workspace disk has ${bytes(free)} free.`,
          "Free some space first (a Vast disk cannot grow), or upload fewer files.",
        ],
        choices: [{ label: "OK", value: "ok", kind: "primary" }],
      });
      return;
    }
    // Names at the top of the batch that the folder already has: ask once what to do.
    const names = this.app.names();
    const top = new Set([...batch.files.filter((f) => !f.rel).map((f) => f.file.name), ...batch.dirs.map((d) => d.split("/")[0])]);
    const clash = [...top].filter((n) => names.has(n));
    let conflict: Conflict = "rename";
    if (clash.length) {
      const shown = clash.slice(0, 5).map((n) => h("li", null, n));
      if (clash.length > 5) shown.push(h("li", { class: "muted" }, `and ${clash.length - 5} more`));
      const a = await ask({
        title: clash.length === 1 ? `“${clash[0]}” already exists` : `${clash.length} names already exist`,
        body: [`In /${target}:`, h("ul", { class: "names" }, ...shown), "What should the uploads do with files that exist?"],
        choices: [
          { label: "Replace", value: "overwrite", kind: "danger" },
          { label: "Keep both", value: "rename", kind: "primary" },
          { label: "Skip them", value: "skip", kind: "plain" },
        ],
      });
      if (!a) return;
      conflict = a.choice as Conflict;
    }
    // Folders first, each parent before its children; one that exists is fine.
    const dirs = [...new Set(batch.dirs)].sort((a, b) => a.split("/").length - b.split("/").length || a.localeCompare(b));
    for (const d of dirs) {
      try {
        await api.mkdir(join(target, d));
      } catch (e) {
        if (!(e instanceof ApiError && e.code === "exists")) {
          notify(`Cannot create the folder /${join(target, d)}: ${message(e)}`, "error");
          return;
        }
      }
    }
    if (dirs.length) this.refreshSoon(target);
    for (const f of batch.files) this.queue(f.file, f.rel ? join(target, f.rel) : target, conflict);
    this.pump();
  }

  private queue(file: File, dir: string, conflict: Conflict): void {
    const row = h("li", { class: "up", "data-name": file.name, "data-state": "waiting" });
    const item: Item = { id: this.nextId++, file, dir, conflict, state: "waiting", sent: 0, resumedFrom: 0, samples: [], message: "", upload: null, row, drawn: 0 };
    row.dataset.id = String(item.id);
    this.items.push(item);
    this.list.append(row);
    this.draw(item, true);
    this.show();
  }

  /** Starts waiting uploads while fewer than PARALLEL run. */
  private pump(): void {
    let running = this.items.filter((i) => i.state === "uploading" && !i.listing).length;
    for (const item of this.items) {
      if (running >= PARALLEL) break;
      if (item.state !== "waiting") continue;
      running++;
      this.begin(item);
    }
    this.header();
  }

  private begin(item: Item): void {
    item.state = "uploading";
    item.samples = [];
    const up = new FileUpload(item.file, item.dir, item.conflict, {
      progress: (sent) => {
        item.sent = sent;
        const now = performance.now();
        item.samples.push([now, sent]);
        while (item.samples.length > 2 && now - item.samples[0][0] > SPEED_WINDOW_MS) item.samples.shift();
        this.draw(item);
      },
      resumed: (offset) => {
        item.resumedFrom = offset;
        item.sent = offset;
        item.samples = [];
        this.draw(item, true);
      },
      done: ({ savedAs, skipped }) => {
        item.sent = item.file.size;
        item.message = skipped ? "skipped: the name exists" : savedAs && savedAs !== join(item.dir, item.file.name) ? `saved as ${savedAs.split("/").pop()}` : "";
        // The next upload starts now; this one says "done" once the folder's listing shows it,
        // not before.
        item.upload = null;
        item.listing = true;
        this.pump();
        void this.listed(item.dir).then(() => {
          item.listing = false;
          if (item.state !== "uploading") return; // cancelled or removed meanwhile
          item.state = skipped ? "skipped" : "done";
          this.draw(item, true);
          this.pump();
        });
      },
      failed: (text) => {
        item.state = "failed";
        item.message = text;
        this.finished(item);
        if (/space|disk is full/i.test(text)) notify(`${item.file.name}: ${text}`, "error");
      },
    });
    item.upload = up;
    void up.start().then((url) => {
      if (url) this.leftover.querySelector(`[data-url="${CSS.escape(url)}"]`)?.remove();
      this.header();
    });
    this.draw(item, true);
  }

  private finished(item: Item): void {
    item.upload = null;
    this.draw(item, true);
    this.refreshSoon(item.dir);
    this.pump();
  }

  /** Lists the folder shown again if `dir` is in it (once for uploads that end together);
   * resolves when the listing is in. */
  private listed(dir: string): Promise<void> {
    const shown = this.app.path;
    if (dir !== shown && !dir.startsWith(shown ? shown + "/" : "")) return Promise.resolve();
    const run = (): Promise<void> => {
      const p: Promise<void> = Promise.all([this.app.refresh(), this.app.refreshSpace()]).then(
        () => undefined,
        () => undefined,
      );
      this.listingNow = p;
      void p.then(() => {
        if (this.listingNow === p) this.listingNow = null;
      });
      return p;
    };
    if (!this.listingNow) return run();
    // One in flight may have been asked before this file was there: one more after it, shared
    // by every upload that ends meanwhile.
    if (!this.listingNext) {
      this.listingNext = this.listingNow.then(() => {
        this.listingNext = null;
        return run();
      });
    }
    return this.listingNext;
  }

  /** Lists the folder again (once for many uploads) when they went into the one shown. */
  private refreshSoon(dir: string): void {
    const shown = this.app.path;
    if (dir !== shown && !dir.startsWith(shown ? shown + "/" : "")) return;
    clearTimeout(this.refreshTimer);
    this.refreshTimer = window.setTimeout(() => {
      void this.app.refresh();
      void this.app.refreshSpace();
    }, 300);
  }

  private cancel(item: Item): void {
    if (item.state === "uploading" || item.state === "waiting") {
      item.upload?.cancel();
      item.upload = null;
      item.state = "cancelled";
      item.message = "cancelled";
      this.draw(item, true);
      this.pump();
    } else {
      item.row.remove();
      this.items = this.items.filter((i) => i !== item);
      this.header();
    }
  }

  private speed(item: Item): number {
    const s = item.samples;
    if (s.length < 2) return 0;
    const [t0, b0] = s[0];
    const [t1, b1] = s[s.length - 1];
    return t1 > t0 ? ((b1 - b0) * 1000) / (t1 - t0) : 0;
  }

  private draw(item: Item, force = false): void {
    const now = performance.now();
    if (!force && now - item.drawn < 200) return;
    item.drawn = now;
    const { file, state } = item;
    const total = file.size;
    const pct = total ? (item.sent / total) * 100 : state === "done" ? 100 : 0;
    const row = item.row;
    row.dataset.state = state;
    row.dataset.sent = String(item.sent);
    row.dataset.resumedFrom = String(item.resumedFrom);
    const bar = h("span", { class: "pbar" }, h("span", { class: "fill" }));
    (bar.firstChild as HTMLElement).style.width = `${pct.toFixed(1)}%`;
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuenow", pct.toFixed(0));
    let line: string;
    if (state === "uploading") {
      const sp = this.speed(item);
      const left = sp > 0 ? (total - item.sent) / sp : Infinity;
      line = `${bytes(item.sent)} of ${bytes(total)}`;
      if (sp > 0) line += ` · ${bytes(sp)}/s · ${duration(left)} left`;
      else line += item.sent ? "" : " · starting…";
      if (item.resumedFrom) line += ` · resumed at ${bytes(item.resumedFrom)}`;
    } else if (state === "waiting") line = `${bytes(total)} · waiting`;
    else if (state === "done") line = `${bytes(total)} · done${item.message ? ` · ${item.message}` : ""}${item.resumedFrom ? ` (resumed at ${bytes(item.resumedFrom)})` : ""}`;
    else line = item.message;
    const cancel = iconButton("close", state === "uploading" || state === "waiting" ? `Cancel ${file.name}` : "Remove from the list", { class: "icon-only up-cancel" });
    cancel.addEventListener("click", () => this.cancel(item));
    const where = h(
      "a",
      { href: "#/" + item.dir.split("/").map(encodeURIComponent).join("/"), class: "up-dir", title: `Into /${item.dir}` },
      item.dir ? `/${item.dir}` : "workspace",
    );
    row.replaceChildren(
      h("span", { class: "up-icon" }, icon(state === "done" ? "check" : state === "failed" ? "close" : "upload")),
      h(
        "span",
        { class: "up-main" },
        h("span", { class: "up-title" }, h("span", { class: "up-name", title: file.name }, file.name), h("span", { class: "up-into" }, "into ", where)),
        bar,
        h("span", { class: "up-line" }, line),
      ),
      cancel,
    );
    this.header();
  }

  private header(): void {
    const active = this.items.filter((i) => i.state === "uploading" || i.state === "waiting");
    const done = this.items.filter((i) => i.state === "done").length;
    const failed = this.items.filter((i) => i.state === "failed").length;
    const runningJobs = [...this.jobs.values()].filter((j) => j.job.state === "running").length;
    if (active.length) {
      const total = active.reduce((s, i) => s + i.file.size, 0);
      const sent = active.reduce((s, i) => s + i.sent, 0);
      const speed = active.reduce((s, i) => s + (i.state === "uploading" ? this.speed(i) : 0), 0);
      this.title.textContent = `Uploading ${count(active.length, "file")}`;
      this.summary.textContent = `${total ? Math.floor((sent / total) * 100) : 0}%${speed ? ` · ${bytes(speed)}/s · ${duration((total - sent) / speed)} left` : ""}`;
    } else if (this.items.length) {
      this.title.textContent = failed ? `${count(failed, "upload")} failed` : "Uploads done";
      this.summary.textContent = `${done} of ${this.items.length} uploaded`;
    } else if (this.leftover.children.length) {
      this.title.textContent = "Unfinished uploads";
      this.summary.textContent = "";
    } else {
      this.title.textContent = runningJobs ? "Tasks" : "Done";
      this.summary.textContent = runningJobs ? `${runningJobs} running` : "";
    }
    const busy = active.length > 0 || runningJobs > 0;
    this.el.classList.toggle("active", busy);
    // All finished and none failed: after a moment to read "done", the panel folds down to its
    // title in the corner, off the columns (the next upload, or its chevron, opens it again).
    if (this.busy && !busy && !failed && ![...this.jobs.values()].some((j) => j.job.state === "failed")) {
      window.clearTimeout(this.collapseTimer);
      this.collapseTimer = window.setTimeout(() => {
        if (!this.busy) this.el.classList.add("collapsed");
      }, 2500);
    }
    this.busy = busy;
    this.el.classList.toggle("has-failed", failed > 0);
    if (!this.items.length && !this.leftover.children.length && !this.jobsEl.children.length) this.el.hidden = true;
  }

  private show(): void {
    window.clearTimeout(this.collapseTimer);
    this.el.hidden = false;
    this.el.classList.remove("collapsed");
  }

  private clearFinished(close: boolean): void {
    this.items = this.items.filter((i) => {
      const keep = i.state === "uploading" || i.state === "waiting";
      if (!keep) i.row.remove();
      return keep;
    });
    for (const [id, j] of this.jobs) {
      if (j.job.state !== "running") {
        j.row.remove();
        this.jobs.delete(id);
      }
    }
    this.header();
    if (close && !this.items.length && !this.jobs.size) this.el.hidden = true;
  }

  // ---- unfinished uploads from an earlier visit

  private async showUnfinished(): Promise<void> {
    let left;
    try {
      left = await unfinished();
    } catch {
      return;
    }
    for (const u of left) {
      const offset = await offsetOf(u.url);
      if (offset === null) {
        await forget(u.key, null); // the server no longer has it
        continue;
      }
      const discard = h("button", { type: "button", class: "small" }, "Discard");
      const row = h(
        "li",
        { class: "up unfinished", "data-url": u.url, "data-name": u.name, "data-offset": String(offset) },
        h("span", { class: "up-icon" }, icon("upload")),
        h(
          "span",
          { class: "up-main" },
          h("span", { class: "up-name", title: u.name }, u.name),
          h("span", { class: "pbar paused" }, h("span", { class: "fill" })),
          h("span", { class: "up-line" }, `${bytes(offset)} of ${bytes(u.size)} arrived · `, h("strong", null, "choose or drop this file again to resume"), ` into /${u.dir}`),
        ),
        discard,
      );
      (row.querySelector(".fill") as HTMLElement).style.width = `${u.size ? ((offset / u.size) * 100).toFixed(1) : 0}%`;
      discard.addEventListener("click", async () => {
        await forget(u.key, u.url);
        row.remove();
        this.header();
      });
      this.leftover.append(row);
      this.show();
    }
    this.header();
  }

  // ---- the server's jobs: copy, extract, fetch

  jobStarted(id: number): void {
    this.watching.add(id);
    this.show();
    void this.pollJobs(false);
  }

  private async pollJobs(first: boolean): Promise<void> {
    clearTimeout(this.polling);
    let list: Job[];
    try {
      list = await api.jobs();
    } catch {
      this.polling = window.setTimeout(() => void this.pollJobs(first), 5000);
      return;
    }
    for (const j of list) {
      // At first only what is still running; after that, what this page started too.
      if (!this.watching.has(j.id) && j.state !== "running") continue;
      this.watching.add(j.id);
      const had = this.jobs.get(j.id);
      if ((had ? had.job.state === "running" : true) && j.state !== "running") {
        void this.app.refresh();
        void this.app.refreshSpace();
        if (j.kind === "model") void this.app.models.refresh();
        notify(`${j.label}: ${j.state === "done" ? j.message ?? "done" : j.message ?? j.state}`, j.state === "failed" ? "error" : "ok");
      }
      this.drawJob(j, had?.row);
    }
    this.header();
    if ([...this.jobs.values()].some((j) => j.job.state === "running")) this.polling = window.setTimeout(() => void this.pollJobs(false), 1000);
    else if (first) this.polling = window.setTimeout(() => void this.pollJobs(false), 15000);
  }

  private drawJob(job: Job, row?: HTMLElement): void {
    const el = row ?? h("li", { class: "up job" });
    el.dataset.state = job.state;
    el.dataset.id = String(job.id);
    const pct = job.total ? (job.done / job.total) * 100 : job.state === "done" ? 100 : 0;
    const bar = h("span", { class: `pbar${job.total || job.state !== "running" ? "" : " indeterminate"}` }, h("span", { class: "fill" }));
    (bar.firstChild as HTMLElement).style.width = `${pct.toFixed(1)}%`;
    const line =
      job.state === "running"
        ? job.total
          ? `${bytes(job.done)} of ${bytes(job.total)}`
          : job.done
            ? `${bytes(job.done)}`
            : job.message ?? "starting…"
        : job.message ?? job.state;
    const cancel = iconButton("close", job.state === "running" ? "Cancel" : "Remove from the list", { class: "icon-only up-cancel" });
    cancel.addEventListener("click", async () => {
      if (job.state === "running") {
        try {
          await api.cancelJob(job.id);
        } catch (e) {
          notify(`Cannot cancel: ${message(e)}`, "error");
        }
        void this.pollJobs(false);
      } else {
        el.remove();
        this.jobs.delete(job.id);
        this.header();
      }
    });
    const iconName = job.kind === "copy" ? "copy" : job.kind === "extract" ? "extract" : "download";
    el.replaceChildren(
      h("span", { class: "up-icon" }, icon(iconName)),
      h("span", { class: "up-main" }, h("span", { class: "up-name", title: job.label }, job.label), bar, h("span", { class: "up-line" }, line)),
      cancel,
    );
    if (!row) this.jobsEl.append(el);
    this.jobs.set(job.id, { job, row: el });
    this.show();
  }
}
