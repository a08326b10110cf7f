// The logs app (port 7030) in headless Chromium against the real binary: lines of several
// services arriving live, filters, search, pause and resume, a progress bar updated in place, the
// status panel, a list of 200000 lines of which only a screenful is in the DOM, links to a line,
// and polling behind a proxy that holds the event stream back.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { ARTIFACTS, BIN, HERE, freePort, launchBrowser, logIn, startGpubox, useWebDist } from "./harness.mjs";

const USER = "e2e";
const PASSWORD = "e2e-password-123";
const PY = process.env.E2E_PYTHON ?? "python3";
const MANY = 200000;
let gpubox, browser, context, page, port, go;
const problems = [];

before(async () => {
  port = await freePort();
  go = join(mkdtempSync(join(tmpdir(), "gpubox-e2e-logs-")), "go");
  const svc = (name, extra = "") =>
    `[services.${name}]\ncommand = ["${PY}", "logs_services.py", "${name}"${name === "many" ? `, "${go}"` : ""}]\ncwd = "${HERE}"\n${extra}\n`;
  // As on Vast: the status panel shows these facts.
  const env = { CONTAINER_ID: "C.4242", PUBLIC_IPADDR: "203.0.113.7", GPU_COUNT: "1" };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  gpubox = await startGpubox(
    `
[auth]
username = "${USER}"
password = "${PASSWORD}"

[logs]
ring_size = "64MiB"

[services.logs]
app = "logs"
port = ${port}

${svc("ticker")}
${svc("other")}
${svc("bar", "tty = true")}
${svc("many", "oneshot = true")}
`,
    `logs: listening on 0.0.0.0:${port}`,
  );
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  browser = await launchBrowser();
  context = await browser.newContext({ viewport: { width: 1360, height: 860 }, colorScheme: "light" });
  await useWebDist(context);
  page = await context.newPage();
  // A Content-Security-Policy violation or a script error shows up here.
  // Expected, and logged by the browser too: the bad regular expression's 400 answer, and the
  // browser's own request for /favicon.ico (none is served).
  page.on("console", (m) => {
    const where = m.location()?.url ?? "";
    if (m.type() !== "error" || /\/favicon\.ico$/.test(where) || /\/api\/lines\?q=tick\+%28/.test(where)) return;
    problems.push(`console: ${m.text()} (${where})`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
});

after(async () => {
  await browser?.close();
  if (gpubox) assert.equal(await gpubox.stop(), 0, "gpubox exits 0 on SIGTERM");
});

const rows = (sel = "") =>
  page.$$eval(`#logs-list .row[data-seq]${sel}`, (els) =>
    els
      .map((e) => ({
        seq: Number(e.dataset.seq),
        service: e.dataset.service,
        stream: e.dataset.stream,
        cls: e.className,
        text: e.querySelector(".x").textContent,
        marks: [...e.querySelectorAll("mark")].map((m) => m.textContent),
      }))
      .sort((a, b) => a.seq - b.seq),
  );
const held = () => page.$eval("#count", (e) => ({ held: Number(e.dataset.held), shown: Number(e.dataset.shown) }));
const maxSeq = async () => Math.max(0, ...(await rows()).map((r) => r.seq));
const only = async (name) => {
  await page.hover(`.svc-chip[data-service="${name}"]`);
  await page.click(`.svc-chip[data-service="${name}"] .only`);
};
const atBottom = () => page.$eval("#logs-list", (l) => l.scrollTop + l.clientHeight >= l.scrollHeight - 30);

test("log in, then lines of several services arrive live, coloured and marked", async () => {
  await page.goto(`http://127.0.0.1:${port}/`);
  assert.match(page.url(), /\/\.gpubox\/login/);
  await logIn(page, USER, PASSWORD);
  await page.waitForSelector('#logs-list .row[data-service="ticker"]', { timeout: 15000 });
  await page.waitForSelector('#logs-list .row[data-service="other"]', { timeout: 15000 });
  const before = await maxSeq();
  await page.waitForFunction((n) => [...document.querySelectorAll("#logs-list .row[data-seq]")].some((r) => Number(r.dataset.seq) > n), before, {
    timeout: 5000,
  });
  // SGR 32 is palette green: a class, not an inline style.
  const green = await page.$eval('#logs-list .row[data-service="ticker"] .x .a-f2', (e) => e.textContent);
  assert.match(green, /^tick \d+$/);
  // ERROR on stderr every 2 s: marked as stderr and as an error.
  const err = await page.waitForSelector('#logs-list .row.lv-err.s-stderr[data-service="ticker"]', { timeout: 5000 });
  assert.match(await err.textContent(), /ERROR tick \d+0 failed/);
  assert.equal(await page.$eval("#conn", (e) => e.dataset.state), "live");
  assert.ok(await atBottom(), "following: the newest line is in view");
  // The time column's menu names its choices.
  assert.deepEqual(await page.$$eval("#time-mode option", (os) => os.map((o) => o.textContent)), ["Time of day", "Time ago", "No time"]);
  await page.selectOption("#time-mode", "none");
  assert.equal(await page.$eval(".lg-app", (e) => e.dataset.time), "none");
  assert.ok(await page.isHidden('#logs-list .row[data-service="ticker"] .t'), "no time column");
  await page.selectOption("#time-mode", "abs");
  assert.equal(await page.$eval(".lg-app", (e) => e.dataset.time), "abs");
});

test("filter to one service: its lines, JSON chips, 256 colours, the traceback as one block, its download", async () => {
  await only("other");
  // `other` prints its first WARNING at its 7th heartbeat (about 2 s after it started): on a slow
  // machine this test can get here before that, so it waits for it.
  await page.waitForFunction(
    () => {
      const r = [...document.querySelectorAll("#logs-list .row[data-seq]")];
      return r.length > 3 && r.every((e) => e.dataset.service === "other") && r.some((e) => e.querySelector(".x")?.textContent.startsWith("WARNING"));
    },
    null,
    { timeout: 15000 },
  );
  assert.equal(await page.getAttribute('.svc-chip[data-service="ticker"] .toggle', "aria-pressed"), "false");
  // The beginning of other's log: scroll to the top (that pauses following).
  await page.$eval("#logs-list", (l) => (l.scrollTop = 0));
  // Everything is still in memory; the log file has nothing older either.
  await page.waitForFunction(() => document.querySelector("#older-note")?.textContent === "beginning of the log");
  const all = await rows();
  assert.ok(all.every((r) => r.service === "other"), "only other's lines");
  const json = await page.$$eval('#logs-list .row[data-service="other"] .kv', (els) => els.map((e) => e.textContent));
  assert.ok(json.includes("port=8080") && json.includes("workers=4"), `JSON fields as chips: ${json}`);
  assert.ok(all.some((r) => r.text.includes("other started")), "the JSON message is shown");
  const orange = await page.$eval('#logs-list .row[data-service="other"] .x span[style]', (e) => getComputedStyle(e).color);
  assert.equal(orange, "rgb(255, 135, 0)", "colour 208 of 256, set through the CSSOM");
  const tb = all.filter((r) => r.cls.includes(" tb"));
  assert.match(tb[0]?.text ?? "", /^Traceback \(most recent call last\):/);
  assert.ok(tb[0].cls.includes("tb-start"));
  assert.equal(tb.at(-1).text, "KeyError: 'missing'");
  assert.ok(tb.at(-1).cls.includes("tb-end"));
  assert.ok(tb.every((r) => r.stream === "stderr") && tb.length >= 4, "the whole traceback is one block");
  assert.ok(all.some((r) => r.cls.includes("lv-warn") && r.text.startsWith("WARNING")), "a warning stands out");
  // The download link is the service's whole log.
  const href = await page.getAttribute("#download", "href");
  assert.equal(href, "/api/download?service=other");
  const log = await page.evaluate(async (h) => (await fetch(h)).text(), href);
  assert.match(log, /other heartbeat 1\n/);
  // Streams: only stderr.
  for (const s of ["stdout", "tty", "event"]) await page.click(`.stream-chip[data-stream="${s}"]`);
  await page.waitForFunction(() => {
    const r = [...document.querySelectorAll("#logs-list .row[data-seq]")];
    return r.length > 0 && r.every((e) => e.dataset.stream === "stderr");
  });
  for (const s of ["stdout", "tty", "event"]) await page.click(`.stream-chip[data-stream="${s}"]`);
  // Two services: click ticker's chip on.
  await page.click('.svc-chip[data-service="ticker"] .toggle');
  if ((await page.getAttribute("#follow", "data-state")) === "paused") await page.click("#follow");
  await page.waitForFunction(() => {
    const s = new Set([...document.querySelectorAll("#logs-list .row[data-seq]")].map((e) => e.dataset.service));
    return s.has("ticker") && s.has("other") && !s.has("bar");
  });
  assert.equal(await page.isHidden("#download"), true, "no download with two services");
  await page.click("#svc-all");
});

test("search: text and regex, matches highlighted, new matches appended, a bad regex explained", async () => {
  await page.focus("#logs-list");
  await page.keyboard.press("/");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "search", "/ goes to the search box");
  await page.fill("#search", "HEARTBEAT");
  await page.waitForSelector("#logs-list mark", { timeout: 5000 });
  let found = await rows();
  assert.ok(found.length > 3);
  assert.ok(found.every((r) => /heartbeat/i.test(r.text) && r.marks.length && r.marks.every((m) => m === "heartbeat")), "every line matches, its match marked");
  assert.match(await page.textContent("#search-info"), /\d+ match/);
  // New lines that match are appended while the search is shown.
  const last = Math.max(...found.map((r) => r.seq));
  await page.waitForFunction((n) => [...document.querySelectorAll("#logs-list .row[data-seq]")].some((r) => Number(r.dataset.seq) > n), last, {
    timeout: 5000,
  });
  found = await rows();
  assert.ok(found.every((r) => /heartbeat/i.test(r.text)));

  await page.click("#search-regex");
  await page.fill("#search", String.raw`tick \d*5\b`);
  await page.waitForFunction(() => {
    const m = [...document.querySelectorAll("#logs-list mark")];
    return m.length > 2 && m.every((e) => /^tick \d*5$/.test(e.textContent));
  });
  found = await rows();
  assert.ok(found.every((r) => /tick \d*5\b/.test(r.text)), "only the regex's matches");

  // With context: the lines around each match come too, dimmed.
  await page.click("#search-context");
  await page.waitForSelector("#logs-list .row.ctx");
  found = await rows();
  assert.ok(found.some((r) => r.cls.includes("ctx") && !/tick \d*5\b/.test(r.text)), "context lines");
  assert.ok(found.filter((r) => r.cls.includes("hit")).every((r) => /tick \d*5\b/.test(r.text)), "matches");
  await page.click("#search-context");

  await page.fill("#search", "tick (");
  await page.waitForSelector("#search-error:not([hidden])");
  assert.match(await page.textContent("#search-error"), /regular expression/i);
  await page.click("#search-regex");

  // Esc clears the search: every service's lines again, nothing marked.
  await page.focus("#search");
  await page.keyboard.press("Escape");
  await page.waitForFunction(() => !document.querySelector("#logs-list mark") && document.querySelector("#search").value === "");
  await page.waitForSelector("#search-error", { state: "hidden" });
  await page.waitForFunction(() => {
    const s = new Set([...document.querySelectorAll("#logs-list .row[data-seq]")].map((e) => e.dataset.service));
    return s.has("ticker") && s.has("other");
  });
});

test("pause: the view stays, the count of new lines grows; resume follows again", async () => {
  await page.focus("#logs-list"); // keys go to the page, not the search box
  await page.keyboard.press("f");
  assert.equal(await page.getAttribute("#follow", "data-state"), "paused");
  const top = await page.$eval("#logs-list", (l) => l.scrollTop);
  await page.waitForSelector("#new-count");
  const first = Number(await page.getAttribute("#new-count", "data-count"));
  await page.waitForFunction((n) => Number(document.querySelector("#new-count")?.dataset.count) > n + 3, first, { timeout: 5000 });
  assert.equal(await page.$eval("#logs-list", (l) => l.scrollTop), top, "the view did not move");
  assert.equal(await atBottom(), false, "new lines arrived below");
  await page.click("#follow");
  assert.equal(await page.getAttribute("#follow", "data-state"), "following");
  assert.equal(await page.$("#new-count"), null);
  await page.waitForFunction(() => {
    const l = document.querySelector("#logs-list");
    return l.scrollTop + l.clientHeight >= l.scrollHeight - 30;
  });
  // Scrolling up by hand pauses.
  await page.mouse.move(700, 500);
  await page.mouse.wheel(0, -800);
  await page.waitForFunction(() => document.querySelector("#follow").dataset.state === "paused");
  await page.click("#follow");
});

test("a progress bar is one line updated in place", async () => {
  await only("bar");
  const live = '#logs-list .row.live[data-service="bar"]';
  await page.waitForSelector(live, { timeout: 5000 });
  const texts = new Set();
  const shown = (await held()).shown;
  for (let i = 0; i < 8; i++) {
    assert.equal((await page.$$(live)).length, 1, "one live row");
    texts.add(await page.textContent(`${live} .x`));
    await page.waitForTimeout(150);
  }
  assert.ok(texts.size >= 3, `the frame changes in place: ${[...texts].join(" / ")}`);
  for (const t of texts) assert.match(t, /downloading shard \d+: +\d+% \|[#.]{20}\|/);
  assert.ok((await held()).shown <= shown + 1, "frames are not stored as lines");
  const liveTop = await page.$eval(live, (e) => parseFloat(e.style.top));
  const lastTop = await page.$$eval("#logs-list .row", (els) => Math.max(...els.map((e) => parseFloat(e.style.top))));
  assert.equal(liveTop, lastTop, "the live line is the last row");
  await page.click("#svc-all");
});

test("status panel: every service, the machine, links with copy buttons", async () => {
  await page.waitForSelector("#status:not([hidden])");
  for (const name of ["ticker", "other", "bar", "many"]) {
    await page.waitForSelector(`#status-services tr[data-service="${name}"]`);
  }
  assert.equal(await page.textContent('#status-services tr[data-service="ticker"] .pill'), "running");
  assert.equal(await page.textContent('#status-services tr[data-service="ticker"] .ready'), "✓");
  assert.match(await page.textContent('#status-services tr[data-service="many"]'), /oneshot/);
  const machine = await page.textContent("#status-machine");
  assert.match(machine, new RegExp(`${cpus().length} CPUs?`));
  assert.match(machine, /\/dev\/shm/);
  assert.match(machine, /free/);
  assert.ok((await page.$$("#status-machine .bar .fill")).length >= 2, "memory and disk bars");
  const vast = await page.textContent("#status-vast");
  assert.match(vast, /C\.4242/);
  assert.match(vast, /203\.0\.113\.7/);
  const link = await page.getAttribute('#status-links li[data-service="logs"] a', "href");
  assert.match(link, new RegExp(`:${port}`));
  await page.click('#status-links li[data-service="logs"] button.copy');
  await page.waitForFunction(() => /Copied|Select/.test(document.querySelector('#status-links li[data-service="logs"] button.copy').textContent));
  // It refreshes by itself: the uptime of ticker changes.
  const up = await page.textContent('#status-services tr[data-service="ticker"] td.num');
  await page.waitForFunction((u) => document.querySelector('#status-services tr[data-service="ticker"] td.num').textContent !== u, up, {
    timeout: 5000,
  });
  // A restart that was asked for ends the process with SIGTERM: shown whole, and not as a crash.
  execFileSync(BIN, ["--control", join(gpubox.dir, "c.sock"), "restart", "other"]);
  const exit = '#status-services tr[data-service="other"] td.exit';
  await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === "SIGTERM", exit, { timeout: 10000 });
  const cell = await page.$eval(exit, (e) => ({ cls: e.className, cut: e.scrollWidth > e.clientWidth, title: e.title }));
  assert.ok(!cell.cls.includes("bad-text") && !cell.cut, `${JSON.stringify(cell)}`);
  assert.match(cell.title, /on request/);
  await page.focus("#logs-list");
  await page.keyboard.press("s");
  assert.equal(await page.isHidden("#status"), true);
  await page.keyboard.press("s");
  assert.equal(await page.isVisible("#status"), true);
});

test("screenshots: the main view, and a phone in the dark", async () => {
  if ((await page.getAttribute("#follow", "data-state")) === "paused") await page.click("#follow");
  await page.waitForSelector('#logs-list .row.live[data-service="bar"]');
  await page.screenshot({ path: join(ARTIFACTS, "logs.png") });
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark", hasTouch: true, isMobile: true });
  await useWebDist(phone);
  await phone.addCookies(await context.cookies());
  const p = await phone.newPage();
  p.on("pageerror", (e) => problems.push(`phone page error: ${e.message}`));
  await p.goto(`http://127.0.0.1:${port}/`);
  await p.waitForSelector('#logs-list .row[data-service="ticker"]');
  assert.equal(await p.isHidden("#status"), true, "the panel starts closed on a phone");
  assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "no sideways page scroll");
  await p.screenshot({ path: join(ARTIFACTS, "logs-phone-dark.png") });
  await p.click("#status-toggle");
  await p.waitForSelector("#status-machine");
  await p.screenshot({ path: join(ARTIFACTS, "logs-phone-status.png") });
  await phone.close();
});

test("phones: one row of controls, the filters behind a button, long lines wrapped and remembered", async () => {
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "light", hasTouch: true, isMobile: true });
  await useWebDist(phone);
  await phone.addCookies(await context.cookies());
  const p = await phone.newPage();
  p.on("pageerror", (e) => problems.push(`phone page error: ${e.message}`));
  await p.goto(`http://127.0.0.1:${port}/`);
  await p.waitForSelector('#logs-list .row[data-service="ticker"]');
  const bar = await p.$eval(".lg-toolbar", (el) => el.getBoundingClientRect().height);
  assert.ok(bar <= 844 * 0.08, `the controls take ${bar}px of 844`);
  assert.equal(await p.isHidden("#svc-chips"), true, "the filters start folded");
  await p.click("#filters-toggle");
  assert.equal(await p.isVisible("#svc-chips"), true);
  assert.equal(await p.isVisible("#time-range"), true);
  assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "no sideways page scroll with the filters open");
  await p.screenshot({ path: join(ARTIFACTS, "logs-phone-filters.png") });

  // Wrapped: the ticker's lines (longer than the phone is wide) take two lines, all of it in view.
  const rowH = await p.$eval("#logs-list", (el) => parseFloat(getComputedStyle(el).getPropertyValue("--row-h")));
  const one = await p.$eval('#logs-list .row[data-service="ticker"]', (el) => el.offsetHeight);
  assert.equal(one, rowH, "unwrapped rows are one line");
  await p.click("#wrap");
  await p.click("#filters-toggle");
  const layout = () =>
    p.$$eval("#logs-list .row", (rows) => {
      const list = document.querySelector("#logs-list");
      const box = list.getBoundingClientRect();
      const seen = rows
        .map((r) => ({ top: r.getBoundingClientRect().top, h: r.offsetHeight, w: r.scrollWidth, service: r.dataset.service }))
        .filter((r) => r.top + r.h > box.top && r.top < box.bottom)
        .sort((a, b) => a.top - b.top);
      const overlaps = seen.filter((r, i) => i > 0 && r.top < seen[i - 1].top + seen[i - 1].h - 1).length;
      return { seen, overlaps, sideways: list.scrollWidth - list.clientWidth, atBottom: list.scrollTop + list.clientHeight >= list.scrollHeight - 30 };
    });
  await p.waitForFunction(
    (h) => [...document.querySelectorAll('#logs-list .row[data-service="ticker"]')].some((r) => r.offsetHeight >= 2 * h),
    rowH,
  );
  await p.waitForTimeout(1500);
  let l = await layout();
  assert.equal(l.overlaps, 0, `no row over another: ${JSON.stringify(l.seen.slice(0, 8))}`);
  assert.ok(l.sideways <= 1, `the list does not scroll sideways (${l.sideways}px)`);
  assert.ok(l.seen.filter((r) => r.service === "ticker").every((r) => r.w <= 391), "every ticker row fits the width");
  assert.ok(l.atBottom, "still following at the end");
  await p.screenshot({ path: join(ARTIFACTS, "logs-phone-wrap.png") });
  // A link to an older line, wrapped: the line is in view once the rows around it are measured.
  const seq = await p.evaluate(async () => (await (await fetch("/api/lines?service=ticker&limit=60")).json()).lines[0][0]);
  await p.evaluate((n) => (location.hash = `#seq=${n}`), seq);
  await p.waitForSelector(`#logs-list .row.target[data-seq="${seq}"]`);
  await p.waitForTimeout(500);
  const inView = await p.$eval(`#logs-list .row.target`, (r) => {
    const a = r.getBoundingClientRect();
    const b = document.querySelector("#logs-list").getBoundingClientRect();
    return a.top >= b.top - 1 && a.bottom <= b.bottom + 1;
  });
  assert.ok(inView, "the linked line is in view");
  await p.evaluate(() => history.replaceState(null, "", location.pathname));
  await p.reload();
  await p.waitForSelector('#logs-list .row[data-service="ticker"]');
  assert.equal(await p.getAttribute("#wrap", "aria-pressed"), "true", "remembered");
  await p.waitForFunction(() => document.querySelector("#logs-list").classList.contains("wrap"));
  await p.waitForTimeout(1000);
  l = await layout();
  assert.equal(l.overlaps, 0);
  assert.ok(l.atBottom, "a reload lands at the end, wrapped");
  await p.keyboard.press("w");
  assert.equal(await p.getAttribute("#wrap", "aria-pressed"), "false", "w switches it");
  await phone.close();
});

