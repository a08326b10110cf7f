// The terminal app's page (port 7020): shells in the browser through xterm.js. The server
// renders an empty #terminal-app inside gpubox's page shell; everything in it is built here.
// The protocol it speaks is docs/terminal.md.

import "@xterm/xterm/css/xterm.css";
import "./terminal/terminal.css";
import { allowXtermStyles } from "./terminal/csp";
import { start } from "./terminal/app";

allowXtermStyles();
const root = document.getElementById("terminal-app");
if (root) start(root);
