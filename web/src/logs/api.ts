// The logs app's HTTP API (docs/logs-app.md), typed.
import { request } from "../common/api";
import type { IdleState } from "../common/idle";

export { ApiError } from "../common/api";

/** `[seq, time_ms, service, stream, text]`, and in searches with context `1` (match) or `0`. */
export type Line = [number | null, number | null, string, string, string, number?];

export interface LinesAnswer {
  lines: Line[];
  first_seq: number;
  last_seq: number;
  more: boolean;
  scanned: number;
  took_ms: number;
}

export interface HistoryAnswer {
  lines: Line[];
  start: number;
  size: number;
}

export interface LiveLine {
  service: string;
  stream: string;
  time_ms: number;
  text: string;
}

export interface ExitInfo {
  code: number | null;
  signal: string | null;
  text: string;
}

export interface ServiceStatus {
  name: string;
  state: string;
  ready: boolean;
  oneshot: boolean;
  pid: number | null;
  uptime_ms: number | null;
  restarts: number;
  last_exit: ExitInfo | null;
  /** The last exit followed a stop or restart that was asked for. */
  last_exit_asked?: boolean;
  error: string | null;
}

export interface Gpu {
  index: number;
  name: string;
  utilization: number | null;
  memory_used: number | null;
  memory_total: number | null;
  temperature: number | null;
}

export interface Machine {
  cpus: number;
  cpu_quota: number | null;
  load?: [number, number, number] | null;
  memory: { used: number | null; limit: number | null; total: number | null };
  shm: { size: number; used: number; warning: string | null } | null;
  disk: { path: string; total: number; used: number; free: number } | null;
  gpus: Gpu[];
  uptime_s: number | null;
}

export interface Status {
  instance: string;
  now_ms: number;
  gpubox: { version: string; pid: number; uptime_s: number };
  services: ServiceStatus[];
  machine: Machine;
  /** Each port's address, and its addresses through tunnels. */
  links: { name: string; port: number; url: string | null; tunnels: string[] }[];
  vast: Record<string, string | null> | null;
  /** HTTPS on every port: where the certificate came from and its SHA-256 fingerprint. */
  tls: { source: string; fingerprint: string } | null;
  /** Why no tunnel runs although one was asked for. */
  tunnel_problem: string | null;
}

/** The machine's history (`/api/metrics?range=`): `t` in Unix seconds, ascending; each series as
 * long as `t`, `null` where nothing was read. */
export interface Metrics {
  /** Seconds between samples. */
  interval: number;
  /** Seconds of history asked for. */
  range: number;
  /** Seconds between the points sent (one stands for several samples in the long ranges). */
  step: number;
  gpu_source: string;
  latest: {
    mem_limit: number | null;
    disk_total: number | null;
    gpus: { index: number; name: string; memory_total: number | null }[];
  } | null;
  t: number[];
  series: Record<string, (number | null)[]>;
}

export interface Delivery {
  target: string;
  state: "pending" | "sent" | "failed";
  attempts: number;
  error?: string;
}

export interface Alert {
  id: number;
  time_ms: number;
  kind: string;
  level: "error" | "warning" | "info";
  service?: string;
  title: string;
  text: string;
  /** Why it was not sent. */
  held?: string;
  repeats: number;
  deliveries: Delivery[];
}

export interface Alerts {
  targets: { kind: string; url: string }[];
  alerts: Alert[];
  idle: IdleState;
}

export function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  return request<T>("GET", url, undefined, { signal });
}

/** A GET the page makes by itself (polling, a refresh): not the user's activity. */
export function pollJson<T>(url: string): Promise<T> {
  return request<T>("GET", url, undefined, { background: true });
}

/** `path?k=v&...`, leaving out empty values. */
export function url(path: string, params: Record<string, string | number | boolean | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === "" || v === false) continue;
    q.set(k, v === true ? "1" : String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
