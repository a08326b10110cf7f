// Uploads with the tus protocol (docs/files.md, "Uploads"), through tus-js-client. Each file is
// one tus upload whose address is remembered in localStorage under a fingerprint of the file
// and its target folder, so that after a dropped connection, a reload or a restart of gpubox the
// same file, chosen or dropped again, continues from the byte the server has.
//
// Chunk size: 50 MiB per PATCH. The server keeps every byte of a PATCH that was cut off (written
// in 1 MiB pieces as they arrive), so resuming does not need small chunks; a big chunk keeps the
// pause between requests (one round trip each) negligible on a fast link, and 50 MiB stays under
// the 100 MB request limit of common proxies and tunnels in front of an instance.

import * as tus from "tus-js-client";

const CHUNK = 50 * 1024 * 1024;
const FINGERPRINT = "gpubox-files";

export type Conflict = "rename" | "overwrite" | "skip";
export type State = "waiting" | "uploading" | "done" | "skipped" | "failed" | "cancelled";

/** A file to upload, and the folder below the target it goes to ("" for the target itself). */
export interface Picked {
  file: File;
  rel: string;
}

/** What was dropped or chosen: files, and every folder among them (empty ones too). */
export interface Batch {
  files: Picked[];
  dirs: string[];
}

export interface Unfinished {
  key: string;
  url: string;
  name: string;
  dir: string;
  size: number;
  created: string;
}

/** Reads a drop: folders (walked with webkitGetAsEntry) and files. Must start inside the event. */
export function fromDrop(dt: DataTransfer): Promise<Batch> {
  const entries: FileSystemEntry[] = [];
  const loose: File[] = [];
  for (const item of Array.from(dt.items)) {
    if (item.kind !== "file") continue;
    const entry = item.webkitGetAsEntry?.();
    if (entry) entries.push(entry);
    else {
      const f = item.getAsFile();
      if (f) loose.push(f);
    }
  }
  if (!dt.items.length) loose.push(...Array.from(dt.files));
  return (async () => {
    const batch: Batch = { files: loose.map((file) => ({ file, rel: "" })), dirs: [] };
    for (const e of entries) await walk(e, "", batch);
    return batch;
  })();
}

async function walk(entry: FileSystemEntry, rel: string, batch: Batch): Promise<void> {
  if (entry.isFile) {
    const file = await new Promise<File>((ok, fail) => (entry as FileSystemFileEntry).file(ok, fail));
    batch.files.push({ file, rel });
  } else if (entry.isDirectory) {
    const here = rel ? `${rel}/${entry.name}` : entry.name;
    batch.dirs.push(here);
    const reader = (entry as FileSystemDirectoryEntry).createReader();
    // readEntries gives at most 100 at a time: read until it gives none.
    for (;;) {
      const some = await new Promise<FileSystemEntry[]>((ok, fail) => reader.readEntries(ok, fail));
      if (!some.length) break;
      for (const e of some) await walk(e, here, batch);
    }
  }
}

/** Reads a file input (a folder input gives each file's path in webkitRelativePath). */
export function fromInput(input: HTMLInputElement): Batch {
  const batch: Batch = { files: [], dirs: [] };
  const dirs = new Set<string>();
  for (const file of Array.from(input.files ?? [])) {
    const parts = (file.webkitRelativePath || file.name).split("/");
    parts.pop();
    for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join("/"));
    batch.files.push({ file, rel: parts.join("/") });
  }
  batch.dirs = [...dirs];
  return batch;
}

export interface UploadEvents {
  progress(sent: number, total: number): void;
  resumed(offset: number): void;
  done(result: { savedAs: string | null; skipped: boolean }): void;
  failed(message: string): void;
}

