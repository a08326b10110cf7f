// The terminal app (port 7020) in headless Chromium against the real binary and a real bash:
// typing, sizes that follow the window, reattaching after a reload, two tabs on one session,
// flow control under a flood, reconnecting after a cut, the session list, mouse, clipboard,
// search, colours under the page's strict CSP, a phone's screen, and the Origin rule on the
// WebSocket. The terminal's text is read from xterm.js's DOM rows (.xterm-rows).
import assert from "node:assert/strict";
import { createServer as createHttpServer } from "node:http";
import { createServer as createTcpServer, connect } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { ARTIFACTS, freePort, launchBrowser, logIn, startGpubox, useWebDist } from "./harness.mjs";

const USER = "e2e";
const PASSWORD = "e2e-password-123";
const T = 10000;
let gpubox, browser, context, page, port;
let firstId;
const errors = [];
/** Ports of pages where a test makes connections fail on purpose (the browser logs those). */
const failing = new Set();

before(async () => {
  port = await freePort();
  gpubox = await startGpubox(
    `
[auth]
username = "${USER}"
password = "${PASSWORD}"

[services.terminal]
app = "terminal"
port = ${port}
shell = "/bin/bash"
`,
    `terminal: listening on 0.0.0.0:${port}`,
  );
  browser = await launchBrowser();
  context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: "dark" });
  await useWebDist(context);
  watchConsole(context);
  page = await context.newPage();
});

/** Any console error (a refused inline style under the page's CSP, a script error) fails the run. */
function watchConsole(ctx) {
  ctx.on("console", (m) => {
    const from = new URL(m.page()?.url() ?? "http://x/").port;
    if (m.type() !== "error") return;
    if (failing.has(from) && /WebSocket connection|Failed to load resource/.test(m.text())) return;
    if (m.location().url.endsWith("/favicon.ico")) return; // gpubox has none: not this page's doing
    errors.push(`${m.page()?.url()}: ${m.text()} (${m.location().url})`);
  });
  ctx.on("weberror", (e) => errors.push(String(e.error())));
}

after(async () => {
  await browser?.close();
  if (gpubox) assert.equal(await gpubox.stop(), 0, "gpubox exits 0 on SIGTERM");
});

/** The terminal's visible rows as text. */
function rows(p) {
  return p.$$eval("#term .xterm-rows > div", (els) => els.map((e) => e.textContent.replace(/\u00a0/g, " ").trimEnd()));
}

/** Waits for a visible row matching `re`; returns its text. */
async function waitForRow(p, re, timeout = T) {
  const handle = await p.waitForFunction(
    (src) => {
      const re = new RegExp(src);
      for (const r of document.querySelectorAll("#term .xterm-rows > div")) {
        const text = r.textContent.replace(/\u00a0/g, " ").trimEnd();
        if (re.test(text)) return text;
      }
      return false;
    },
    re.source,
    { timeout },
  );
  return handle.jsonValue();
}

