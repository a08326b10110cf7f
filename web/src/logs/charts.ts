// The machine's history as charts in the status panel (/api/metrics): CPU, memory, each GPU's
// use, memory, temperature and power, the disk and the network, over the last 15 min to 24 h.
// uPlot draws them (bundled; its stylesheet goes into logs.css with this app's own).
//
// The charts follow the samples while the panel is shown and the tab in view: every sample for
// the short ranges, every minute for the long ones (where one point stands for minutes anyway).
// Those requests are the page's own (background: not activity for the idle stop). A canvas cannot
// read CSS variables, so the palette's colours are read when the charts are made, and again when
// the OS switches between light and dark. A chart's legend shows the latest values, or the ones
// under the pointer (the same moment on every chart).

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

import { getJson, Metrics, pollJson, url } from "./api";
import { fill, h, setPressed } from "./dom";
import { bytes } from "./format";

const RANGES = ["15m", "1h", "6h", "24h"] as const;
type Range = (typeof RANGES)[number];
const RANGE_KEY = "gpubox.logs.range";
/** The long ranges: refreshed this often, whatever the sampling interval. */
const SLOW_MS = 60000;
/** The last hour: refreshed this often. */
const HOUR_MS = 30000;
/** While the charts cannot be seen: how often to look whether they can. */
const HIDDEN_MS = 3000;
const HEIGHT = 150;

type Fmt = (v: number) => string;

interface Line {
  series: string;
  label: string;
  /** The palette's variable the line is drawn in. */
  colour: string;
  /** The unit, which is also the y scale's name: lines of two units get an axis each. */
  unit: string;
  fmt: Fmt;
}

interface Spec {
  id: string;
  title: string;
  lines: Line[];
  /** Per unit, the top of the scale whatever the values (100 %, a memory limit). */
  top?: Record<string, number | null | undefined>;
}

const percent: Fmt = (v) => `${+v.toFixed(1)} %`;
const rate: Fmt = (v) => `${bytes(Math.round(v))}/s`;
const celsius: Fmt = (v) => `${+v.toFixed(1)} °C`;
const watts: Fmt = (v) => `${+v.toFixed(1)} W`;

/** An axis' label: as the legend writes it, without a fraction of zeros ("20 GB", not "20.0 GB"). */
const tick = (fmt: Fmt) => (v: number) => fmt(v).replace(/\.0+(?=\s)/, "");

/** The charts this answer has data for, in the panel's order. */
function specs(m: Metrics): Spec[] {
  const l = m.latest;
  const out: Spec[] = [
    { id: "cpu", title: "CPU", lines: [{ series: "cpu", label: "CPU", colour: "--accent", unit: "%", fmt: percent }], top: { "%": 100 } },
    {
      id: "mem",
      title: l?.mem_limit ? `Memory (of ${bytes(l.mem_limit)})` : "Memory",
      lines: [{ series: "mem", label: "used", colour: "--c2", unit: "B", fmt: bytes }],
      top: { B: l?.mem_limit },
    },
  ];
  for (const i of gpuIndexes(m)) {
    const g = l?.gpus.find((g) => g.index === i);
    const name = g ? `GPU ${i} (${g.name})` : `GPU ${i}`;
    out.push(
      {
        id: `gpu${i}_util`,
        title: `${name}: utilization`,
        lines: [{ series: `gpu${i}_util`, label: "busy", colour: "--c1", unit: "%", fmt: percent }],
        top: { "%": 100 },
      },
      {
        id: `gpu${i}_mem`,
        title: g?.memory_total ? `GPU ${i}: memory (of ${bytes(g.memory_total)})` : `GPU ${i}: memory`,
        lines: [{ series: `gpu${i}_mem`, label: "used", colour: "--c2", unit: "B", fmt: bytes }],
        top: { B: g?.memory_total },
      },
      {
        id: `gpu${i}_heat`,
        title: `GPU ${i}: temperature and power`,
        lines: [
          { series: `gpu${i}_temp`, label: "temperature", colour: "--c3", unit: "°C", fmt: celsius },
          { series: `gpu${i}_power`, label: "power", colour: "--c5", unit: "W", fmt: watts },
        ],
      },
    );
  }
  out.push(
    {
      id: "disk",
      title: l?.disk_total ? `Disk used (of ${bytes(l.disk_total)})` : "Disk used",
      lines: [{ series: "disk", label: "used", colour: "--c4", unit: "B", fmt: bytes }],
      top: { B: l?.disk_total },
    },
    {
      id: "net",
      title: "Network",
      lines: [
        { series: "net_rx", label: "received", colour: "--c0", unit: "B/s", fmt: rate },
        { series: "net_tx", label: "sent", colour: "--c3", unit: "B/s", fmt: rate },
      ],
    },
  );
  return out;
}

