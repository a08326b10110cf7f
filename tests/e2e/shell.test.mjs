// The page shell on a phone with the default login: its warning is short, and "Hide" hides it
// for the browser's session, on every port (one cookie, as the login is one).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { ARTIFACTS, BIN, ROOT, freePort, launchBrowser, logIn, startGpubox, useWebDist } from "./harness.mjs";

let gpubox;
let browser;
let page;
let files;
let logs;

before(async () => {
  files = await freePort();
  logs = await freePort();
  gpubox = await startGpubox(
    // A quick tunnel for the file manager, by the stand-in cloudflared (tests/fixtures).
    `[tunnels]\nquick = true\nprogram = "${join(ROOT, "tests", "fixtures", "cloudflared")}"\n` +
      `[services.files]\napp = "files"\nport = ${files}\ntunnel = true\n[services.logs]\napp = "logs"\nport = ${logs}\n[services.sleeper]\ncommand = ["sleep", "1000"]\n`,
    `logs: listening on 0.0.0.0:${logs}`,
  );
  browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  await useWebDist(context);
  page = await context.newPage();
});

after(async () => {
  await browser?.close();
  await gpubox?.stop();
});

test("on a phone, the default-login warning is short and can be hidden for the session, on every port", async () => {
  await page.goto(`http://127.0.0.1:${files}/`);
  await logIn(page, "admin", "admin");
  await page.locator("#files-app").waitFor();
  const banner = page.locator(".banner");
  await banner.waitFor();
  const { height } = await banner.boundingBox();
  assert.ok(height < 844 * 0.12, `the warning takes ${height}px of the 844px screen`);
  await page.click("#banner-hide");
  assert.ok(await banner.isHidden(), "hidden at once");
  await page.reload();
  await page.locator("#files-app").waitFor();
  assert.equal(await page.locator(".banner").count(), 0, "still hidden after a reload");
  await page.goto(`http://127.0.0.1:${logs}/`);
  await page.locator("#logs-app").waitFor();
  assert.equal(await page.locator(".banner").count(), 0, "and on the other port");
});

test("the instance's name in the header leads to its overview, on any port; not before login", async () => {
  await page.goto(`http://127.0.0.1:${logs}/`);
  await page.locator("#logs-app").waitFor();
  await page.click("header.shell a.name");
  await page.waitForURL(`http://127.0.0.1:${logs}/.gpubox/`);
  assert.ok((await page.content()).includes(`:${files}`), "the overview links to the other ports");
  await page.context().clearCookies();
  await page.goto(`http://127.0.0.1:${files}/`);
  await page.locator("#login").waitFor();
  assert.equal(await page.locator("header.shell a.name").count(), 0, "no link before login");
  assert.equal(await page.locator("header.shell span.name").count(), 1);
});

test("the home page: a tile per service with its state kept fresh, copy buttons, gauges; on a phone too", async () => {
  await page.goto(`http://127.0.0.1:${logs}/.gpubox/`);
  if (page.url().includes("/.gpubox/login")) await logIn(page, "admin", "admin");
  await page.locator("#home").waitFor();
  for (const name of ["files", "logs", "sleeper"]) await page.locator(`.tile[data-service="${name}"]`).waitFor();
  assert.equal(await page.getAttribute('.tile[data-service="sleeper"] .pill', "data-state"), "ready");
  assert.ok(await page.locator("#g-memory meter").count(), "a memory gauge");
  // The file manager's tunnel: its address beside the direct one, with its own copy button;
  // the tunnel's own tile says what it is.
  const tunnel = page.locator('.tile[data-service="files"] .link.tunnel a');
  await tunnel.waitFor({ timeout: 15000 });
  assert.match(await tunnel.getAttribute("href"), /^https:\/\/[a-z0-9-]+\.trycloudflare\.com$/);
  assert.equal(await page.locator('.tile[data-service="files"] .link.tunnel button.copy').count(), 1);
  assert.match(await page.locator('.tile[data-service="tunnel-files"]').innerText(), /the quick tunnel to files/);
  // Copy: the button says what happened.
  await page.click('.tile[data-service="files"] button.copy');
  await page.waitForFunction(() => /Copied|Copy failed/.test(document.querySelector('.tile[data-service="files"] button.copy').textContent));
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "no sideways scroll on a phone");
  await page.screenshot({ path: join(ARTIFACTS, "home-phone.png"), fullPage: true });
  // Stopped from the command line: the tile says so without a reload.
  execFileSync(BIN, ["--control", join(gpubox.dir, "c.sock"), "stop", "sleeper"]);
  await page.waitForFunction(
    () => document.querySelector('.tile[data-service="sleeper"] .pill')?.dataset.state === "stopped",
    null,
    { timeout: 10000 },
  );
});
