// New lines as they come: the event stream (/api/stream), requests that catch up when it lags,
// and requests that fill holes, so that the page gets every line once and in order.
//
// Sequence numbers are consecutive across all services, so a hole means lines still on their way
// (a reader can see a later line of one service before an earlier one of another is stored): the
// lines after a hole wait until a request for the hole brings it. What that request does not bring
// is no longer in memory: the page says so (a gap) and goes on.
//
// Some proxies hold a response back until it ends (Cloudflare's quick tunnels do not promise
// streams; others buffer): an event stream then delivers nothing. The server says `hello` at once
// and `ping` every 15 s, so a stream that says nothing for a while is held back, not quiet: the
// feed then polls /api/lines every 2 s instead, and tries the stream again now and then.
//
// Every request here is the page following the server by itself: sent as background (not
// activity for the idle stop); the event stream, which cannot carry a header, says so in its
// query (`gpubox_background=1`).

import { Line, LinesAnswer, LiveLine, pollJson, url } from "./api";

/** A `lines` event this full means the stream is behind: catch up with requests instead. */
const STREAM_BATCH = 2000;
/** Sequence numbers per catch-up request. */
const WINDOW = 20000;
const HOLE_WAIT_MS = 250;
/** No `hello` this long after opening: the stream is held back. */
const HELLO_MS = 5000;
/** Nothing (not even a `ping`, sent every 15 s) this long: held back too. */
const SILENCE_MS = 40000;
const POLL_MS = 2000;
/** While polling, how often the stream is tried again. */
const RETRY_STREAM_MS = 60000;

export type Connection = "live" | "reconnecting" | "connecting" | "offline" | "polling";

export interface FeedHandlers {
  /** Lines in order, each once. */
  lines(lines: Line[]): void;
  live(live: LiveLine[]): void;
  /** `count` lines up to `before` left the ring before they could be read. */
  gap(count: number, before: number): void;
  connection(state: Connection): void;
}

export class Feed {
  /** Every line up to this sequence number has been handed on (or is known to be gone). */
  last = 0;
  private pending = new Map<number, Line>();
  private holeTimer = 0;
  private catchingUp = false;
  private es: EventSource | null = null;
  /** When the stream last said anything; 0: not since it was opened. */
  private heard = 0;
  private watchdog = 0;
  /** Polling instead of streaming (the stream was held back). */
  private polling = false;
  private pollTimer = 0;
  /** The polling loop now running (an older one stops at its next step). */
  private pollGen = 0;
  private retryAt = 0;

  constructor(private on: FeedHandlers) {}

  /** Stops, and forgets where it was. */
  reset(): void {
    this.close();
    this.pending.clear();
    this.last = 0;
  }

  close(): void {
    this.closeStream();
    this.polling = false;
    window.clearTimeout(this.pollTimer);
    this.pollTimer = 0;
  }

  private closeStream(): void {
    this.es?.close();
    this.es = null;
    window.clearInterval(this.watchdog);
    this.watchdog = 0;
  }