function gpuIndexes(m: Metrics): number[] {
  return Object.keys(m.series)
    .map((k) => /^gpu(\d+)_util$/.exec(k))
    .filter((x): x is RegExpExecArray => !!x)
    .map((x) => Number(x[1]))
    .sort((a, b) => a - b);
}

function lastValue(values: ArrayLike<number | null | undefined>): number | null {
  for (let i = values.length - 1; i >= 0; i--) {
    const v = values[i];
    if (v !== null && v !== undefined) return v;
  }
  return null;
}

const pad = (n: number) => String(n).padStart(2, "0");
/** A local time of day, 24-hour like the log lines' (`13:45`, `13:45:12`). */
function clock(t: number, seconds = true): string {
  const d = new Date(t * 1000);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return seconds ? `${hm}:${pad(d.getSeconds())}` : hm;
}

/** A palette colour for the canvas; `alpha` (two hex digits) for a fill. */
function colour(css: CSSStyleDeclaration, name: string, alpha = ""): string {
  const c = css.getPropertyValue(name).trim() || "#888888";
  return alpha && /^#[0-9a-f]{6}$/i.test(c) ? c + alpha : c;
}

/** One chart: its box, its title (which may change: a new limit) and uPlot. */
class Chart {
  readonly el: HTMLElement;
  private title = h("figcaption", { class: "chart-title" });
  private plot = h("div", { class: "chart-plot" });
  private u: uPlot | null = null;

  constructor(
    private spec: Spec,
    /** The times shown: the whole range, up to the latest sample. */
    private span: () => [number, number],
  ) {
    this.el = h("figure", { class: "chart", "data-chart": spec.id }, this.title, this.plot);
  }

  /** Draws `data` (the times, then one column per line), making the chart when it has none. */
  draw(spec: Spec, data: uPlot.AlignedData): void {
    this.spec = spec;
    this.title.textContent = spec.title;
    if (!this.u) this.u = new uPlot(this.options(), data, this.plot);
    else this.u.setData(data);
  }

  fit(): void {
    const width = this.plot.clientWidth;
    if (this.u && width > 0 && width !== this.u.width) this.u.setSize({ width, height: HEIGHT });
  }

  /** Forgets uPlot (colours changed): the next `draw` makes it again. */
  drop(): void {
    this.u?.destroy();
    this.u = null;
  }

  private options(): uPlot.Options {
    const spec = this.spec;
    const css = getComputedStyle(document.documentElement);
    const axis: uPlot.Axis = {
      stroke: colour(css, "--muted"),
      grid: { stroke: colour(css, "--line"), width: 1 },
      ticks: { stroke: colour(css, "--line"), width: 1 },
      font: "11px system-ui, sans-serif",
    };
    const units = [...new Set(spec.lines.map((l) => l.unit))];
    const scales: uPlot.Scales = { x: { time: true, range: () => this.span() } };
    for (const unit of units) {
      // From zero (every reading here is a level or a rate), up to the fixed top or a bit over
      // the highest value.
      scales[unit] = {
        range: (_u, _min, max) => {
          const top = this.spec.top?.[unit] ?? 0;
          const high = max ?? 0;
          return [0, (high <= top ? top : high * 1.1) || 1];
        },
      };
    }
    const fmtOf = (unit: string) => spec.lines.find((l) => l.unit === unit)!.fmt;
    const single = spec.lines.length === 1;
    return {
      width: Math.max(this.plot.clientWidth, 100),
      height: HEIGHT,
      cursor: { sync: { key: "gpubox-metrics" }, drag: { x: false, y: false, setScale: false } },
      select: { show: false, left: 0, top: 0, width: 0, height: 0 },
      scales,
      axes: [
        { ...axis, size: 30, values: (_u, splits) => splits.map((t) => clock(t, false)) },
        ...units.map(
          (unit, i): uPlot.Axis => ({
            ...axis,
            scale: unit,
            side: i === 0 ? 3 : 1,
            size: 58,
            values: (_u, splits) => splits.map(tick(fmtOf(unit))),
          }),
        ),
      ],
      series: [
        { value: (u, v, _s, idx) => clock(idx === null ? (lastValue(u.data[0]) ?? 0) : v) },
        ...spec.lines.map(
          (l): uPlot.Series => ({
            label: l.label,
            scale: l.unit,
            stroke: colour(css, l.colour),
            fill: single ? colour(css, l.colour, "22") : undefined,
            width: 1.5,
            points: { show: false },
            // Off the chart, the latest value.
            value: (u, v, s, idx) => {
              const x = idx === null ? lastValue(u.data[s]) : v;
              return x === null ? "–" : l.fmt(x);
            },
          }),
        ),
      ],
    };
  }
}

