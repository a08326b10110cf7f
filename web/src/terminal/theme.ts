// The terminal's colours, light or dark as the OS is set (as gpubox.css is). The ANSI palettes
// are VS Code's integrated terminal's, which are readable on these backgrounds.

import type { ITheme } from "@xterm/xterm";
import type { ISearchDecorationOptions } from "@xterm/addon-search";

export interface Palette {
  theme: ITheme;
  /** Search highlights (xterm wants #RRGGBB here). */
  search: ISearchDecorationOptions;
}

const DARK: Palette = {
  theme: {
    background: "#111317",
    foreground: "#e6e8eb",
    cursor: "#7aa2ff",
    cursorAccent: "#111317",
    selectionBackground: "#35508a",
    selectionInactiveBackground: "#2a3550",
    scrollbarSliderBackground: "rgba(154, 163, 175, 0.25)",
    scrollbarSliderHoverBackground: "rgba(154, 163, 175, 0.4)",
    scrollbarSliderActiveBackground: "rgba(154, 163, 175, 0.55)",
    black: "#2c313a",
    red: "#f14c4c",
    green: "#23d18b",
    yellow: "#e5e510",
    blue: "#3b8eea",
    magenta: "#d670d6",
    cyan: "#29b8db",
    white: "#cdd2d9",
    brightBlack: "#767e8c",
    brightRed: "#ff6e6e",
    brightGreen: "#4be0a2",
    brightYellow: "#f5f543",
    brightBlue: "#6aa8f5",
    brightMagenta: "#e58ae5",
    brightCyan: "#55cdea",
    brightWhite: "#ffffff",
  },
  search: {
    matchBackground: "#4a4216",
    matchOverviewRuler: "#d7ba4a",
    activeMatchBackground: "#8a6d00",
    activeMatchColorOverviewRuler: "#ffd97a",
  },
};

const LIGHT: Palette = {
  theme: {
    background: "#ffffff",
    foreground: "#1c1f24",
    cursor: "#2457d6",
    cursorAccent: "#ffffff",
    selectionBackground: "#b9cdf5",
    selectionInactiveBackground: "#d9e2f3",
    scrollbarSliderBackground: "rgba(91, 100, 114, 0.25)",
    scrollbarSliderHoverBackground: "rgba(91, 100, 114, 0.4)",
    scrollbarSliderActiveBackground: "rgba(91, 100, 114, 0.55)",
    black: "#1c1f24",
    red: "#cd3131",
    green: "#00a000",
    yellow: "#949800",
    blue: "#0451a5",
    magenta: "#bc05bc",
    cyan: "#0598bc",
    white: "#8a8f98",
    brightBlack: "#5b6472",
    brightRed: "#e04040",
    brightGreen: "#14a814",
    brightYellow: "#a0a400",
    brightBlue: "#2457d6",
    brightMagenta: "#bc05bc",
    brightCyan: "#0598bc",
    brightWhite: "#a5a5a5",
  },
  search: {
    matchBackground: "#fff0a8",
    matchOverviewRuler: "#c9a800",
    activeMatchBackground: "#ffc94d",
    activeMatchColorOverviewRuler: "#b07800",
  },
};

const dark = window.matchMedia("(prefers-color-scheme: dark)");

export function palette(): Palette {
  return dark.matches ? DARK : LIGHT;
}

/** Calls `apply` now and whenever the OS switches between light and dark. */
export function followScheme(apply: (p: Palette) => void): void {
  apply(palette());
  dark.addEventListener("change", () => apply(palette()));
}
