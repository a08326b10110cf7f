// What the pages share about gpubox's JSON APIs.

/** An answer in the API's error form, `{"error": {"code", "message"}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The error a failed answer carries: its `{"error": ...}` body, or else its status line. */
export async function apiError(res: Response): Promise<ApiError> {
  let code = `http_${res.status}`;
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    if (body.error?.code) code = body.error.code;
    if (body.error?.message) message = body.error.message;
  } catch {
    // not JSON: keep the status line
  }
  if (res.status === 401) message = "your login has expired: reload the page to log in again";
  return new ApiError(res.status, code, message);
}

/** The header on every request a page makes by itself (a timer, polling, a refresh): gpubox does
 * not count those as someone using the instance, so that a tab left open does not keep a rented
 * GPU from its idle stop. What the user does (a click, a key) goes without it. */
export const BACKGROUND: Record<string, string> = { "X-Gpubox-Background": "1" };

export interface RequestOptions {
  signal?: AbortSignal;
  /** Made by the page itself, not by the user: sent with `BACKGROUND`. */
  background?: boolean;
}

/** A request to gpubox's JSON API: the answer's JSON (nothing for 204), or an `ApiError` (status
 *  0 when gpubox cannot be reached). */
export async function request<T>(method: string, url: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
  const { signal, background } = opts;
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: {
        ...(body === undefined ? { Accept: "application/json" } : { "Content-Type": "application/json" }),
        ...(background ? BACKGROUND : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      signal,
    });
  } catch (e) {
    if (signal?.aborted) throw e;
    throw new ApiError(0, "unreachable", "cannot reach gpubox (is the network down, or is it restarting?)");
  }
  if (!res.ok) throw await apiError(res);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}
