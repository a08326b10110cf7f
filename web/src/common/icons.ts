// The icons every page uses: line icons on a 16×16 grid, drawn with the current text colour, and
// the button that shows only one.
import { h, type Attrs } from "./dom";

const SVG = "http://www.w3.org/2000/svg";

const ICONS = {
  folder: "M1.5 4.5v8a1 1 0 0 0 1 1h11a1 1 0 0 0 1-1v-6.5a1 1 0 0 0-1-1H8L6.5 3h-4a1 1 0 0 0-1 1.5z",
  file: "M3.5 1.5h6l3 3v10h-9zM9.5 1.5v3h3",
  image: "M2.5 2.5h11v11h-11zM2.5 11l3.5-3.5 3 3 1.5-1.5 3 3M10.5 5.5a1 1 0 1 0 0 .01",
  video: "M1.5 4h9v8h-9zM10.5 7l4-2.5v7l-4-2.5",
  audio: "M6 12.5a2 2 0 1 1-2-2 2 2 0 0 1 2 2zM6 12.5V3l7.5-1.5v9M13.5 10.5a2 2 0 1 1-2-2 2 2 0 0 1 2 2",
  code: "M3.5 1.5h6l3 3v10h-9zM6.5 8 5 9.5 6.5 11M9.5 8 11 9.5 9.5 11",
  archive: "M3.5 1.5h9v13h-9zM7.5 1.5v1M8.5 3v1M7.5 4.5v1M8.5 6v1M7 8h2v2.5H7z",
  model: "M8 1.5 14 5v6l-6 3.5L2 11V5zM2 5l6 3.5L14 5M8 8.5v6",
  link: "M6.5 9.5a3 3 0 0 0 4.2 0l2-2a3 3 0 0 0-4.2-4.2l-.8.8M9.5 6.5a3 3 0 0 0-4.2 0l-2 2a3 3 0 0 0 4.2 4.2l.8-.8",
  other: "M8 1.5a6.5 6.5 0 1 0 0 13 6.5 6.5 0 0 0 0-13zM5.5 8h5",
  upload: "M8 11V2.5M4.5 6 8 2.5 11.5 6M2.5 10.5v3h11v-3",
  download: "M8 2.5V11M4.5 7.5 8 11l3.5-3.5M2.5 13.5h11",
  newFolder: "M1.5 4.5v8a1 1 0 0 0 1 1h11a1 1 0 0 0 1-1v-6.5a1 1 0 0 0-1-1H8L6.5 3h-4a1 1 0 0 0-1 1.5zM8 7.5v4M6 9.5h4",
  newFile: "M3.5 1.5h6l3 3v10h-9zM9.5 1.5v3h3M8 7v5M5.5 9.5h5",
  rename: "M10.5 2.5l3 3L6 13H3v-3z",
  move: "M1.5 4.5v8a1 1 0 0 0 1 1h11a1 1 0 0 0 1-1v-6.5a1 1 0 0 0-1-1H8L6.5 3h-4a1 1 0 0 0-1 1.5zM6 9.5h4.5M9 8l1.5 1.5L9 11",
  copy: "M5.5 5.5h8v8h-8zM10.5 5.5v-3h-8v8h3",
  trash: "M2.5 4h11M6 4V2.5h4V4M4 4l.7 9.5h6.6L12 4M6.8 6.5v5M9.2 6.5v5",
  hash: "M6 2 4.5 14M11.5 2 10 14M2.5 5.5h11M2 10.5h11",
  extract: "M3.5 1.5h9v13h-9zM8 5v6M5.5 8.5 8 11l2.5-2.5",
  fetch: "M6.5 9.5a3 3 0 0 0 4.2 0l2-2a3 3 0 0 0-4.2-4.2l-.8.8M9.5 6.5a3 3 0 0 0-4.2 0l-2 2a3 3 0 0 0 4.2 4.2l.8-.8",
  search: "M7 2.5a4.5 4.5 0 1 0 0 9 4.5 4.5 0 0 0 0-9zM10.3 10.3 14 14",
  close: "M4 4l8 8M12 4l-8 8",
  up: "M8 13V3M3.5 7.5 8 3l4.5 4.5",
  refresh: "M13 8a5 5 0 1 1-1.5-3.6M13 2.5v2.5h-2.5",
  eye: "M1.5 8s2.5-4.5 6.5-4.5S14.5 8 14.5 8 12 12.5 8 12.5 1.5 8 1.5 8zM8 6a2 2 0 1 0 0 4 2 2 0 0 0 0-4z",
  pencil: "M10.5 2.5l3 3L6 13H3v-3z",
  save: "M2.5 2.5h9l2 2v9h-11zM5 2.5v3.5h5.5V2.5M5 13.5v-4h6v4",
  check: "M3 8.5 6.5 12 13 4.5",
  chevron: "M6 3.5 10.5 8 6 12.5",
  more: "M3.5 8h.01M8 8h.01M12.5 8h.01",
  home: "M2 7.5 8 2.5l6 5M3.5 6.5v7h3.5v-4h2v4h3.5v-7",
  disk: "M2 4.5h12v7H2zM11.5 8h.01M4 8h4",
  plus: "M8 3v10M3 8h10",
  grid: "M2.5 2.5h4.5v4.5h-4.5zM9 2.5h4.5v4.5H9zM2.5 9h4.5v4.5h-4.5zM9 9h4.5v4.5H9z",
  list: "M2.5 4h11M2.5 8h11M2.5 12h11",
  left: "M10 3.5 5.5 8 10 12.5",
  zoomIn: "M7 2.5a4.5 4.5 0 1 0 0 9 4.5 4.5 0 0 0 0-9zM10.3 10.3 14 14M5 7h4M7 5v4",
  zoomOut: "M7 2.5a4.5 4.5 0 1 0 0 9 4.5 4.5 0 0 0 0-9zM10.3 10.3 14 14M5 7h4",
  fit: "M2.5 6V2.5H6M10 2.5h3.5V6M13.5 10v3.5H10M6 13.5H2.5V10",
  chevronUp: "M4 10l4-4 4 4",
  chevronDown: "M4 6l4 4 4-4",
  terminal: "M2.5 3.5h11v9h-11zM5 6.5l2 1.5-2 1.5M8.5 10h2.5",
} as const;

export type IconName = keyof typeof ICONS;

export function icon(name: IconName, cls = "icon"): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", cls);
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  return svg;
}

/** A button that shows only its icon, named for screen readers and tooltips. */
export function iconButton(name: IconName, label: string, attrs: Attrs = {}): HTMLButtonElement {
  return h("button", { type: "button", title: label, "aria-label": label, class: "icon-only", ...attrs }, icon(name));
}
