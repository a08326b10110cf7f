// One row of the list: time, service badge, the text with its ANSI styles, search matches in
// <mark>, and JSON objects as key=value chips. All text goes in as text nodes.

import { parseAnsi, Segment, Style } from "./ansi";
import { LiveLine } from "./api";
import { h } from "./dom";
import { absoluteTime, fullTime, relativeTime } from "./format";
import { F_ERR, F_MATCH, F_TB, F_TB_END, F_TB_START, F_WARN, LineStore, S_MARK, STREAMS } from "./store";

export type TimeMode = "rel" | "abs" | "none";

export interface RowContext {
  now: number;
  timeMode: TimeMode;
  /** Search matches to highlight (a global RegExp), or null. */
  highlight: RegExp | null;
  /** In search results with context: dim the lines that are context. */
  context: boolean;
  /** The line linked to by `#seq=N`. */
  target: number;
}

const PALETTE = 8;

/** A stable colour (0–7) for a service name. */
export function serviceColour(name: string): number {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) % PALETTE;
}

function timeCell(seq: number, time: number, ctx: RowContext): HTMLElement {
  let label: (string | HTMLElement)[] = [];
  if (!Number.isNaN(time)) {
    if (ctx.timeMode === "rel") label = [relativeTime(time, ctx.now)];
    else {
      // The day and the milliseconds go on narrow screens (CSS).
      const t = absoluteTime(time, ctx.now);
      label = [t.day && h("span", { class: "day" }, t.day), t.hms, t.ms && h("span", { class: "ms" }, t.ms)].filter(
        (x): x is string | HTMLElement => !!x,
      );
    }
  }
  const title = Number.isNaN(time) ? undefined : fullTime(time);
  if (Number.isNaN(seq)) return h("span", { class: "t", title }, ...label);
  return h("a", { class: "t", href: `#seq=${seq}`, title: `${title ?? ""} · link to this line` }, ...label);
}

function badge(name: string): HTMLElement {
  return h("span", { class: `svc svc-c${serviceColour(name)}`, title: name }, name);
}

function styled(st: Style): HTMLElement {
  const el = document.createElement("span");
  let fg = st.fg;
  let bg = st.bg;
  const cls: string[] = [];
  if (st.inverse) {
    [fg, bg] = [bg, fg];
    if (fg === null) cls.push("a-fi");
    if (bg === null) cls.push("a-bi");
  }
  if (typeof fg === "number") cls.push(`a-f${fg}`);
  else if (fg) el.style.color = fg;
  if (typeof bg === "number") cls.push(`a-b${bg}`);
  else if (bg) el.style.backgroundColor = bg;
  if (st.bold) cls.push("a-bold");
  if (st.dim) cls.push("a-dim");
  if (st.italic) cls.push("a-it");
  if (st.underline) cls.push("a-ul");
  el.className = cls.join(" ");
  return el;
}

/** `[start, end)` of every non-empty match of `re` in `text`. */
export function matchRanges(text: string, re: RegExp | null): [number, number][] {
  if (!re) return [];
  const out: [number, number][] = [];
  re.lastIndex = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[0].length === 0) {
      re.lastIndex++;
      continue;
    }
    out.push([m.index, m.index + m[0].length]);
    if (out.length > 500) break;
  }
  return out;
}

/** Appends the segments to `parent`, with the parts inside `ranges` wrapped in <mark>. */
function appendSegments(parent: HTMLElement, segments: Segment[], ranges: [number, number][]): void {
  let pos = 0;
  let r = 0;
  for (const seg of segments) {
    const into = seg.style ? styled(seg.style) : parent;
    const t = seg.text;
    let s = 0;
    while (s < t.length) {
      const at = pos + s;
      while (r < ranges.length && ranges[r][1] <= at) r++;
      if (r < ranges.length && ranges[r][0] <= at) {
        const end = Math.min(ranges[r][1] - pos, t.length);
        into.appendChild(h("mark", null, t.slice(s, end)));
        s = end;
      } else {
        const next = r < ranges.length ? Math.min(ranges[r][0] - pos, t.length) : t.length;
        into.appendChild(document.createTextNode(t.slice(s, next)));
        s = next;
      }
    }
    if (into !== parent) parent.appendChild(into);
    pos += t.length;
  }
}

function plain(parent: HTMLElement, text: string, re: RegExp | null): void {
  appendSegments(parent, [{ text, style: null }], matchRanges(text, re));
}

const MESSAGE_KEYS = ["msg", "message", "event"];
const LEVEL_KEYS = ["level", "levelname", "severity", "lvl"];

