// The controls above the list: service and stream filters, the search box, and the buttons
// (time column, follow/pause, download, status panel). It holds the filter state; the app
// listens to its callbacks.

import { fill, h, setPressed } from "./dom";
import { count } from "./format";
import { serviceColour, TimeMode } from "./render";
import { STREAMS } from "./store";

export interface Search {
  q: string;
  regex: boolean;
  case: boolean;
  context: boolean;
}

/** The time column's choices, as the menu names them. */
const TIME_LABELS: Record<TimeMode, string> = { abs: "Time of day", rel: "Time ago", none: "No time" };

/** The time range's choices: how far back, in minutes ("" every line; "at": since a time). */
const RANGES: [string, string][] = [
  ["", "All time"],
  ["5", "Last 5 minutes"],
  ["15", "Last 15 minutes"],
  ["60", "Last hour"],
  ["360", "Last 6 hours"],
  ["1440", "Last 24 hours"],
  ["at", "Since…"],
];

/** `datetime-local`'s value for a time: local, to the second. */
function localInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}

export class Toolbar {
  readonly el: HTMLElement;
  readonly foot: HTMLElement;
  readonly search: HTMLInputElement;
  /** Services switched off. New services start switched on. */
  readonly hidden = new Set<string>();
  readonly streams = [true, true, true, true];
  private order: string[] = [];
  /** "Only this one" was chosen: services that appear later start hidden too. */
  private exclusive = false;
  private chips = new Map<string, HTMLElement>();
  private chipBox: HTMLElement;
  private allButton: HTMLButtonElement;
  private streamButtons: HTMLButtonElement[];
  private regexButton: HTMLButtonElement;
  private caseButton: HTMLButtonElement;
  private contextButton: HTMLButtonElement;
  private info: HTMLElement;
  private error: HTMLElement;
  private timeButton: HTMLSelectElement;
  private followButton: HTMLButtonElement;
  private download: HTMLAnchorElement;
  readonly statusButton: HTMLButtonElement;
  private countEl: HTMLElement;
  private conn: HTMLElement;
  private rangeSelect: HTMLSelectElement;
  private sinceInput: HTMLInputElement;
  readonly wrapButton: HTMLButtonElement;
  private filtersButton: HTMLButtonElement;
  /** Only lines since this time (ms since the epoch); 0: every line. */
  since = 0;

  onFilter: () => void = () => {};
  onSearch: (now: boolean) => void = () => {};
  onTime: (mode: TimeMode) => void = () => {};
  onFollow: () => void = () => {};
  onStatus: () => void = () => {};
  onWrap: (on: boolean) => void = () => {};

