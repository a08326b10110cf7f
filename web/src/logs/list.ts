// A virtual list: rows of one fixed height, of which only those in view (and a few around them)
// are in the DOM, positioned absolutely over a spacer as tall as all the rows together. Fine with
// a million rows: a scroll costs the rows that came into view, not the list.

import { h } from "./dom";

export interface RowSource {
  count(): number;
  /** Identifies row `i`'s content: a row whose key is unchanged is kept as it is. */
  key(i: number): string;
  render(i: number): HTMLElement;
}

const OVERSCAN = 12;

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
    new ResizeObserver(() => this.update()).observe(this.el);
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

  /** Keeps the rows in view where they are after `rows` rows were inserted above them. */
  shift(rows: number): void {
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
    return Math.floor(this.el.scrollTop / this.rowH);
  }

  private scrollTo(top: number): void {
    this.el.scrollTop = top;
    this.setTop = this.el.scrollTop;
  }

  render(): void {
    this.frame = 0;
    const n = this.src.count();
    const rowH = this.rowH;
    this.spacer.style.height = `${n * rowH}px`;
    const view = this.el.clientHeight;
    // The user scrolled since this code last did, and the scroll event is still to come.
    if (this.setTop >= 0 && Math.abs(this.el.scrollTop - this.setTop) > 1) this.userScrolled();
    const intent = this.intent;
    this.intent = null;
    if (intent?.kind === "bottom") this.scrollTo(n * rowH - view);
    else if (intent?.kind === "index") this.scrollTo(intent.top ? intent.i * rowH : intent.i * rowH - view / 2 + rowH / 2);
    else if (intent?.kind === "delta" && intent.rows) this.scrollTo(this.el.scrollTop + intent.rows * rowH);

    const top = this.el.scrollTop;
    const from = Math.max(0, Math.floor(top / rowH) - OVERSCAN);
    const to = Math.min(n, Math.ceil((top + view) / rowH) + OVERSCAN);
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
          r.el.style.top = `${i * rowH}px`;
          r.i = i;
        }
      } else {
        const el = this.src.render(i);
        el.style.top = `${i * rowH}px`;
        r = { el, i };
        added.push(el);
      }
      keep.set(key, r);
    }
    for (const r of this.rows.values()) r.el.remove();
    this.rows = keep;
    if (added.length) {
      this.spacer.append(...added);
      // Lines do not wrap: the list scrolls sideways as far as the widest row seen so far.
      let w = this.width;
      for (const el of added) w = Math.max(w, el.scrollWidth);
      if (w > this.width + 1) {
        this.width = w;
        this.spacer.style.minWidth = `${w}px`;
      }
    }
    this.onRender(Math.floor(top / rowH));
  }
}
