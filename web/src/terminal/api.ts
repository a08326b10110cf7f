// The terminal app's HTTP API (docs/terminal.md): list, start, rename and close sessions.

export interface SessionInfo {
  id: string;
  name: string;
  pid: number;
  cols: number;
  rows: number;
  tabs: number;
  created_ms: number;
  last_used_ms: number;
  exit: number | null;
}

/** A refused or failed request, with the message gpubox gave (or what went wrong on the way). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: body === undefined ? { Accept: "application/json" } : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "cannot reach gpubox (is the network down, or is it restarting?)");
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // An answer that is not JSON: a proxy's error page, say. Reported below by its status.
  }
  if (!res.ok) {
    const message = (json as { error?: { message?: string } } | null)?.error?.message;
    throw new ApiError(res.status, message ?? `${method} ${path}: ${res.status} ${res.statusText}`);
  }
  return json as T;
}

export async function listSessions(): Promise<SessionInfo[]> {
  const { sessions } = await call<{ sessions: SessionInfo[] }>("GET", "/api/sessions");
  return sessions.sort((a, b) => a.created_ms - b.created_ms || a.id.localeCompare(b.id));
}

export function createSession(cols: number, rows: number): Promise<SessionInfo> {
  return call<SessionInfo>("POST", "/api/sessions", { cols, rows });
}

export function renameSession(id: string, name: string): Promise<SessionInfo> {
  return call<SessionInfo>("PATCH", `/api/sessions/${encodeURIComponent(id)}`, { name });
}

export function closeSession(id: string): Promise<void> {
  return call<void>("DELETE", `/api/sessions/${encodeURIComponent(id)}`);
}