function jsonValue(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.length > 300 ? s.slice(0, 299) + "…" : s;
}

/** A JSON object line as its message and key=value chips; false when it is not one. */
function jsonLine(parent: HTMLElement, visible: string, re: RegExp | null): boolean {
  const t = visible.trim();
  if (t.length < 2 || t[0] !== "{" || t[t.length - 1] !== "}") return false;
  let obj: unknown;
  try {
    obj = JSON.parse(t);
  } catch {
    return false;
  }
  if (!obj || typeof obj !== "object" || Array.isArray(obj)) return false;
  const entries = Object.entries(obj as Record<string, unknown>);
  const level = entries.find(([k]) => LEVEL_KEYS.includes(k.toLowerCase()));
  const message = entries.find(([k, v]) => MESSAGE_KEYS.includes(k.toLowerCase()) && typeof v === "string");
  if (level) {
    const name = jsonValue(level[1]).toLowerCase();
    const lv = /err|fatal|crit/.test(name) ? "err" : /warn/.test(name) ? "warn" : /debug|trace/.test(name) ? "debug" : "info";
    const chip = h("span", { class: `jlevel jl-${lv}` });
    plain(chip, jsonValue(level[1]), re);
    parent.appendChild(chip);
  }
  if (message) {
    const m = h("span", { class: "jmsg" });
    plain(m, String(message[1]), re);
    parent.appendChild(m);
  }
  let shown = 0;
  for (const [k, v] of entries) {
    if (k === level?.[0] || k === message?.[0]) continue;
    if (++shown > 40) break;
    const chip = h("span", { class: "kv" });
    const key = h("span", { class: "k" });
    plain(key, k, re);
    const val = h("span", { class: "v" });
    plain(val, jsonValue(v), re);
    chip.append(key, "=", val);
    parent.appendChild(chip);
  }
  return true;
}

/** The text cell: ANSI rendered, matches marked, JSON as chips. */
export function textCell(text: string, re: RegExp | null): HTMLElement {
  const cell = h("span", { class: "x" });
  const segments = parseAnsi(text);
  const visible = segments.length === 1 ? segments[0].text : segments.map((s) => s.text).join("");
  if (visible.charCodeAt(0) === 123 /* { */ || visible.trimStart().startsWith("{")) {
    cell.classList.add("json");
    if (jsonLine(cell, visible, re)) return cell;
    cell.classList.remove("json");
  }
  appendSegments(cell, segments, matchRanges(visible, re));
  return cell;
}

export function lineRow(store: LineStore, id: number, names: string[], ctx: RowContext): HTMLElement {
  const p = store.at(id);
  const seq = store.seq[p];
  const stream = store.stream[p];
  const flags = store.flags[p];
  const text = store.text[p];
  if (stream === S_MARK) {
    return h("div", { class: "row mark", role: "note" }, h("span", { class: "x" }, text));
  }
  const name = names[store.svc[p]];
  let cls = `row s-${STREAMS[stream]}`;
  if (flags & F_TB) {
    cls += " tb";
    if (flags & F_TB_START) cls += " tb-start";
    if (flags & F_TB_END) cls += " tb-end";
  } else if (flags & F_ERR) cls += " lv-err";
  else if (flags & F_WARN) cls += " lv-warn";
  if (ctx.context) cls += flags & F_MATCH ? " hit" : " ctx";
  if (seq === ctx.target) cls += " target";
  const row = h(
    "div",
    { class: cls, "data-seq": Number.isNaN(seq) ? undefined : seq, "data-service": name, "data-stream": STREAMS[stream] },
    h("span", { class: "g" }, timeCell(seq, store.time[p], ctx), badge(name)),
    textCell(text, ctx.context && !(flags & F_MATCH) ? null : ctx.highlight),
  );
  return row;
}

export function liveRow(live: LiveLine, ctx: RowContext): HTMLElement {
  return h(
    "div",
    { class: `row live s-${live.stream}`, "data-live": "", "data-service": live.service, "data-stream": live.stream },
    h(
      "span",
      { class: "g" },
      h("span", { class: "t", title: `${fullTime(live.time_ms)} · still being written (a progress bar)` }, h("span", { class: "pulse" }), "live"),
      badge(live.service),
    ),
    textCell(live.text, ctx.highlight),
  );
}

export function noteRow(text: string, busy: boolean): HTMLElement {
  return h("div", { class: busy ? "row note busy" : "row note", id: "older-note" }, h("span", { class: "x" }, text));
}
