// Which lines stand out: errors, warnings, and Python tracebacks as one block (from
// "Traceback (most recent call last):" through its indented lines to the exception line).

import { F_ERR, F_TB, F_TB_END, F_TB_START, F_WARN } from "./store";

const ERROR = /\b(?:ERROR|FATAL|CRITICAL)\b|Error:|Exception|\blevel"?\s*[:=]\s*"?(?:error|fatal|critical)\b/;
const WARN = /\bWARN(?:ING)?\b|Warning:|\blevel"?\s*[:=]\s*"?warn(?:ing)?\b/;
const TB_START = /^Traceback \(most recent call last\):/;
const TB_CHAIN = /^(?:During handling of the above exception|The above exception was the direct cause)/;

/** Remembers, per service and stream, whether a traceback is open. */
export class Classifier {
  private open = new Set<number>();

  /** Flags for `text` (ANSI already stripped), which follows the previous line of `key`. */
  flags(key: number, text: string): number {
    if (this.open.has(key)) {
      if (text === "" || text.charCodeAt(0) === 32 || text.charCodeAt(0) === 9) return F_TB | F_ERR;
      if (TB_START.test(text)) return F_TB | F_ERR;
      this.open.delete(key);
      return F_TB | F_TB_END | F_ERR;
    }
    if (TB_START.test(text)) {
      this.open.add(key);
      return F_TB | F_TB_START | F_ERR;
    }
    if (TB_CHAIN.test(text)) return F_TB | F_TB_START | F_TB_END | F_ERR;
    if (ERROR.test(text)) return F_ERR;
    if (WARN.test(text)) return F_WARN;
    return 0;
  }
}