  /** Follows the stream from `last` on (or polls, when the stream is held back). */
  open(): void {
    this.closeStream();
    // EventSource sends no headers of ours: the stream (opened with the page, and again by
    // itself) says it is the page's own in its query.
    const es = new EventSource(url("/api/stream", { after: this.last, gpubox_background: 1 }));
    this.es = es;
    const opened = Date.now();
    this.heard = 0;
    if (!this.polling) this.on.connection("connecting");
    const hear = (): void => {
      if (es !== this.es) return;
      this.heard = Date.now();
      if (this.polling) {
        // The stream gets through again: back to it.
        this.polling = false;
        window.clearTimeout(this.pollTimer);
        this.pollTimer = 0;
        this.on.connection("live");
      }
    };
    for (const name of ["hello", "ping", "lines", "live", "gap"]) es.addEventListener(name, hear);
    this.watchdog = window.setInterval(() => {
      if (es !== this.es) return;
      const now = Date.now();
      if ((this.heard === 0 && now - opened > HELLO_MS) || (this.heard !== 0 && now - this.heard > SILENCE_MS)) {
        this.closeStream();
        // Polling already (this was a try of the stream): the polling goes on.
        if (!this.polling) this.startPolling();
      }
    }, 1000);
    es.addEventListener("lines", (e) => {
      const d = JSON.parse((e as MessageEvent).data) as { lines: Line[] };
      this.take(d.lines);
      if (d.lines.length >= STREAM_BATCH) void this.catchUp(true);
    });
    es.addEventListener("live", (e) => this.on.live((JSON.parse((e as MessageEvent).data) as { live: LiveLine[] }).live));
    es.addEventListener("gap", (e) => this.gap((JSON.parse((e as MessageEvent).data) as { before: number }).before));
    es.onopen = () => {
      if (!this.polling) this.on.connection("live");
    };
    es.onerror = () => {
      if (es !== this.es || this.polling) return;
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (the session ended, gpubox restarted): try again from where we were.
        this.on.connection("offline");
        window.setTimeout(() => {
          if (es === this.es) this.open();
        }, 3000);
      } else this.on.connection("reconnecting");
    };
  }

  /** Polls for new lines every 2 s, trying the stream again every minute. */
  private startPolling(): void {
    this.polling = true;
    this.retryAt = Date.now() + RETRY_STREAM_MS;
    this.on.connection("polling");
    const gen = ++this.pollGen;
    const tick = async (): Promise<void> => {
      if (!this.polling || gen !== this.pollGen) return;
      await this.catchUp(false);
      if (!this.polling || gen !== this.pollGen) return;
      if (Date.now() >= this.retryAt && !this.es) {
        this.retryAt = Date.now() + RETRY_STREAM_MS;
        this.open();
      }
      this.pollTimer = window.setTimeout(() => void tick(), POLL_MS);
    };
    void tick();
  }

  /** Lines from the stream or a request: handed on once the ones before them are in. */
  take(lines: Line[]): void {
    const ready: Line[] = [];
    for (const l of lines) {
      const seq = l[0];
      if (seq === null || seq <= this.last) continue;
      if (seq === this.last + 1 + ready.length && this.pending.size === 0) ready.push(l);
      else this.pending.set(seq, l);
    }
    let next = this.last + 1 + ready.length;
    for (let l = this.pending.get(next); l; l = this.pending.get(++next)) {
      ready.push(l);
      this.pending.delete(next);
    }
    if (ready.length) {
      this.last = ready[ready.length - 1][0]!;
      this.on.lines(ready);
    }
    if (this.pending.size && !this.holeTimer && !this.catchingUp) {
      this.holeTimer = window.setTimeout(() => void this.fillHole(), HOLE_WAIT_MS);
    }
  }

  private async fillHole(): Promise<void> {
    if (!this.pending.size) {
      this.holeTimer = 0;
      return;
    }
    const from = this.last;
    const to = Math.min(...this.pending.keys());
    try {
      const r = await pollJson<LinesAnswer>(url("/api/lines", { after: from, before: to, limit: Math.min(to - from, 100000) }));
      this.holeTimer = 0;
      this.take(r.lines);
    } catch {
      this.holeTimer = 0;
    }
    if (this.last === from && this.pending.size && Math.min(...this.pending.keys()) === to) {
      // Not in memory any more: said as a gap, like the stream's own.
      this.gap(to - 1);
    } else if (this.pending.size && !this.holeTimer) {
      this.holeTimer = window.setTimeout(() => void this.fillHole(), HOLE_WAIT_MS);
    }
  }

  private gap(before: number): void {
    if (before <= this.last) return;
    for (const k of this.pending.keys()) if (k <= before) this.pending.delete(k);
    const n = before - this.last;
    this.last = before;
    this.on.gap(n, before);
    this.take([]);
  }

  /** Fetches every line after `last` up to now with requests: faster than a lagging stream. */
  async catchUp(reopen: boolean): Promise<void> {
    if (this.catchingUp) return;
    this.catchingUp = true;
    try {
      for (let cursor = this.last; ; ) {
        const r = await pollJson<LinesAnswer>(url("/api/lines", { after: cursor, before: cursor + WINDOW + 1, limit: WINDOW }));
        this.take(r.lines);
        cursor += WINDOW;
        if (cursor >= r.last_seq) break;
      }
      if (reopen) this.open();
    } catch (e) {
      console.error(e);
    } finally {
      this.catchingUp = false;
    }
    this.take([]);
  }
}
