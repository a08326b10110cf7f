// The lines the page holds, stored compactly: one typed array per field (a million lines cost
// about 20 MB plus their text), in a ring that grows at both ends, so that live lines append,
// older lines prepend, and the oldest drop off past the cap, all without moving the rest.
//
// Every line gets an id that never changes while it is held: ids grow by one per appended line
// and shrink by one per prepended line, so `id - headId` is its index.

export const STREAMS = ["stdout", "stderr", "tty", "event"] as const;
/** The stream code of a marker row (lines dropped from memory), which every filter shows. */
export const S_MARK = 4;

export const F_ERR = 1;
export const F_WARN = 2;
export const F_TB = 4;
export const F_TB_START = 8;
export const F_TB_END = 16;
/** In search results: the line matched (the others are context). */
export const F_MATCH = 32;

export const MAX_LINES = 1_000_000;

export function streamCode(name: string): number {
  const i = (STREAMS as readonly string[]).indexOf(name);
  return i < 0 ? 0 : i;
}

/** Service names to small numbers, shared by every store of the page. */
export class Services {
  readonly names: string[] = [""];
  private index = new Map<string, number>([["", 0]]);
  onNew: (name: string) => void = () => {};

  id(name: string): number {
    let i = this.index.get(name);
    if (i === undefined) {
      i = this.names.length;
      this.names.push(name);
      this.index.set(name, i);
      if (name) this.onNew(name);
    }
    return i;
  }
}

export class LineStore {
  private cap = 0;
  private mask = 0;
  private start = 0;
  length = 0;
  /** The id of the oldest line held. */
  headId = 0;
  seq = new Float64Array(0);
  time = new Float64Array(0);
  svc = new Uint16Array(0);
  stream = new Uint8Array(0);
  flags = new Uint8Array(0);
  text: string[] = [];

  constructor(readonly max = MAX_LINES) {
    this.resize(4096);
  }

  get tailId(): number {
    return this.headId + this.length;
  }

  has(id: number): boolean {
    return id >= this.headId && id < this.headId + this.length;
  }

  /** The slot of a held line in the arrays. */
  at(id: number): number {
    return (this.start + (id - this.headId)) & this.mask;
  }

  clear(): void {
    this.headId += this.length;
    this.length = 0;
    this.start = 0;
    this.text = new Array(this.cap);
  }

  private resize(cap: number): void {
    const seq = new Float64Array(cap);
    const time = new Float64Array(cap);
    const svc = new Uint16Array(cap);
    const stream = new Uint8Array(cap);
    const flags = new Uint8Array(cap);
    const text: string[] = new Array(cap);
    for (let i = 0; i < this.length; i++) {
      const p = (this.start + i) & this.mask;
      seq[i] = this.seq[p];
      time[i] = this.time[p];
      svc[i] = this.svc[p];
      stream[i] = this.stream[p];
      flags[i] = this.flags[p];
      text[i] = this.text[p];
    }
    Object.assign(this, { seq, time, svc, stream, flags, text, cap, mask: cap - 1, start: 0 });
  }

  private room(n: number): void {
    if (this.length + n <= this.cap) return;
    let cap = this.cap;
    while (cap < this.length + n) cap *= 2;
    this.resize(cap);
  }

  /** Drops the `n` oldest lines. */
  dropOldest(n: number): void {
    n = Math.min(n, this.length);
    for (let i = 0; i < n; i++) this.text[(this.start + i) & this.mask] = "";
    this.start = (this.start + n) & this.mask;
    this.length -= n;
    this.headId += n;
  }

  /** Appends a line, dropping the oldest past the cap; returns its id. */
  push(seq: number, time: number, svc: number, stream: number, flags: number, text: string): number {
    if (this.length >= this.max) this.dropOldest(this.length - this.max + 1);
    this.room(1);
    const p = (this.start + this.length) & this.mask;
    this.seq[p] = seq;
    this.time[p] = time;
    this.svc[p] = svc;
    this.stream[p] = stream;
    this.flags[p] = flags;
    this.text[p] = text;
    this.length++;
    return this.headId + this.length - 1;
  }

  /** Room left for older lines below the cap. */
  get spare(): number {
    return this.max - this.length;
  }

  /** Prepends one line (call newest first); returns its id. The caller checks `spare`. */
  unshift(seq: number, time: number, svc: number, stream: number, flags: number, text: string): number {
    this.room(1);
    this.start = (this.start - 1) & this.mask;
    const p = this.start;
    this.seq[p] = seq;
    this.time[p] = time;
    this.svc[p] = svc;
    this.stream[p] = stream;
    this.flags[p] = flags;
    this.text[p] = text;
    this.length++;
    this.headId--;
    return this.headId;
  }
}

/** A list of line ids (the lines the filters let through), growing at both ends. */
export class IdList {
  private buf = new Float64Array(4096);
  private start = 0;
  length = 0;

  get(i: number): number {
    return this.buf[(this.start + i) % this.buf.length];
  }

  clear(): void {
    this.start = 0;
    this.length = 0;
  }

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length;
    while (cap < this.length + n) cap *= 2;
    const next = new Float64Array(cap);
    for (let i = 0; i < this.length; i++) next[i] = this.get(i);
    this.buf = next;
    this.start = 0;
  }

  push(id: number): void {
    this.room(1);
    this.buf[(this.start + this.length) % this.buf.length] = id;
    this.length++;
  }

  unshift(id: number): void {
    this.room(1);
    this.start = (this.start - 1 + this.buf.length) % this.buf.length;
    this.buf[this.start] = id;
    this.length++;
  }

  /** Drops ids below `id` from the front; returns how many went. */
  dropBelow(id: number): number {
    let n = 0;
    while (this.length > 0 && this.get(0) < id) {
      this.start = (this.start + 1) % this.buf.length;
      this.length--;
      n++;
    }
    return n;
  }

  /** The first index whose value is `>= id` (the list is sorted). */
  lowerBound(id: number): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.get(mid) < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