test("time range: since a time leaves out older lines, here and in the API; All time brings them back", async () => {
  await page.selectOption("#time-range", "at");
  assert.equal(await page.isVisible("#since-at"), true);
  await page.$eval("#since-at", (el) => {
    el.value = "2999-01-01T00:00:00";
    el.dispatchEvent(new Event("change"));
  });
  await page.waitForFunction(() => !document.querySelector('#logs-list .row[data-service="ticker"]'));
  await page.waitForTimeout(600);
  assert.equal(await page.$('#logs-list .row[data-service="ticker"]'), null, "new lines are before the bound too");
  assert.equal(await page.getAttribute("#filters-toggle", "data-narrowing"), "1");
  const future = Date.parse("2999-01-01T00:00:00Z");
  const api = await page.evaluate(async (since) => (await (await fetch(`/api/lines?since=${since}&limit=50`)).json()).lines.length, future);
  assert.equal(api, 0);
  const past = await page.evaluate(async () => (await (await fetch(`/api/lines?since=${Date.now() - 3600_000}&limit=50`)).json()).lines.length);
  assert.ok(past > 0);
  await page.selectOption("#time-range", "5");
  await page.waitForSelector('#logs-list .row[data-service="ticker"]');
  assert.equal(await page.isHidden("#since-at"), true);
  await page.selectOption("#time-range", "");
  assert.equal(await page.getAttribute("#filters-toggle", "data-narrowing"), "0");
});

