// A small pop-up menu under a button (or at the pointer): items with an icon and a label.
// Escape, a click elsewhere or a choice closes it.

import { h, icon, type IconName } from "./dom";

export interface MenuItem {
  label: string;
  icon?: IconName;
  id?: string;
  danger?: boolean;
  disabled?: boolean;
  run: () => void;
}

let open: { el: HTMLElement; close: () => void } | null = null;

export function closeMenu(): void {
  open?.close();
}

/** Shows `items` below `anchor`, or at `at` (viewport coordinates). */
export function showMenu(items: (MenuItem | "-")[], anchor: HTMLElement | null, at?: { x: number; y: number }): void {
  closeMenu();
  const el = h("div", { class: "menu", role: "menu" });
  for (const it of items) {
    if (it === "-") {
      el.append(h("div", { class: "menu-sep", role: "separator" }));
      continue;
    }
    const b = h(
      "button",
      { type: "button", role: "menuitem", id: it.id, class: it.danger ? "danger" : undefined, disabled: it.disabled },
      it.icon ? icon(it.icon) : h("span", { class: "icon" }),
      h("span", null, it.label),
    );
    b.addEventListener("click", () => {
      close();
      it.run();
    });
    el.append(b);
  }
  document.body.append(el);
  const r = anchor?.getBoundingClientRect();
  const x = at?.x ?? r?.left ?? 0;
  const y = at?.y ?? (r ? r.bottom + 4 : 0);
  const w = el.offsetWidth;
  const hgt = el.offsetHeight;
  el.style.left = `${Math.max(4, Math.min(x, innerWidth - w - 4))}px`;
  el.style.top = `${y + hgt > innerHeight - 4 ? Math.max(4, (r ? r.top - 4 : y) - hgt) : y}px`;
  const onDown = (e: Event) => {
    if (!el.contains(e.target as Node) && e.target !== anchor && !anchor?.contains(e.target as Node)) close();
  };
  const onKey = (e: KeyboardEvent) => {
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      close();
      anchor?.focus();
    } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const buttons = Array.from(el.querySelectorAll<HTMLButtonElement>("button:not([disabled])"));
      const i = buttons.indexOf(document.activeElement as HTMLButtonElement);
      const next = e.key === "ArrowDown" ? (i + 1) % buttons.length : (i - 1 + buttons.length) % buttons.length;
      buttons[next]?.focus();
    }
  };
  function close() {
    el.remove();
    document.removeEventListener("pointerdown", onDown, true);
    document.removeEventListener("keydown", onKey, true);
    window.removeEventListener("resize", close);
    if (open?.el === el) open = null;
  }
  document.addEventListener("pointerdown", onDown, true);
  document.addEventListener("keydown", onKey, true);
  window.addEventListener("resize", close);
  open = { el, close };
  el.querySelector<HTMLButtonElement>("button:not([disabled])")?.focus();
}

/** A button that opens a menu: a second click closes it again. */
export function menuButton(btn: HTMLButtonElement, items: () => (MenuItem | "-")[]): void {
  btn.setAttribute("aria-haspopup", "menu");
  btn.addEventListener("click", () => {
    if (open) {
      closeMenu();
      return;
    }
    showMenu(items(), btn);
  });
}
