// The logs page: the lines held (all services, oldest first), the rows shown (the held lines the
// filters let through, or a search's results), loading older lines, following, links to a line,
// keys and the status panel. New lines come from ./feed, searches are ./search, rows ./render.

import { stripAnsi } from "./ansi";
import { ApiError, getJson, Line, LinesAnswer, LiveLine, url } from "./api";
import { Classifier } from "./classify";
import { h } from "./dom";
import { Feed } from "./feed";
import { count } from "./format";
import { VirtualList } from "./list";
import { lineRow, liveRow, noteRow, RowContext, TimeMode } from "./render";
import { FilterParams, NOTES, OlderLines, PAGE } from "./older";
import { CONTEXT, SearchResults } from "./search";
import { StatusPanel } from "./status";
import { F_MATCH, IdList, LineStore, S_MARK, Services, streamCode } from "./store";
import { Toolbar } from "./toolbar";

const SEARCH_DEBOUNCE_MS = 200;

function seqHash(): number {
  const m = /^#seq=(\d+)$/.exec(location.hash);
  return m ? Number(m[1]) : NaN;
}

export class App {
  private services = new Services();
  private store = new LineStore();
  private view = new IdList();
  private classifier = new Classifier();
  private svcOn = new Uint8Array(65536).fill(1);
  private streamOn = new Uint8Array([1, 1, 1, 1, 1]);

  private feed: Feed;
  private search: SearchResults | null = null;
  private searchGen = 0;
  private searchAbort: AbortController | null = null;
  private searchTimer = 0;

  private live: LiveLine[] = [];
  private liveShown: LiveLine[] = [];
  private liveVersion = 0;

  private follow = true;
  /** Lines shown since following was paused. */
  private fresh = 0;
  private target = NaN;

  private older: OlderLines;

  private list: VirtualList;
  private toolbar: Toolbar;
  private status: StatusPanel;
  private statusOpen: boolean;
  private svcWidth = 0;

  constructor(root: HTMLElement) {
    const saved = localStorage.getItem("gpubox.logs.time") as TimeMode | null;
    const wrap = localStorage.getItem("gpubox.logs.wrap") === "1";
    this.toolbar = new Toolbar(saved === "rel" || saved === "none" ? saved : "abs", wrap);
    this.status = new StatusPanel(() => this.setStatus(false));
    this.list = new VirtualList({
      count: () => 1 + this.rowCount() + this.liveShown.length,
      key: (i) => this.key(i),
      render: (i) => this.render(i),
    });
    this.feed = new Feed({
      lines: (lines) => this.onLines(lines),
      live: (live) => this.onLive(live),
      gap: (n, before) => this.onGap(n, before),
      connection: (state) => this.toolbar.setConnection(state),
    });
    this.older = new OlderLines({
      store: this.store,
      search: () => this.search,
      filterParams: () => this.filterParams(),
      filterKey: () => this.filterKey(),
      single: () => this.toolbar.single(),
      serviceId: (name) => this.services.id(name),
      prepend: (store, lines, matches) => this.prepend(store, lines, matches),
      last: () => this.feed.last,
      changed: (state) => {
        this.list.el.dataset.older = state;
        this.list.update();
      },
    });
    this.statusOpen = window.matchMedia("(min-width: 1100px)").matches;

    root.classList.add("lg-app");
    root.append(h("div", { class: "lg-main" }, this.toolbar.el, this.list.el, this.toolbar.foot), this.status.el);
    this.list.measure();
    this.list.setWrap(wrap);
    this.list.el.dataset.older = this.older.state;
    this.setStatus(this.statusOpen);
    root.dataset.time = this.toolbar.timeMode;

    this.services.onNew = (name) => {
      this.toolbar.addService(name);
      this.svcOn[this.services.id(name)] = this.toolbar.hidden.has(name) ? 0 : 1;
      if (name.length > this.svcWidth) {
        this.svcWidth = Math.min(name.length, 18);
        root.style.setProperty("--svc-w", `calc(${this.svcWidth}ch + 1rem)`);
      }
    };
    this.status.onServices = (names) => {
      for (const n of names) this.services.id(n);
      this.toolbar.setOrder(names);
    };
    this.toolbar.onFilter = () => this.filtersChanged();
    this.toolbar.onSearch = (now) => {
      window.clearTimeout(this.searchTimer);
      this.searchTimer = window.setTimeout(() => void this.runSearch(), now ? 0 : SEARCH_DEBOUNCE_MS);
    };
    this.toolbar.onTime = (mode) => {
      localStorage.setItem("gpubox.logs.time", mode);
      root.dataset.time = mode;
      this.list.reset();
    };
    this.toolbar.onFollow = () => this.setFollow(!this.follow);
    this.toolbar.onWrap = (on) => {
      localStorage.setItem("gpubox.logs.wrap", on ? "1" : "0");
      this.list.setWrap(on);
      if (this.follow) this.list.scrollToBottom();
    };
    this.toolbar.onStatus = () => this.setStatus(!this.statusOpen);
    this.list.onUserScroll = () => {
      if (this.follow && !this.list.atBottom()) this.setFollow(false);
    };
    this.list.onRender = (first) => {
      if (first === 0) void this.older.load();
    };
    this.list.el.addEventListener("click", (e) => {
      // A line's time is a link to it (#seq=N), taken by the hashchange handler; a second click
      // on the same link changes no hash.
      const a = (e.target as HTMLElement).closest("a.t");
      if (a && a.getAttribute("href") === location.hash) this.goTo(seqHash());
    });
    window.addEventListener("hashchange", () => this.goTo(seqHash()));
    document.addEventListener("keydown", (e) => this.onKey(e));
    window.setInterval(() => {
      if (this.toolbar.timeMode === "rel") this.list.update(true);
    }, 5000);
  }

