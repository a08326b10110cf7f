// The text editor: CodeMirror 6, with highlighting chosen by the file's extension.
//
// CodeMirror styles itself through style-mod, which puts a <style> element in a document's
// <head> (refused here: the page's policy is `style-src 'self'`, no inline CSS) but uses a
// constructed, adopted stylesheet inside a shadow root, which that policy does not govern. So
// the editor lives in a shadow root of #editor, and its theme takes its colours from the page's
// CSS variables, which cross the shadow boundary: it follows light and dark like the rest.

import { css } from "@codemirror/lang-css";
import { html } from "@codemirror/lang-html";
import { javascript } from "@codemirror/lang-javascript";
import { json } from "@codemirror/lang-json";
import { markdown } from "@codemirror/lang-markdown";
import { python } from "@codemirror/lang-python";
import { yaml } from "@codemirror/lang-yaml";
import { HighlightStyle, StreamLanguage, syntaxHighlighting, type LanguageSupport, type StreamParser } from "@codemirror/language";
import { c, cpp, java, kotlin } from "@codemirror/legacy-modes/mode/clike";
import { diff } from "@codemirror/legacy-modes/mode/diff";
import { dockerFile } from "@codemirror/legacy-modes/mode/dockerfile";
import { go } from "@codemirror/legacy-modes/mode/go";
import { properties } from "@codemirror/legacy-modes/mode/properties";
import { rust } from "@codemirror/legacy-modes/mode/rust";
import { shell } from "@codemirror/legacy-modes/mode/shell";
import { toml } from "@codemirror/legacy-modes/mode/toml";
import { EditorState, type Extension, type Text } from "@codemirror/state";
import { keymap } from "@codemirror/view";
import { tags as t } from "@lezer/highlight";
import { basicSetup, EditorView } from "codemirror";
import { extension } from "./format";

const legacy = (p: StreamParser<unknown>) => StreamLanguage.define(p);

function language(name: string): LanguageSupport | StreamLanguage<unknown> | null {
  const lower = name.toLowerCase();
  if (lower === "dockerfile" || lower.endsWith(".dockerfile")) return legacy(dockerFile);
  if (lower === ".env" || lower.startsWith(".env.") || lower === ".bashrc" || lower === ".profile") return legacy(shell);
  switch (extension(name)) {
    case "js":
    case "mjs":
    case "cjs":
      return javascript();
    case "jsx":
      return javascript({ jsx: true });
    case "ts":
    case "mts":
      return javascript({ typescript: true });
    case "tsx":
      return javascript({ typescript: true, jsx: true });
    case "py":
    case "pyi":
      return python();
    case "json":
    case "jsonl":
    case "ndjson":
    case "ipynb":
      return json();
    case "md":
    case "markdown":
      return markdown();
    case "yaml":
    case "yml":
      return yaml();
    case "html":
    case "htm":
    case "svg":
    case "xml":
      return html();
    case "css":
    case "scss":
      return css();
    case "toml":
      return legacy(toml);
    case "sh":
    case "bash":
    case "zsh":
    case "env":
      return legacy(shell);
    case "ini":
    case "cfg":
    case "conf":
    case "properties":
      return legacy(properties);
    case "rs":
      return legacy(rust);
    case "go":
      return legacy(go);
    case "c":
    case "h":
      return legacy(c);
    case "cc":
    case "cpp":
    case "hpp":
    case "cu":
      return legacy(cpp);
    case "java":
      return legacy(java);
    case "kt":
      return legacy(kotlin);
    case "diff":
    case "patch":
      return legacy(diff);
    default:
      return null;
  }
}

