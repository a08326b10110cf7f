// The file manager's editor and Markdown renderer (CodeMirror 6, marked, DOMPurify): the big
// part of the page, loaded by files.js only when a file is first opened, so that the listing
// shows at once on a slow link. It hands its functions to the page through a global.

import { createEditor } from "./files/editor";
import { renderMarkdown } from "./files/markdown";
import type { ViewerLib } from "./files/lazy";

const lib: ViewerLib = { createEditor, renderMarkdown };
(window as unknown as { gpuboxFilesViewer: ViewerLib }).gpuboxFilesViewer = lib;
document.dispatchEvent(new Event("gpubox-files-viewer"));