  async start(): Promise<void> {
    this.status.start();
    const target = seqHash();
    if (Number.isNaN(target)) await this.loadTail();
    else await this.loadAround(target);
  }

  // ---- rows: 0 is the note about older lines, then the lines, then the live lines

  private rowCount(): number {
    return this.search ? this.search.store.length : this.view.length;
  }

  private rowStore(): LineStore {
    return this.search?.store ?? this.store;
  }

  private idAt(k: number): number {
    return this.search ? this.search.store.headId + k : this.view.get(k);
  }

  private key(i: number): string {
    if (i === 0) return "n" + this.older.state;
    const k = i - 1;
    const n = this.rowCount();
    if (k < n) return (this.search ? "r" : "l") + this.idAt(k);
    return `v${this.liveVersion}:${k - n}`;
  }

  private render(i: number): HTMLElement {
    if (i === 0) return noteRow(NOTES[this.older.state], this.older.state === "loading");
    const ctx: RowContext = {
      now: Date.now(),
      timeMode: this.toolbar.timeMode,
      highlight: this.search?.re ?? null,
      context: !!this.search?.context,
      target: this.target,
    };
    const k = i - 1;
    const n = this.rowCount();
    if (k < n) return lineRow(this.rowStore(), this.idAt(k), this.services.names, ctx);
    return liveRow(this.liveShown[k - n], ctx);
  }

