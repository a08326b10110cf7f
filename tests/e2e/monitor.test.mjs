// The instance's monitoring in headless Chromium against the real binary: the status panel's
// charts (a stand-in nvidia-smi on gpubox's PATH is the GPU), its ranges, a phone in the dark;
// alerts (a crash-looping service, a test alert to a webhook served here); and the idle stop's
// banner on gpubox's pages with "Keep running", then the stop asked of a Vast stand-in — while
// the pages' own polling (sent as background) does not count as someone using the instance.
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { ARTIFACTS, freePort, launchBrowser, logIn, phoneContext, startGpubox, useWebDist } from "./harness.mjs";

const USER = "e2e";
const PASSWORD = "e2e-password-123";
const BG = "x-gpubox-background";
let box, idleBox, browser, context, page, port, idlePort, hook, vast;
const problems = [];

/** A local HTTP server that keeps every request's method, path and JSON body. */
async function receiver(answer) {
  const got = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      let json = null;
      try {
        json = JSON.parse(body);
      } catch {
        // not JSON
      }
      got.push({ method: req.method, path: req.url, json });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(answer);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { got, port: server.address().port, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** Starts gpubox with `env` added to its environment (it inherits the test's). */
async function startWith(env, body, ready) {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await startGpubox(body, ready);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** A page that reports script errors and CSP violations (uPlot sizes its canvases from script). */
async function watchedPage(ctx, name) {
  const p = await ctx.newPage();
  await p.addInitScript(() =>
    document.addEventListener("securitypolicyviolation", (e) => console.error(`CSP: ${e.violatedDirective} ${e.blockedURI}`)),
  );
  p.on("console", (m) => {
    if (m.type() === "error" && !/\/favicon\.ico$/.test(m.location()?.url ?? "")) problems.push(`${name} console: ${m.text()}`);
  });
  p.on("pageerror", (e) => problems.push(`${name} page error: ${e.message}`));
  return p;
}

before(async () => {
  // The GPU: busy (37 %), its power changing every second (so that the legend does).
  const bin = mkdtempSync(join(tmpdir(), "gpubox-e2e-gpu-"));
  writeFileSync(join(bin, "nvidia-smi"), `#!/bin/sh\necho "0, NVIDIA H100 80GB HBM3, 37, 1234, 81559, 45, 70.$(date +%S)"\n`);
  chmodSync(join(bin, "nvidia-smi"), 0o755);

  hook = await receiver("{}");
  vast = await receiver('{"success": true}');
  port = await freePort();
  box = await startWith(
    { PATH: `${bin}:${process.env.PATH}` },
    `
[auth]
username = "${USER}"
password = "${PASSWORD}"

[metrics]
interval = "1s"

[alerts]
webhook = "http://127.0.0.1:${hook.port}/hook"

[services.logs]
app = "logs"
port = ${port}

[services.crash]
command = ["sh", "-c", "exit 3"]
`,
    `logs: listening on 0.0.0.0:${port}`,
  );
  browser = await launchBrowser();
  context = await browser.newContext({ viewport: { width: 1360, height: 860 }, colorScheme: "light" });
  await useWebDist(context);
  page = await watchedPage(context, "desktop");
  page.setDefaultTimeout(15000);
});

after(async () => {
  await browser?.close();
  await hook?.close();
  await vast?.close();
  if (box) assert.equal(await box.stop(), 0, "gpubox exits 0 on SIGTERM");
  if (idleBox) await idleBox.stop();
  assert.deepEqual(problems, []);
});

const legend = (p, chart) => p.locator(`.chart[data-chart="${chart}"] .u-legend`).innerText();

test("the status panel charts CPU, memory, the GPU, disk and network, live", async () => {
  const requests = [];
  page.on("request", (r) => requests.push({ url: r.url(), method: r.method(), bg: r.headers()[BG] }));
  await page.goto(`http://127.0.0.1:${port}/`);
  await logIn(page, USER, PASSWORD);
  // 15 min: every sample is fetched (the longer ranges refresh every 30-60 s).
  await page.evaluate(() => localStorage.setItem("gpubox.logs.range", "15m"));
  requests.length = 0;
  await page.reload();
  await page.waitForSelector("#status:not([hidden])");
  const ids = ["cpu", "mem", "gpu0_util", "gpu0_mem", "gpu0_heat", "disk", "net"];
  for (const id of ids) await page.waitForSelector(`.chart[data-chart="${id}"] canvas`);
  assert.equal(await page.locator("#charts-note").isHidden(), true, "no 'no GPU' note");
  assert.equal(
    await page.textContent('.chart[data-chart="gpu0_util"] .chart-title'),
    "GPU 0 (NVIDIA H100 80GB HBM3): utilization",
  );
  assert.match(await page.textContent('.chart[data-chart="gpu0_mem"] .chart-title'), /of 85\.5 GB/);
  assert.match(await page.textContent('.chart[data-chart="mem"] .chart-title'), /^Memory/);
  // Drawn, and as wide as the panel: uPlot's sizes are set from script, which the CSP allows.
  const sizes = await page.$$eval(".chart canvas", (cs) => cs.map((c) => [c.getBoundingClientRect().width, c.getBoundingClientRect().height]));
  const panel = await page.$eval("#charts", (e) => e.clientWidth);
  for (const [w, hgt] of sizes) assert.ok(w > panel * 0.9 && w <= panel && hgt > 100, `a canvas ${w}x${hgt} in ${panel}px`);
  const inked = await page.$eval('.chart[data-chart="gpu0_util"] canvas', (c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
    return n;
  });
  assert.ok(inked > 1000, `${inked} pixels drawn`);
  // Off the chart, the legend shows the latest values, and follows the samples.
  assert.match(await legend(page, "gpu0_util"), /busy\s*:?\s*37 %/);
  const heat = await legend(page, "gpu0_heat");
  assert.match(heat, /temperature\s*:?\s*45 °C/);
  await page.waitForFunction(
    (before) => document.querySelector('.chart[data-chart="gpu0_heat"] .u-legend').innerText !== before,
    heat,
    { timeout: 5000 },
  );
  // The page's own refreshes are background requests; the first load (a page load) is not.
  const metrics = requests.filter((r) => r.url.includes("/api/metrics?"));
  assert.ok(metrics.length >= 2, `${metrics.length} requests for the history`);
  assert.ok(metrics.slice(1).every((r) => r.bg === "1"), JSON.stringify(metrics));
  const status = requests.filter((r) => r.url.endsWith("/api/status"));
  assert.ok(status.length >= 1 && status.every((r) => r.bg === "1"), JSON.stringify(status));
  await page.screenshot({ path: join(ARTIFACTS, "monitor.png") });
  // Back to the default range for the next test.
  await page.evaluate(() => localStorage.removeItem("gpubox.logs.range"));
  await page.reload();
  await page.waitForSelector('.chart[data-chart="cpu"] canvas');
});

test("the range buttons: 6 h asked for, remembered after a reload", async () => {
  assert.equal(await page.getAttribute('.ranges [data-range="1h"]', "aria-pressed"), "true", "1 h at first");
  const [req] = await Promise.all([
    page.waitForRequest((r) => r.url().includes("/api/metrics?range=6h")),
    page.click('.ranges [data-range="6h"]'),
  ]);
  assert.equal(req.headers()[BG], undefined, "a click is the user's: no background header");
  assert.equal(await page.getAttribute('.ranges [data-range="6h"]', "aria-pressed"), "true");
  assert.equal(await page.getAttribute('.ranges [data-range="1h"]', "aria-pressed"), "false");
  await Promise.all([page.waitForRequest((r) => r.url().includes("/api/metrics?range=6h")), page.reload()]);
  await page.waitForSelector('.chart[data-chart="cpu"] canvas');
  assert.equal(await page.getAttribute('.ranges [data-range="6h"]', "aria-pressed"), "true");
  await Promise.all([page.waitForRequest((r) => r.url().includes("/api/metrics?range=15m")), page.click('.ranges [data-range="15m"]')]);
});

test("alerts: a crash-looping service, sent to the webhook; a test alert on request", async () => {
  assert.match(await page.textContent("#alerts-targets"), new RegExp(`webhook http://127\\.0\\.0\\.1:${hook.port}/…`));
  const loop = page.locator('#status-alerts li[data-kind="crash_loop"]').first();
  await loop.waitFor({ timeout: 20000 });
  assert.match(await loop.innerText(), /crash is crash-looping/);
  assert.equal(await loop.getAttribute("data-level"), "error");
  await loop.locator(".delivery.d-sent").waitFor({ timeout: 15000 });
  assert.ok(hook.got.some((r) => r.json?.event === "crash_loop" && r.json?.service === "crash"), "the webhook got it");

  const [req] = await Promise.all([page.waitForRequest((r) => r.url().endsWith("/.gpubox/api/alerts/test")), page.click("#alerts-test")]);
  assert.equal(req.method(), "POST");
  assert.equal(req.headers()[BG], undefined, "a click: no background header");
  await page.waitForFunction(() => /Sent to 1 target/.test(document.getElementById("alerts-tested").textContent));
  const item = page.locator('#status-alerts li[data-kind="test"]').first();
  await item.locator(".delivery.d-sent").waitFor();
  const tests = hook.got.filter((r) => r.json?.event === "test");
  assert.equal(tests.length, 1, JSON.stringify(hook.got));
  assert.equal(tests[0].method, "POST");
  assert.equal(tests[0].path, "/hook");
  assert.match(await page.textContent("#status-idle"), /^Off\./);
});

test("a phone in the dark: the charts one a row, nothing sideways", async () => {
  const phone = await phoneContext(browser, { width: 375, height: 740, storageState: await context.storageState() });
  const p = await watchedPage(phone, "phone");
  p.setDefaultTimeout(15000);
  await p.goto(`http://127.0.0.1:${port}/`);
  await p.click("#status-toggle");
  await p.waitForSelector('.chart[data-chart="gpu0_heat"] canvas');
  await p.waitForSelector("#status-alerts li");
  const lefts = await p.$$eval(".chart", (cs) => cs.map((c) => Math.round(c.getBoundingClientRect().left)));
  assert.equal(new Set(lefts).size, 1, `one chart a row: ${lefts}`);
  const wide = await p.evaluate(() => ({
    page: document.scrollingElement.scrollWidth,
    panel: document.getElementById("status").scrollWidth - document.getElementById("status").clientWidth,
    canvas: Math.max(...[...document.querySelectorAll(".chart canvas")].map((c) => c.getBoundingClientRect().right)),
    inner: window.innerWidth,
  }));
  assert.ok(wide.page <= wide.inner && wide.panel <= 0 && wide.canvas <= wide.inner, JSON.stringify(wide));
  // The axes and their labels are in the dark palette's greys, not uPlot's black (unreadable on
  // the dark panel).
  const black = await p.$eval('.chart[data-chart="cpu"] canvas', (c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 200 && d[i] + d[i + 1] + d[i + 2] < 60) n++;
    return n;
  });
  assert.equal(black, 0, "no black ink in the dark");
  await p.screenshot({ path: join(ARTIFACTS, "monitor-phone-dark.png") });
  await p.locator("#status-alerts").scrollIntoViewIfNeeded();
  await p.screenshot({ path: join(ARTIFACTS, "monitor-phone-alerts.png") });
  await phone.close();
});

test("idle: the banner on gpubox's pages, Keep running, then the stop asked of Vast", async () => {
  idlePort = await freePort();
  // The default login (its warning's script is the shell's, which shows the idle banner too),
  // no alert target, and a Vast stand-in to stop the instance.
  // Its own instance, started now (its idle spell starts with it), whose GPU does nothing.
  const idleBin = mkdtempSync(join(tmpdir(), "gpubox-e2e-gpu-"));
  writeFileSync(join(idleBin, "nvidia-smi"), `#!/bin/sh\necho "0, NVIDIA H100 80GB HBM3, 0, 3, 81559, 31, 60.5"\n`);
  chmodSync(join(idleBin, "nvidia-smi"), 0o755);
  idleBox = await startWith(
    { PATH: `${idleBin}:${process.env.PATH}`, CONTAINER_ID: "C.4242", CONTAINER_API_KEY: "key-4242", GPUBOX_VAST_URL: `http://127.0.0.1:${vast.port}` },
    `
[metrics]
interval = "1s"

[idle_stop]
after = "8s"
warn_before = "4s"

[services.logs]
app = "logs"
port = ${idlePort}
`,
    `logs: listening on 0.0.0.0:${idlePort}`,
  );
  const ctx = await browser.newContext({ viewport: { width: 1360, height: 860 } });
  await useWebDist(ctx);
  // 15 min: the charts ask every second here, the most background requests a page makes.
  await ctx.addInitScript(() => localStorage.setItem("gpubox.logs.range", "15m"));
  const p = await watchedPage(ctx, "idle");
  p.setDefaultTimeout(20000);
  const requests = [];
  p.on("request", (r) => requests.push({ url: r.url(), method: r.method(), bg: r.headers()[BG] }));
  await p.goto(`http://127.0.0.1:${idlePort}/`);
  await logIn(p, "admin", "admin");
  await p.waitForSelector('.chart[data-chart="gpu0_util"] canvas');
  // The logs page polls its status, history and alerts all along: were those activity, the
  // warning would never come.
  const banner = p.locator("#idle-banner");
  await banner.waitFor({ state: "visible" });
  assert.equal(await banner.getAttribute("role"), "alert");
  assert.match(await banner.innerText(), /No activity for \d+ s: this instance stops in \d+ s \(Vast\.ai is asked to stop it\)/);
  const [keep] = await Promise.all([p.waitForRequest((r) => r.url().endsWith("/.gpubox/api/idle/keep")), p.click("#idle-keep")]);
  assert.equal(keep.method(), "POST");
  assert.equal(keep.headers()[BG], undefined, "the button is the user's");
  await banner.waitFor({ state: "hidden" });
  assert.equal(vast.got.length, 0, "not stopped");
  const polled = requests.filter((r) => /\/api\/(status|metrics|alerts)|\/\.gpubox\/api\/idle$/.test(r.url) && r.bg === "1");
  assert.ok(polled.length > 5, `${polled.length} background requests`);
  // With no target set, the warning was kept here only: listed as held, and why.
  const warned = p.locator('#status-alerts li[data-kind="idle_warning"]').first();
  await warned.waitFor();
  assert.match(await warned.getAttribute("class"), /\bheld\b/);
  assert.match(await warned.innerText(), /Not sent: no target is set/);

  // On the home page (its own refresh every 3 s is background too): warned again, then stopped.
  await p.goto(`http://127.0.0.1:${idlePort}/.gpubox/`);
  await banner.waitFor({ state: "visible" });
  // The gauges' sparklines keep to their rows: every gauge's name in the first column, each
  // sparkline under its own meter.
  await p.locator('.gauges svg.spark[data-series="cpu"]').waitFor();
  const layout = await p.evaluate(() => ({
    names: [...document.querySelectorAll(".gauge .g-name")].map((e) => e.getBoundingClientRect().left),
    sparks: [...document.querySelectorAll(".gauges svg.spark")].map((s) => {
      const meter = s.previousElementSibling?.querySelector("meter")?.getBoundingClientRect();
      const r = s.getBoundingClientRect();
      return { below: meter ? r.top >= meter.bottom - 1 : false, left: meter ? Math.abs(r.left - meter.left) < 2 : false };
    }),
  }));
  assert.ok(layout.names.length >= 3 && layout.names.every((x) => x === layout.names[0]), JSON.stringify(layout));
  assert.ok(layout.sparks.length >= 2 && layout.sparks.every((s) => s.below && s.left), JSON.stringify(layout));
  await p.screenshot({ path: join(ARTIFACTS, "idle-banner.png") });
  await p.waitForFunction(() => document.getElementById("idle-banner")?.hidden, null, { timeout: 15000 });
  assert.equal(vast.got.length, 1, JSON.stringify(vast.got));
  assert.equal(vast.got[0].method, "PUT");
  assert.equal(vast.got[0].path, "/api/v0/instances/C.4242/");
  assert.deepEqual(vast.got[0].json, { state: "stopped" });
  const home = requests.filter((r) => r.url.endsWith("/.gpubox/") && r.method === "GET" && r.bg === "1");
  assert.ok(home.length >= 1, "the home page's refresh is background");
  await p.goto(`http://127.0.0.1:${idlePort}/`);
  await p.waitForFunction(() => /^Stopped: Vast\.ai accepted the stop/.test(document.getElementById("status-idle")?.textContent ?? ""));
  await ctx.close();
});