const PROMPT = /^\S+@\S+:.*[#$]$/;

async function run(p, command) {
  await p.keyboard.type(command);
  await p.keyboard.press("Enter");
}

/** Runs a command and waits for the prompt after it (so that nothing is typed ahead of it). */
async function runToPrompt(p, command) {
  await run(p, command);
  await p.waitForFunction(
    ([cmd, src]) => {
      // The screen as text, with rows that wrap (full to the last column) joined again.
      const cols = Number(document.querySelector("#term").dataset.cols);
      let text = "";
      for (const r of document.querySelectorAll("#term .xterm-rows > div")) {
        const row = r.textContent.replace(/\u00a0/g, " ");
        text += row.length >= cols ? row : `${row.trimEnd()}\n`;
      }
      const at = text.lastIndexOf(cmd);
      const after = text.slice(at + cmd.length).split("\n").filter((l) => l.trim());
      return at >= 0 && after.length > 0 && new RegExp(src).test(after[after.length - 1].trimEnd());
    },
    [command, PROMPT.source],
    { timeout: T },
  );
}

/** Whether a cell of the terminal has this background colour. */
function hasBackground(p, rgb) {
  return p.$$eval("#term .xterm-rows span", (spans, c) => spans.some((s) => getComputedStyle(s).backgroundColor === c), rgb);
}

/** Clears the screen and waits until only the prompt is left. */
async function clearScreen(p) {
  await run(p, "clear");
  await p.waitForFunction(
    (src) => {
      const lines = [...document.querySelectorAll("#term .xterm-rows > div")].map((r) => r.textContent.trim()).filter(Boolean);
      return lines.length === 1 && new RegExp(src).test(lines[0]);
    },
    PROMPT.source,
    { timeout: T },
  );
}

let sizeProbe = 0;
/** What `stty size` says in the shell, as [rows, cols]. */
async function sttySize(p) {
  const n = ++sizeProbe;
  await run(p, `echo "sz${n}-$(stty size | tr ' ' x)"`);
  const line = await waitForRow(p, new RegExp(`^sz${n}-\\d+x\\d+$`));
  return line.slice(`sz${n}-`.length).split("x").map(Number);
}

/** The size the page says its terminal has, checked against the rows xterm.js draws. */
async function termSize(p) {
  const [r, c] = await p.$eval("#term", (e) => [Number(e.dataset.rows), Number(e.dataset.cols)]);
  assert.equal((await rows(p)).length, r, "data-rows is the number of rows drawn");
  return [r, c];
}

async function hashId(p) {
  const m = /^#s=([0-9a-f]+)$/.exec(new URL(p.url()).hash);
  assert.ok(m, `the address names the session: ${p.url()}`);
  return m[1];
}

async function connected(p, id) {
  const sel = id ? `#term[data-state="connected"][data-session="${id}"]` : '#term[data-state="connected"]';
  await p.waitForSelector(sel, { timeout: T });
}

test("log in; a first session starts by itself and runs what is typed", async () => {
  await page.goto(`http://127.0.0.1:${port}/`);
  assert.match(page.url(), /\/\.gpubox\/login\?next=/);
  await logIn(page, USER, PASSWORD);
  await connected(page);
  firstId = await hashId(page);
  assert.deepEqual(
    await page.$$eval(".session", (els) => els.map((e) => e.dataset.id)),
    [firstId],
    "one session, listed and named in the address",
  );
  await waitForRow(page, PROMPT);
  await run(page, "echo hello-$((6*7))");
  assert.equal(await waitForRow(page, /^hello-\d+$/), "hello-42");
});

test("the terminal fills its space and stty size agrees with it", async () => {
  const [r, c] = await termSize(page);
  assert.deepEqual(await sttySize(page), [r, c]);
  const box = await page.evaluate(() => {
    const rect = (s) => document.querySelector(s).getBoundingClientRect();
    return { term: rect("#term"), screen: rect("#term .xterm-screen"), header: rect("header.shell") };
  });
  const cellW = box.screen.width / c;
  const cellH = box.screen.height / r;
  // Left padding 10 px and the 14 px scroll bar on the width, top padding 6 px on the height.
  assert.ok(box.term.width - 24 - box.screen.width < cellW, `no column left unused: ${JSON.stringify(box)}`);
  assert.ok(box.term.height - 6 - box.screen.height < cellH, `no row left unused: ${JSON.stringify(box)}`);
  assert.ok(box.term.bottom >= 799 && box.term.right >= 1279, "the terminal reaches the window's corner");
  assert.ok(box.term.top < box.header.bottom + 60, "right under the header and the toolbar");
});

test("resizing the window resizes the shell's terminal", async () => {
  const [r0, c0] = await termSize(page);
  await page.setViewportSize({ width: 900, height: 560 });
  await page.waitForFunction((c) => Number(document.querySelector("#term").dataset.cols) !== c, c0, { timeout: T });
  const [r1, c1] = await termSize(page);
  assert.ok(r1 < r0 && c1 < c0, `smaller: ${r0}x${c0} -> ${r1}x${c1}`);
  assert.deepEqual(await sttySize(page), [r1, c1]);
});

test("a reload reattaches the same session with its screen", async () => {
  await page.reload();
  await connected(page, firstId);
  assert.equal(await hashId(page), firstId);
  assert.equal(await waitForRow(page, /^hello-42$/), "hello-42", "output from before the reload");
  assert.ok((await rows(page)).some((l) => /^sz\d+-\d+x\d+$/.test(l)), "and the stty lines");
  assert.equal(await page.locator(".session").count(), 1, "no new session was started");
  await waitForRow(page, PROMPT);
});

test("two tabs on one session: both see the output, the last to resize sets the size", async () => {
  const other = await context.newPage();
  await other.setViewportSize({ width: 1100, height: 700 });
  await other.goto(`http://127.0.0.1:${port}/#s=${firstId}`);
  await connected(other, firstId);
  await waitForRow(other, /^hello-42$/);
  // The new tab fitted the session to its window; the first tab is told (a `size` message).
  const theirs = await other.$eval("#term", (e) => [Number(e.dataset.rows), Number(e.dataset.cols)]);
  await page.waitForFunction(
    ([r, c]) => {
      const d = document.querySelector("#term").dataset;
      return Number(d.rows) === r && Number(d.cols) === c;
    },
    theirs,
    { timeout: T },
  );
  await other.click("#term");
  await run(other, "echo from-the-other-$((1+1))");
  await waitForRow(page, /^from-the-other-2$/);
  await other.close();
  // This tab takes the size back the next time its window changes.
  await page.setViewportSize({ width: 1000, height: 600 });
  await page.waitForFunction((c) => Number(document.querySelector("#term").dataset.cols) !== c, theirs[1], { timeout: T });
  assert.deepEqual(await sttySize(page), await termSize(page));
});

test("a flood of output: the page pauses and resumes gpubox, and keeps up", async () => {
  const sent = [];
  page.on("websocket", (ws) => ws.on("framesent", (f) => typeof f.payload === "string" && sent.push(f.payload)));
  // The listener sees sockets opened from now on: reattach so this one is watched.
  await page.reload();
  await connected(page, firstId);
  await waitForRow(page, PROMPT);
  // A slow device: with the page's CPU throttled, output comes faster than xterm.js can draw it.
  const cdp = await context.newCDPSession(page);
  await cdp.send("Emulation.setCPUThrottlingRate", { rate: 4 });
  try {
    await run(page, "seq 1 400000; echo flood-$((2*21))");
    await waitForRow(page, /^flood-42$/, 40000);
  } finally {
    await cdp.send("Emulation.setCPUThrottlingRate", { rate: 1 });
    await cdp.detach();
  }
  assert.ok(sent.includes('{"type":"pause"}'), `asked to pause: ${sent.join(" ")}`);
  // The frames are reported to this process a little after they are sent.
  const resumed = () => sent.lastIndexOf('{"type":"resume"}') > sent.lastIndexOf('{"type":"pause"}');
  for (let i = 0; i < 50 && !resumed(); i++) await page.waitForTimeout(100);
  assert.ok(resumed(), `resumed after the last pause: ${sent.join(" ")}`);
  await run(page, "clear");
});

test("a cut connection: a banner, then it reconnects by itself and redraws the screen", async () => {
  // A TCP relay in front of gpubox that can cut every connection and refuse new ones.
  const relayPort = await freePort();
  const open = new Set();
  let refusing = false;
  const relay = createTcpServer((client) => {
    if (refusing) return client.destroy();
    const upstream = connect(port, "127.0.0.1");
    open.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    for (const s of [client, upstream]) s.on("error", drop).on("close", drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise((resolve) => relay.listen(relayPort, "127.0.0.1", resolve));
  failing.add(String(relayPort));
  const tab = await context.newPage();
  try {
    await tab.goto(`http://127.0.0.1:${relayPort}/#s=${firstId}`);
    await connected(tab, firstId);
    await tab.click("#term");
    await run(tab, "echo before-the-cut");
    await waitForRow(tab, /^before-the-cut$/);

    refusing = true;
    for (const s of open) s.destroy();
    await tab.waitForSelector('#term-banner[data-state="reconnecting"]:visible', { timeout: T });
    assert.match(await tab.textContent("#term-banner"), /reconnecting/i);
    await tab.waitForTimeout(1500);
    assert.equal(await tab.$eval("#term", (e) => e.dataset.state), "reconnecting", "still trying while refused");

    refusing = false;
    await connected(tab, firstId);
    assert.equal(await tab.isVisible("#term-banner"), false, "the banner goes once connected");
    await waitForRow(tab, /^before-the-cut$/);
    await run(tab, "echo after-the-cut-$((6*7))");
    await waitForRow(tab, /^after-the-cut-42$/);
  } finally {
    await tab.close();
    relay.close();
    for (const s of open) s.destroy();
  }
});

test("new session, rename, and switch between sessions", async () => {
  await page.click("#new-session");
  await page.waitForFunction((id) => !location.hash.endsWith(id), firstId, { timeout: T });
  const second = await hashId(page);
  await connected(page, second);
  assert.equal(await page.locator(".session").count(), 2);
  assert.ok(await page.locator(`.session.current[data-id="${second}"]`).isVisible(), "the new one is current");
  await waitForRow(page, PROMPT);
  await run(page, "echo second-$((2+3))");
  await waitForRow(page, /^second-5$/);
  assert.ok(!(await rows(page)).includes("hello-42"), "its own screen");

  await page.click(`.session[data-id="${second}"] .rename`);
  await page.fill(".rename-input", "training");
  await page.press(".rename-input", "Enter");
  await page.waitForSelector(`.session[data-id="${second}"] .name:text-is("training")`, { timeout: T });
  const names = await page.evaluate(async () => (await (await fetch("/api/sessions")).json()).sessions.map((s) => s.name));
  assert.ok(names.includes("training"), `renamed on the server: ${names}`);

  await page.click(`.session[data-id="${firstId}"] .open`);
  await connected(page, firstId);
  assert.equal(await hashId(page), firstId);
  await waitForRow(page, PROMPT);
  assert.ok(!(await rows(page)).includes("second-5"), "the first session's screen again");
});

test("mouse reports reach a program that asks for them (as htop, vim and tmux do)", async () => {
  await page.click("#term");
  // SGR mouse reporting on; read the press (…M) and the release (…m); reporting off.
  await run(page, "printf '\\e[?1000h\\e[?1006h'; read -rs -d M down; read -rs -d m up; printf '\\e[?1000l\\e[?1006l'; echo \"mouse-${down:2}\"");
  await page.waitForTimeout(300);
  const box = await page.$eval("#term .xterm-screen", (e) => {
    const r = e.getBoundingClientRect();
    const d = document.querySelector("#term").dataset;
    return { x: r.x, y: r.y, w: r.width / Number(d.cols), h: r.height / Number(d.rows) };
  });
  const [col, row] = [20, 5];
  await page.mouse.click(box.x + (col - 0.5) * box.w, box.y + (row - 0.5) * box.h);
  assert.equal(await waitForRow(page, /^mouse-</), `mouse-<0;${col};${row}`, "button 1 at the cell clicked");
  await waitForRow(page, PROMPT);
});

test("copy on selection, paste with Ctrl+Shift+V and from the menu", async () => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: `http://127.0.0.1:${port}` });
  await run(page, "clear; echo copy-me-$((40+2))");
  await waitForRow(page, /^copy-me-42$/);
  const box = await page.$eval("#term .xterm-screen", (e) => {
    const r = e.getBoundingClientRect();
    const d = document.querySelector("#term").dataset;
    return { x: r.x, y: r.y, w: r.width / Number(d.cols), h: r.height / Number(d.rows) };
  });
  const line = (await rows(page)).indexOf("copy-me-42");
  await page.mouse.dblclick(box.x + 3.5 * box.w, box.y + (line + 0.5) * box.h);
  await page.waitForSelector('#notice:text("Copied 10 characters")', { timeout: T });
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), "copy-me-42");

  await page.evaluate(() => navigator.clipboard.writeText("echo pasted-$((3*3))"));
  await page.click("#term");
  await page.keyboard.press("Control+Shift+V");
  await waitForRow(page, /echo pasted-\$\(\(3\*3\)\)$/);
  await page.keyboard.press("Enter");
  await waitForRow(page, /^pasted-9$/);

  await page.evaluate(() => navigator.clipboard.writeText("echo from-the-menu-$((5+5))"));
  await page.click("#term", { button: "right" });
  await page.click('.term-menu button:has-text("Paste")');
  await waitForRow(page, /echo from-the-menu-\$\(\(5\+5\)\)$/);
  await page.keyboard.press("Enter");
  await waitForRow(page, /^from-the-menu-10$/);
});

