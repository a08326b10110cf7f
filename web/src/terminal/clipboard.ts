// Copy and paste: copy on selection, Ctrl+Shift+C / Ctrl+Shift+V, and a small Copy / Paste menu
// on right-click. The async clipboard API needs a secure context (https, or localhost); over
// plain http copying falls back to execCommand and pasting to the browser's own paste (which
// Ctrl+Shift+V and the browser's context menu trigger), since a page cannot read the clipboard.

import type { Terminal } from "@xterm/xterm";
import { copyText as copy } from "../common/clipboard";
import { h } from "./dom";

const canRead = (): boolean => window.isSecureContext && typeof navigator.clipboard?.readText === "function";

export async function copyText(text: string, term: Terminal): Promise<boolean> {
  const ok = await copy(text);
  term.focus();
  return ok;
}

export interface ClipboardHooks {
  notice(text: string): void;
  find(): void;
}

/** Wires copy-on-select, the keyboard shortcuts, and the context menu to the terminal. */
export function wireClipboard(term: Terminal, el: HTMLElement, hooks: ClipboardHooks): void {
  const copySelection = async (): Promise<void> => {
    const text = term.getSelection();
    if (text && (await copyText(text, term))) hooks.notice(`Copied ${text.length} character${text.length === 1 ? "" : "s"}`);
  };
  const paste = async (): Promise<void> => {
    if (!canRead()) {
      hooks.notice("Press Ctrl+Shift+V (⌘V on a Mac) to paste");
      return;
    }
    try {
      const text = await navigator.clipboard.readText();
      if (text) term.paste(text);
    } catch {
      hooks.notice("The browser did not allow reading the clipboard: press Ctrl+Shift+V");
    }
    term.focus();
  };

  // Copy on selection, once the mouse is released (not at every step of a drag).
  let selecting = false;
  el.addEventListener("mousedown", (ev) => {
    if (ev.button === 0) selecting = true;
  });
  document.addEventListener("mouseup", () => {
    if (!selecting) return;
    selecting = false;
    window.setTimeout(() => {
      if (term.hasSelection()) void copySelection();
    }, 0);
  });

  term.attachCustomKeyEventHandler((ev) => {
    if (ev.type !== "keydown" || !ev.ctrlKey || !ev.shiftKey || ev.altKey || ev.metaKey) return true;
    switch (ev.code) {
      case "KeyC":
        ev.preventDefault();
        void copySelection();
        return false;
      case "KeyV":
        // Not handled here: the browser's paste follows, and xterm.js takes it from its textarea
        // (no permission prompt, and it works over plain http).
        return false;
      case "KeyF":
        ev.preventDefault();
        hooks.find();
        return false;
    }
    return true;
  });

  // Our own menu only where it can paste; elsewhere the browser's menu has working Copy/Paste.
  const menu = h("div", { class: "term-menu", role: "menu", hidden: "" });
  const item = (label: string, keys: string, run: () => void): HTMLButtonElement => {
    const b = h("button", { type: "button", role: "menuitem" }, h("span", {}, label), h("kbd", {}, keys));
    b.addEventListener("click", () => {
      hide();
      run();
    });
    return b;
  };
  const copyItem = item("Copy", "Ctrl+Shift+C", () => void copySelection());
  menu.append(
    copyItem,
    item("Paste", "Ctrl+Shift+V", () => void paste()),
    item("Select all", "", () => {
      term.selectAll();
      void copySelection();
    }),
    item("Find…", "Ctrl+Shift+F", () => hooks.find()),
  );
  document.body.append(menu);
  const hide = (): void => {
    menu.hidden = true;
  };
  el.addEventListener("contextmenu", (ev) => {
    if (!canRead() || ev.shiftKey) return;
    ev.preventDefault();
    copyItem.disabled = !term.hasSelection();
    menu.hidden = false;
    const { innerWidth: w, innerHeight: hgt } = window;
    const r = menu.getBoundingClientRect();
    menu.style.left = `${Math.min(ev.clientX, w - r.width - 4)}px`;
    menu.style.top = `${Math.min(ev.clientY, hgt - r.height - 4)}px`;
    (copyItem.disabled ? menu.querySelectorAll("button")[1] : copyItem)?.focus();
  });
  document.addEventListener("mousedown", (ev) => {
    if (!menu.hidden && !menu.contains(ev.target as Node)) hide();
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && !menu.hidden) {
      hide();
      term.focus();
    }
  });
  window.addEventListener("blur", hide);
  window.addEventListener("resize", hide);
}
