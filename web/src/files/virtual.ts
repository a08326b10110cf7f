// A virtual list: rows of one fixed height, and only the ones in view (plus a few either side)
// in the DOM, so a folder of 100,000 entries costs what a folder of 40 does. The scroller holds
// a sticky header and a canvas as tall as every row together; rows are absolutely placed in it
// and reused as the view moves.

const OVERSCAN = 6;

export interface VirtualListOptions {
  /** Makes an empty row (called as the pool grows). */
  create: () => HTMLElement;
  /** Fills `row` for the item at `index`. */
  render: (row: HTMLElement, index: number) => void;
}

export class VirtualList {
  readonly scroller: HTMLElement;
  readonly canvas: HTMLElement;
  private count = 0;
  private rowH = 36;
  private byIndex = new Map<number, HTMLElement>();
  private free: HTMLElement[] = [];
  private frame = 0;

  constructor(
    scroller: HTMLElement,
    private readonly opts: VirtualListOptions,
  ) {
    this.scroller = scroller;
    this.canvas = document.createElement("div");
    this.canvas.className = "canvas";
    scroller.append(this.canvas);
    scroller.addEventListener("scroll", () => this.schedule(), { passive: true });
    new ResizeObserver(() => {
      this.measure();
      this.schedule();
    }).observe(scroller);
    this.measure();
  }

  /** The row height comes from the stylesheet's --row-h (taller on touch screens). */
  private measure(): void {
    const h = parseFloat(getComputedStyle(this.scroller).getPropertyValue("--row-h"));
    if (h > 0 && h !== this.rowH) {
      this.rowH = h;
      this.setCount(this.count);
    }
  }

  get rowHeight(): number {
    return this.rowH;
  }

  setCount(n: number): void {
    this.count = n;
    this.canvas.style.height = `${n * this.rowH}px`;
    this.refresh();
  }

  /** Renders every visible row again (the data or the selection changed). */
  refresh(): void {
    // Rows stay where they are (a double click must land on the row it began on).
    for (const [i, row] of this.byIndex) {
      if (i < this.count) this.opts.render(row, i);
      else {
        this.byIndex.delete(i);
        this.free.push(row);
      }
    }
    this.update();
  }

  private schedule(): void {
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.update();
      });
    }
  }

  private headerHeight(): number {
    return this.canvas.offsetTop;
  }

  /** The range of rows in view (below the sticky header), without overscan. */
  visibleRange(): [number, number] {
    const top = this.scroller.scrollTop;
    const first = Math.max(0, Math.floor(top / this.rowH));
    const last = Math.min(this.count - 1, Math.floor((top + this.scroller.clientHeight - this.headerHeight() - 1) / this.rowH));
    return [first, last];
  }

  private update(): void {
    const [a, b] = this.visibleRange();
    const first = Math.max(0, a - OVERSCAN);
    const last = Math.min(this.count - 1, b + OVERSCAN);
    for (const [i, row] of this.byIndex) {
      if (i < first || i > last) {
        this.byIndex.delete(i);
        this.free.push(row);
      }
    }
    for (let i = first; i <= last; i++) {
      if (this.byIndex.has(i)) continue;
      let row = this.free.pop();
      if (!row) {
        row = this.opts.create();
        this.canvas.append(row);
      }
      row.hidden = false;
      row.dataset.index = String(i);
      row.style.transform = `translateY(${i * this.rowH}px)`;
      this.opts.render(row, i);
      this.byIndex.set(i, row);
    }
    for (const row of this.free) {
      row.hidden = true;
      delete row.dataset.index;
    }
  }

  /** Scrolls so that row `i` is in view: as little as needed, or centred. */
  reveal(i: number, center = false): void {
    if (i < 0 || i >= this.count) return;
    // Canvas coordinates: rows between scrollTop and scrollTop + view are visible.
    const top = i * this.rowH;
    const view = this.scroller.clientHeight - this.headerHeight();
    const s = this.scroller;
    if (center) s.scrollTop = top - view / 2 + this.rowH / 2;
    else if (top < s.scrollTop) s.scrollTop = top;
    else if (top + this.rowH > s.scrollTop + view) s.scrollTop = top + this.rowH - view;
    this.update();
  }

  /** Rows per screenful, for Page Up and Page Down. */
  page(): number {
    return Math.max(1, Math.floor((this.scroller.clientHeight - this.headerHeight()) / this.rowH) - 1);
  }
}