  constructor(
    public timeMode: TimeMode,
    wrap: boolean,
  ) {
    this.allButton = h("button", { type: "button", id: "svc-all", class: "chip all", title: "show every service" }, "All");
    this.allButton.addEventListener("click", () => {
      this.exclusive = false;
      this.hidden.clear();
      this.changed();
    });
    this.chipBox = h("div", { class: "chips", id: "svc-chips", role: "group", "aria-label": "services" }, this.allButton);

    this.streamButtons = STREAMS.map((s) => {
      const b = h("button", { type: "button", class: `chip stream-chip sc-${s}`, "data-stream": s, title: `show ${s} lines` }, s);
      b.addEventListener("click", () => {
        const i = STREAMS.indexOf(s);
        this.streams[i] = !this.streams[i];
        this.changed();
      });
      return b;
    });

    this.search = h("input", {
      id: "search",
      type: "search",
      placeholder: "Search   /",
      autocomplete: "off",
      spellcheck: "false",
      "aria-label": "search the lines",
    });
    this.search.addEventListener("input", () => this.onSearch(false));
    this.search.addEventListener("keydown", (e) => {
      if (e.key === "Enter") this.onSearch(true);
    });
    const toggle = (id: string, label: string, title: string) => {
      const b = h("button", { type: "button", id, class: "toggle", title, "aria-pressed": "false" }, label);
      b.addEventListener("click", () => {
        setPressed(b, b.getAttribute("aria-pressed") !== "true");
        if (this.search.value) this.onSearch(true);
      });
      return b;
    };
    this.regexButton = toggle("search-regex", ".*", "regular expression (Rust syntax)");
    this.caseButton = toggle("search-case", "Aa", "match case");
    this.contextButton = toggle("search-context", "±3", "with context: the 3 lines before and after each match (off: only the matches)");
    this.info = h("span", { id: "search-info", class: "muted", "aria-live": "polite" });
    this.error = h("span", { id: "search-error", class: "error", role: "alert", hidden: true });

    // A menu that names its choices (a button cycling through "Time: clock", "ago" and "off"
    // told nobody what it did).
    this.timeButton = h(
      "select",
      { id: "time-mode", class: "btn", "data-mode": timeMode, "aria-label": "time column", title: "the time column: each line's time of day, how long ago it came, or none" },
      ...(Object.keys(TIME_LABELS) as TimeMode[]).map((m) => h("option", { value: m }, TIME_LABELS[m])),
    );
    this.timeButton.value = timeMode;
    this.timeButton.addEventListener("change", () => this.setTime(this.timeButton.value as TimeMode));
    this.followButton = h("button", { type: "button", id: "follow", class: "btn follow", "data-state": "following", title: "follow new lines (f)" });
    this.followButton.addEventListener("click", () => this.onFollow());
    this.download = h("a", { id: "download", class: "btn", hidden: true, download: "" }, "Download");
    this.statusButton = h("button", { type: "button", id: "status-toggle", class: "btn", "aria-controls": "status", title: "status panel (s)" }, "Status");
    this.statusButton.addEventListener("click", () => this.onStatus());
    this.setFollow(true, 0);

    // A time range is fixed when chosen ("last 5 minutes" is the five minutes before the
    // choice), as `journalctl --since` is: lines do not vanish from the top while one reads.
    this.rangeSelect = h(
      "select",
      { id: "time-range", class: "btn", "aria-label": "time range", title: "only the lines since a time" },
      ...RANGES.map(([v, label]) => h("option", { value: v }, label)),
    );
    this.sinceInput = h("input", { id: "since-at", class: "btn", type: "datetime-local", step: 1, hidden: true, "aria-label": "since this time" });
    this.rangeSelect.addEventListener("change", () => {
      const v = this.rangeSelect.value;
      this.sinceInput.hidden = v !== "at";
      if (v === "at") {
        if (!this.sinceInput.value) this.sinceInput.value = localInput(Date.now() - 3600_000);
        this.sinceInput.focus();
        this.setSince(new Date(this.sinceInput.value).getTime());
      } else this.setSince(v ? Date.now() - Number(v) * 60_000 : 0);
    });
    this.sinceInput.addEventListener("change", () => {
      const t = new Date(this.sinceInput.value).getTime();
      if (!Number.isNaN(t)) this.setSince(t);
    });
    this.wrapButton = h("button", { type: "button", id: "wrap", class: "btn", title: "wrap long lines (w)", "aria-pressed": wrap ? "true" : "false" }, "Wrap");
    this.wrapButton.addEventListener("click", () => this.setWrap(this.wrapButton.getAttribute("aria-pressed") !== "true"));
    // On phones the filters fold away behind one button.
    this.filtersButton = h("button", { type: "button", id: "filters-toggle", class: "btn filters-toggle", "aria-expanded": "false", "aria-controls": "filter-row" }, "Filters");
    this.filtersButton.addEventListener("click", () => {
      const open = this.el.classList.toggle("open");
      this.filtersButton.setAttribute("aria-expanded", open ? "true" : "false");
    });

    this.el = h(
      "div",
      { class: "lg-toolbar" },
      h(
        "div",
        { class: "bar-row filter-row", id: "filter-row" },
        this.chipBox,
        h("div", { class: "chips streams", role: "group", "aria-label": "streams" }, ...this.streamButtons),
      ),
      h(
        "div",
        { class: "bar-row" },
        h("div", { class: "searchbox" }, this.search, this.regexButton, this.caseButton, this.contextButton),
        this.info,
        this.error,
        h("div", { class: "view-opts" }, this.rangeSelect, this.sinceInput, this.timeButton, this.wrapButton),
        h("div", { class: "actions" }, this.filtersButton, this.followButton, this.download, this.statusButton),
      ),
    );
    this.countEl = h("span", { id: "count" });
    this.conn = h("span", { id: "conn", class: "conn", "data-state": "connecting" }, "connecting…");
    this.foot = h(
      "div",
      { class: "lg-foot" },
      this.conn,
      this.countEl,
      h("span", { class: "keys muted" }, h("kbd", null, "/"), " search ", h("kbd", null, "Esc"), " clear ", h("kbd", null, "f"), " follow ", h("kbd", null, "w"), " wrap ", h("kbd", null, "s"), " status"),
    );
    this.paint();
  }

  /** Adds a service chip; `known` (the supervisor's order) sorts them. */
  addService(name: string): void {
    if (this.chips.has(name)) return;
    const toggle = h("button", { type: "button", class: "toggle", title: `show or hide ${name}` }, h("span", { class: `dot svc-c${serviceColour(name)}` }), name);
    if (this.exclusive) this.hidden.add(name);
    toggle.addEventListener("click", () => {
      this.exclusive = false;
      if (this.hidden.has(name)) this.hidden.delete(name);
      else this.hidden.add(name);
      this.changed();
    });
    const only = h("button", { type: "button", class: "only", title: `show only ${name}`, "aria-label": `show only ${name}` }, "only");
    only.addEventListener("click", () => this.only(name));
    toggle.addEventListener("dblclick", () => this.only(name));
    const chip = h("div", { class: `svc-chip svc-c${serviceColour(name)}`, "data-service": name }, toggle, only);
    this.chips.set(name, chip);
    this.sortChips();
    this.paint();
  }