test("search: Ctrl+Shift+F opens the box, counts the matches, Escape closes it", async () => {
  await page.click("#term");
  await page.keyboard.press("Control+Shift+F");
  await page.waitForSelector("#search-input:focus", { timeout: T });
  await page.keyboard.type("from-the-menu");
  await page.waitForSelector("#search .count:text-matches('^[0-9]+ of [0-9]+$')", { timeout: T });
  const [, total] = (await page.textContent("#search .count")).match(/of (\d+)/);
  assert.ok(Number(total) >= 2, `the command and its output: ${total}`);
  await page.keyboard.press("Escape");
  await page.waitForSelector("#search", { state: "hidden", timeout: T });
  assert.ok(await page.$eval("#term", (e) => e.contains(document.activeElement)), "back to the terminal");
});

test("colours: 16, 256 and truecolor; screenshots in dark and light", async () => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.waitForFunction(() => Number(document.querySelector("#term").dataset.cols) > 110, null, { timeout: T });
  await page.click("#term");
  await clearScreen(page);
  await runToPrompt(page, "echo hello-$((6*7))");
  await runToPrompt(page, "ls --color=always /");
  await runToPrompt(
    page,
    "printf '\\e[1mgpubox\\e[0m \\e[38;5;208m256 colours\\e[0m \\e[38;2;120;200;80mtruecolor\\e[0m \\e[4municode\\e[0m ✓ → naïve café\\n'",
  );
  await runToPrompt(page, "for i in $(seq 0 4 255); do printf '\\e[48;2;%d;%d;230m \\e[0m' $i $((255-i)); done; echo");
  await runToPrompt(page, "for i in $(seq 16 87); do printf '\\e[48;5;%dm \\e[0m' $i; done; echo");
  await runToPrompt(page, "ls -l --color=always /usr");
  await waitForRow(page, /^gpubox 256 colours truecolor unicode/);
  const colour = (text) =>
    page.$$eval(
      "#term .xterm-rows span",
      (spans, t) => spans.filter((s) => s.textContent === t).map((s) => getComputedStyle(s).color)[0] ?? null,
      text,
    );
  assert.equal(await colour("256 colours"), "rgb(255, 135, 0)", "colour 208 of the 256");
  assert.equal(await colour("truecolor"), "rgb(120, 200, 80)");
  const [r, g, b] = (await colour("bin")).match(/\d+/g).map(Number);
  assert.ok(b > r && b > g, `ls draws directories blue: rgb(${r}, ${g}, ${b})`);
  assert.ok(await hasBackground(page, "rgb(0, 255, 230)"), "the truecolour bar's first cell");
  assert.ok(await hasBackground(page, "rgb(95, 255, 255)"), "colour 87 of the 256");
  await page.waitForSelector("#notice:empty", { state: "attached", timeout: T }); // "Copied …" from the clipboard test
  await page.screenshot({ path: join(ARTIFACTS, "terminal.png"), animations: "disabled" });

  const light = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: "light" });
  await useWebDist(light);
  watchConsole(light);
  const lp = await light.newPage();
  await lp.goto(`http://127.0.0.1:${port}/.gpubox/login`);
  await logIn(lp, USER, PASSWORD);
  await lp.goto(`http://127.0.0.1:${port}/#s=${firstId}`);
  await connected(lp, firstId);
  await waitForRow(lp, /^gpubox 256 colours/);
  // This tab drew the session from its snapshot: the colours came through it too.
  assert.ok(await hasBackground(lp, "rgb(0, 255, 230)"), "truecolour from the snapshot");
  assert.ok(await hasBackground(lp, "rgb(95, 255, 255)"), "256 colours from the snapshot");
  const bg = await lp.$eval("#term", (e) => getComputedStyle(e).backgroundColor);
  assert.equal(bg, "rgb(255, 255, 255)", "the light palette");
  await lp.screenshot({ path: join(ARTIFACTS, "terminal-light.png"), animations: "disabled" });
  await light.close();
});

