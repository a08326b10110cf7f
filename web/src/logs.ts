// The logs app's page (port 7030): every service's output, live and searchable, and the
// instance's status. The server renders an empty <div id="logs-app">; everything is built here.
// The pieces are in ./logs/: app (state, loading, search), list (the virtual list), render (a
// row), ansi, classify (errors, tracebacks), store (lines in typed arrays), toolbar, status.

import "./logs/logs.css";
import { App } from "./logs/app";

const root = document.getElementById("logs-app");
if (root) void new App(root).start();