  /** The supervisor's services, in its order (first), then gpubox, then the rest by name. */
  setOrder(names: string[]): void {
    if (names.join("\n") === this.order.join("\n")) return;
    this.order = names;
    for (const n of names) this.addService(n);
    this.sortChips();
  }

  private sortChips(): void {
    const rank = (n: string) => {
      const i = this.order.indexOf(n);
      return i >= 0 ? i : n === "gpubox" ? 1e6 : 2e6;
    };
    const names = [...this.chips.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
    fill(this.chipBox, this.allButton, ...names.map((n) => this.chips.get(n)!));
  }

  only(name: string): void {
    this.exclusive = true;
    this.hidden.clear();
    for (const n of this.chips.keys()) if (n !== name) this.hidden.add(n);
    this.changed();
  }

  get names(): string[] {
    return [...this.chips.keys()];
  }

  /** The services shown, or null when every one is. */
  visibleServices(): string[] | null {
    if (this.hidden.size === 0) return null;
    return this.names.filter((n) => !this.hidden.has(n));
  }

  /** The streams shown, or null when every one is. */
  visibleStreams(): string[] | null {
    return this.streams.every(Boolean) ? null : STREAMS.filter((_, i) => this.streams[i]);
  }

  /** The one service shown, when exactly one is. */
  single(): string | null {
    const v = this.visibleServices();
    return v && v.length === 1 ? v[0] : null;
  }

  query(): Search {
    return {
      q: this.search.value,
      regex: this.regexButton.getAttribute("aria-pressed") === "true",
      case: this.caseButton.getAttribute("aria-pressed") === "true",
      context: this.contextButton.getAttribute("aria-pressed") === "true",
    };
  }

  private changed(): void {
    this.paint();
    this.onFilter();
  }

  private setSince(ms: number): void {
    this.since = Number.isNaN(ms) ? 0 : ms;
    this.rangeSelect.title = this.since ? `only the lines since ${new Date(this.since).toLocaleString()}` : "only the lines since a time";
    this.changed();
  }

  setWrap(on: boolean): void {
    setPressed(this.wrapButton, on);
    this.onWrap(on);
  }

  private paint(): void {
    for (const [name, chip] of this.chips) {
      const on = !this.hidden.has(name);
      chip.classList.toggle("off", !on);
      setPressed(chip.querySelector<HTMLElement>(".toggle")!, on);
    }
    setPressed(this.allButton, this.hidden.size === 0);
    this.streamButtons.forEach((b, i) => setPressed(b, this.streams[i]));
    // How many filters narrow the lines, on the phones' Filters button.
    const narrowing = (this.hidden.size ? 1 : 0) + (this.streams.every(Boolean) ? 0 : 1) + (this.since ? 1 : 0);
    this.filtersButton.textContent = narrowing ? `Filters · ${narrowing}` : "Filters";
    this.filtersButton.dataset.narrowing = String(narrowing);
    const one = this.single();
    this.download.hidden = !one;
    if (one) {
      this.download.href = `/api/download?service=${encodeURIComponent(one)}`;
      this.download.title = `download ${one}'s whole log`;
      this.download.textContent = `Download ${one}.log`;
    }
  }

  setTime(mode: TimeMode): void {
    this.timeMode = mode;
    this.timeButton.value = mode;
    this.timeButton.dataset.mode = mode;
    this.onTime(mode);
  }

  setFollow(on: boolean, fresh: number): void {
    const b = this.followButton;
    b.dataset.state = on ? "following" : "paused";
    setPressed(b, on);
    if (on) fill(b, h("span", { class: "icon-follow" }), "Following");
    else fill(b, h("span", { class: "icon-pause" }), "Paused", fresh ? h("span", { id: "new-count", class: "badge", "data-count": fresh }, `${count(fresh)} new`) : null);
    b.title = on ? "pause: stay where you are (f)" : "follow new lines again (f)";
  }

  setSearchInfo(text: string): void {
    this.info.textContent = text;
  }

  setSearchError(message: string | null): void {
    this.error.hidden = !message;
    this.error.textContent = message ?? "";
    this.search.classList.toggle("bad", !!message);
    this.search.setAttribute("aria-invalid", message ? "true" : "false");
  }

  setCount(shown: number, held: number, searching: boolean): void {
    this.countEl.dataset.shown = String(shown);
    this.countEl.dataset.held = String(held);
    this.countEl.textContent = searching
      ? `${count(shown)} ${shown === 1 ? "line" : "lines"} found · ${count(held)} held`
      : shown === held
        ? `${count(held)} lines`
        : `${count(shown)} of ${count(held)} lines`;
  }

  setConnection(state: "live" | "reconnecting" | "connecting" | "offline" | "polling"): void {
    this.conn.dataset.state = state;
    this.conn.textContent = {
      live: "live",
      reconnecting: "reconnecting…",
      connecting: "connecting…",
      offline: "disconnected: retrying",
      polling: "live (every 2 s)",
    }[state];
  }

  setStatusOpen(open: boolean): void {
    this.statusButton.setAttribute("aria-expanded", open ? "true" : "false");
    setPressed(this.statusButton, open);
  }
}