test(`${MANY} lines held, a screenful in the DOM, the middle where it should be`, async () => {
  await only("many");
  writeFileSync(go, "");
  await page.waitForFunction((n) => Number(document.querySelector("#count")?.dataset.shown) >= n, MANY, { timeout: 40000, polling: 250 });
  const { held: total, shown } = await held();
  assert.equal(shown, MANY);
  assert.ok(total >= MANY, `${total} lines held`);
  const inDom = await page.$$eval("#logs-list .row", (els) => els.length);
  assert.ok(inDom < 400, `${inDom} rows in the DOM`);
  const rowH = await page.$eval("#logs-list", (l) => parseFloat(getComputedStyle(l).getPropertyValue("--row-h")));
  // Jump to the middle: the row at the centre is the line that belongs there.
  const took = await page.evaluate(
    () =>
      new Promise((resolve) => {
        const l = document.querySelector("#logs-list");
        const t = performance.now();
        l.scrollTop = (l.scrollHeight - l.clientHeight) / 2;
        requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - t)));
      }),
  );
  assert.ok(took < 400, `a jump to the middle renders in ${took} ms`);
  const centre = await page.$eval("#logs-list", (l, h) => {
    const y = l.scrollTop + l.clientHeight / 2;
    const row = [...l.querySelectorAll(".row")].find((r) => parseFloat(r.style.top) <= y && y < parseFloat(r.style.top) + h);
    return { index: Math.floor(y / h), text: row.querySelector(".x").textContent, seq: row.dataset.seq };
  }, rowH);
  // Row 0 is the note about older lines; row i is the i-th line.
  assert.equal(centre.text, `many line ${String(centre.index).padStart(6, "0")}`);
  assert.ok(centre.index > MANY / 2 - 100 && centre.index < MANY / 2 + 100, `row ${centre.index} is in the middle`);
  assert.ok((await page.$$eval("#logs-list .row", (els) => els.length)) < 400, "still a screenful of rows");

  // A link to that line: its time is the link; loading the link shows it marked.
  await page.click(`#logs-list .row[data-seq="${centre.seq}"] a.t`);
  assert.equal(new URL(page.url()).hash, `#seq=${centre.seq}`);
  await page.waitForSelector(`#logs-list .row.target[data-seq="${centre.seq}"]`);
  await page.reload();
  const target = await page.waitForSelector(`#logs-list .row.target[data-seq="${centre.seq}"]`, { timeout: 20000 });
  assert.equal(await target.$eval(".x", (e) => e.textContent), centre.text);
  // In view, and it stays there while the lines after it are loaded.
  const inView = () =>
    page.$eval("#logs-list", (l, s) => {
      const r = l.querySelector(`.row[data-seq="${s}"]`)?.getBoundingClientRect();
      const v = l.getBoundingClientRect();
      return !!r && r.top >= v.top && r.bottom <= v.bottom;
    }, centre.seq);
  assert.ok(await inView(), "the linked line is in view");
  await page.waitForFunction((n) => Number(document.querySelector("#count").dataset.held) > n, MANY / 2);
  assert.ok(await inView(), "the linked line is still in view");
  assert.equal(await page.getAttribute("#follow", "data-state"), "paused");

  // At the top, older lines come from memory, and the lines in view stay where they were: the
  // first line held (the 5000th before the linked one) is still just below the note at the top.
  const first = await page.evaluate(async (s) => (await (await fetch(`/api/lines?before=${Number(s) + 1}&limit=5000`)).json()).lines[0], centre.seq);
  const beforeOlder = (await held()).held;
  await page.$eval("#logs-list", (l) => (l.scrollTop = 0));
  await page.waitForFunction((n) => Number(document.querySelector("#count").dataset.held) >= n + 5000, beforeOlder);
  await page.waitForTimeout(100);
  const second = await page.$eval("#logs-list", (l, h) => {
    const y = l.scrollTop + h * 1.5;
    const row = [...l.querySelectorAll(".row")].find((r) => parseFloat(r.style.top) <= y && y < parseFloat(r.style.top) + h);
    return { seq: Number(row.dataset.seq), text: row.querySelector(".x").textContent };
  }, rowH);
  assert.deepEqual(second, { seq: first[0], text: first[4] });
  await page.waitForSelector('#status-services tr[data-service="many"] .pill.st-done', { timeout: 10000 });
});

