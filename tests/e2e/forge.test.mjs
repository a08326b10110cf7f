// The Forge stand-in (Gradio 4.40.0 with Forge's pins) as a supervised service behind gpubox's
// proxy, driven in headless Chromium the way a person uses Forge.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { ARTIFACTS, BIN, HERE, PYTHON, freePort, launchBrowser, logIn, startGpubox } from "./harness.mjs";

const USER = "e2e";
const PASSWORD = "e2e-password-123";
let gpubox, browser, page, port;
const requests = [];

before(async () => {
  port = await freePort();
  const upstream = await freePort();
  gpubox = await startGpubox(
    `
[auth]
username = "${USER}"
password = "${PASSWORD}"

[services.forge]
command = ["${PYTHON}", "forge_standin.py", "${upstream}", "--delay", "4"]
cwd = "${HERE}"
env = { GRADIO_ANALYTICS_ENABLED = "False", PYTHONUNBUFFERED = "1" }
port = ${port}
upstream = "http://127.0.0.1:${upstream}"
`,
    `forge: listening on 0.0.0.0:${port}`,
  );
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("request", (r) => requests.push(`${r.method()} ${new URL(r.url()).pathname}`));
});

after(async () => {
  await browser?.close();
  if (gpubox) assert.equal(await gpubox.stop(), 0, "gpubox exits 0 on SIGTERM");
});

test("log in, see the starting page, then the app appears by itself", async () => {
  await page.goto(`http://127.0.0.1:${port}/`);
  assert.match(page.url(), /\/\.gpubox\/login\?next=/);
  await page.screenshot({ path: join(ARTIFACTS, "login.png") });
  await logIn(page, USER, PASSWORD);
  await page.waitForSelector("text=forge is starting", { timeout: 10000 });
  await page.screenshot({ path: join(ARTIFACTS, "starting.png") });
  // No reload from here: the waiting page loads the app when the service is ready.
  await page.waitForSelector("#generate", { timeout: 120000 });
  const referrer = await page.getAttribute('meta[name="referrer"]', "content");
  assert.equal(referrer, "no-referrer");
});

test("generate: progress streams over SSE, the output image comes from /file=", async () => {
  await page.click("#generate button, button#generate");
  const status = page.locator("#status textarea");
  await page.waitForFunction(() => /step \d\/4/.test(document.querySelector("#status textarea")?.value ?? ""), null, {
    timeout: 30000,
  });
  const midway = await status.inputValue();
  assert.match(midway, /^step [1-3]\/4$/, "an intermediate yield reached the page before the end");
  await page.waitForFunction(() => document.querySelector("#status textarea")?.value === "done: 4 steps", null, {
    timeout: 30000,
  });
  const img = page.locator("#output img");
  await img.waitFor({ timeout: 10000 });
  const src = await img.getAttribute("src");
  assert.match(src, /\/file=/);
  const width = await img.evaluate((el) => (el.complete ? el.naturalWidth : 0));
  assert.equal(width, 64, "the image loaded through the proxy");
  assert.ok(requests.some((r) => r.startsWith("POST /queue/join")), "queue join");
  assert.ok(requests.some((r) => r.startsWith("GET /queue/data")), "SSE stream");
  assert.ok(requests.some((r) => r.includes("/heartbeat/")), "heartbeat for gr.State");
  await page.screenshot({ path: join(ARTIFACTS, "forge.png") });
});

test("Forge's polled routes answer, with Origin: null from the no-referrer page", async () => {
  const result = await page.evaluate(async () => {
    const progress = await fetch("/internal/progress", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ id_task: "x", id_live_preview: -1 }),
    });
    const ping = await fetch("/internal/ping");
    return { progress: progress.status, body: await progress.json(), ping: ping.status };
  });
  assert.equal(result.progress, 200);
  assert.equal(result.ping, 200);
  assert.equal(typeof result.body.active, "boolean");
});

test("a 100 MB upload goes through /upload", async () => {
  const file = join(ARTIFACTS, "upload-100mb.bin");
  writeFileSync(file, Buffer.alloc(100 * 1024 * 1024, 7));
  await page.setInputFiles("#upload input[type=file]", file);
  await page.waitForFunction(
    () => (document.querySelector("#upload_result textarea")?.value ?? "").startsWith("received"),
    null,
    { timeout: 120000 },
  );
  assert.equal(await page.locator("#upload_result textarea").inputValue(), `received ${100 * 1024 * 1024} bytes`);
});

test("a multi-MB base64 body goes up and comes back whole", async () => {
  const text = randomBytes(3 * 1024 * 1024).toString("base64");
  const digest = createHash("sha256").update(text).digest("hex").slice(0, 16);
  await page.evaluate((value) => {
    const el = document.querySelector("#big_in textarea");
    el.value = value;
    el.dispatchEvent(new Event("input", { bubbles: true }));
  }, text);
  await page.click("#echo button, button#echo");
  await page.waitForFunction(() => (document.querySelector("#big_digest textarea")?.value ?? "").includes("sha256"), null, {
    timeout: 60000,
  });
  assert.equal(await page.locator("#big_digest textarea").inputValue(), `${text.length} chars, sha256 ${digest}`);
  const back = await page.evaluate(() => document.querySelector("#big_out textarea").value);
  assert.equal(back.length, text.length);
  assert.equal(createHash("sha256").update(back).digest("hex").slice(0, 16), digest);
});

test("gpubox's pages fit a phone's screen and follow the dark setting", async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, colorScheme: "dark" });
  const phone = await context.newPage();
  await phone.goto(`http://127.0.0.1:${port}/.gpubox/login`);
  const fits = await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  assert.ok(fits, "no sideways scrolling on a phone");
  const bg = await phone.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, "rgb(17, 19, 23)", "the dark palette is used");
  await phone.screenshot({ path: join(ARTIFACTS, "login-phone-dark.png") });
  await context.close();
});

test("a stopped service's page shows the app by itself once it is started from a terminal", async () => {
  const cli = (...args) => execFileSync(BIN, ["--control", join(gpubox.dir, "c.sock"), ...args], { encoding: "utf8" });
  cli("stop", "forge");
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForSelector("text=forge is stopped", { timeout: 10000 });
  // API clients are told it is stopped, not that it is starting.
  const api = await page.evaluate(async () => (await fetch("/", { headers: { Accept: "application/json" } })).json());
  assert.equal(api.error.code, "stopped");
  cli("start", "forge");
  // No reload from the test: the page notices the start and then the app.
  await page.waitForSelector("text=forge is starting", { timeout: 15000 });
  await page.waitForSelector("#generate", { timeout: 120000 });
});
