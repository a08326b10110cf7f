// Modal dialogs (<dialog>, so focus stays inside and Escape cancels): a question with buttons,
// optionally with a text field. Each resolves with the button chosen (and the text), or null
// when cancelled.

import { h } from "./dom";

export interface Choice {
  label: string;
  value: string;
  kind?: "primary" | "danger" | "plain";
}

export interface Question {
  title: string;
  body?: (Node | string)[];
  input?: { value: string; label?: string; placeholder?: string; select?: [number, number] };
  choices: Choice[];
  /** Extra content after the field (a folder picker, say); gets the field to work with. */
  extra?: (input: HTMLInputElement | null) => Node;
  /** Checked on submit: a message keeps the dialog open and is shown. */
  validate?: (value: string) => string | null;
}

export interface Answer {
  choice: string;
  value: string;
}

export function ask(q: Question): Promise<Answer | null> {
  return new Promise((resolve) => {
    const error = h("p", { class: "dialog-error", role: "alert", hidden: true });
    let input: HTMLInputElement | null = null;
    let field: Node | null = null;
    if (q.input) {
      input = h("input", {
        type: "text",
        id: "dialog-input",
        value: q.input.value,
        placeholder: q.input.placeholder,
        autocomplete: "off",
        spellcheck: "false",
        "aria-label": q.input.label ?? q.title,
      });
      field = h("label", { class: "dialog-field" }, q.input.label ? h("span", null, q.input.label) : null, input);
    }
    const buttons = q.choices.map((c, i) =>
      h(
        "button",
        {
          type: i === 0 ? "submit" : "button",
          class: `dlg-btn ${c.kind ?? "plain"}`,
          "data-value": c.value,
        },
        c.label,
      ),
    );
    const cancel = h("button", { type: "button", class: "dlg-btn plain", "data-value": "cancel" }, "Cancel");
    const form = h(
      "form",
      { method: "dialog" },
      h("h2", null, q.title),
      ...(q.body ?? []).map((b) => (typeof b === "string" ? h("p", null, b) : b)),
      field,
      q.extra ? q.extra(input) : null,
      error,
      h("div", { class: "dialog-buttons" }, cancel, ...buttons.slice().reverse()),
    );
    const dialog = h("dialog", { id: "dialog", class: "files-dialog" }, form);
    let done = false;
    const finish = (a: Answer | null) => {
      if (done) return;
      done = true;
      dialog.close();
      dialog.remove();
      resolve(a);
    };
    const choose = (value: string) => {
      const text = input?.value ?? "";
      const problem = q.validate && value !== "cancel" ? q.validate(text) : null;
      if (problem) {
        error.textContent = problem;
        error.hidden = false;
        input?.focus();
        return;
      }
      finish({ choice: value, value: text });
    };
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      choose(q.choices[0].value);
    });
    for (const b of buttons.slice(1)) b.addEventListener("click", () => choose(b.dataset.value ?? ""));
    cancel.addEventListener("click", () => finish(null));
    dialog.addEventListener("cancel", (e) => {
      e.preventDefault();
      finish(null);
    });
    dialog.addEventListener("click", (e) => {
      if (e.target === dialog) finish(null); // a click on the backdrop
    });
    document.body.append(dialog);
    dialog.showModal();
    if (input) {
      input.focus();
      const [a, b] = q.input?.select ?? [0, input.value.length];
      input.setSelectionRange(a, b);
    } else {
      buttons[0]?.focus();
    }
  });
}

export async function confirmIt(title: string, body: (Node | string)[], label: string, danger = false): Promise<boolean> {
  const a = await ask({ title, body, choices: [{ label, value: "ok", kind: danger ? "danger" : "primary" }] });
  return a !== null;
}

export async function prompt(
  title: string,
  value: string,
  label: string,
  opts: Partial<Question["input"]> & { body?: (Node | string)[]; validate?: (v: string) => string | null } = {},
): Promise<string | null> {
  const a = await ask({
    title,
    body: opts.body,
    input: { value, ...opts },
    choices: [{ label, value: "ok", kind: "primary" }],
    validate: opts.validate,
  });
  return a ? a.value : null;
}

/** A dialog that only shows something (a checksum, an error) until it is closed. */
export function show(title: string, body: Node[], id = "info-dialog"): { dialog: HTMLDialogElement; close: () => void } {
  const closeBtn = h("button", { type: "submit", class: "dlg-btn primary", "data-value": "close" }, "Close");
  const dialog = h(
    "dialog",
    { id, class: "files-dialog" },
    h("form", { method: "dialog" }, h("h2", null, title), ...body, h("div", { class: "dialog-buttons" }, closeBtn)),
  );
  const close = () => {
    if (dialog.open) dialog.close();
    dialog.remove();
  };
  dialog.addEventListener("close", close);
  document.body.append(dialog);
  dialog.showModal();
  closeBtn.focus();
  return { dialog, close };
}

/** A file or folder name: no slash, not `.` or `..`, not empty. */
export function checkName(name: string): string | null {
  if (!name.trim()) return "Give a name.";
  if (name.includes("/")) return "A name cannot contain “/”.";
  if (name === "." || name === "..") return "That name is reserved.";
  if (name.includes("\\")) return "A name cannot contain a backslash.";
  return null;
}
