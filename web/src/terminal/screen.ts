// The xterm.js terminal with its addons: fit (size follows the window), unicode 11 widths, web
// links, search. One terminal serves the page for its whole life; switching sessions redraws it.

import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { SearchAddon } from "@xterm/addon-search";
import { Unicode11Addon } from "@xterm/addon-unicode11";
import { WebLinksAddon } from "@xterm/addon-web-links";
import { followScheme } from "./theme";

const FONT =
  'ui-monospace, "SF Mono", Menlo, "Cascadia Mono", Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace';

/** Opens a link from the terminal in a new tab that cannot reach back into this page. */
function openLink(uri: string): void {
  if (!/^https?:\/\//i.test(uri)) return;
  window.open(uri, "_blank", "noopener,noreferrer");
}

export class Screen {
  readonly term: Terminal;
  readonly search = new SearchAddon();
  private readonly fitter = new FitAddon();

  constructor(readonly el: HTMLElement) {
    const narrow = window.matchMedia("(max-width: 700px)").matches;
    this.term = new Terminal({
      // The unicode and decoration (search highlight) APIs are still "proposed" in xterm.js.
      allowProposedApi: true,
      cursorBlink: true,
      fontFamily: FONT,
      fontSize: narrow ? 12 : 14,
      lineHeight: 1.15,
      scrollback: 10000,
      minimumContrastRatio: 3,
      linkHandler: { activate: (_ev, text) => openLink(text) },
    });
    this.term.loadAddon(this.fitter);
    this.term.loadAddon(this.search);
    this.term.loadAddon(new Unicode11Addon());
    this.term.unicode.activeVersion = "11";
    this.term.loadAddon(new WebLinksAddon((_ev, uri) => openLink(uri)));
    this.term.open(el);
    followScheme((p) => {
      this.term.options.theme = p.theme;
      // The space around the grid (a fraction of a cell) takes the terminal's background.
      el.style.backgroundColor = p.theme.background ?? "";
    });
    this.term.onResize(({ cols, rows }) => {
      el.dataset.cols = String(cols);
      el.dataset.rows = String(rows);
    });
    el.dataset.cols = String(this.term.cols);
    el.dataset.rows = String(this.term.rows);
  }

  /** The size that fills the container, or null while it has no size (hidden, not laid out). */
  proposed(): { cols: number; rows: number } | null {
    const d = this.fitter.proposeDimensions();
    if (!d || !Number.isFinite(d.cols) || !Number.isFinite(d.rows) || d.cols < 2 || d.rows < 1) return null;
    return { cols: d.cols, rows: d.rows };
  }

  /** Fits the terminal to its container; returns the size it now has. */
  fit(): { cols: number; rows: number } {
    const d = this.proposed();
    if (d && (d.cols !== this.term.cols || d.rows !== this.term.rows)) this.term.resize(d.cols, d.rows);
    return { cols: this.term.cols, rows: this.term.rows };
  }
}
