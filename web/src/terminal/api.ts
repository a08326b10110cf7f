// The terminal app's HTTP API (docs/terminal.md): list, start, rename and close sessions.
import { request } from "../common/api";

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

export { ApiError } from "../common/api";



/** `background`: asked by the page itself (polling), not activity for the idle stop. */
export async function listSessions(background = false): Promise<SessionInfo[]> {
  const { sessions } = await request<{ sessions: SessionInfo[] }>("GET", "/api/sessions", undefined, { background });
  return sessions.sort((a, b) => a.created_ms - b.created_ms || a.id.localeCompare(b.id));
}

export function createSession(cols: number, rows: number): Promise<SessionInfo> {
  return request<SessionInfo>("POST", "/api/sessions", { cols, rows });
}

export function renameSession(id: string, name: string): Promise<SessionInfo> {
  return request<SessionInfo>("PATCH", `/api/sessions/${encodeURIComponent(id)}`, { name });
}

export function closeSession(id: string): Promise<void> {
  return request<void>("DELETE", `/api/sessions/${encodeURIComponent(id)}`);
}
