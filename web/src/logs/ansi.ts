// ANSI escape sequences in log text: SGR (colours and attributes) is rendered, everything else
// (cursor moves, OSC titles and links, other control characters) is dropped.

/** A colour: 0–15 is one of the 16 palette colours (a CSS class), a string is a CSS colour. */
export type Colour = number | string | null;

export interface Style {
  fg: Colour;
  bg: Colour;
  bold: boolean;
  dim: boolean;
  italic: boolean;
  underline: boolean;
  inverse: boolean;
}

export interface Segment {
  text: string;
  style: Style | null;
}

// ESC followed by a CSI, an OSC, a DCS/SOS/PM/APC string or a single character; or another
// control character (tab and newline are kept).
const ESCAPES =
  /\x1b(?:\[([0-?]*)([ -/]*)([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[PX^_][^\x1b]*(?:\x1b\\)?|[ -~]?)|[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f\x9b]/g;
const HAS_CONTROL = /[\x00-\x08\x0b-\x1f\x7f\x9b]/;

export function stripAnsi(s: string): string {
  return HAS_CONTROL.test(s) ? s.replace(ESCAPES, "") : s;
}

const PLAIN: Style = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false };

function isPlain(s: Style): boolean {
  return s.fg === null && s.bg === null && !s.bold && !s.dim && !s.italic && !s.underline && !s.inverse;
}

const CUBE = [0, 95, 135, 175, 215, 255];

function colour256(n: number): Colour {
  if (!(n >= 0 && n <= 255)) return null;
  if (n < 16) return n;
  if (n < 232) {
    const i = n - 16;
    return `rgb(${CUBE[Math.floor(i / 36)]},${CUBE[Math.floor(i / 6) % 6]},${CUBE[i % 6]})`;
  }
  const g = 8 + 10 * (n - 232);
  return `rgb(${g},${g},${g})`;
}

function rgb(r: number, g: number, b: number): Colour {
  const ok = (v: number) => Number.isInteger(v) && v >= 0 && v <= 255;
  return ok(r) && ok(g) && ok(b) ? `rgb(${r},${g},${b})` : null;
}

/** The style after the SGR parameters `params` (as written between `ESC [` and `m`). */
export function applySgr(style: Style, params: string): Style {
  const s = { ...style };
  const groups = params === "" ? ["0"] : params.split(";");
  for (let i = 0; i < groups.length; i++) {
    const group = groups[i];
    if (group.includes(":")) {
      // ITU form: 38:5:n, 38:2::r:g:b or 38:2:r:g:b (and 4:x underline styles)
      const sub = group.split(":").map((x) => (x === "" ? 0 : Number(x)));
      if (sub[0] === 38 || sub[0] === 48) {
        let c: Colour = null;
        if (sub[1] === 5) c = colour256(sub[2]);
        else if (sub[1] === 2) c = sub.length >= 6 ? rgb(sub[3], sub[4], sub[5]) : rgb(sub[2], sub[3], sub[4]);
        if (sub[0] === 38) s.fg = c;
        else s.bg = c;
      } else if (sub[0] === 4) {
        s.underline = sub[1] !== 0;
      }
      continue;
    }
    const p = group === "" ? 0 : Number(group);
    if (p === 38 || p === 48) {
      const kind = Number(groups[i + 1]);
      let c: Colour = null;
      if (kind === 5) {
        c = colour256(Number(groups[i + 2]));
        i += 2;
      } else if (kind === 2) {
        c = rgb(Number(groups[i + 2]), Number(groups[i + 3]), Number(groups[i + 4]));
        i += 4;
      } else {
        i += 1;
      }
      if (p === 38) s.fg = c;
      else s.bg = c;
      continue;
    }
    if (p === 0) Object.assign(s, PLAIN);
    else if (p === 1) s.bold = true;
    else if (p === 2) s.dim = true;
    else if (p === 3) s.italic = true;
    else if (p === 4) s.underline = true;
    else if (p === 7) s.inverse = true;
    else if (p === 21 || p === 22) s.bold = s.dim = false;
    else if (p === 23) s.italic = false;
    else if (p === 24) s.underline = false;
    else if (p === 27) s.inverse = false;
    else if (p >= 30 && p <= 37) s.fg = p - 30;
    else if (p === 39) s.fg = null;
    else if (p >= 40 && p <= 47) s.bg = p - 40;
    else if (p === 49) s.bg = null;
    else if (p >= 90 && p <= 97) s.fg = p - 90 + 8;
    else if (p >= 100 && p <= 107) s.bg = p - 100 + 8;
  }
  return s;
}

/** The text split into runs of one style; `style` is null for plain runs. */
export function parseAnsi(text: string): Segment[] {
  if (!HAS_CONTROL.test(text)) return [{ text, style: null }];
  const out: Segment[] = [];
  let style = PLAIN;
  let last = 0;
  const emit = (t: string) => {
    if (!t) return;
    const st = isPlain(style) ? null : style;
    const prev = out[out.length - 1];
    if (prev && prev.style === st) prev.text += t;
    else out.push({ text: t, style: st });
  };
  ESCAPES.lastIndex = 0;
  for (let m = ESCAPES.exec(text); m; m = ESCAPES.exec(text)) {
    emit(text.slice(last, m.index));
    last = ESCAPES.lastIndex;
    if (m[3] === "m" && m[2] === "" && m[1] !== undefined && !/[<=>?]/.test(m[1])) style = applySgr(style, m[1]);
  }
  emit(text.slice(last));
  return out;
}