test("a shell that exits: the page says so and offers a new session", async () => {
  await page.click("#new-session");
  await page.waitForFunction((id) => !location.hash.endsWith(id), firstId, { timeout: T });
  const id = await hashId(page);
  await connected(page, id);
  await waitForRow(page, PROMPT);
  await run(page, "exit 3");
  await page.waitForSelector('#term[data-state="ended"]', { timeout: T });
  assert.match(await page.textContent("#term-banner"), /session ended \(exit code 3\)/i);
  await page.waitForFunction((gone) => !document.querySelector(`.session[data-id="${gone}"]`), id, { timeout: T });
  await page.click("#banner-new");
  await page.waitForFunction((gone) => !location.hash.endsWith(gone), id, { timeout: T });
  await connected(page, await hashId(page));
  assert.equal(await page.isVisible("#term-banner"), false);
  await waitForRow(page, PROMPT);
});

test("closing a session asks first, ends its shell, and opens another", async () => {
  const id = await hashId(page);
  const asked = new Promise((resolve) =>
    page.once("dialog", async (d) => {
      resolve(d.message());
      await d.accept();
    }),
  );
  await page.click(`.session[data-id="${id}"] .close`);
  assert.match(await asked, /Close .*shell/);
  await page.waitForFunction((gone) => !document.querySelector(`.session[data-id="${gone}"]`), id, { timeout: T });
  await page.waitForFunction((gone) => !location.hash.endsWith(gone), id, { timeout: T });
  await connected(page, await hashId(page));
  await page.waitForFunction(
    async (gone) => !(await (await fetch("/api/sessions")).json()).sessions.some((s) => s.id === gone),
    id,
    { timeout: T, polling: 300 },
  );
});

