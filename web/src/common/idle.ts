// The idle stop (`[idle_stop]`, docs/config.md): its state as /.gpubox/api/idle says it, and the
// words for it that the banner on every page (../shell.ts) and the logs app's status panel share.

import { request } from "./api";

export interface IdleState {
  enabled: boolean;
  after_s?: number;
  warn_before_s: number;
  phase: "off" | "watching" | "warned" | "stopping" | "stopped" | "failed";
  /** Nothing has used the instance since then (ms since the Unix epoch). */
  idle_since_ms: number;
  /** When the stop is due, while warned. */
  stop_at_ms?: number;
  /** Who is asked to stop it; none: it can only warn. */
  provider?: string;
  /** What kept it busy at the last look ("GPU 0 at 37 %"). */
  busy: string[];
  last_result?: string;
  /** The server's clock when it answered (ms since the Unix epoch). */
  now_ms: number;
}

/** The server's times moved to this browser's clock, which may be off: a countdown from them is
 * then right here. */
function local(st: IdleState): IdleState {
  const skew = Date.now() - st.now_ms;
  return {
    ...st,
    idle_since_ms: st.idle_since_ms + skew,
    stop_at_ms: st.stop_at_ms === undefined ? undefined : st.stop_at_ms + skew,
    now_ms: st.now_ms + skew,
  };
}

/** The state, asked by the page itself (it polls): not activity. */
export async function idleState(): Promise<IdleState> {
  return local(await request<IdleState>("GET", "/.gpubox/api/idle", undefined, { background: true }));
}

/** "Keep running": the user's own request, so it counts as activity too. */
export async function keepRunning(): Promise<IdleState> {
  return local(await request<IdleState>("POST", "/.gpubox/api/idle/keep"));
}

/** A time span in the banner's words: whole minutes, seconds in the last minute. */
export function span(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s} s` : `${Math.ceil(s / 60)} min`;
}

/** The warning: how long nothing used the instance, and what happens next. */
export function warning(st: IdleState, now: number): string {
  const idle = `No activity for ${span(now - st.idle_since_ms)}`;
  if (!st.provider) {
    return `${idle}: this instance cannot stop itself (no cloud API key: CONTAINER_API_KEY on Vast, RUNPOD_API_KEY on RunPod). Stop it yourself if you are done.`;
  }
  const left = st.stop_at_ms === undefined ? "soon" : `in ${span(st.stop_at_ms - now)}`;
  return `${idle}: this instance stops ${left} (${st.provider} is asked to stop it).`;
}

/** The state in a sentence, for the status panel. */
export function describe(st: IdleState, now: number): string {
  const who = st.provider ? `asks ${st.provider} to stop it` : "can only warn (no cloud API key)";
  switch (st.phase) {
    case "off":
      return "Off. Set [idle_stop] after in the configuration (or IDLE_STOP_AFTER) to stop this instance when nothing has used it for that long.";
    case "watching": {
      const busy = st.busy.length ? `Busy now: ${st.busy.join(", ")}.` : `Idle for ${span(now - st.idle_since_ms)}.`;
      return `Watching: after ${span((st.after_s ?? 0) * 1000)} with nothing in use it ${who}. ${busy}`;
    }
    case "warned":
      return `Warned. ${warning(st, now)}`;
    case "stopping":
      return `Stopping: ${st.provider ?? "the cloud"} was asked to stop this instance.`;
    case "stopped":
      return `Stopped: ${st.last_result ?? "the cloud accepted the request"}.`;
    case "failed":
      return `The stop request failed: ${st.last_result ?? "no answer"}. It is tried again after another idle spell.`;
  }
}
