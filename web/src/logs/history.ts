// Older lines of one service from its log files (/api/history), read backwards. The files also
// hold the lines still in memory, so the reader first goes back to the oldest line the page
// holds (the anchor: same text and millisecond) and hands on only what came before it.

import { getJson, HistoryAnswer, Line, url } from "./api";

export interface Anchor {
  time: number;
  text: string;
}

export class HistoryReader {
  /** Byte offset to read back from (undefined: the end of the log). */
  private end: number | undefined = undefined;
  /** The start of the log was reached. */
  done = false;

  constructor(
    readonly service: string,
    private anchor: Anchor | null,
  ) {}

  /** The next older lines (oldest first), up to `limit`; none when `done`. */
  async next(limit: number, stillWanted: () => boolean): Promise<Line[]> {
    for (let page = 0; page < 50 && !this.done; page++) {
      const r = await getJson<HistoryAnswer>(url("/api/history", { service: this.service, end: this.end, limit }));
      if (!stillWanted()) return [];
      const lines = this.beforeAnchor(r.lines);
      this.end = r.start;
      this.done = r.start === 0;
      if (lines.length) return lines;
    }
    return [];
  }

  private beforeAnchor(lines: Line[]): Line[] {
    const a = this.anchor;
    if (!a) return lines;
    let j = -1;
    for (let i = lines.length - 1; i >= 0; i--) {
      if (lines[i][4] === a.text && (Number.isNaN(a.time) || lines[i][1] === a.time)) {
        j = i;
        break;
      }
    }
    let older: Line[];
    if (j >= 0) older = lines.slice(0, j);
    // Not found (a file rotated away under us?): go by time instead.
    else if (!Number.isNaN(a.time)) older = lines.filter((l) => l[1] !== null && l[1] < a.time);
    else older = [];
    if (j >= 0 || older.length) this.anchor = null;
    return older;
  }
}
