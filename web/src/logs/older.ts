// Loading older lines when the top of the list comes into view: from memory (/api/lines with
// `before`), then, for one service, from its log files (./history); in a search, older matches.
//
// The page holds every service's lines complete from `fullFrom` on. Older lines loaded while
// filters were on are only those the filters let through: they are kept while the filters stay
// (the "partial" region), and dropped when they change, so no view ever shows a hole.

import { getJson, Line, LinesAnswer, url } from "./api";
import { count } from "./format";
import { HistoryReader } from "./history";
import { SearchResults, CONTEXT } from "./search";
import { LineStore, S_MARK } from "./store";

/** Lines per request. */
export const PAGE = 5000;

export type OlderState =
  | "more" // older lines may be in memory
  | "loading"
  | "history" // none left in memory: next, the one service's log files
  | "ring-done" // none left in memory, and more than one service shown
  | "start" // the beginning of the log
  | "cap" // the page holds as many lines as it keeps
  | "search-done" // no older matches in memory
  | "since-done" // none older within the time range
  | "error";

export const NOTES: Record<OlderState, string> = {
  more: "scroll up for older lines",
  loading: "loading older lines…",
  history: "scroll up for older lines from the log files",
  "ring-done": "beginning of the lines in memory · pick one service to read its older lines from the log files",
  start: "beginning of the log",
  cap: `this page holds ${count(1_000_000)} lines, the most it keeps · download the log for older ones`,
  "search-done": "no older matches in memory · the log files have the rest (download)",
  "since-done": "no older lines in the time range · choose All time for the rest",
  error: "older lines could not be loaded; retrying…",
};

/** The filters, as query parameters (null: not filtered by it). */
export interface FilterParams {
  service: string | null;
  stream: string | null;
  /** Only lines since this time (ms since the epoch). */
  since: number | null;
}

/** What the loader needs from the page. */
export interface OlderHost {
  readonly store: LineStore;
  search(): SearchResults | null;
  /** Query parameters for the filters, and a key that tells filters apart ("" : none). */
  filterParams(): FilterParams;
  filterKey(): string;
  /** The one service shown, when exactly one is. */
  single(): string | null;
  serviceId(name: string): number;
  /** Prepends lines (oldest first) to `store`; returns the rows added, -1 at the cap. */
  prepend(store: LineStore, lines: Line[], matches: boolean): number;
  /** The newest sequence number held. */
  last(): number;
  /** The state changed: show it. */
  changed(state: OlderState): void;
}

function oldestSeq(store: LineStore, otherwise: number): number {
  for (let id = store.headId; id < store.tailId; id++) {
    const v = store.seq[store.at(id)];
    if (!Number.isNaN(v)) return v;
  }
  return otherwise;
}

export class OlderLines {
  private current: OlderState = "more";
  /** Off until the first lines are in: before that, the top of the list is not the top of anything. */
  ready = false;
  /** Bumped whenever what is shown changes: an answer for an older generation is dropped. */
  private gen = 0;
  private fullFrom = Infinity;
  private partialKey: string | null = null;
  private ringComplete = false;
  private history: HistoryReader | null = null;

  constructor(private host: OlderHost) {}

  get state(): OlderState {
    return this.current;
  }

  private set(state: OlderState): void {
    this.current = state;
    this.host.changed(state);
  }

  /** Starting over (a link to a line loads the lines around it). */
  reset(): void {
    this.ready = false;
    this.partialKey = null;
    this.history = null;
    this.fullFrom = Infinity;
    this.gen++;
  }

  /** The first lines are held: the newest of a window, `more` if older ones were left out. */
  first(r: LinesAnswer): void {
    this.fullFrom = r.more && r.lines.length ? (r.lines[0][0] ?? 0) : 0;
    this.ringComplete = !r.more;
    this.set(this.initial());
  }

  failed(): void {
    this.set("error");
  }

  filtersChanged(): void {
    // Older lines loaded for other filters are not complete for these: let them go.
    if (this.partialKey !== null && this.partialKey !== this.host.filterKey()) this.dropPartial();
    this.gen++;
    this.history = null;
    this.set(this.initial());
  }

  searchStarted(more: boolean): void {
    this.gen++;
    this.set(more ? "more" : "search-done");
  }

  searchEnded(): void {
    this.gen++;
    this.set(this.initial());
  }

  /** The oldest lines went (the cap): the partial region may be gone with them. */
  dropped(): void {
    const s = this.host.store;
    if (this.partialKey === null || !s.length) return;
    const head = s.seq[s.at(s.headId)];
    if (!Number.isNaN(head) && head >= this.fullFrom) this.partialKey = null;
  }

