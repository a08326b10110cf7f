// A picture in the viewer: fitted to the window, zoomed (buttons, + and - and 0, Ctrl+wheel,
// a double click for 100 %), dragged about when bigger than the window, swiped to the next or
// previous one on a touch screen; beside it, what Forge wrote into it (prompt, negative prompt,
// settings) with copy buttons. A picture without that shows no panel and no error.

import { api, fileUrl, type Generation } from "./api";
import { copyText } from "../common/clipboard";
import { button, h, iconButton } from "./dom";
import { notify } from "./notify";

const STEPS = [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8];

export class Picture {
  readonly el: HTMLElement;
  readonly tools: HTMLElement;
  private readonly img: HTMLImageElement;
  private readonly stage: HTMLElement;
  private readonly level: HTMLElement;
  /** null: fitted to the stage; else the scale of the natural size. */
  private zoom: number | null = null;

  constructor(
    path: string,
    name: string,
    signal: AbortSignal,
    step: (dir: 1 | -1) => void,
    private readonly size: (w: number, h: number) => void,
  ) {
    this.img = h("img", { src: fileUrl(path, true), alt: name, id: "viewer-image", class: "fit", draggable: "false" });
    const prev = iconButton("left", "Previous (←)", { id: "viewer-prev", class: "icon-only nav prev" });
    const next = iconButton("chevron", "Next (→)", { id: "viewer-next", class: "icon-only nav next" });
    prev.addEventListener("click", () => step(-1));
    next.addEventListener("click", () => step(1));
    this.stage = h("div", { class: "stage" }, this.img);
    this.el = h("div", { class: "picture" }, h("div", { class: "stage-wrap" }, this.stage, prev, next));

    this.level = h("span", { class: "zoom-level", id: "zoom-level" }, "Fit");
    const out = iconButton("zoomOut", "Zoom out (−)", { id: "zoom-out" });
    const inn = iconButton("zoomIn", "Zoom in (+)", { id: "zoom-in" });
    const fit = iconButton("fit", "Fit to the window (0)", { id: "zoom-fit" });
    out.addEventListener("click", () => this.by(-1));
    inn.addEventListener("click", () => this.by(1));
    fit.addEventListener("click", () => this.set(null));
    this.tools = h("div", { class: "zoom" }, out, this.level, inn, fit);

    this.img.addEventListener("load", () => this.size(this.img.naturalWidth, this.img.naturalHeight));
    this.img.addEventListener("dblclick", (e) => this.toggle(e));
    this.stage.addEventListener(
      "wheel",
      (e) => {
        if (!e.ctrlKey) return;
        e.preventDefault();
        this.by(e.deltaY < 0 ? 1 : -1, e);
      },
      { passive: false },
    );
    this.pointer(step);
    void this.info(path, signal);
  }

  /** +, - and 0 while the picture is shown; true when the key was used. */
  key(e: KeyboardEvent): boolean {
    if (e.ctrlKey || e.metaKey || e.altKey) return false;
    if (e.key === "+" || e.key === "=") this.by(1);
    else if (e.key === "-") this.by(-1);
    else if (e.key === "0") this.set(null);
    else return false;
    return true;
  }

  private fitScale(): number {
    const w = this.img.naturalWidth || 1;
    const hh = this.img.naturalHeight || 1;
    return Math.min(1, this.stage.clientWidth / w, this.stage.clientHeight / hh);
  }

  /** Stops loading the picture (the viewer moved on before it came). */
  dispose(): void {
    this.img.removeAttribute("src");
  }

  /** One step in or out from where it is (fitted counts as its own scale). */
  private by(dir: 1 | -1, at?: { clientX: number; clientY: number }): void {
    if (!this.img.naturalWidth) return; // not loaded yet: nothing to scale
    const now = this.zoom ?? this.fitScale();
    const next = dir > 0 ? STEPS.find((s) => s > now + 1e-6) : [...STEPS].reverse().find((s) => s < now - 1e-6);
    if (next !== undefined) this.set(next, at);
  }

  private toggle(e: MouseEvent): void {
    if (this.img.naturalWidth) this.set(this.zoom === null ? 1 : null, e);
  }

