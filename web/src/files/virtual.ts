// A virtual list: rows of one fixed height, and only the ones in view (plus a few either side)
// in the DOM, so a folder of 100,000 entries costs what a folder of 40 does. The scroller holds
// a sticky header and a canvas as tall as every row together; rows are absolutely placed in it
// and reused as the view moves. As a grid, a row holds `cols` items (as many tiles of at least
// `--tile-w` as fit the width) and is as tall as a tile is wide plus its caption.

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
  private columns = 1;
  private grid = false;
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

  /** The row height comes from the stylesheet's --row-h (taller on touch screens); a grid's
   * columns and row height from the width and --tile-w. */
  private measure(): void {
    const style = getComputedStyle(this.scroller);
    let h = parseFloat(style.getPropertyValue("--row-h"));
    let cols = 1;
    if (this.grid) {
      const tile = parseFloat(style.getPropertyValue("--tile-w")) || 160;
      const caption = parseFloat(style.getPropertyValue("--tile-caption")) || 30;
      const width = this.canvas.clientWidth || this.scroller.clientWidth;
      cols = Math.max(1, Math.floor(width / tile));
      h = Math.floor(width / cols) + caption;
    }
    if ((h > 0 && h !== this.rowH) || cols !== this.columns) {
      if (h > 0) this.rowH = h;
      if (this.grid) this.scroller.style.setProperty("--tile-row-h", `${h}px`);
      // Rows hold another number of tiles, or sit at other heights: placed anew.
      if (cols !== this.columns || this.grid) this.clear();
      if (cols !== this.columns) {
        this.columns = cols;
        this.scroller.style.setProperty("--cols", String(cols));
      }
      this.setCount(this.count);
    }
  }

  /** As a grid (or a list again): the rows are made anew. */
  setGrid(on: boolean): void {
    if (on === this.grid) return;
    this.grid = on;
    this.columns = 0; // measured again below
    this.measure();
  }

  /** Items in a row: 1 for a list. */
  get cols(): number {
    return this.columns;
  }

  private clear(): void {
    for (const row of [...this.byIndex.values(), ...this.free]) row.remove();
    this.byIndex.clear();
    this.free = [];
  }

  get rowHeight(): number {
    return this.rowH;
  }

  private get rows(): number {
    return Math.ceil(this.count / this.columns);
  }

  setCount(n: number): void {
    this.count = n;
    this.canvas.style.height = `${this.rows * this.rowH}px`;
    this.refresh();
  }

  /** Renders every visible row again (the data or the selection changed). */
  refresh(): void {
    // Rows stay where they are (a double click must land on the row it began on).
    for (const [i, row] of this.byIndex) {
      if (i < this.rows) this.opts.render(row, i);
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
  private visibleRange(): [number, number] {
    const top = this.scroller.scrollTop;
    const first = Math.max(0, Math.floor(top / this.rowH));
    const last = Math.min(this.rows - 1, Math.floor((top + this.scroller.clientHeight - this.headerHeight() - 1) / this.rowH));
    return [first, last];
  }

  private update(): void {
    const [a, b] = this.visibleRange();
    const over = this.grid ? 2 : OVERSCAN;
    const first = Math.max(0, a - over);
    const last = Math.min(this.rows - 1, b + over);
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

  /** Scrolls so that item `item` is in view: as little as needed, or centred. */
  reveal(item: number, center = false): void {
    if (item < 0 || item >= this.count) return;
    const i = Math.floor(item / this.columns);
    // Canvas coordinates: rows between scrollTop and scrollTop + view are visible.
    const top = i * this.rowH;
    const view = this.scroller.clientHeight - this.headerHeight();
    const s = this.scroller;
    if (center) s.scrollTop = top - view / 2 + this.rowH / 2;
    else if (top < s.scrollTop) s.scrollTop = top;
    else if (top + this.rowH > s.scrollTop + view) s.scrollTop = top + this.rowH - view;
    this.update();
  }

  /** Items per screenful, for Page Up and Page Down. */
  page(): number {
    return Math.max(1, Math.floor((this.scroller.clientHeight - this.headerHeight()) / this.rowH) - 1) * this.columns;
  }
}