  private initial(): OlderState {
    const s = this.host.store;
    // A time range whose start is already held: nothing older is wanted.
    if (this.sinceReached()) return "since-done";
    // Lines from the files (no sequence number) at the front: memory was read to its start.
    if (s.length && Number.isNaN(s.seq[s.at(s.headId)])) return "history";
    return this.ringComplete ? this.ringDone() : "more";
  }

  private ringDone(): OlderState {
    if (this.sinceReached()) return "since-done";
    return this.host.single() ? "history" : "ring-done";
  }

  /** A time range is chosen and the oldest line held is older than its start. */
  private sinceReached(): boolean {
    const since = this.host.filterParams().since;
    const s = this.host.store;
    return !!since && s.length > 0 && s.time[s.at(s.headId)] < since;
  }

  private dropPartial(): void {
    const s = this.host.store;
    let n = 0;
    while (n < s.length) {
      const seq = s.seq[s.at(s.headId + n)];
      if (!Number.isNaN(seq) && seq >= this.fullFrom) break;
      n++;
    }
    s.dropOldest(n);
    this.partialKey = null;
  }

  /** Loads the next older lines, unless loading, or there are none. */
  async load(): Promise<void> {
    const state = this.current;
    if (!this.ready || (state !== "more" && state !== "history")) return;
    const gen = ++this.gen;
    this.set("loading");
    try {
      const search = this.host.search();
      const next = search
        ? await this.olderMatches(gen, search)
        : state === "more"
          ? await this.inMemory(gen)
          : await this.inFiles(gen);
      if (gen === this.gen) this.set(next);
    } catch (e) {
      console.error(e);
      if (gen !== this.gen) return;
      this.set("error");
      window.setTimeout(() => {
        if (this.current === "error") this.set(state);
      }, 3000);
    }
  }

  private async inMemory(gen: number): Promise<OlderState> {
    const host = this.host;
    if (host.store.spare === 0) return "cap";
    const key = host.filterKey();
    const params = host.filterParams();
    if (params.service === "") return "ring-done";
    const before = oldestSeq(host.store, host.last() + 1);
    const r = await getJson<LinesAnswer>(url("/api/lines", { before, limit: PAGE, ...params }));
    if (gen !== this.gen) return "more";
    if (key === "" && this.partialKey === null) {
      if (r.lines.length) this.fullFrom = Math.min(this.fullFrom, r.lines[0][0] ?? Infinity);
      if (!r.more) {
        this.fullFrom = 0;
        this.ringComplete = true;
      }
    } else if (r.lines.length) {
      if (this.partialKey !== null && this.partialKey !== key) this.dropPartial();
      this.partialKey = key;
    }
    if (host.prepend(host.store, r.lines, false) < 0) return "cap";
    return r.more ? "more" : this.ringDone();
  }

  /** Older lines of the one service shown, from its log files. */
  private async inFiles(gen: number): Promise<OlderState> {
    const host = this.host;
    const service = host.single();
    if (!service) return "ring-done";
    if (host.store.spare === 0) return "cap";
    if (this.history?.service !== service) {
      const s = host.store;
      const svc = host.serviceId(service);
      let anchor = null;
      for (let id = s.headId; id < s.tailId && !anchor; id++) {
        const p = s.at(id);
        if (s.svc[p] === svc && s.stream[p] !== S_MARK) anchor = { time: s.time[p], text: s.text[p] };
      }
      this.history = new HistoryReader(service, anchor);
    }
    const reader = this.history;
    const lines = await reader.next(PAGE, () => gen === this.gen);
    if (gen !== this.gen) return "history";
    if (lines.length) {
      this.partialKey ??= host.filterKey();
      if (host.prepend(host.store, lines, false) < 0) return "cap";
    }
    if (this.sinceReached()) return "since-done";
    return reader.done ? "start" : "history";
  }

  private async olderMatches(gen: number, search: SearchResults): Promise<OlderState> {
    const q = search.query;
    const before = oldestSeq(search.store, this.host.last() + 1);
    const context = q.context ? CONTEXT : null;
    const params = this.host.filterParams();
    const u = url("/api/lines", { q: q.q, regex: q.regex, case: q.case, context, before, limit: PAGE, ...params });
    const r = await getJson<LinesAnswer>(u);
    if (gen !== this.gen || search !== this.host.search()) return "more";
    if (this.host.prepend(search.store, r.lines, true) < 0) return "cap";
    return r.more ? "more" : "search-done";
  }
}
