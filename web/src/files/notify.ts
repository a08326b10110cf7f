// Short messages at the bottom of the page: what just happened, or what went wrong and what to
// do. Errors stay until closed; the rest fade after a few seconds.

import { h, iconButton } from "./dom";

let box: HTMLElement | null = null;

function container(): HTMLElement {
  if (!box) {
    box = h("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  return box;
}

export function notify(text: string, kind: "ok" | "error" | "info" = "info", extra?: Node): HTMLElement {
  const close = iconButton("close", "Dismiss");
  const t = h("div", { class: `toast ${kind}` }, h("span", { class: "toast-text" }, text), extra ?? null, close);
  const remove = () => t.remove();
  close.addEventListener("click", remove);
  container().append(t);
  if (kind !== "error") setTimeout(remove, 4000);
  while (container().children.length > 4) container().firstElementChild?.remove();
  return t;
}