test("older lines of one service come from its log files, rotated ones too, once memory has none", async () => {
  const hport = await freePort();
  const small = await startGpubox(
    `
[auth]
username = "${USER}"
password = "${PASSWORD}"

[logs]
ring_size = "128KiB"
max_file_size = "200KB"

[services.logs]
app = "logs"
port = ${hport}

[services.hist]
command = ["${PY}", "logs_services.py", "hist"]
cwd = "${HERE}"
oneshot = true
`,
    `logs: listening on 0.0.0.0:${hport}`,
  );
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    await useWebDist(ctx);
    const p = await ctx.newPage();
    p.on("pageerror", (e) => problems.push(`history page error: ${e.message}`));
    await p.goto(`http://127.0.0.1:${hport}/`);
    await logIn(p, USER, PASSWORD);
    await p.waitForSelector('#logs-list .row[data-service="hist"]');
    const inMemory = await p.evaluate(async () => (await (await fetch("/api/lines?service=hist&limit=100000")).json()).lines.length);
    assert.ok(inMemory < 10000, `the ring holds only the newest lines (${inMemory})`);
    await p.hover('.svc-chip[data-service="hist"]');
    await p.click('.svc-chip[data-service="hist"] .only');
    const older = () => p.getAttribute("#logs-list", "data-older");
    for (let i = 0; i < 12 && (await older()) !== "start"; i++) {
      const n = Number(await p.getAttribute("#count", "data-shown"));
      await p.$eval("#logs-list", (l) => (l.scrollTop = 0));
      await p.waitForFunction(
        (n) => Number(document.querySelector("#count").dataset.shown) > n || document.querySelector("#logs-list").dataset.older === "start",
        n,
      );
    }
    await p.$eval("#logs-list", (l) => (l.scrollTop = 0));
    await p.waitForFunction(() => document.querySelector("#older-note")?.textContent === "beginning of the log");
    // Every line once, in order: the files and the ring joined where they meet.
    assert.equal(Number(await p.getAttribute("#count", "data-shown")), 20000);
    const rowH = await p.$eval("#logs-list", (l) => parseFloat(getComputedStyle(l).getPropertyValue("--row-h")));
    for (const f of [0, 0.25, 0.5, 0.75, 1]) {
      const row = await p.$eval(
        "#logs-list",
        async (l, [f, h]) => {
          l.scrollTop = (l.scrollHeight - l.clientHeight) * f;
          await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
          const y = l.scrollTop + h * 1.5;
          const row = [...l.querySelectorAll(".row")].find((r) => parseFloat(r.style.top) <= y && y < parseFloat(r.style.top) + h);
          return { index: Math.floor(y / h), text: row.querySelector(".x").textContent };
        },
        [f, rowH],
      );
      assert.equal(row.text, `hist line ${String(row.index).padStart(5, "0")}`);
    }
  } finally {
    await ctx.close();
    assert.equal(await small.stop(), 0);
  }
});

