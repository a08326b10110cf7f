// One tab's WebSocket to a session (docs/terminal.md, "The WebSocket protocol"): draws the
// snapshot and the output into xterm.js, sends keystrokes and sizes, applies flow control, and
// reconnects with backoff when the connection drops.

import type { IModes, Terminal } from "@xterm/xterm";
import type { SessionInfo } from "./api";

/** xterm.js bytes not yet parsed above which gpubox is asked to pause, and below which to resume. */
const HIGH_WATER = 512 * 1024;
const LOW_WATER = 64 * 1024;
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 5000;
/** Reattaches to get a snapshot at this tab's size, at most. */
const SIZE_TRIES = 3;
/** RIS: a full reset in the output stream, so it happens after what is queued before it. */
const RESET = "\x1bc";

export type LinkState = "connecting" | "connected" | "reconnecting" | "ended" | "logged-out";

/** Whether a session still exists, asked after a drop to tell a network cut from an ending. */
export type Presence = "here" | "gone" | "logged-out" | "unknown";

export interface ConnectionEvents {
  state(state: LinkState): void;
  /** The first screen is drawn (at the session's size): time to fit this tab's size to it. */
  attached(session: SessionInfo): void;
  /** The shell exited (code null: it ended while this tab was away). */
  ended(code: number | null): void;
}

