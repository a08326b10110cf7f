// The terminal's colours, light or dark as the OS is set: read from gpubox.css, the one palette
// (the 16 ANSI colours are the logs app's too).

import type { ITheme } from "@xterm/xterm";
import type { ISearchDecorationOptions } from "@xterm/addon-search";

export interface Palette {
  theme: ITheme;
  /** Search highlights (xterm wants #RRGGBB here). */
  search: ISearchDecorationOptions;
}

const ANSI = [
  "black", "red", "green", "yellow", "blue", "magenta", "cyan", "white",
  "brightBlack", "brightRed", "brightGreen", "brightYellow", "brightBlue", "brightMagenta", "brightCyan", "brightWhite",
] as const;

export function palette(): Palette {
  const style = getComputedStyle(document.documentElement);
  const v = (name: string) => style.getPropertyValue(`--${name}`).trim();
  const theme: ITheme = {
    background: v("term-bg"),
    foreground: v("fg"),
    cursor: v("accent"),
    cursorAccent: v("term-bg"),
    selectionBackground: v("term-selection"),
    selectionInactiveBackground: v("term-selection-idle"),
    scrollbarSliderBackground: v("term-scroll"),
    scrollbarSliderHoverBackground: v("term-scroll-hover"),
    scrollbarSliderActiveBackground: v("term-scroll-active"),
  };
  ANSI.forEach((name, i) => (theme[name] = v(`ansi${i}`)));
  return {
    theme,
    search: {
      matchBackground: v("term-match"),
      matchOverviewRuler: v("term-match-ruler"),
      activeMatchBackground: v("term-active"),
      activeMatchColorOverviewRuler: v("term-active-ruler"),
    },
  };
}

const dark = window.matchMedia("(prefers-color-scheme: dark)");

/** Calls `apply` now and whenever the OS switches between light and dark. */
export function followScheme(apply: (p: Palette) => void): void {
  apply(palette());
  dark.addEventListener("change", () => apply(palette()));
}