  /** Where `seq` is (or would be) among the rows. */
  private indexOfSeq(seq: number): { index: number; exact: boolean } {
    const s = this.rowStore();
    const at = (k: number) => {
      const v = s.seq[s.at(this.idAt(k))];
      return Number.isNaN(v) ? -Infinity : v;
    };
    let lo = 0;
    let hi = this.rowCount();
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (at(mid) < seq) lo = mid + 1;
      else hi = mid;
    }
    return { index: lo, exact: lo < this.rowCount() && at(lo) === seq };
  }

  /** The sequence number of the line at the top of the view. */
  private seqAtTop(): number {
    const k = Math.max(0, this.list.first() - 1);
    if (k >= this.rowCount()) return NaN;
    const s = this.rowStore();
    return s.seq[s.at(this.idAt(k))];
  }

  private counts(): void {
    this.toolbar.setCount(this.rowCount(), this.store.length, !!this.search);
  }

  // ---- filters

  private passes(store: LineStore, id: number): boolean {
    const p = store.at(id);
    if (store.stream[p] === S_MARK) return true;
    const since = this.toolbar.since;
    return this.svcOn[store.svc[p]] === 1 && this.streamOn[store.stream[p]] === 1 && (!since || store.time[p] >= since);
  }

  private liveFilter(): void {
    this.liveShown = this.live.filter(
      (l) =>
        this.svcOn[this.services.id(l.service)] === 1 &&
        this.streamOn[streamCode(l.stream)] === 1 &&
        (!this.search?.re || this.search.test(l.text)),
    );
    this.liveVersion++;
  }

  /** Query parameters for the filters (none when everything is shown). */
  private filterParams(): FilterParams {
    const s = this.toolbar.visibleServices();
    const st = this.toolbar.visibleStreams();
    return { service: s ? s.join(",") : null, stream: st ? st.join(",") : null, since: this.toolbar.since || null };
  }

  private filterKey(): string {
    const p = this.filterParams();
    return p.service === null && p.stream === null && p.since === null ? "" : `${p.service}|${p.stream}|${p.since}`;
  }

  private filtersChanged(): void {
    for (let i = 1; i < this.services.names.length; i++) {
      this.svcOn[i] = this.toolbar.hidden.has(this.services.names[i]) ? 0 : 1;
    }
    this.toolbar.streams.forEach((on, i) => (this.streamOn[i] = on ? 1 : 0));
    this.older.filtersChanged();
    const anchor = this.follow ? NaN : this.seqAtTop();
    this.rebuildView();
    if (this.search || this.toolbar.query().q) {
      void this.runSearch();
      return;
    }
    this.list.reset();
    if (this.follow) this.list.scrollToBottom();
    else if (!Number.isNaN(anchor)) this.list.scrollToIndex(this.indexOfSeq(anchor).index + 1, "top");
    this.counts();
  }

  private rebuildView(): void {
    this.view.clear();
    const s = this.store;
    for (let id = s.headId; id < s.tailId; id++) if (this.passes(s, id)) this.view.push(id);
    this.liveFilter();
  }

  // ---- adding lines

  private add(store: LineStore, l: Line, classifier: Classifier, extraFlags = 0): number {
    const svc = this.services.id(l[2]);
    const stream = streamCode(l[3]);
    const flags = classifier.flags(svc * 8 + stream, stripAnsi(l[4])) | extraFlags;
    return store.push(l[0] ?? NaN, l[1] ?? NaN, svc, stream, flags, l[4]);
  }

  /** New lines, oldest first: held, shown when they pass the filters, followed. */
  private onLines(lines: Line[]): void {
    let shown = 0;
    for (const l of lines) {
      const id = this.add(this.store, l, this.classifier);
      const passes = this.passes(this.store, id);
      if (passes) this.view.push(id);
      if (this.search) shown += passes ? this.search.offer(this.store, id) : 0;
      else if (passes) shown++;
    }
    this.afterAppend(shown);
  }

  private afterAppend(shown: number): void {
    // Past the cap the oldest lines went: so do their rows.
    const dropped = this.view.dropBelow(this.store.headId);
    this.older.dropped();
    if (dropped && !this.search && !this.follow) this.list.shift(-dropped);
    else if (dropped && !this.search) this.list.renumber(-dropped);
    if (!this.follow && shown) {
      this.fresh += shown;
      this.toolbar.setFollow(false, this.fresh);
    }
    this.list.update();
    if (this.follow) this.list.scrollToBottom();
    this.counts();
  }

  private onGap(n: number, before: number): void {
    const text = `${count(n)} ${n === 1 ? "line was" : "lines were"} dropped from memory; download the log for them`;
    this.view.push(this.store.push(before, Date.now(), 0, S_MARK, 0, text));
    this.afterAppend(0);
  }

  private onLive(live: LiveLine[]): void {
    this.live = live;
    this.liveFilter();
    this.list.update();
    if (this.follow) this.list.scrollToBottom();
  }

  /** Prepends older lines (oldest first) to `store`; returns the rows added, -1 at the cap. */
  private prepend(store: LineStore, lines: Line[], matchFlags: boolean): number {
    const oldest = store.length ? store.seq[store.at(store.headId)] : Infinity;
    const keep = lines.filter((l) => l[0] === null || Number.isNaN(oldest) || l[0] < oldest);
    const n = Math.min(keep.length, store.spare);
    const take = keep.slice(keep.length - n);
    const classifier = new Classifier();
    const flags = take.map((l) => {
      const f = classifier.flags(this.services.id(l[2]) * 8 + streamCode(l[3]), stripAnsi(l[4]));
      return matchFlags && l[5] !== 0 ? f | F_MATCH : f;
    });
    let rows = 0;
    for (let i = take.length - 1; i >= 0; i--) {
      const l = take[i];
      const id = store.unshift(l[0] ?? NaN, l[1] ?? NaN, this.services.id(l[2]), streamCode(l[3]), flags[i], l[4]);
      if (store !== this.store) rows++;
      else if (this.passes(store, id)) {
        this.view.unshift(id);
        rows++;
      }
    }
    if (rows) this.list.shift(rows);
    this.list.update();
    this.counts();
    return n < keep.length ? -1 : rows;
  }

  // ---- loading

  /** The first lines held: the end of a window, oldest first, with what it says about the rest. */
  private takeFirst(r: LinesAnswer): void {
    this.onLines(r.lines);
    const last = r.lines.length ? r.lines[r.lines.length - 1][0] : null;
    if (last !== null) this.feed.last = Math.max(this.feed.last, last);
    this.older.first(r);
  }

  private async loadTail(): Promise<void> {
    try {
      const r = await getJson<LinesAnswer>(url("/api/lines", { limit: PAGE }));
      this.takeFirst(r);
      if (!r.lines.length) this.feed.last = r.last_seq;
    } catch (e) {
      this.older.failed();
      console.error(e);
    }
    this.older.ready = true;
    this.list.reset();
    this.list.scrollToBottom();
    this.feed.open();
  }

  /** Loads the lines around `seq` (a link to one line) and shows it. */
  private async loadAround(seq: number): Promise<void> {
    this.feed.reset();
    this.older.reset();
    this.store.clear();
    this.view.clear();
    this.classifier = new Classifier();
    this.target = seq;
    this.setFollow(false);
    try {
      const r = await getJson<LinesAnswer>(url("/api/lines", { before: seq + 1, limit: PAGE }));
      this.takeFirst(r);
      this.feed.last = Math.max(this.feed.last, Math.min(seq, r.last_seq));
      // The lines just after it, so that it can be shown in the middle; then the rest.
      const from = this.feed.last;
      this.feed.take((await getJson<LinesAnswer>(url("/api/lines", { after: from, before: from + PAGE + 1, limit: PAGE }))).lines);
      this.list.reset();
      this.showTarget();
      await this.feed.catchUp(false);
    } catch (e) {
      console.error(e);
    }
    this.older.ready = true;
    // What came in while catching up is not "new while paused".
    this.fresh = 0;
    this.toolbar.setFollow(false, 0);
    this.showTarget();
    this.feed.open();
  }

  // ---- search

  private async runSearch(): Promise<void> {
    const q = this.toolbar.query();
    this.searchAbort?.abort();
    this.searchAbort = null;
    const gen = ++this.searchGen;
    if (!q.q) {
      this.exitSearch();
      return;
    }
    const params = this.filterParams();
    const abort = new AbortController();
    this.searchAbort = abort;
    this.toolbar.setSearchInfo("searching…");
    let r: LinesAnswer;
    try {
      if (params.service === "") r = { lines: [], first_seq: 0, last_seq: this.feed.last, more: false, scanned: 0, took_ms: 0 };
      else {
        const context = q.context ? CONTEXT : null;
        const u = url("/api/lines", { q: q.q, regex: q.regex, case: q.case, context, limit: PAGE, ...params });
        r = await getJson<LinesAnswer>(u, abort.signal);
      }
    } catch (e) {
      if (gen !== this.searchGen) return;
      this.toolbar.setSearchInfo("");
      this.toolbar.setSearchError(e instanceof ApiError ? e.message : `The search failed: ${(e as Error).message}`);
      return;
    }
    if (gen !== this.searchGen) return;
    this.toolbar.setSearchError(null);
    const search = new SearchResults(q, r, (store, l, classifier, flags) => this.add(store, l, classifier, flags));
    search.anchor = this.search ? this.search.anchor : this.follow ? NaN : this.seqAtTop();
    this.search = search;
    this.older.searchStarted(r.more);
    // Lines that arrived while the search ran.
    const st = this.store;
    const since = Math.max(...r.lines.map((l) => l[0] ?? 0), r.last_seq - PAGE);
    let from = st.tailId;
    while (from > st.headId && st.seq[st.at(from - 1)] > since) from--;
    for (let id = from; id < st.tailId; id++) if (this.passes(st, id)) search.offer(st, id, false);
    const matches = search.matches;
    const took = `${count(r.scanned)} lines · ${r.took_ms.toFixed(0)} ms`;
    this.toolbar.setSearchInfo(`${count(matches)}${r.more ? "+" : ""} ${matches === 1 ? "match" : "matches"} in ${took}`);
    this.liveFilter();
    this.list.reset();
    this.list.scrollToBottom();
    this.counts();
  }

  private exitSearch(): void {
    this.toolbar.setSearchError(null);
    this.toolbar.setSearchInfo("");
    const search = this.search;
    if (!search) return;
    this.search = null;
    this.older.searchEnded();
    this.liveFilter();
    this.list.reset();
    if (!this.follow && !Number.isNaN(search.anchor)) {
      this.list.scrollToIndex(this.indexOfSeq(search.anchor).index + 1, "top");
    } else this.list.scrollToBottom();
    this.counts();
  }

  // ---- following, links, keys, panel

  private setFollow(on: boolean): void {
    this.follow = on;
    if (on) {
      this.fresh = 0;
      this.list.scrollToBottom();
    } else this.list.stay();
    this.toolbar.setFollow(on, this.fresh);
  }

  /** Scrolls to the line of `#seq=N` and marks it, loading the lines around it if not held. */
  private goTo(seq: number): void {
    this.target = seq;
    if (Number.isNaN(seq)) {
      this.list.update(true);
      return;
    }
    this.setFollow(false);
    if (this.search) {
      this.toolbar.search.value = "";
      this.searchGen++;
      this.exitSearch();
    }
    if (this.indexOfSeq(seq).exact) this.showTarget();
    else void this.loadAround(seq);
  }

  private showTarget(): void {
    this.list.scrollToIndex(this.indexOfSeq(this.target).index + 1);
    this.list.update(true);
  }

  private setStatus(open: boolean): void {
    this.statusOpen = open;
    this.status.el.hidden = !open;
    this.toolbar.setStatusOpen(open);
    this.list.update();
  }

  private onKey(e: KeyboardEvent): void {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target as HTMLElement | null;
    const search = this.toolbar.search;
    const typing = !!t?.closest?.("input, textarea, select, [contenteditable]");
    if (e.key === "Escape" && (!typing || t === search)) {
      if (search.value) {
        search.value = "";
        this.toolbar.onSearch(true);
      } else if (t === search) search.blur();
      e.preventDefault();
      return;
    }
    if (typing) return;
    if (e.key === "/") {
      e.preventDefault();
      search.focus();
      search.select();
    } else if (e.key === "f") {
      this.setFollow(!this.follow);
    } else if (e.key === "w") {
      this.toolbar.setWrap(this.toolbar.wrapButton.getAttribute("aria-pressed") !== "true");
    } else if (e.key === "s") {
      this.setStatus(!this.statusOpen);
    }
  }
}