  /** Sets the scale, keeping the point under the pointer (or the middle) where it was. */
  private set(zoom: number | null, at?: { clientX: number; clientY: number }): void {
    const s = this.stage;
    const box = s.getBoundingClientRect();
    const px = at ? at.clientX - box.left : s.clientWidth / 2;
    const py = at ? at.clientY - box.top : s.clientHeight / 2;
    const before = this.zoom ?? this.fitScale();
    const fx = (s.scrollLeft + px) / before;
    const fy = (s.scrollTop + py) / before;
    this.zoom = zoom;
    this.img.classList.toggle("fit", zoom === null);
    s.classList.toggle("zoomed", zoom !== null);
    if (zoom === null) {
      this.img.style.width = "";
      this.level.textContent = "Fit";
      return;
    }
    this.img.style.width = `${Math.round(this.img.naturalWidth * zoom)}px`;
    this.level.textContent = `${Math.round(zoom * 100)} %`;
    s.scrollLeft = fx * zoom - px;
    s.scrollTop = fy * zoom - py;
  }

  /** Dragging pans a zoomed picture; a sideways swipe (touch, fitted) goes to the next one. */
  private pointer(step: (dir: 1 | -1) => void): void {
    let start: { x: number; y: number; left: number; top: number; id: number; type: string } | null = null;
    this.stage.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      if (start) {
        start = null; // a second finger: a pinch, not a swipe
        return;
      }
      start = { x: e.clientX, y: e.clientY, left: this.stage.scrollLeft, top: this.stage.scrollTop, id: e.pointerId, type: e.pointerType };
      if (this.zoom !== null && e.pointerType === "mouse") {
        this.stage.setPointerCapture(e.pointerId);
        this.stage.classList.add("dragging");
      }
    });
    this.stage.addEventListener("pointermove", (e) => {
      if (!start || e.pointerId !== start.id || this.zoom === null || start.type !== "mouse") return;
      this.stage.scrollLeft = start.left - (e.clientX - start.x);
      this.stage.scrollTop = start.top - (e.clientY - start.y);
    });
    const end = (e: PointerEvent) => {
      if (!start || e.pointerId !== start.id) return;
      const dx = e.clientX - start.x;
      const dy = e.clientY - start.y;
      const swipe = start.type !== "mouse" && this.zoom === null && Math.abs(dx) > 50 && Math.abs(dx) > 2 * Math.abs(dy);
      start = null;
      this.stage.classList.remove("dragging");
      if (swipe && e.type === "pointerup") step(dx < 0 ? 1 : -1);
    };
    this.stage.addEventListener("pointerup", end);
    this.stage.addEventListener("pointercancel", end);
  }

  private async info(path: string, signal: AbortSignal): Promise<void> {
    try {
      const info = await api.imageInfo(path, signal);
      if (signal.aborted) return;
      if (info.width && info.height) this.size(info.width, info.height);
      if (info.generation) this.el.append(panel(info.generation));
    } catch {
      // No panel: the picture is what matters.
    }
  }
}

function copyButton(what: string, text: string, id: string): HTMLButtonElement {
  const b = button("copy", `Copy ${what}`, { id, class: "small" });
  b.addEventListener("click", async () => {
    const ok = await copyText(text);
    notify(ok ? `Copied the ${what}.` : "The browser did not allow copying: select the text and copy it.", ok ? "info" : "error");
  });
  return b;
}

/** The generation text: prompt, negative prompt, settings, and the whole text to paste into
 * Forge's prompt box (its ↙ button then reads every setting back). */
function panel(g: Generation): HTMLElement {
  const section = (title: string, id: string, text: string) =>
    h(
      "section",
      null,
      h("div", { class: "gen-head" }, h("h3", null, title), copyButton(title.toLowerCase(), text, `${id}-copy`)),
      h("p", { class: "gen-text", id }, text),
    );
  const parts: HTMLElement[] = [];
  if (g.prompt) parts.push(section("Prompt", "gen-prompt", g.prompt));
  if (g.negative_prompt) parts.push(section("Negative prompt", "gen-negative", g.negative_prompt));
  if (g.settings.length) {
    const dl = h("dl", { id: "gen-settings" });
    for (const [k, v] of g.settings) dl.append(h("dt", null, k), h("dd", null, v));
    parts.push(h("section", null, h("h3", null, "Settings"), dl));
  }
  const all = copyButton("parameters", g.text, "gen-copy-all");
  all.title = "The whole text: paste it into Forge's prompt box and press ↙ to use every setting";
  return h("aside", { class: "gen", id: "gen-panel", "aria-label": "How it was made" }, ...parts, all);
}
