// Markdown shown rendered: marked turns it into HTML, DOMPurify keeps only harmless elements
// and attributes (no script, no event handlers, no style: the page's policy would refuse inline
// CSS anyway), and links and images that point into the workspace are made to work here.

import DOMPurify from "dompurify";
import { marked } from "marked";
import { fileUrl, normalize, parent } from "./api";
import { h } from "./dom";

/** Resolves `href` (relative to the folder `dir`) to a workspace path, or null if it leaves the site. */
function local(dir: string, href: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(href) || href.startsWith("//")) return null;
  let clean: string;
  try {
    clean = decodeURIComponent(href.split("#")[0].split("?")[0]);
  } catch {
    return null;
  }
  if (!clean) return null;
  const parts = clean.startsWith("/") ? [] : dir ? dir.split("/") : [];
  for (const seg of clean.split("/")) {
    if (seg === "..") parts.pop();
    else if (seg && seg !== ".") parts.push(seg);
  }
  return normalize(parts.join("/"));
}

export function renderMarkdown(text: string, path: string, open: (path: string) => void): HTMLElement {
  const dir = parent(path);
  const raw = marked.parse(text, { async: false, gfm: true }) as string;
  const frag = DOMPurify.sanitize(raw, {
    RETURN_DOM_FRAGMENT: true,
    FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe"],
    FORBID_ATTR: ["style"],
  });
  for (const img of Array.from(frag.querySelectorAll("img"))) {
    const src = img.getAttribute("src") ?? "";
    const p = local(dir, src);
    if (p !== null) img.setAttribute("src", fileUrl(p, true));
    else if (!src.startsWith("data:")) {
      // Pictures from elsewhere are not loaded (the page only loads from this instance).
      img.replaceWith(h("a", { href: src, target: "_blank", rel: "noopener noreferrer", class: "ext-img" }, `[image: ${img.alt || src}]`));
    }
    img.setAttribute("loading", "lazy");
  }
  for (const a of Array.from(frag.querySelectorAll("a"))) {
    const href = a.getAttribute("href") ?? "";
    if (href.startsWith("#")) {
      // The page's own hash names the folder shown: in-page anchors are left inert.
      a.removeAttribute("href");
      continue;
    }
    const p = local(dir, href);
    if (p === null) {
      a.target = "_blank";
      a.rel = "noopener noreferrer";
    } else {
      a.setAttribute("href", fileUrl(p, true));
      a.addEventListener("click", (e) => {
        e.preventDefault();
        open(p);
      });
    }
  }
  const root = h("article", { id: "markdown", class: "markdown" });
  root.append(frag);
  return root;
}
