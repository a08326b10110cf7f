// The file manager's HTTP API (docs/files.md), typed. Paths are relative to the workspace,
// `/`-separated, without a leading slash: "" is the workspace itself.
import { apiError, BACKGROUND, RequestOptions } from "../common/api";

export { ApiError } from "../common/api";

export interface Entry {
  name: string;
  kind: "file" | "dir" | "link" | "other";
  size: number;
  modified: number;
  symlink?: boolean;
}

export interface Listing {
  path: string;
  entries: Entry[];
  free: number;
  total: number;
}

export interface Space {
  free: number;
  total: number;
  used: number;
}

export interface Found {
  path: string;
  kind: Entry["kind"];
  size: number;
  modified: number;
}

export interface Job {
  id: number;
  kind: string;
  label: string;
  done: number;
  total: number;
  state: "running" | "done" | "failed" | "cancelled";
  message: string | null;
}

export function join(dir: string, name: string): string {
  return dir ? `${dir}/${name}` : name;
}

export function parent(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

export function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** A path typed by a person (`/models/`, `models//x`, ` ./a `) in the API's form. */
export function normalize(typed: string): string {
  return typed
    .trim()
    .split("/")
    .filter((s) => s !== "" && s !== ".")
    .join("/");
}

/** What Forge wrote into a picture, split as Forge splits it (GET /api/imageinfo). */
export interface Generation {
  text: string;
  prompt: string;
  negative_prompt: string;
  settings: [string, string][];
}

export interface ImageInfo {
  width: number | null;
  height: number | null;
  generation: Generation | null;
}

/** Pictures the server makes thumbnails of. */
export const THUMBNAILED = new Set(["png", "jpg", "jpeg", "webp", "gif"]);

/** A file's thumbnail; its mtime and size in the URL, so a changed file is asked for anew. */
export function thumbUrl(path: string, modified: number, size: number, dense = devicePixelRatio > 1.5): string {
  return `/api/thumb?${q({ path, v: `${modified}-${size}`, ...(dense ? { size: "512" } : {}) })}`;
}

/** A share link (docs/files.md): `url` is a path on this port. */
export interface Share {
  id: string;
  url: string;
  path: string;
  folder: boolean;
  created_ms: number;
  expires_ms: number | null;
  password: boolean;
  max_downloads: number | null;
  downloads: number;
}

async function send(method: string, url: string, body?: unknown, opts: RequestOptions = {}): Promise<Response> {
  const { signal, background } = opts;
  const init: RequestInit = { method, cache: "no-store", signal, headers: { Accept: "application/json", ...(background ? BACKGROUND : {}) } };
  if (body !== undefined) {
    if (body instanceof Blob || typeof body === "string") init.body = body;
    else {
      init.body = JSON.stringify(body);
      init.headers = { ...init.headers, "Content-Type": "application/json" };
    }
  }
  const res = await fetch(url, init);
  if (!res.ok) throw await apiError(res);
  return res;
}

const q = (params: Record<string, string>) => new URLSearchParams(params).toString();

export const api = {
  list: async (path: string, signal?: AbortSignal): Promise<Listing> =>
    (await send("GET", `/api/list?${q({ path })}`, undefined, { signal })).json(),
  /** Asked by the page itself (after changes, and every 30 s): background. */
  space: async (): Promise<Space> => (await send("GET", "/api/space", undefined, { background: true })).json(),
  mkdir: (path: string) => send("POST", "/api/mkdir", { path }),
  rename: (from: string, to: string, overwrite = false) => send("POST", "/api/rename", { from, to, overwrite }),
  remove: (paths: string[]) => send("POST", "/api/delete", { paths }),
  save: (path: string, body: string | Blob) => send("PUT", `/api/file?${q({ path })}`, body),
  sha256: async (path: string, signal?: AbortSignal): Promise<{ sha256: string; bytes: number }> =>
    (await send("GET", `/api/sha256?${q({ path })}`, undefined, { signal })).json(),
  /** Polled while jobs run: background. */
  jobs: async (): Promise<Job[]> => ((await (await send("GET", "/api/jobs", undefined, { background: true })).json()) as { jobs: Job[] }).jobs,
  startJob: async (body: Record<string, unknown>): Promise<{ id: number }> => (await send("POST", "/api/jobs", body)).json(),
  cancelJob: (id: number) => send("DELETE", `/api/jobs/${id}`),
  shares: async (): Promise<Share[]> => ((await (await send("GET", "/api/shares")).json()) as { shares: Share[] }).shares,
  share: async (body: { path: string; expires: string; password: string; max_downloads: number | null }): Promise<Share> =>
    (await send("POST", "/api/shares", body)).json(),
  revokeShare: (id: string) => send("DELETE", `/api/shares/${encodeURIComponent(id)}`),
  imageInfo: async (path: string, signal?: AbortSignal): Promise<ImageInfo> =>
    (await send("GET", `/api/imageinfo?${q({ path })}`, undefined, { signal })).json(),

  /** The first `limit` bytes of a file (a Range request), and the file's whole size. */
  async head(path: string, limit: number, signal?: AbortSignal): Promise<{ bytes: ArrayBuffer; size: number }> {
    const res = await fetch(`/api/file?${q({ path })}`, {
      headers: { Range: `bytes=0-${limit - 1}` },
      cache: "no-store",
      signal,
    });
    if (res.status === 416) return { bytes: new ArrayBuffer(0), size: 0 };
    if (!res.ok) throw await apiError(res);
    const range = res.headers.get("Content-Range");
    const bytes = await res.arrayBuffer();
    const size = range ? Number(range.split("/")[1]) : bytes.byteLength;
    return { bytes, size };
  },

  /** Names containing `needle` below `path`, handed to `found` in batches while the server finds them. */
  async search(path: string, needle: string, found: (batch: Found[]) => void, signal: AbortSignal): Promise<void> {
    const res = await send("GET", `/api/search?${q({ path, q: needle })}`, undefined, { signal });
    if (!res.body) throw new Error("the browser gave no stream for the results");
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let rest = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += value;
      const lines = rest.split("\n");
      rest = lines.pop() ?? "";
      const batch = lines.filter((l) => l.trim()).map((l) => JSON.parse(l) as Found);
      if (batch.length) found(batch);
    }
    if (rest.trim()) found([JSON.parse(rest) as Found]);
  },
};

export function fileUrl(path: string, inline = false): string {
  return `/api/file?${q(inline ? { path, inline: "1" } : { path })}`;
}

export function archiveUrl(paths: string[], format: "zip" | "tar"): string {
  const params: Record<string, string> = { paths: paths.join("\n") };
  if (format === "tar") params.format = "tar";
  return `/api/archive?${q(params)}`;
}

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
