// The terminal page: the session list, the toolbar and the terminal, and what ties them
// together: which session is open (named in the URL's hash, #s=<id>, so a reload reattaches),
// its connection, the size that follows the window, and the list kept fresh.

import { ApiError, closeSession, createSession, listSessions, renameSession, type SessionInfo } from "./api";
import { wireClipboard } from "./clipboard";
import { Connection, type LinkState, type Presence } from "./connection";
import { h, iconButton } from "./dom";
import { KeyBar } from "./keybar";
import { Screen } from "./screen";
import { SearchBox } from "./search";
import { Sidebar } from "./sidebar";

const POLL_MS = 3000;
const FIT_DEBOUNCE_MS = 80;
const NOTICE_MS = 2500;

const STATE_TEXT: Record<LinkState, string> = {
  connecting: "connecting…",
  connected: "connected",
  reconnecting: "reconnecting…",
  ended: "ended",
  "logged-out": "logged out",
};

function hashId(): string | null {
  const m = /^#s=([0-9A-Za-z_-]+)$/.exec(location.hash);
  return m ? m[1] : null;
}

function mostRecent(list: SessionInfo[]): SessionInfo | undefined {
  return list.reduce<SessionInfo | undefined>((a, s) => (!a || s.last_used_ms > a.last_used_ms ? s : a), undefined);
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function start(root: HTMLElement): void {
  document.body.classList.add("terminal-page");
  const baseTitle = document.title;

  // Layout: the list, then the pane with its toolbar and the terminal.
  const termEl = h("div", { id: "term", "data-state": "connecting" });
  const nameEl = h("span", { id: "session-name", class: "session-name" });
  const titleEl = h("span", { class: "window-title" });
  const noticeEl = h("span", { id: "notice", class: "notice", role: "status", "aria-live": "polite" });
  const stateEl = h("span", { id: "link-state", class: "link-state", "data-state": "connecting" }, STATE_TEXT.connecting);
  const sizeEl = h("span", { class: "size", title: "columns × rows" });
  const searchToggle = iconButton("search", "Find (Ctrl+Shift+F)", { id: "search-toggle" });
  const bannerEl = h("div", { id: "term-banner", class: "term-banner", role: "alert", hidden: "" });
  const viewport = h("div", { class: "viewport" }, termEl, bannerEl);
  const toolbar = h(
    "div",
    { class: "toolbar" },
    h("span", { class: "titles" }, nameEl, titleEl),
    noticeEl,
    stateEl,
    sizeEl,
    searchToggle,
  );
  const pane = h("section", { class: "pane", "aria-label": "Terminal" }, toolbar, viewport);

  let sessions: SessionInfo[] = [];
  let current: string | null = null;
  let conn: Connection | null = null;
  let creating = false;
  /** Closed from this page: hidden at once, though the shell may take a moment to go. */
  const closed = new Set<string>();

  const sidebar = new Sidebar({
    open: (id) => attach(id),
    create: () => void createNew(),
    rename: async (id, name) => {
      try {
        const s = await renameSession(id, name);
        upsert(s);
      } catch (e) {
        notice(`Cannot rename: ${message(e)}`, true);
        throw e;
      }
    },
    close: (id) => void closeOne(id),
  });
  root.replaceChildren(sidebar.el, pane);

  const screen = new Screen(termEl);
  const term = screen.term;
  const search = new SearchBox(term, screen.search);
  viewport.append(search.el);
  searchToggle.addEventListener("click", () => (search.el.hidden ? search.open() : search.close()));

  let noticeTimer = 0;
  function notice(text: string, bad = false): void {
    noticeEl.textContent = text;
    noticeEl.classList.toggle("bad", bad);
    window.clearTimeout(noticeTimer);
    noticeTimer = window.setTimeout(() => (noticeEl.textContent = ""), bad ? NOTICE_MS * 2 : NOTICE_MS);
  }
  wireClipboard(term, termEl, { notice, find: () => search.open() });

  const encodeBinary = (d: string): Uint8Array => Uint8Array.from(d, (c) => c.charCodeAt(0) & 0xff);
  // The keys a phone's keyboard lacks, below the terminal (shown on touch screens).
  const keys = new KeyBar(term, (d) => conn?.input(d));
  pane.append(keys.el);
  term.onData((d) => conn?.input(keys.apply(d)));
  term.onBinary((d) => conn?.input(encodeBinary(d)));
  term.onTitleChange((t) => (titleEl.textContent = t));
  const showSize = (): void => {
    sizeEl.textContent = `${term.cols}×${term.rows}`;
  };
  term.onResize(showSize);
  showSize();

  function banner(text: string, action?: HTMLElement): void {
    bannerEl.replaceChildren(h("span", {}, text), ...(action ? [action] : []));
    bannerEl.hidden = false;
  }

  function setState(s: LinkState): void {
    termEl.dataset.state = s;
    stateEl.dataset.state = s;
    stateEl.textContent = STATE_TEXT[s];
    bannerEl.dataset.state = s;
    if (s === "connected" || s === "connecting") bannerEl.hidden = true;
    else if (s === "reconnecting") banner("Connection lost. Reconnecting…");
    else if (s === "logged-out") {
      const login = h("a", { class: "action", href: `/.gpubox/login?next=${encodeURIComponent(location.pathname)}` }, "Log in");
      banner("Your login has ended.", login);
    }
  }

  function ended(code: number | null): void {
    const again = h("button", { type: "button", class: "action", id: "banner-new" }, "New session");
    again.addEventListener("click", () => void createNew());
    banner(code === null ? "This session has ended." : `Session ended (exit code ${code}).`, again);
    void refresh();
  }

  async function presence(id: string): Promise<Presence> {
    const timeout = new Promise<Presence>((resolve) => window.setTimeout(() => resolve("unknown"), 5000));
    const asked = (async (): Promise<Presence> => {
      try {
        // Asked after a connection dropped, by the page itself: background.
        const list = await listSessions(true);
        show(list);
        return list.some((s) => s.id === id) ? "here" : "gone";
      } catch (e) {
        return e instanceof ApiError && e.status === 401 ? "logged-out" : "unknown";
      }
    })();
    return Promise.race([asked, timeout]);
  }

  function fitAndTell(): void {
    const { cols, rows } = screen.fit();
    conn?.resize(cols, rows);
  }

  function attach(id: string): void {
    if (id === current && conn) {
      term.focus();
      return;
    }
    conn?.close();
    current = id;
    if (hashId() !== id) history.replaceState(null, "", `#s=${id}`);
    termEl.dataset.session = id;
    titleEl.textContent = "";
    search.close();
    conn = new Connection(
      id,
      term,
      {
        state: (s) => {
          if (current === id) setState(s);
        },
        attached: (s) => {
          if (current !== id) return;
          upsert(s);
          fitAndTell();
        },
        ended: (code) => {
          if (current === id) ended(code);
        },
      },
      presence,
      () => screen.proposed(),
    );
    show(sessions);
    term.focus();
  }

  async function createNew(): Promise<void> {
    if (creating) return;
    creating = true;
    try {
      const d = screen.proposed() ?? { cols: term.cols, rows: term.rows };
      const s = await createSession(d.cols, d.rows);
      upsert(s);
      attach(s.id);
    } catch (e) {
      notice(`Cannot start a session: ${message(e)}`, true);
      if (!current) banner(`Cannot start a session: ${message(e)}`);
    } finally {
      creating = false;
    }
  }

  async function closeOne(id: string): Promise<void> {
    const s = sessions.find((x) => x.id === id);
    const name = s ? `“${s.name}”` : "this session";
    if (!window.confirm(`Close ${name}? Its shell and every program running in it will be ended.`)) return;
    // Detach first, so that this tab does not report the ending it asked for.
    const wasCurrent = id === current;
    if (wasCurrent) {
      conn?.close();
      conn = null;
    }
    try {
      await closeSession(id);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) {
        notice(`Cannot close: ${message(e)}`, true);
        if (wasCurrent) attach(id);
        return;
      }
    }
    closed.add(id);
    show(sessions);
    if (wasCurrent) {
      current = null;
      const next = mostRecent(sessions);
      if (next) attach(next.id);
      else await createNew();
    }
  }

  function upsert(s: SessionInfo): void {
    show([...sessions.filter((x) => x.id !== s.id), s].sort((a, b) => a.created_ms - b.created_ms));
  }

  function show(list: SessionInfo[]): void {
    sessions = list.filter((s) => !closed.has(s.id));
    sidebar.render(sessions, current);
    const name = sessions.find((s) => s.id === current)?.name ?? "";
    nameEl.textContent = name;
    document.title = name ? `${name} · ${baseTitle}` : baseTitle;
  }

  /** The list again, as the page's own request (a poll, the tab shown again, a session ended). */
  async function refresh(): Promise<void> {
    try {
      show(await listSessions(true));
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setState("logged-out");
    }
  }

  let pollTimer = 0;
  function poll(): void {
    window.clearTimeout(pollTimer);
    pollTimer = window.setTimeout(async () => {
      if (!document.hidden) await refresh();
      poll();
    }, POLL_MS);
  }
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) void refresh();
  });

  window.addEventListener("hashchange", () => {
    const id = hashId();
    if (id && id !== current) attach(id);
  });

  let fitTimer = 0;
  new ResizeObserver(() => {
    window.clearTimeout(fitTimer);
    fitTimer = window.setTimeout(fitAndTell, FIT_DEBOUNCE_MS);
  }).observe(termEl);
  void document.fonts?.ready.then(() => fitAndTell());

  /** The first list (with the page's load, which counted already), and the retries after an
   * error (the page's own doing): background either way. */
  async function boot(): Promise<void> {
    screen.fit();
    let list: SessionInfo[];
    try {
      list = await listSessions(true);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) setState("logged-out");
      else {
        banner(`Cannot list the sessions: ${message(e)} Retrying…`);
        window.setTimeout(() => void boot(), 2000);
      }
      return;
    }
    show(list);
    const want = hashId();
    const pick = sessions.find((s) => s.id === want) ?? mostRecent(sessions);
    if (pick) attach(pick.id);
    else await createNew();
    if (want && pick?.id !== want) notice("The session in the address has ended; this is another one.");
    poll();
  }
  void boot();
}
