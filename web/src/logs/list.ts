// A virtual list: rows of one fixed height, of which only those in view (and a few around them)
// are in the DOM, positioned absolutely over a spacer as tall as all the rows together. Fine with
// a million rows: a scroll costs the rows that came into view, not the list.
//
// With long lines wrapped (`setWrap`), a row may be several lines tall. Every row counts as one
// line until it has been in the DOM and measured; the rows measured taller are kept in a short
// sorted list (their index and extra lines), so a row's top is its index plus the extra lines
// above it, found by binary search. What is in view stays put when rows above it turn out taller.

import { h } from "./dom";

export interface RowSource {
  count(): number;
  /** Identifies row `i`'s content: a row whose key is unchanged is kept as it is. */
  key(i: number): string;
  render(i: number): HTMLElement;
}

const OVERSCAN = 12;
/** Measured heights kept at most: past this they are measured again as rows come into view. */
const MAX_TALL = 20000;

export class VirtualList {
  readonly el: HTMLElement;
  private spacer: HTMLElement;
  rowH = 20;
  private rows = new Map<string, { el: HTMLElement; i: number }>();
  private width = 0;
  private frame = 0;
  private full = false;
  /** What the next frame should do with the scroll position. */
  private intent: { kind: "bottom" } | { kind: "index"; i: number; top: boolean } | { kind: "delta"; rows: number } | null = null;
  /** The scrollTop this code set last: a scroll event that lands elsewhere came from the user. */
  private setTop = -1;
  /** Called after each scroll by the user (not by this code). */
  onUserScroll: () => void = () => {};
  /** Called after each render, with the index of the first row in view. */
  onRender: (first: number) => void = () => {};
  private wrap = false;
  /** Wrapped rows taller than one line: row index → extra lines. */
  private tall = new Map<number, number>();
  /** The same, as sorted indices and the extra lines above each (`above[k]`: before `idx[k]`). */
  private tallIdx: number[] = [];
  private tallAbove: number[] = [0];
  private tallDirty = false;
  private lastWidth = 0;

  constructor(private src: RowSource) {
    this.spacer = h("div", { class: "lg-spacer" });
    this.el = h("div", { id: "logs-list", class: "lg-list", tabindex: 0, "aria-label": "log lines" }, this.spacer);
    this.el.addEventListener(
      "scroll",
      () => {
        if (Math.abs(this.el.scrollTop - this.setTop) > 1) this.userScrolled();
        this.update();
      },
      { passive: true },
    );
    new ResizeObserver(() => {
      // Wrapped rows change height with the width: measured again as they come into view.
      if (this.wrap && this.el.clientWidth !== this.lastWidth) this.forgetHeights();
      this.lastWidth = this.el.clientWidth;
      this.update();
    }).observe(this.el);
  }

  /** Long lines wrap (rows grow) or scroll sideways (rows are one line). */
  setWrap(on: boolean): void {
    if (on === this.wrap) return;
    const first = this.first();
    this.wrap = on;
    this.el.classList.toggle("wrap", on);
    this.forgetHeights();
    this.reset();
    this.scrollToIndex(first, "top");
  }

  private forgetHeights(): void {
    this.tall.clear();
    this.tallDirty = true;
  }

