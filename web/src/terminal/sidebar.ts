// The session list: every session with its name and size; open, rename (the pencil, or a
// double-click on the name) and close. On a phone it is a row of tabs above the terminal.

import type { SessionInfo } from "./api";
import { h, icon, iconButton } from "./dom";

export interface SidebarActions {
  open(id: string): void;
  create(): void;
  rename(id: string, name: string): Promise<void>;
  close(id: string): void;
}

export class Sidebar {
  readonly el: HTMLElement;
  private readonly list: HTMLUListElement;
  private readonly items = new Map<string, HTMLLIElement>();
  private sessions: SessionInfo[] = [];
  private current: string | null = null;
  private editing: string | null = null;

  constructor(private readonly actions: SidebarActions) {
    const create = h("button", { id: "new-session", type: "button", title: "New session" }, icon("plus"), h("span", {}, "New"));
    create.addEventListener("click", () => actions.create());
    this.list = h("ul", { id: "session-list", "aria-label": "Sessions" });
    this.el = h(
      "nav",
      { class: "sessions", "aria-label": "Terminal sessions" },
      h("div", { class: "sessions-head" }, h("span", { class: "title" }, "Sessions"), create),
      this.list,
    );
  }

  render(sessions: SessionInfo[], current: string | null): void {
    this.sessions = sessions;
    this.current = current;
    const seen = new Set<string>();
    let previous: HTMLLIElement | null = null;
    for (const s of sessions) {
      seen.add(s.id);
      let li = this.items.get(s.id);
      if (!li) {
        li = this.item(s.id);
        this.items.set(s.id, li);
      }
      if (this.editing !== s.id) this.fill(li, s);
      li.classList.toggle("current", s.id === current);
      li.querySelector(".open")?.setAttribute("aria-current", s.id === current ? "true" : "false");
      // Moving a node blurs it, so only nodes out of order are moved.
      const wanted: ChildNode | null = previous ? previous.nextSibling : this.list.firstChild;
      if (wanted !== li) this.list.insertBefore(li, wanted);
      previous = li;
    }
    for (const [id, li] of this.items) {
      if (!seen.has(id)) {
        li.remove();
        this.items.delete(id);
        if (this.editing === id) this.editing = null;
      }
    }
  }

  /** Starts renaming a session in place. */
  edit(id: string): void {
    const li = this.items.get(id);
    const s = this.sessions.find((x) => x.id === id);
    if (!li || !s || this.editing) return;
    this.editing = id;
    const input = h("input", { type: "text", class: "rename-input", maxlength: "80", "aria-label": "Session name" });
    input.value = s.name;
    const open = li.querySelector(".open") as HTMLElement;
    open.hidden = true;
    li.insertBefore(input, open);
    input.select();
    input.focus();
    let done = false;
    const finish = async (save: boolean): Promise<void> => {
      if (done) return;
      done = true;
      const name = input.value.trim();
      if (save && name && name !== s.name) {
        try {
          await this.actions.rename(id, name);
        } catch {
          // The app reports the error; the old name stays.
        }
      }
      input.remove();
      open.hidden = false;
      this.editing = null;
      this.render(this.sessions, this.current);
    };
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") void finish(true);
      else if (ev.key === "Escape") void finish(false);
    });
    input.addEventListener("blur", () => void finish(true));
  }

  private item(id: string): HTMLLIElement {
    const open = h("button", { type: "button", class: "open" }, h("span", { class: "name" }), h("span", { class: "meta" }));
    const rename = iconButton("pencil", "Rename", { class: "rename" });
    const close = iconButton("close", "Close", { class: "close" });
    open.addEventListener("click", () => this.actions.open(id));
    open.addEventListener("dblclick", () => this.edit(id));
    rename.addEventListener("click", () => this.edit(id));
    close.addEventListener("click", () => this.actions.close(id));
    return h("li", { class: "session", "data-id": id }, open, h("span", { class: "actions" }, rename, close));
  }

  private fill(li: HTMLLIElement, s: SessionInfo): void {
    const name = li.querySelector(".name") as HTMLElement;
    const meta = li.querySelector(".meta") as HTMLElement;
    if (name.textContent !== s.name) name.textContent = s.name;
    const tabs = s.tabs === 0 ? "detached" : `${s.tabs} tab${s.tabs === 1 ? "" : "s"}`;
    const text = `${s.cols}×${s.rows} · ${tabs}`;
    if (meta.textContent !== text) meta.textContent = text;
    li.querySelector(".open")?.setAttribute("title", `${s.name} (pid ${s.pid})`);
    li.querySelector(".rename")?.setAttribute("aria-label", `Rename ${s.name}`);
    li.querySelector(".close")?.setAttribute("aria-label", `Close ${s.name}`);
  }
}