export class Charts {
  readonly el: HTMLElement;
  private range: Range;
  private buttons = new Map<Range, HTMLButtonElement>();
  private note = h("p", { class: "muted small", id: "charts-note", hidden: true });
  private error = h("p", { class: "error small", role: "status", hidden: true });
  private grid = h("div", { class: "charts", id: "charts" });
  private charts = new Map<string, Chart>();
  private shown: [number, number] = [0, 1];
  private last: Metrics | null = null;
  private gen = 0;
  private timer = 0;

  constructor() {
    const saved = localStorage.getItem(RANGE_KEY) as Range | null;
    this.range = saved && RANGES.includes(saved) ? saved : "1h";
    const group = h("div", { class: "ranges", role: "group", "aria-label": "time range" });
    for (const r of RANGES) {
      const b = h("button", { type: "button", class: "chip", "data-range": r }, r);
      b.addEventListener("click", () => this.choose(r));
      this.buttons.set(r, b);
      group.append(b);
    }
    this.pressRange();
    this.el = h("div", { class: "history" }, group, this.error, this.note, this.grid);
    new ResizeObserver(() => {
      for (const c of this.charts.values()) c.fit();
    }).observe(this.grid);
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
      for (const c of this.charts.values()) c.drop();
      if (this.last) this.draw(this.last);
    });
  }

  start(): void {
    void this.load(false);
  }

  private choose(r: Range): void {
    this.range = r;
    localStorage.setItem(RANGE_KEY, r);
    this.pressRange();
    void this.load(false);
  }

  private pressRange(): void {
    for (const [r, b] of this.buttons) setPressed(b, r === this.range);
  }

  /** Asks for the range's history (`background`: the page's own refresh), draws it, and sets
   * the next refresh. */
  private async load(background: boolean): Promise<void> {
    window.clearTimeout(this.timer);
    const gen = ++this.gen;
    const u = url("/api/metrics", { range: this.range });
    try {
      const m = await (background ? pollJson<Metrics>(u) : getJson<Metrics>(u));
      if (gen !== this.gen) return;
      this.error.hidden = true;
      this.draw(m);
    } catch (e) {
      if (gen !== this.gen) return;
      this.error.textContent = `The history could not be read (${(e as Error).message}); trying again.`;
      this.error.hidden = false;
    }
    // Every sample for 15 min; the longer ranges (whose points are 5 s and more apart, thinned)
    // more rarely: an hour's 720 points are 50-200 KB, every 5 s would be gigabytes a day.
    const wait =
      this.range === "15m" ? (this.last?.interval ?? 5) * 1000 : this.range === "1h" ? HOUR_MS : SLOW_MS;
    this.timer = window.setTimeout(() => this.refresh(), wait);
  }

  /** The timer's refresh: only while someone can see the charts (else it looks again soon, so
   * that a panel opened again is soon up to date). */
  private refresh(): void {
    if (!document.hidden && this.el.getClientRects().length > 0) void this.load(true);
    else this.timer = window.setTimeout(() => this.refresh(), HIDDEN_MS);
  }

  private draw(m: Metrics): void {
    this.last = m;
    const end = m.t.length ? m.t[m.t.length - 1] : Date.now() / 1000;
    this.shown = [end - m.range, end];
    const gpus = gpuIndexes(m).length;
    this.note.hidden = gpus > 0 && m.t.length > 0;
    this.note.textContent = !m.t.length
      ? "No samples yet."
      : /^no GPU seen/i.test(m.gpu_source)
        ? m.gpu_source.replace(/^n/, "N")
        : `No GPU seen: ${m.gpu_source}`;
    if (!m.t.length) {
      this.clear();
      return;
    }
    const list = specs(m);
    // A GPU came or went: the charts are made again.
    if (list.map((s) => s.id).join() !== [...this.charts.keys()].join()) {
      this.clear();
      for (const s of list) this.charts.set(s.id, new Chart(s, () => this.shown));
      fill(this.grid, ...[...this.charts.values()].map((c) => c.el));
    }
    for (const s of list) {
      const data: uPlot.AlignedData = [m.t, ...s.lines.map((l) => m.series[l.series] ?? m.t.map(() => null))];
      this.charts.get(s.id)!.draw(s, data);
    }
  }

  private clear(): void {
    for (const c of this.charts.values()) c.drop();
    this.charts.clear();
    fill(this.grid);
  }
}
