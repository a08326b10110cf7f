// Loads files-viewer.js (the editor and the Markdown renderer) on first use: a plain
// same-origin <script>, which the page's policy (`script-src 'self'`) allows.

import type { createEditor } from "./editor";
import type { renderMarkdown } from "./markdown";

export interface ViewerLib {
  createEditor: typeof createEditor;
  renderMarkdown: typeof renderMarkdown;
}

let loading: Promise<ViewerLib> | null = null;

export function viewerLib(): Promise<ViewerLib> {
  const w = window as unknown as { gpuboxFilesViewer?: ViewerLib };
  if (w.gpuboxFilesViewer) return Promise.resolve(w.gpuboxFilesViewer);
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = "/.gpubox/assets/files-viewer.js";
      s.addEventListener("load", () => (w.gpuboxFilesViewer ? resolve(w.gpuboxFilesViewer) : reject(new Error("the editor did not start"))));
      s.addEventListener("error", () => {
        loading = null;
        s.remove();
        reject(new Error("cannot load the editor (files-viewer.js); check the connection and try again"));
      });
      document.head.append(s);
    });
  }
  return loading;
}
