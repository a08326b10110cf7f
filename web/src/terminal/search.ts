// The search box over the terminal (Ctrl+Shift+F or the toolbar's button): finds as you type,
// Enter / Shift+Enter step through the matches, Escape closes it.

import type { Terminal } from "@xterm/xterm";
import type { SearchAddon, ISearchOptions } from "@xterm/addon-search";
import { h, iconButton } from "./dom";
import { palette } from "./theme";

export class SearchBox {
  readonly el: HTMLElement;
  private readonly input: HTMLInputElement;
  private readonly count: HTMLElement;

  constructor(
    private readonly term: Terminal,
    private readonly addon: SearchAddon,
  ) {
    this.input = h("input", {
      id: "search-input",
      type: "text",
      placeholder: "Find",
      "aria-label": "Find in the terminal",
      autocomplete: "off",
      spellcheck: "false",
    });
    this.count = h("span", { class: "count", "aria-live": "polite" });
    const prev = iconButton("chevronUp", "Previous match (Shift+Enter)");
    const next = iconButton("chevronDown", "Next match (Enter)");
    const close = iconButton("close", "Close (Escape)");
    this.el = h("div", { id: "search", class: "search", role: "search", hidden: "" }, this.input, this.count, prev, next, close);

    this.input.addEventListener("input", () => this.find("next", true));
    this.input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        ev.preventDefault();
        this.find(ev.shiftKey ? "previous" : "next");
      } else if (ev.key === "Escape") {
        ev.preventDefault();
        this.close();
      }
    });
    prev.addEventListener("click", () => this.find("previous"));
    next.addEventListener("click", () => this.find("next"));
    close.addEventListener("click", () => this.close());
    addon.onDidChangeResults(({ resultIndex, resultCount }) => {
      if (!this.input.value) this.count.textContent = "";
      else if (resultCount === 0) this.count.textContent = "no matches";
      else if (resultIndex < 0) this.count.textContent = `${resultCount}+`;
      else this.count.textContent = `${resultIndex + 1} of ${resultCount}`;
    });
  }

  open(): void {
    this.el.hidden = false;
    const selected = this.term.getSelection();
    if (selected && !selected.includes("\n")) this.input.value = selected;
    this.input.select();
    this.input.focus();
    if (this.input.value) this.find("next", true);
  }

  close(): void {
    this.el.hidden = true;
    this.addon.clearDecorations();
    this.term.focus();
  }

  private find(dir: "next" | "previous", incremental = false): void {
    const text = this.input.value;
    if (!text) {
      this.addon.clearDecorations();
      this.count.textContent = "";
      return;
    }
    const opts: ISearchOptions = { incremental, decorations: palette().search };
    if (dir === "next") this.addon.findNext(text, opts);
    else this.addon.findPrevious(text, opts);
  }
}
