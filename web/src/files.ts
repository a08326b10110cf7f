// The file manager's page (port 7010): browse, upload (resumable, with tus), download, edit and
// search the workspace. The server renders an empty #files-app inside gpubox's page shell;
// everything in it is built here, against the API in docs/files.md. The parts are in ./files/:
// app (state, selection, keyboard), table and virtual (the list), toolbar, actions, uploads and
// transfers, viewer, editor and markdown, search, statusline.

import "./files/files.css";
import { App } from "./files/app";

const root = document.getElementById("files-app");
if (root) new App(root).start();
