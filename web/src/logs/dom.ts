// The builder is the shared one; what only the log viewer needs is here.
export { fill, h } from "../common/dom";

export function setPressed(el: HTMLElement, on: boolean): void {
  el.setAttribute("aria-pressed", on ? "true" : "false");
}