test("behind a proxy that holds responses back until they end, the page polls and new lines still arrive", async () => {
  const proxy = spawn(PY, [join(HERE, "body_limit_proxy.py"), String(port), String(100 * 1000 * 1000), "--buffer"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const p = await context.newPage();
  try {
    const proxyPort = await new Promise((resolve, reject) => {
      proxy.stdout.once("data", (d) => resolve(Number(String(d).trim())));
      proxy.once("exit", (code) => reject(new Error(`the proxy exited: ${code}`)));
    });
    // The session cookie is the browser's for 127.0.0.1 on any port.
    await p.goto(`http://127.0.0.1:${proxyPort}/`);
    await p.waitForSelector('#logs-list .row[data-service="ticker"]', { timeout: 15000 });
    // The event stream never gets through: after 5 s without its hello the page polls.
    await p.waitForSelector('#conn[data-state="polling"]', { timeout: 15000 });
    assert.equal(await p.$eval("#conn", (e) => e.textContent), "live (every 2 s)");
    const newest = () => p.$$eval("#logs-list .row[data-seq]", (rows) => Math.max(...rows.map((r) => Number(r.dataset.seq))));
    const before = await newest();
    await p.waitForFunction((n) => [...document.querySelectorAll("#logs-list .row[data-seq]")].some((r) => Number(r.dataset.seq) > n), before, {
      timeout: 10000,
    });
    // Every line once and in order, as from the stream.
    const seqs = await p.$$eval("#logs-list .row[data-seq]", (rows) => rows.map((r) => Number(r.dataset.seq)).sort((a, b) => a - b));
    assert.equal(new Set(seqs).size, seqs.length, "no line twice");
  } finally {
    await p.close();
    proxy.kill();
  }
});

test("no script errors and no Content-Security-Policy violations", async () => {
  const csp = await page.evaluate(async () => (await fetch("/")).headers.get("content-security-policy"));
  assert.match(csp, /script-src 'self'; style-src 'self'/, "the page runs under the strict policy");
  assert.deepEqual(problems, []);
});
