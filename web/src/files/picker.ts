// Choosing a folder for Move and Copy: type a path, or walk there by clicking folders.

import { api, join, normalize, parent } from "./api";
import { ask } from "./dialogs";
import { h, icon } from "./dom";

export async function pickFolder(title: string, start: string, label: string, body: (Node | string)[] = []): Promise<string | null> {
  let timer = 0;
  const a = await ask({
    title,
    body,
    input: { value: "/" + start, label: "Into the folder" },
    choices: [{ label, value: "ok", kind: "primary" }],
    extra: (input) => {
      const list = h("div", { class: "picker", id: "folder-picker" });
      if (!input) return list;
      let shownFor = "\0";
      const show = async () => {
        const at = normalize(input.value);
        if (at === shownFor) return;
        shownFor = at;
        let dirs: string[] = [];
        try {
          dirs = (await api.list(at)).entries
            .filter((e) => e.kind === "dir" && !e.name.startsWith("."))
            .map((e) => e.name)
            .sort((x, y) => x.localeCompare(y, undefined, { numeric: true }));
        } catch {
          list.replaceChildren(h("p", { class: "muted" }, "No such folder yet."));
          return;
        }
        if (normalize(input.value) !== at) return;
        const go = (to: string) => {
          input.value = "/" + to + (to ? "/" : "");
          void show();
          input.focus();
        };
        const rows: Node[] = [];
        if (at) {
          const up = h("button", { type: "button", class: "pick up" }, icon("up"), h("span", null, ".."));
          up.addEventListener("click", () => go(parent(at)));
          rows.push(up);
        }
        for (const d of dirs.slice(0, 500)) {
          const b = h("button", { type: "button", class: "pick", "data-name": d }, icon("folder"), h("span", null, d));
          b.addEventListener("click", () => go(join(at, d)));
          rows.push(b);
        }
        if (!dirs.length) rows.push(h("p", { class: "muted" }, "No folders in here."));
        list.replaceChildren(...rows);
      };
      input.addEventListener("input", () => {
        clearTimeout(timer);
        timer = window.setTimeout(() => void show(), 200);
      });
      void show();
      return list;
    },
  });
  clearTimeout(timer);
  return a ? normalize(a.value) : null;
}