/** Colours from files.css (--hl-*), so that highlighting follows light and dark. */
const highlight = HighlightStyle.define([
  { tag: [t.keyword, t.controlKeyword, t.operatorKeyword, t.moduleKeyword, t.definitionKeyword], color: "var(--hl-keyword)" },
  { tag: [t.string, t.special(t.string), t.regexp], color: "var(--hl-string)" },
  { tag: [t.number, t.bool, t.null, t.atom], color: "var(--hl-number)" },
  { tag: [t.comment, t.lineComment, t.blockComment, t.meta], color: "var(--hl-comment)", fontStyle: "italic" },
  { tag: [t.function(t.variableName), t.function(t.propertyName), t.macroName], color: "var(--hl-function)" },
  { tag: [t.definition(t.variableName), t.definition(t.propertyName)], color: "var(--hl-def)" },
  { tag: [t.typeName, t.className, t.namespace, t.tagName], color: "var(--hl-type)" },
  { tag: [t.propertyName, t.attributeName, t.labelName], color: "var(--hl-property)" },
  { tag: [t.operator, t.punctuation, t.bracket], color: "var(--hl-punct)" },
  { tag: t.heading, color: "var(--hl-keyword)", fontWeight: "bold" },
  { tag: t.emphasis, fontStyle: "italic" },
  { tag: t.strong, fontWeight: "bold" },
  { tag: t.link, color: "var(--hl-string)", textDecoration: "underline" },
  { tag: t.invalid, color: "var(--bad)" },
]);

const theme = EditorView.theme({
  "&": { height: "100%", color: "var(--fg)", backgroundColor: "var(--card)", fontSize: "13.5px" },
  "&.cm-focused": { outline: "none" },
  ".cm-scroller": { fontFamily: "var(--mono)", lineHeight: "1.55", overflow: "auto" },
  ".cm-content": { caretColor: "var(--accent)", padding: "8px 0" },
  ".cm-cursor, .cm-dropCursor": { borderLeftColor: "var(--accent)", borderLeftWidth: "2px" },
  ".cm-gutters": { backgroundColor: "var(--card)", color: "var(--muted)", borderRight: "1px solid var(--line)" },
  ".cm-activeLineGutter": { backgroundColor: "var(--hover)", color: "var(--fg)" },
  ".cm-activeLine": { backgroundColor: "var(--hover)" },
  "&.cm-focused > .cm-scroller > .cm-selectionLayer .cm-selectionBackground, .cm-selectionBackground, ::selection": {
    backgroundColor: "var(--sel) !important",
  },
  ".cm-selectionMatch": { backgroundColor: "var(--match)" },
  ".cm-searchMatch": { backgroundColor: "var(--match)", outline: "1px solid var(--line)" },
  ".cm-panels": { backgroundColor: "var(--bg)", color: "var(--fg)" },
  ".cm-panels.cm-panels-bottom": { borderTop: "1px solid var(--line)" },
  ".cm-textfield, .cm-button": { font: "inherit", fontSize: "12px", color: "var(--fg)", background: "var(--card)", border: "1px solid var(--line)", borderRadius: "5px" },
  ".cm-tooltip": { backgroundColor: "var(--card)", color: "var(--fg)", border: "1px solid var(--line)" },
  ".cm-foldPlaceholder": { backgroundColor: "var(--bg)", border: "1px solid var(--line)", color: "var(--muted)" },
});

export interface EditorOptions {
  readOnly: boolean;
  save: () => void;
  changed: () => void;
}

export interface Editor {
  host: HTMLElement;
  /** The document now (immutable: save this, then mark it saved). */
  current(): Text;
  focus(): void;
  markSaved(doc: Text): void;
  dirty(): boolean;
  destroy(): void;
}

/** An editor for `text` in a new #editor element (its own shadow root). */
export function createEditor(name: string, text: string, opts: EditorOptions): Editor {
  const host = document.createElement("div");
  host.id = "editor";
  host.className = "editor-host";
  const shadow = host.attachShadow({ mode: "open" });
  const box = document.createElement("div");
  box.style.height = "100%";
  shadow.append(box);
  const lang = language(name);
  const extensions: Extension[] = [
    basicSetup,
    theme,
    syntaxHighlighting(highlight),
    EditorView.lineWrapping,
    keymap.of([{ key: "Mod-s", preventDefault: true, run: () => (opts.save(), true) }]),
    EditorView.updateListener.of((u) => {
      if (u.docChanged) opts.changed();
    }),
    EditorState.readOnly.of(opts.readOnly),
  ];
  if (lang) extensions.push(lang);
  const view = new EditorView({ doc: text, extensions, parent: box, root: shadow });
  let saved = view.state.doc;
  return {
    host,
    current: () => view.state.doc,
    focus: () => view.focus(),
    markSaved: (doc) => {
      saved = doc;
    },
    dirty: () => !view.state.doc.eq(saved),
    destroy: () => view.destroy(),
  };
}