test("a page on another origin cannot open a session's WebSocket", async () => {
  const probe = (url) =>
    new Promise((resolve) => {
      const ws = new WebSocket(url);
      ws.onopen = () => {
        ws.close();
        resolve("open");
      };
      ws.onerror = () => resolve("refused");
      setTimeout(() => resolve("timeout"), 5000);
    });
  const url = `ws://127.0.0.1:${port}/api/sessions/${firstId}/ws`;
  // From the terminal's own page, with the login cookie, it opens: the probe works.
  assert.equal(await page.evaluate(probe, url), "open");

  const otherPort = await freePort();
  const other = createHttpServer((_req, res) => res.end("<!doctype html><title>another site</title><p>hi</p>"));
  await new Promise((resolve) => other.listen(otherPort, "127.0.0.1", resolve));
  failing.add(String(otherPort));
  const evil = await context.newPage();
  try {
    await evil.goto(`http://127.0.0.1:${otherPort}/`);
    // Same host, so the cookie goes along; only the Origin tells them apart.
    assert.equal(await evil.evaluate(probe, url), "refused");
  } finally {
    await evil.close();
    other.close();
  }
});

test("on a phone: no sideways scrolling, sessions as a row of tabs", async () => {
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark", isMobile: true });
  await useWebDist(phone);
  watchConsole(phone);
  const p = await phone.newPage();
  await p.goto(`http://127.0.0.1:${port}/.gpubox/login`);
  await logIn(p, USER, PASSWORD);
  await p.goto(`http://127.0.0.1:${port}/#s=${firstId}`);
  await connected(p, firstId);
  assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "fits the width");
  const [r, c] = await termSize(p);
  assert.ok(c >= 30 && r >= 20, `a usable terminal: ${r}x${c}`);
  // The session was wider: its screen is redrawn at this width, without rows of blanks from
  // re-wrapping lines drawn for the wider one.
  const lines = await rows(p);
  const listed = lines.flatMap((l, i) => (/^drwx/.test(l) ? [i] : []));
  assert.ok(listed.length >= 3, `the ls -l lines are on the phone's screen: ${lines.join("|")}`);
  assert.ok(lines.slice(listed[0], listed.at(-1)).every(Boolean), `no blank rows among them: ${lines.join("|")}`);
  const list = await p.$eval("#session-list", (e) => getComputedStyle(e).flexDirection);
  assert.equal(list, "row");
  await p.click("#term");
  await clearScreen(p);
  await runToPrompt(p, "ls --color=always /");
  await p.screenshot({ path: join(ARTIFACTS, "terminal-phone.png"), animations: "disabled" });
  // The keys a phone's keyboard lacks reach the program (`cat -A` shows them), and Ctrl stays
  // pressed for the next key typed: Ctrl, then c, is an interrupt.
  assert.ok(await p.isVisible("#keybar"), "the key bar shows on a phone");
  assert.ok(!(await page.isVisible("#keybar")), "and not on a desktop");
  await run(p, "cat -A");
  for (const k of ["Escape", "Tab", "Up", "Pipe", "Tilde"]) await p.click(`#keybar [data-key="${k}"]`);
  await p.keyboard.press("Enter");
  await waitForRow(p, /^\^\[\^I\^\[\[A\|~\$$/);
  await p.click('#keybar [data-key="Ctrl"]');
  assert.equal(await p.getAttribute('#keybar [data-key="Ctrl"]', "aria-pressed"), "true");
  await p.keyboard.type("c");
  assert.equal(await p.getAttribute('#keybar [data-key="Ctrl"]', "aria-pressed"), "false", "released after one key");
  await run(p, "echo after-$((2*21))");
  await waitForRow(p, /^after-42$/);
  await phone.close();
});

test("no errors in the console (a refused inline style under the CSP would show here)", () => {
  assert.deepEqual(errors, []);
});
