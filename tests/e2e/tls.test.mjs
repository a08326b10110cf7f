// HTTPS on every port in headless Chromium: the login, the terminal's WebSocket, the logs app's
// live stream and its status panel's fingerprint, all over TLS with gpubox's self-signed
// certificate (trusted for this test: the browser context ignores certificate errors, as a user
// who accepted the certificate would), and plain HTTP sent to https://.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { freePort, launchBrowser, startGpubox, useWebDist } from "./harness.mjs";

const USER = "e2e";
const PASSWORD = "e2e-password-123";
let gpubox, browser, context, term, logs;

before(async () => {
  term = await freePort();
  logs = await freePort();
  gpubox = await startGpubox(
    `
[auth]
username = "${USER}"
password = "${PASSWORD}"

[tls]
enabled = true

[services.terminal]
app = "terminal"
port = ${term}
shell = "/bin/sh"

[services.logs]
app = "logs"
port = ${logs}

[services.ticker]
command = ["sh", "-c", "i=0; while true; i=$((i+1)); do echo tick-$i; sleep 0.3; done"]
`,
    `logs: listening on 0.0.0.0:${logs}`,
  );
  browser = await launchBrowser();
  context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1200, height: 800 } });
  await useWebDist(context);
});

after(async () => {
  await browser?.close();
  await gpubox?.stop();
});

test("plain HTTP is sent to https://, and the login works over TLS with a Secure cookie", async () => {
  const page = await context.newPage();
  await page.goto(`http://127.0.0.1:${logs}/`);
  assert.ok(page.url().startsWith(`https://127.0.0.1:${logs}/`), page.url());
  await page.fill("#username", USER);
  await page.fill("#password", PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  const cookie = (await context.cookies()).find((c) => c.name === "gpubox_session");
  assert.ok(cookie?.secure, "the session cookie is Secure");
  await page.close();
});

test("the logs app streams over TLS and its status panel shows the certificate's fingerprint", async () => {
  const page = await context.newPage();
  await page.goto(`https://127.0.0.1:${logs}/`);
  await page.waitForSelector('#logs-list .row[data-service="ticker"]');
  const before = await page.$$eval('#logs-list .row[data-service="ticker"]', (r) => r.length);
  await page.waitForFunction((n) => document.querySelectorAll('#logs-list .row[data-service="ticker"]').length > n, before);
  if (await page.isHidden("#status")) await page.click("#status-toggle");
  const text = await page.textContent("#status-tls", { timeout: 10000 });
  const fingerprint = gpubox.lines.map((l) => l.match(/SHA-256 fingerprint ([0-9A-F:]{95})/)).find(Boolean)?.[1];
  assert.ok(fingerprint, "the log gives the fingerprint");
  assert.ok(text.includes(fingerprint), `${text}`);
  assert.match(text, /self-signed/);
  await page.close();
});

test("the terminal's WebSocket works over TLS", async () => {
  const page = await context.newPage();
  await page.goto(`https://127.0.0.1:${term}/`);
  await page.waitForSelector("#term .xterm-rows");
  await page.click("#term");
  await page.keyboard.type("echo over-$((40+2))-tls\n");
  await page.waitForFunction(() =>
    [...document.querySelectorAll("#term .xterm-rows > div")].some((r) => r.textContent.includes("over-42-tls")),
  );
  await page.close();
});