/** Flow-control bookkeeping for one socket. */
interface Link {
  ws: WebSocket;
  pending: number;
  paused: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The snapshot's screen comes from gpubox's terminal emulator (avt), which writes truecolour as
 * `38:2:R:G:B`; xterm.js reads that colon form as `38:2:<colour space>:R:G` and gets the colour
 * wrong. Inside SGR sequences, this rewrites it to the unambiguous `38;2;R;G;B`.
 */
function fixSnapshotColours(bytes: Uint8Array): string {
  return decoder
    .decode(bytes)
    .replace(/\x1b\[[0-9;:]*m/g, (sgr) => sgr.replace(/([[;])([345]8):2:(\d+):(\d+):(\d+)(?=[;m])/g, "$1$2;2;$3;$4;$5"));
}

export class Connection {
  private link: Link | null = null;
  private attempt = 0;
  private retry = 0;
  private stopped = false;
  private drawn = false;
  /** How many times this attach has asked gpubox for this tab's size before drawing. */
  private sizeTries = 0;
  private readonly onOnline = (): void => this.retryNow();

  constructor(
    readonly id: string,
    private readonly term: Terminal,
    private readonly on: ConnectionEvents,
    private readonly presence: (id: string) => Promise<Presence>,
    /** The size this tab's window has room for (null while it has no size). */
    private readonly room: () => { cols: number; rows: number } | null,
  ) {
    window.addEventListener("online", this.onOnline);
    this.connect();
  }

  /** Detaches this tab (the session lives on). */
  close(): void {
    this.stopped = true;
    window.clearTimeout(this.retry);
    window.removeEventListener("online", this.onOnline);
    const ws = this.link?.ws;
    this.link = null;
    ws?.close();
  }

  /** Keystrokes: a string from xterm's onData, or raw bytes from onBinary. */
  input(data: string | Uint8Array): void {
    const ws = this.link?.ws;
    if (ws?.readyState === WebSocket.OPEN) ws.send(typeof data === "string" ? encoder.encode(data) : data);
  }

  resize(cols: number, rows: number): void {
    this.control({ type: "resize", cols, rows });
  }

  private control(msg: object, link = this.link): void {
    if (link?.ws.readyState === WebSocket.OPEN) link.ws.send(JSON.stringify(msg));
  }

  private connect(): void {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    // Connecting (and reconnecting by itself) is the page's own doing; what is typed counts.
    const ws = new WebSocket(
      `${scheme}//${location.host}/api/sessions/${encodeURIComponent(this.id)}/ws?gpubox_background=1`,
    );
    ws.binaryType = "arraybuffer";
    const link: Link = { ws, pending: 0, paused: false };
    this.link = link;
    this.on.state(this.attempt === 0 ? "connecting" : "reconnecting");
    let session: SessionInfo | null = null;
    let snapshot: "hello" | "again" | null = null;
    let ended = false;

    ws.onmessage = (ev: MessageEvent<ArrayBuffer | string>) => {
      if (this.link !== link) return;
      if (typeof ev.data !== "string") {
        const bytes = new Uint8Array(ev.data);
        if (snapshot) {
          this.redraw(link, bytes, snapshot === "hello" ? session : null);
          snapshot = null;
        } else {
          this.write(link, bytes);
        }
        return;
      }
      let msg: { type?: string; session?: SessionInfo; cols?: number; rows?: number; code?: number };
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      switch (msg.type) {
        case "hello": {
          const want = this.room();
          if (want && this.sizeTries < SIZE_TRIES && (want.cols !== msg.cols || want.rows !== msg.rows)) {
            // The snapshot pads each line to the session's width, so drawing it and then
            // resizing would make xterm.js re-wrap those blanks into empty rows. Instead: resize
            // the session to this window, and reattach for a snapshot drawn at that size (again,
            // a little later, if the new attach overtook the resize).
            this.control({ type: "resize", ...want }, link);
            this.link = null;
            ws.close();
            this.retry = window.setTimeout(() => {
              this.retry = 0;
              this.connect();
            }, 100 * this.sizeTries++);
            return;
          }
          this.sizeTries = 0;
          session = msg.session ?? null;
          this.attempt = 0;
          if (msg.cols && msg.rows && (msg.cols !== this.term.cols || msg.rows !== this.term.rows)) {
            this.term.resize(msg.cols, msg.rows);
          }
          snapshot = "hello";
          this.on.state("connected");
          break;
        }
        case "snapshot":
          snapshot = "again";
          break;
        case "size":
          if (msg.cols && msg.rows) this.term.resize(msg.cols, msg.rows);
          break;
        case "exit":
          ended = true;
          this.stopped = true;
          this.on.state("ended");
          this.on.ended(typeof msg.code === "number" ? msg.code : null);
          break;
      }
    };

    ws.onclose = () => {
      if (this.link !== link || this.stopped || ended) return;
      this.link = null;
      this.on.state("reconnecting");
      void this.presence(this.id).then((p) => {
        if (this.stopped || this.link) return;
        if (p === "gone") {
          this.stopped = true;
          this.on.state("ended");
          this.on.ended(null);
        } else if (p === "logged-out") {
          this.stopped = true;
          this.on.state("logged-out");
        } else {
          const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** this.attempt);
          this.attempt++;
          this.retry = window.setTimeout(() => {
            this.retry = 0;
            this.connect();
          }, delay);
        }
      });
    };
  }

  private retryNow(): void {
    if (this.stopped || this.link || !this.retry) return;
    window.clearTimeout(this.retry);
    this.retry = 0;
    this.connect();
  }

  /** Writes output, counting bytes xterm has not parsed yet (docs/terminal.md, "Flow control"). */
  private write(link: Link, data: Uint8Array | string, done?: () => void): void {
    const n = data.length;
    link.pending += n;
    this.term.write(data, () => {
      link.pending -= n;
      if (link.paused && link.pending < LOW_WATER) {
        link.paused = false;
        this.control({ type: "resume" }, link);
      }
      done?.();
    });
    if (!link.paused && link.pending > HIGH_WATER) {
      link.paused = true;
      this.control({ type: "pause" }, link);
    }
  }

  /**
   * Resets the terminal and draws a snapshot. The snapshot restores the screen but not the input
   * modes a full-screen program set (mouse reporting, bracketed paste), so when this tab had this
   * session's screen already and the program is still on the alternate screen, they are restored.
   */
  private redraw(link: Link, bytes: Uint8Array, hello: SessionInfo | null): void {
    const modes = this.drawn ? { ...this.term.modes } : null;
    this.write(link, RESET);
    this.write(link, fixSnapshotColours(bytes), () => {
      if (modes && this.term.buffer.active.type === "alternate") this.term.write(restoreModes(modes));
      if (hello) this.on.attached(hello);
    });
    this.drawn = true;
  }
}

function restoreModes(m: IModes): string {
  const mouse = { none: "", x10: "\x1b[?9h", vt200: "\x1b[?1000h", drag: "\x1b[?1002h", any: "\x1b[?1003h" }[
    m.mouseTrackingMode
  ];
  // Programs that ask for mouse reports under TERM=xterm-256color use the SGR encoding.
  return (
    (mouse ? mouse + "\x1b[?1006h" : "") +
    (m.bracketedPasteMode ? "\x1b[?2004h" : "") +
    (m.sendFocusMode ? "\x1b[?1004h" : "") +
    (m.applicationKeypadMode ? "\x1b=" : "")
  );
}
