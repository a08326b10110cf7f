// On a phone (or any touch screen): a row of the keys a touch keyboard lacks — Esc, Tab, Ctrl,
// Alt, the arrows, | ~ / - — as phone terminals have. Ctrl and Alt stay pressed for the next key,
// typed on the phone's keyboard or here. The buttons never take the focus from the terminal,
// so the phone's keyboard stays up.

import type { Terminal } from "@xterm/xterm";
import { h } from "./dom";

export class KeyBar {
  readonly el: HTMLElement;
  private ctrl = false;
  private alt = false;
  private readonly ctrlKey: HTMLButtonElement;
  private readonly altKey: HTMLButtonElement;

  constructor(
    private readonly term: Terminal,
    private readonly send: (data: string) => void,
  ) {
    const key = (label: string, name: string, onPress: () => void): HTMLButtonElement => {
      const b = h("button", { type: "button", class: "key", title: name, "aria-label": name, "data-key": name }, label);
      // Not focusable by a tap: the terminal keeps the focus (and the phone its keyboard).
      b.addEventListener("pointerdown", (e) => e.preventDefault());
      b.addEventListener("click", () => {
        onPress();
        this.term.focus();
      });
      return b;
    };
    const typing = (label: string, name: string, data: () => string) => key(label, name, () => this.send(this.apply(data())));
    // Arrows as the program asked for them (application cursor keys: vim, less, htop).
    const arrow = (c: string) => () => (this.term.modes.applicationCursorKeysMode ? `\x1bO${c}` : `\x1b[${c}`);
    this.ctrlKey = key("Ctrl", "Ctrl", () => this.setCtrl(!this.ctrl));
    this.altKey = key("Alt", "Alt", () => this.setAlt(!this.alt));
    this.el = h(
      "div",
      { class: "keybar", id: "keybar", role: "toolbar", "aria-label": "Keys" },
      typing("Esc", "Escape", () => "\x1b"),
      typing("Tab", "Tab", () => "\t"),
      this.ctrlKey,
      this.altKey,
      typing("←", "Left", arrow("D")),
      typing("↑", "Up", arrow("A")),
      typing("↓", "Down", arrow("B")),
      typing("→", "Right", arrow("C")),
      typing("|", "Pipe", () => "|"),
      typing("~", "Tilde", () => "~"),
      typing("/", "Slash", () => "/"),
      typing("-", "Dash", () => "-"),
    );
    this.setCtrl(false);
    this.setAlt(false);
  }

  /** What a key sends with Ctrl and Alt (if pressed here) applied; they are released after it. */
  apply(data: string): string {
    if (!this.ctrl && !this.alt) return data;
    // What the terminal answers by itself (mouse and status reports) is no key: left as it is,
    // and Ctrl and Alt stay pressed for the key they were pressed for.
    if (data.startsWith("\x1b[") && data.length > 3) return data;
    let out = data;
    if (this.ctrl && data.length === 1) {
      const c = data.toUpperCase().charCodeAt(0);
      if (c >= 0x40 && c <= 0x5f) out = String.fromCharCode(c & 0x1f); // Ctrl+A … Ctrl+_
      else if (data === " ") out = "\x00";
      else if (data === "?") out = "\x7f";
    }
    if (this.alt) out = `\x1b${out}`;
    this.setCtrl(false);
    this.setAlt(false);
    return out;
  }

  private setCtrl(on: boolean): void {
    this.ctrl = on;
    this.ctrlKey.setAttribute("aria-pressed", String(on));
  }

  private setAlt(on: boolean): void {
    this.alt = on;
    this.altKey.setAttribute("aria-pressed", String(on));
  }
}
