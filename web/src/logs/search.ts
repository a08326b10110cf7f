// A search's results: the server's answer, then the new lines that match as they arrive (with
// their context lines in "with context" mode). Matching here uses the browser's RegExp, which
// agrees with Rust's syntax for everyday patterns; one it cannot compile still searches on the
// server, only without highlights and without new lines appended.

import { Line, LinesAnswer } from "./api";
import { Classifier } from "./classify";
import { F_MATCH, LineStore, S_MARK } from "./store";

/** Lines of context around each match in "with context" mode. */
export const CONTEXT = 3;

export interface Query {
  q: string;
  regex: boolean;
  case: boolean;
  context: boolean;
}

function browserRegex(q: Query): RegExp | null {
  try {
    return new RegExp(q.regex ? q.q : q.q.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), q.case ? "g" : "gi");
  } catch {
    return null;
  }
}

export class SearchResults {
  readonly store = new LineStore();
  readonly re: RegExp | null;
  readonly context: boolean;
  /** Where the list was (the line at its top) before the search, to come back to. */
  anchor = NaN;
  /** The newest line looked at: lines up to it are in the results if they belong there. */
  private last = 0;
  private before: number[] = [];
  private after = 0;

  constructor(
    readonly query: Query,
    answer: LinesAnswer,
    add: (store: LineStore, line: Line, classifier: Classifier, flags: number) => number,
  ) {
    this.re = browserRegex(query);
    this.context = query.context;
    const classifier = new Classifier();
    for (const l of answer.lines) {
      add(this.store, l, classifier, l[5] === 0 ? 0 : F_MATCH);
      this.last = Math.max(this.last, l[0] ?? 0);
    }
  }

  test(text: string): boolean {
    if (!this.re) return false;
    this.re.lastIndex = 0;
    return this.re.test(text);
  }

  /** Matches are counted, context lines are not. */
  get matches(): number {
    let n = 0;
    const s = this.store;
    for (let id = s.headId; id < s.tailId; id++) if (s.flags[s.at(id)] & F_MATCH) n++;
    return n;
  }

  /**
   * A held line that passes the filters, newer than the answer: appended when it matches, or as
   * context around a match (`withContext` false: matches only). Returns the rows added.
   */
  offer(held: LineStore, id: number, withContext = true): number {
    const p = held.at(id);
    const seq = held.seq[p];
    if (!(seq > this.last) || held.stream[p] === S_MARK) return 0;
    const copy = (from: number, flags: number) => {
      const q = held.at(from);
      this.store.push(held.seq[q], held.time[q], held.svc[q], held.stream[q], (held.flags[q] & ~F_MATCH) | flags, held.text[q]);
      this.last = held.seq[q];
    };
    const context = this.context && withContext;
    if (this.test(held.text[p])) {
      let added = 1;
      if (context) {
        for (const b of this.before) {
          if (held.has(b) && held.seq[held.at(b)] > this.last) {
            copy(b, 0);
            added++;
          }
        }
        this.before = [];
        this.after = CONTEXT;
      }
      copy(id, F_MATCH);
      return added;
    }
    if (!context) return 0;
    if (this.after > 0) {
      this.after--;
      copy(id, 0);
      return 1;
    }
    this.before.push(id);
    if (this.before.length > CONTEXT) this.before.shift();
    return 0;
  }
}