function detail(err: Error): string {
  const res = (err as tus.DetailedError).originalResponse;
  if (res) {
    const status = res.getStatus();
    try {
      const body = JSON.parse(res.getBody()) as { error?: { message?: string } };
      if (body.error?.message) return status === 507 ? `Not enough space: ${body.error.message}` : body.error.message;
    } catch {
      // not JSON
    }
    if (status === 401) return "your login has expired: reload the page and log in, then choose the file again to resume";
    if (status) return `the server answered ${status}`;
  }
  return /failed to upload chunk|network|xhr/i.test(err.message)
    ? "the connection dropped and retrying did not help; choose the file again to resume"
    : err.message;
}

/** One file's upload. `start` looks for an earlier try of the same file into the same folder. */
export class FileUpload {
  private upload: tus.Upload;
  private result: string | null = null;

  constructor(
    readonly file: File,
    readonly dir: string,
    readonly conflict: Conflict,
    private readonly on: UploadEvents,
  ) {
    this.upload = new tus.Upload(file, {
      endpoint: "/api/tus",
      chunkSize: CHUNK,
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      metadata: { filename: file.name, path: dir, conflict },
      fingerprint: (f: File) => Promise.resolve([FINGERPRINT, dir, f.name, f.size, f.lastModified].join("|")),
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onProgress: (sent, total) => on.progress(sent, total),
      onAfterResponse: (_req, res) => {
        const v = res.getHeader("X-Gpubox-Upload");
        if (v) this.result = v;
      },
      // A full disk, a refusal or a lost login will not change by retrying; a busy upload
      // (409: the previous page's request is still ending) and dropped connections will.
      onShouldRetry: (err) => {
        const status = err.originalResponse?.getStatus() ?? 0;
        return !(status >= 400 && status < 500 && status !== 409 && status !== 423) && status !== 507 && navigator.onLine;
      },
      onSuccess: () => {
        const r = this.result;
        on.done({
          skipped: r === "skipped",
          savedAs: r?.startsWith("saved:") ? decodeURIComponent(r.slice(6)).replace(/^\//, "") : null,
        });
      },
      onError: (err) => on.failed(detail(err)),
    });
  }

  async start(): Promise<string | null> {
    let resumedUrl: string | null = null;
    try {
      const previous = await this.upload.findPreviousUploads();
      previous.sort((a, b) => b.creationTime.localeCompare(a.creationTime));
      if (previous.length) {
        this.upload.resumeFromPreviousUpload(previous[0]);
        resumedUrl = previous[0].uploadUrl;
        const offset = await offsetOf(previous[0].uploadUrl);
        if (offset) this.on.resumed(offset);
        // Older tries of the same file are of no more use.
        for (const p of previous.slice(1)) await forget(p.urlStorageKey, p.uploadUrl);
      }
    } catch {
      // no storage: a fresh upload
    }
    this.upload.start();
    return resumedUrl;
  }

  cancel(): void {
    void this.upload.abort(true);
  }
}

/** Where an upload stands on the server, or null when the server no longer has it. */
export async function offsetOf(url: string | null): Promise<number | null> {
  if (!url) return null;
  try {
    const res = await fetch(url, { method: "HEAD", headers: { "Tus-Resumable": "1.0.0" }, cache: "no-store" });
    if (!res.ok) return null;
    return Number(res.headers.get("Upload-Offset") ?? 0);
  } catch {
    return null;
  }
}

/** Uploads this browser started and did not finish, from tus-js-client's localStorage. */
export async function unfinished(): Promise<Unfinished[]> {
  const all = await tus.defaultOptions.urlStorage.findAllUploads();
  return all
    .filter((u) => u.urlStorageKey.startsWith(`tus::${FINGERPRINT}|`) && u.uploadUrl)
    .map((u) => ({
      key: u.urlStorageKey,
      url: u.uploadUrl as string,
      name: u.metadata.filename ?? "?",
      dir: u.metadata.path ?? "",
      size: u.size ?? 0,
      created: u.creationTime,
    }));
}

/** Drops an unfinished upload: on the server (its bytes go) and here. */
export async function forget(key: string, url: string | null): Promise<void> {
  if (url) await tus.Upload.terminate(url).catch(() => undefined);
  await tus.defaultOptions.urlStorage.removeUpload(key);
}