  /** Extra lines of the rows above row `i`. */
  private extraAbove(i: number): number {
    if (this.tallDirty) {
      this.tallIdx = [...this.tall.keys()].sort((a, b) => a - b);
      this.tallAbove = [0];
      for (const k of this.tallIdx) this.tallAbove.push(this.tallAbove[this.tallAbove.length - 1] + this.tall.get(k)!);
      this.tallDirty = false;
    }
    let lo = 0;
    let hi = this.tallIdx.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.tallIdx[mid] < i) lo = mid + 1;
      else hi = mid;
    }
    return this.tallAbove[lo];
  }

  /** Where row `i` begins. */
  private top(i: number): number {
    return (i + (this.tall.size ? this.extraAbove(i) : 0)) * this.rowH;
  }

  /** The row at height `y`. */
  private indexAt(y: number, n: number): number {
    if (!this.tall.size) return Math.max(0, Math.min(n - 1, Math.floor(y / this.rowH)));
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.top(mid) <= y) lo = mid;
      else hi = mid - 1;
    }
    return Math.max(0, lo);
  }

  /** Reads the row height from the stylesheet (`--row-h`); call once the list is in the page. */
  measure(): void {
    const v = parseFloat(getComputedStyle(this.el).getPropertyValue("--row-h"));
    if (v > 0) this.rowH = v;
  }

  /** Renders in the next frame; `full`: build every row again (the time column, the filters changed). */
  update(full = false): void {
    this.full ||= full;
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render());
  }

  /** Drops every row (the rows' identities changed) and renders again. */
  reset(): void {
    this.forgetHeights();
    for (const r of this.rows.values()) r.el.remove();
    this.rows.clear();
    this.width = 0;
    this.spacer.style.minWidth = "";
    this.update(true);
  }

  scrollToBottom(): void {
    this.intent = { kind: "bottom" };
    this.update();
  }

  /** Forgets a pending scroll to the bottom (following was paused before it happened). */
  stay(): void {
    if (this.intent?.kind === "bottom") this.intent = null;
  }

  /** Scrolls row `i` to the middle of the view, or to its top. */
  scrollToIndex(i: number, align: "center" | "top" = "center"): void {
    this.intent = { kind: "index", i, top: align === "top" };
    this.update();
  }

  /** Rows were inserted (or, negative, dropped) above the others: measured heights move with
   * their rows. */
  renumber(rows: number): void {
    if (!this.tall.size || !rows) return;
    const moved = new Map<number, number>();
    for (const [i, extra] of this.tall) if (i + rows >= 0) moved.set(i + rows, extra);
    this.tall = moved;
    this.tallDirty = true;
  }

  /** Keeps the rows in view where they are after `rows` rows were inserted above them. */
  shift(rows: number): void {
    this.renumber(rows);
    if (this.intent?.kind === "delta") this.intent.rows += rows;
    else if (!this.intent) this.intent = { kind: "delta", rows };
    this.update();
  }

  /** The user wins over a pending "to the bottom": the app says again if it still follows. */
  private userScrolled(): void {
    this.setTop = -1;
    if (this.intent?.kind === "bottom") this.intent = null;
    this.onUserScroll();
  }

  atBottom(): boolean {
    return this.el.scrollTop + this.el.clientHeight >= this.el.scrollHeight - this.rowH;
  }

  /** The index of the row at the top of the view. */
  first(): number {
    return this.indexAt(this.el.scrollTop, Math.max(1, this.src.count()));
  }

  private scrollTo(top: number): void {
    this.el.scrollTop = top;
    this.setTop = this.el.scrollTop;
  }

  render(): void {
    this.frame = 0;
    const n = this.src.count();
    const rowH = this.rowH;
    this.spacer.style.height = `${this.top(n)}px`;
    const view = this.el.clientHeight;
    // The user scrolled since this code last did, and the scroll event is still to come.
    if (this.setTop >= 0 && Math.abs(this.el.scrollTop - this.setTop) > 1) this.userScrolled();
    const intent = this.intent;
    this.intent = null;
    if (intent?.kind === "bottom") this.scrollTo(this.top(n) - view);
    else if (intent?.kind === "index") this.scrollTo(intent.top ? this.top(intent.i) : this.top(intent.i) - view / 2 + rowH / 2);
    // Rows inserted above were not measured yet: one line each.
    else if (intent?.kind === "delta" && intent.rows) this.scrollTo(this.el.scrollTop + intent.rows * rowH);

    const top = this.el.scrollTop;
    const firstInView = this.indexAt(top, n);
    const wasAtBottom = top + view >= this.top(n) - 1;
    const from = Math.max(0, firstInView - OVERSCAN);
    const to = Math.min(n, this.indexAt(top + view, n) + 1 + OVERSCAN);
    const keep = new Map<string, { el: HTMLElement; i: number }>();
    const added: HTMLElement[] = [];
    const full = this.full;
    this.full = false;
    for (let i = from; i < to; i++) {
      const key = this.src.key(i);
      let r = full ? undefined : this.rows.get(key);
      if (r) {
        this.rows.delete(key);
        if (r.i !== i) {
          r.el.style.top = `${this.top(i)}px`;
          r.i = i;
        }
      } else {
        const el = this.src.render(i);
        el.style.top = `${this.top(i)}px`;
        r = { el, i };
        added.push(el);
      }
      keep.set(key, r);
    }
    for (const r of this.rows.values()) r.el.remove();
    this.rows = keep;
    if (added.length) this.spacer.append(...added);
    if (this.wrap) {
      // What stays still while heights are learned: the end when following, the row just
      // scrolled to, or the first row in view.
      const anchor = intent?.kind === "index" ? Math.min(intent.i, n - 1) : firstInView;
      this.measureRows(anchor, top, intent?.kind === "bottom" || (wasAtBottom && n > 0 && !intent), n);
    }
    else if (added.length) {
      // Lines do not wrap: the list scrolls sideways as far as the widest row seen so far.
      let w = this.width;
      for (const el of added) w = Math.max(w, el.scrollWidth);
      if (w > this.width + 1) {
        this.width = w;
        this.spacer.style.minWidth = `${w}px`;
      }
    }
    this.onRender(this.first());
  }

  /** Wrapped rows: takes the heights of the rows in the DOM; when some differ from what was
   * assumed, places the rows again, keeping the first row in view where it was (or the end in
   * view, when following), and renders once more for the rows that now fit. */
  private measureRows(anchor: number, top: number, bottom: boolean, n: number): void {
    const offset = top - this.top(anchor);
    let changed = false;
    for (const r of this.rows.values()) {
      const extra = Math.max(0, Math.round(r.el.offsetHeight / this.rowH) - 1);
      if (extra !== (this.tall.get(r.i) ?? 0)) {
        if (extra) this.tall.set(r.i, extra);
        else this.tall.delete(r.i);
        changed = true;
      }
    }
    if (!changed) return;
    this.tallDirty = true;
    if (this.tall.size > MAX_TALL) this.tall.clear();
    for (const r of this.rows.values()) r.el.style.top = `${this.top(r.i)}px`;
    this.spacer.style.height = `${this.top(n)}px`;
    // Following: the end again in the next frame (which measures the rows that came into view).
    if (bottom) this.intent = { kind: "bottom" };
    else this.scrollTo(this.top(anchor) + offset);
    this.update();
  }
}
