// The file manager (port 7010) in headless Chromium against the real binary: log in, browse,
// upload by drag and drop and by the file and folder pickers, a conflict, a reload in the middle
// of a throttled upload that then resumes, a folder downloaded as a ZIP (read back by Python's
// zipfile), rename, delete, edit and save, search, the keyboard, and a folder of 100,000 entries
// of which only a screenful is in the DOM, an output folder of 2,000 pictures as a grid of
// thumbnails with the prompts Forge wrote into them, and a 300 MB upload through a proxy that refuses
// bodies over 100 MB, as Cloudflare does. Every file is checked on disk.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { ARTIFACTS, HERE, PYTHON, freePort, launchBrowser, logIn, phoneContext, startGpubox, useWebDist } from "./harness.mjs";

const USER = "e2e";
const PASSWORD = "e2e-password-123";
const MANY = 100000;
let gpubox, browser, context, page, port, ws, base;
const tmp = mkdtempSync(join(tmpdir(), "gpubox-e2e-files-"));
const problems = [];

// A 1×1 PNG, so that the pictures in the screenshot's folder are real ones.
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
  "base64",
);

/** A workspace that looks like one in use: models, outputs, a notebook, pictures. */
function furnish() {
  const day = 86400;
  const now = Date.now() / 1000;
  const put = (path, body, ageDays) => {
    const p = join(ws, path);
    mkdirSync(join(p, ".."), { recursive: true });
    if (typeof body === "number") {
      writeFileSync(p, "");
      truncateSync(p, body); // sparse: a model's size without its bytes
    } else writeFileSync(p, body);
    utimesSync(p, now - ageDays * day, now - ageDays * day);
  };
  put("models/Stable-diffusion/sd_xl_base_1.0.safetensors", 6938078334, 12);
  put("models/Stable-diffusion/juggernautXL_v9.safetensors", 7105348188, 3);
  put("models/Lora/add-detail-xl.safetensors", 228458672, 2);
  put("models/VAE/sdxl_vae.safetensors", 334641164, 12);
  put("models/ControlNet/.keep", "", 20);
  put("outputs/txt2img-images/2024-05-01/00001-1234.png", PNG, 1);
  put("outputs/txt2img-images/2024-05-01/00002-1235.png", PNG, 1);
  put("outputs/img2img-images/.keep", "", 5);
  put("outputs/log.txt", "seed 1234\nseed 1235\n", 1);
  put("datasets/portraits/captions.txt", "a portrait\n", 30);
  put("notebooks/explore.ipynb", '{"cells": [], "nbformat": 4}\n', 6);
  put(".cache/huggingface/token", "hf_x", 40);
  put("juggernautXL_v9_lightning.safetensors", 7105348190, 0.2);
  put("portrait_0001.png", PNG, 0.1);
  put("portrait_0002.png", PNG, 0.1);
  put("README.md", "# My instance\n\nModels live in `models/`, results in `outputs/`.\n", 8);
  put("train.py", "import torch\n\n\ndef main():\n    print(torch.cuda.is_available())\n", 0.5);
  put("config.yaml", "steps: 30\nsampler: dpmpp_2m\n", 4);
  put("requirements.txt", "torch\ndiffusers\n", 9);
  for (const d of ["models/Stable-diffusion", "models/Lora", "models/VAE", "models/ControlNet", "models", "outputs", "datasets", "notebooks", "inputs"]) {
    mkdirSync(join(ws, d), { recursive: true });
    utimesSync(join(ws, d), now - 2 * day, now - 2 * day);
  }
}

/** A phone-size, dark, touch browser with this session's login: its context and a page. */
async function onPhone() {
  const phone = await phoneContext(browser, { storageState: await context.storageState() });
  const p = await phone.newPage();
  p.setDefaultTimeout(15000);
  return { phone, p };
}

const sha = (buf) => createHash("sha256").update(buf).digest("hex");
// Rows kept in the virtual list's pool are hidden, and still carry their last name.
const row = (name) => page.locator(`#files-list .row[data-name="${name}"]:not([hidden])`);
/** The rows in the DOM, in order: [name, kind]. */
const listed = () =>
  page.locator("#files-list .row:not([hidden])").evaluateAll((rows) =>
    rows.sort((a, b) => a.dataset.index - b.dataset.index).map((r) => [r.dataset.name, r.dataset.kind]),
  );
const rowsInDom = () => page.locator("#files-list .row:not([hidden])").count();

async function waitGone(path) {
  for (let i = 0; i < 100 && existsSync(path); i++) await new Promise((r) => setTimeout(r, 50));
  return !existsSync(path);
}

before(async () => {
  port = await freePort();
  gpubox = await startGpubox(
    `
[auth]
username = "${USER}"
password = "${PASSWORD}"

[services.files]
app = "files"
port = ${port}
`,
    `files: listening on 0.0.0.0:${port}`,
  );
  ws = join(gpubox.dir, "ws");
  base = `http://127.0.0.1:${port}`;
  furnish();
  browser = await launchBrowser();
  context = await browser.newContext({ viewport: { width: 1360, height: 820 }, colorScheme: "light", acceptDownloads: true });
  await useWebDist(context);
  page = await context.newPage();
  page.setDefaultTimeout(15000);
  // A refused style or script (the page's policy is strict) or a script error shows up here.
  page.on("console", (m) => {
    if (m.type() === "error" && !/favicon|status of 40[49]|status of 507/.test(m.text())) problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(String(e)));
});

after(async () => {
  await browser?.close();
  if (gpubox) assert.equal(await gpubox.stop(), 0, "gpubox exits 0 on SIGTERM");
  // 100,000 files and a few sparse giants: not left behind in /tmp.
  rmSync(tmp, { recursive: true, force: true });
  if (gpubox) rmSync(gpubox.dir, { recursive: true, force: true });
});

test("log in and see the workspace, sorted, with the disk's space", async () => {
  await page.goto(`${base}/`);
  assert.match(page.url(), /\/\.gpubox\/login\?next=/);
  await logIn(page, USER, PASSWORD);
  await row("models").waitFor();
  const shown = await listed();
  const names = shown.map(([n]) => n);
  const dirs = shown.filter(([, k]) => k === "dir").map(([n]) => n);
  const byName = (a, b) => a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });
  assert.deepEqual(names.slice(0, dirs.length), [...dirs].sort(byName), "folders first, by name");
  assert.deepEqual(names.slice(dirs.length), names.slice(dirs.length).sort(byName), "then files, by name");
  assert.ok(dirs.includes("models") && names.includes("train.py"));
  assert.ok(!names.includes(".cache"), "dotfiles are hidden by default");
  assert.match(await row("juggernautXL_v9_lightning.safetensors").locator(".c-size").innerText(), /^7\.1\d? GB$/);
  assert.match(await page.locator("#disk-space").innerText(), /used of .* free/);
  // Sorting by size puts the biggest first; a second click turns it round.
  await page.click('.thead [data-sort="size"]');
  assert.equal(await page.locator('#files-list .row[data-index="0"]').getAttribute("data-name"), "datasets", "folders stay first, by name");
  const firstFile = await page.locator("#files-list .row:not([data-kind=dir])").evaluateAll((rows) =>
    rows.sort((a, b) => a.dataset.index - b.dataset.index)[0].dataset.name,
  );
  assert.equal(firstFile, "juggernautXL_v9_lightning.safetensors");
  await page.click('.thead [data-sort="name"]');
  // Hidden files on and off.
  await page.check("#show-hidden");
  await row(".cache").waitFor();
  await page.uncheck("#show-hidden");
  await row(".cache").waitFor({ state: "detached" });
});

test("a deep link survives the login; a wrong password keeps the username", async () => {
  // A browser that has never logged in opens a link to a folder: the #fragment never reaches the
  // server, yet the user must land in that folder after logging in.
  const fresh = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  await useWebDist(fresh);
  const p = await fresh.newPage();
  try {
    await p.goto(`${base}/#/models/Lora`);
    assert.match(p.url(), /\/\.gpubox\/login\?next=.*#\/models\/Lora$/);
    await p.fill("#username", USER);
    await p.fill("#password", "not-the-password");
    await Promise.all([p.waitForNavigation(), p.click("button[type=submit]")]);
    assert.equal(await p.inputValue("#username"), USER, "the username is kept after a mistake");
    assert.equal(await p.inputValue("#password"), "");
    await p.fill("#password", PASSWORD);
    await Promise.all([p.waitForNavigation(), p.click("button[type=submit]")]);
    await p.locator('#files-list .row[data-name="add-detail-xl.safetensors"]').waitFor();
    assert.match(p.url(), /\/#\/models\/Lora$/);
  } finally {
    await fresh.close();
  }
});

test("the keyboard: arrows, Enter opens, Backspace goes up, Ctrl+A; the hash follows", async () => {
  await page.locator("#files-list").focus();
  const names = (await listed()).map(([n]) => n);
  await page.keyboard.press("Home");
  assert.equal(await page.locator("#files-list .row.selected").getAttribute("data-name"), names[0]);
  for (let i = 0; i < names.indexOf("models"); i++) await page.keyboard.press("ArrowDown");
  assert.equal(await page.locator("#files-list .row.selected").getAttribute("data-name"), "models");
  await page.keyboard.press("Enter");
  await row("Stable-diffusion").waitFor();
  assert.equal(new URL(page.url()).hash, "#/models");
  assert.match(await page.locator("#breadcrumbs").innerText(), /workspace\s*models/);
  await page.keyboard.press("Backspace");
  await row("models").waitFor();
  assert.equal(await row("models").getAttribute("aria-selected"), "true", "the folder we came from is selected");
  await page.keyboard.press("Control+a");
  const [folders, files] = (await page.locator("#counts").innerText()).match(/\d+/g).map(Number);
  assert.match(await page.locator("#selection-count").innerText(), new RegExp(`^${folders + files} selected`));
  await page.keyboard.press("Escape");
  // Back and forward, and a reload, keep to the hash.
  await row("models").dblclick();
  await row("Lora").waitFor();
  await page.reload();
  await row("Lora").waitFor();
  await page.goBack();
  await row("models").waitFor();
  assert.ok(["", "#/"].includes(new URL(page.url()).hash));
  // The path box.
  await page.click("#path-edit");
  await page.fill("#path-input", "/models/Stable-diffusion/");
  await page.keyboard.press("Enter");
  await row("sd_xl_base_1.0.safetensors").waitFor();
  await page.click('#breadcrumbs a[data-path=""]');
  await row("models").waitFor();
});

test("reload in the middle of a throttled 40 MB upload: it resumes where it stopped", async () => {
  const NAME = "lora_portrait_v2.safetensors";
  const size = 40 * 1024 * 1024;
  const file = join(tmp, NAME);
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) body.writeUInt32LE((i * 2654435761) >>> 0, i);
  writeFileSync(file, body);
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  const throttle = (bps) =>
    cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: bps });
  await throttle(3 * 1024 * 1024);
  await page.setInputFiles("#upload-input", file);
  const up = page.locator(`#upload-list .up[data-name="${NAME}"]`);
  await page.waitForFunction(
    (name) => Number(document.querySelector(`#upload-list .up[data-name="${name}"]`)?.dataset.sent ?? 0) > 8 * 1024 * 1024,
    NAME,
    { timeout: 30000 },
  );
  const pct = Number(await up.locator("[role=progressbar]").getAttribute("aria-valuenow"));
  assert.ok(pct > 0 && pct < 100, `progress in between: ${pct}%`);
  assert.match(await up.locator(".up-line").innerText(), /MB of 41\.9 MB · [\d.]+ [KM]B\/s · \d+s left/);
  // The main view for the README: a model folder's neighbours, a selection, an upload running.
  await row("juggernautXL_v9_lightning.safetensors").click();
  await page.screenshot({ path: join(ARTIFACTS, "files.png") });
  // The server has part of it, under its upload's address kept in localStorage.
  const url = await page.evaluate((name) => {
    const key = Object.keys(localStorage).find((k) => k.startsWith("tus::gpubox-files|") && k.includes(name));
    return key ? new URL(JSON.parse(localStorage.getItem(key)).uploadUrl, location.href).href : null;
  }, NAME);
  assert.ok(url, "the upload's address is remembered");
  const head = await context.request.head(url, { headers: { "Tus-Resumable": "1.0.0" } });
  const before = Number(head.headers()["upload-offset"]);
  assert.ok(before > 0 && before < size, `the server has part of it before the reload: ${before}`);
  assert.ok(!existsSync(join(ws, NAME)), "a half-uploaded file never sits under its name");

  await page.reload();
  // After the reload the page lists it as unfinished...
  const left = page.locator(`#unfinished-list .up[data-name="${NAME}"]`);
  await left.waitFor();
  assert.ok(Number(await left.getAttribute("data-offset")) >= before);
  assert.match(await left.innerText(), /choose or drop this file again to resume/);
  // ... and the same file, chosen again, continues from where the server stands.
  const patches = [];
  page.on("request", (r) => {
    if (r.method() === "PATCH") patches.push(Number(r.headers()["upload-offset"]));
  });
  await throttle(-1);
  await page.setInputFiles("#upload-input", file);
  await page.locator(`#upload-list .up[data-name="${NAME}"][data-state="done"]`).waitFor({ state: "attached", timeout: 60000 });
  const resumedFrom = Number(await page.locator(`#upload-list .up[data-name="${NAME}"]`).getAttribute("data-resumed-from"));
  assert.ok(resumedFrom >= before, `resumed at ${resumedFrom}`);
  assert.ok(patches.length && patches[0] >= before, `the first PATCH after the reload starts at ${patches[0]}, not 0`);
  assert.equal(await left.count(), 0, "no longer listed as unfinished");
  const onDisk = readFileSync(join(ws, NAME));
  assert.equal(onDisk.length, size);
  assert.equal(sha(onDisk), sha(body), "the resumed file is byte for byte the original");
  assert.equal(
    await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("tus::")).length),
    0,
    "a finished upload is forgotten",
  );
  await cdp.detach();
});

test("upload by drag and drop, with the drop zone and progress shown", async () => {
  const size = 3 * 1024 * 1024 + 17;
  await page.evaluate((size) => {
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = (i * 31 + 7) & 255;
    const dt = new DataTransfer();
    dt.items.add(new File([data], "dropped.bin", { type: "application/octet-stream" }));
    window.__dt = dt;
    const list = document.querySelector("#files-list");
    for (const type of ["dragenter", "dragover"]) list.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
  }, size);
  await page.locator("#drop-zone").waitFor({ state: "visible" });
  assert.match(await page.locator("#drop-zone").innerText(), /Drop to upload\s+into \//);
  await page.evaluate(() => {
    window.__states = [];
    new MutationObserver(() => {
      const r = document.querySelector('#upload-list .up[data-name="dropped.bin"]');
      if (r) window.__states.push(r.dataset.state);
      // Whether the listing shows the file at the moment the upload says "done".
      if (r?.dataset.state === "done" && window.__listedAtDone === undefined)
        window.__listedAtDone = !!document.querySelector('#files-list .row[data-name="dropped.bin"]:not([hidden])');
    }).observe(document.querySelector("#uploads-panel"), { subtree: true, attributes: true, childList: true });
    document.querySelector("#files-list").dispatchEvent(new DragEvent("drop", { bubbles: true, cancelable: true, dataTransfer: window.__dt }));
  });
  assert.ok(await page.locator("#drop-zone").isHidden(), "the drop zone goes after the drop");
  const up = page.locator('#upload-list .up[data-name="dropped.bin"]');
  await page.locator('#upload-list .up[data-name="dropped.bin"][data-state="done"]').waitFor({ state: "attached", timeout: 20000 });
  assert.ok(await page.locator("#uploads-panel").isVisible());
  assert.equal(await up.locator("[role=progressbar]").getAttribute("aria-valuenow"), "100");
  const states = await page.evaluate(() => window.__states);
  assert.ok(states.includes("uploading"), `the upload was shown while it ran: ${states}`);
  assert.equal(await page.evaluate(() => window.__listedAtDone), true, "done only once the listing shows the file");
  // Then the panel folds down to its title, off the columns.
  await page.locator("#uploads-panel.collapsed").waitFor({ timeout: 10000 });
  assert.ok((await page.locator("#uploads-panel").boundingBox()).height < 80, "folded to its title");
  await row("dropped.bin").waitFor();
  // A `.bin` outside a models folder is any binary file, not a model.
  assert.equal(await row("dropped.bin").evaluate((r) => r.children[4].textContent), "BIN file");
  const onDisk = readFileSync(join(ws, "dropped.bin"));
  assert.equal(onDisk.length, size);
  const want = Buffer.alloc(size);
  for (let i = 0; i < size; i++) want[i] = (i * 31 + 7) & 255;
  assert.ok(onDisk.equals(want), "the dropped file arrived byte for byte");
});

test("upload a folder with the folder picker, and a file whose name exists (keep both)", async () => {
  const dir = join(tmp, "shoot");
  mkdirSync(join(dir, "raw", "day1"), { recursive: true });
  writeFileSync(join(dir, "raw", "day1", "a.txt"), "alpha\n");
  writeFileSync(join(dir, "b.txt"), "beta\n");
  await page.setInputFiles("#upload-folder-input", dir);
  await row("shoot").waitFor();
  await page.locator('#upload-list .up[data-name="a.txt"][data-state="done"]').waitFor({ state: "attached", timeout: 20000 });
  await page.locator('#upload-list .up[data-name="b.txt"][data-state="done"]').waitFor({ state: "attached", timeout: 20000 });
  assert.equal(readFileSync(join(ws, "shoot/raw/day1/a.txt"), "utf8"), "alpha\n");
  assert.equal(readFileSync(join(ws, "shoot/b.txt"), "utf8"), "beta\n");

  const again = join(tmp, "config.yaml");
  writeFileSync(again, "steps: 50\n");
  await page.setInputFiles("#upload-input", again);
  await page.locator("#dialog").waitFor();
  assert.match(await page.locator("#dialog").innerText(), /“config\.yaml” already exists/);
  await page.click('#dialog [data-value="rename"]');
  await page.locator('#upload-list .up[data-name="config.yaml"][data-state="done"]').waitFor({ state: "attached", timeout: 20000 });
  assert.match(await page.locator('#upload-list .up[data-name="config.yaml"]').innerText(), /saved as config \(1\)\.yaml/);
  assert.equal(readFileSync(join(ws, "config (1).yaml"), "utf8"), "steps: 50\n");
  assert.equal(readFileSync(join(ws, "config.yaml"), "utf8"), "steps: 30\nsampler: dpmpp_2m\n", "the original is untouched");
  await row("config (1).yaml").waitFor();
});

test("download a folder as a ZIP, read back by Python's zipfile", async () => {
  await row("outputs").click();
  await page.click("#download");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-zip")]);
  assert.equal(download.suggestedFilename(), "outputs.zip");
  const zip = join(tmp, "outputs.zip");
  await download.saveAs(zip);
  const listing = JSON.parse(
    execFileSync("python3", [
      "-c",
      "import json, sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nassert z.testzip() is None\nprint(json.dumps({n: z.read(n).decode('latin-1') for n in z.namelist() if not n.endswith('/')}))",
      zip,
    ]).toString(),
  );
  assert.equal(listing["outputs/log.txt"], "seed 1234\nseed 1235\n");
  assert.equal(Buffer.from(listing["outputs/txt2img-images/2024-05-01/00001-1234.png"], "latin1").equals(PNG), true);
  assert.ok("outputs/img2img-images/.keep" in listing);
});

test("rename with F2, delete (permanently, after saying so), new folder", async () => {
  writeFileSync(join(ws, "notes.txt"), "to rename\n");
  writeFileSync(join(ws, "junk.log"), "to delete\n");
  await page.click("#refresh");
  await row("junk.log").waitFor();
  await row("notes.txt").click();
  await page.keyboard.press("F2");
  await page.locator("#dialog-input").waitFor();
  assert.equal(await page.inputValue("#dialog-input"), "notes.txt");
  await page.keyboard.type("renamed"); // the name without its extension was selected
  await page.keyboard.press("Enter");
  await row("renamed.txt").waitFor();
  assert.equal(await row("notes.txt").count(), 0);
  assert.equal(readFileSync(join(ws, "renamed.txt"), "utf8"), "to rename\n");
  assert.ok(!existsSync(join(ws, "notes.txt")));

  await row("renamed.txt").click();
  await row("junk.log").click({ modifiers: ["Control"] });
  await page.keyboard.press("Delete");
  const dialog = page.locator("#dialog");
  await dialog.waitFor();
  const text = await dialog.innerText();
  assert.match(text, /Delete 2 items permanently\?/);
  assert.match(text, /There is no trash/);
  assert.match(text, /renamed\.txt[\s\S]*junk\.log|junk\.log[\s\S]*renamed\.txt/);
  await page.click('#dialog [data-value="ok"]');
  await row("junk.log").waitFor({ state: "detached" });
  assert.equal(await row("renamed.txt").count(), 0);
  assert.ok(await waitGone(join(ws, "junk.log")));
  assert.ok(!existsSync(join(ws, "renamed.txt")));

  await page.click("#new-folder");
  await page.fill("#dialog-input", "checkpoints");
  await page.keyboard.press("Enter");
  await row("checkpoints").waitFor();
  assert.ok(statSync(join(ws, "checkpoints")).isDirectory());
  assert.equal(await row("checkpoints").getAttribute("aria-selected"), "true");
});

test("move, copy, extract and fetch (jobs shown in the panel), and a file's SHA-256", async () => {
  await row("requirements.txt").click();
  await page.click("#more");
  await page.click("#sha256");
  await page.waitForFunction(() => /^[0-9a-f]{64}$/.test(document.querySelector("#sha256-value")?.textContent ?? ""));
  assert.equal(await page.locator("#sha256-value").innerText(), sha(readFileSync(join(ws, "requirements.txt"))));
  await page.click('#sha256-dialog [data-value="close"]');

  await row("config (1).yaml").click();
  await page.click("#move");
  await page.locator('#folder-picker .pick[data-name="datasets"]').waitFor();
  await page.fill("#dialog-input", "/datasets");
  await page.keyboard.press("Enter");
  await row("config (1).yaml").waitFor({ state: "detached" });
  assert.equal(readFileSync(join(ws, "datasets/config (1).yaml"), "utf8"), "steps: 50\n");

  const done = () => page.locator('#jobs-list .up[data-state="done"]').count();
  await row("shoot").click();
  await page.click("#copy");
  await page.fill("#dialog-input", "/datasets");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelectorAll('#jobs-list .up[data-state="done"]').length >= 1, null, { timeout: 20000 });
  assert.equal(readFileSync(join(ws, "datasets/shoot/raw/day1/a.txt"), "utf8"), "alpha\n");
  assert.ok(existsSync(join(ws, "shoot/b.txt")), "a copy leaves the original");

  execFileSync("python3", ["-c", "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z: z.writestr('inner/x.txt', 'from the zip')", join(ws, "bundle.zip")]);
  await page.click("#refresh");
  await row("bundle.zip").click();
  await page.click("#more");
  await page.click("#extract");
  await page.waitForFunction(() => document.querySelectorAll('#jobs-list .up[data-state="done"]').length >= 2, null, { timeout: 20000 });
  // Its entries share one top folder: that lands beside it, as desktop archivers do (not bundle/inner/).
  assert.equal(readFileSync(join(ws, "inner/x.txt"), "utf8"), "from the zip");
  await row("inner").waitFor();

  // The server downloads a URL into the folder shown (here gpubox's own public stylesheet).
  await page.click("#fetch-url");
  await page.fill("#dialog-input", `${base}/.gpubox/assets/gpubox.css`);
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelectorAll('#jobs-list .up[data-state="done"]').length >= 3, null, { timeout: 30000 });
  assert.equal(await done(), 3);
  assert.equal(readFileSync(join(ws, "gpubox.css"), "utf8"), readFileSync(join(HERE, "../../web/gpubox.css"), "utf8"));
  await row("gpubox.css").waitFor();
});

test("an upload that cannot fit is stopped before it starts; a 507 shows the server's words", async () => {
  const huge = join(tmp, "huge.bin");
  writeFileSync(huge, "");
  truncateSync(huge, 2 ** 43); // 8.8 TB, sparse: more than any disk here
  const posts = [];
  const onRequest = (r) => r.method() === "POST" && r.url().includes("/api/tus") && posts.push(r.url());
  page.on("request", onRequest);
  await page.setInputFiles("#upload-input", huge);
  await page.locator("#dialog").waitFor();
  assert.match(await page.locator("#dialog").innerText(), /Not enough space[\s\S]*1 file need 8\.80 TB, and the workspace disk has .* free/);
  await page.click('#dialog [data-value="ok"]');
  assert.equal(posts.length, 0, "nothing was sent");

  // The disk filled up since the listing: the server refuses with 507, and says why.
  await page.route("**/api/tus", (route) =>
    route.request().method() === "POST"
      ? route.fulfill({
          status: 507,
          contentType: "application/json",
          headers: { "Tus-Resumable": "1.0.0" },
          body: JSON.stringify({ error: { code: "disk_full", message: "tiny.bin needs 10 B and the workspace disk has 0 B free" } }),
        })
      : route.continue(),
  );
  const tiny = join(tmp, "tiny.bin");
  writeFileSync(tiny, "0123456789");
  await page.setInputFiles("#upload-input", tiny);
  const failed = page.locator('#upload-list .up[data-name="tiny.bin"][data-state="failed"]');
  await failed.waitFor();
  assert.match(await failed.innerText(), /Not enough space: tiny\.bin needs 10 B and the workspace disk has 0 B free/);
  assert.match(await page.locator("#toasts").innerText(), /tiny\.bin: Not enough space/);
  await page.waitForTimeout(1500);
  assert.equal(posts.length, 1, "a full disk is not retried");
  await page.click("#toasts .toast.error button");
  assert.equal(await page.locator("#toasts .toast.error").count(), 0, "an error stays until dismissed");
  await page.unroute("**/api/tus");
  page.off("request", onRequest);
});

test("edit a file in the editor (highlighted, styled under the strict policy) and save it", async () => {
  await row("train.py").dblclick();
  const content = page.locator("#editor .cm-content");
  await content.waitFor();
  // CodeMirror's own styles apply (its gutter is a flex box) and Python is highlighted.
  const styled = await page.evaluate(() => {
    const root = document.querySelector("#editor").shadowRoot;
    const gutter = getComputedStyle(root.querySelector(".cm-gutters")).display;
    const spans = [...root.querySelectorAll(".cm-line span")];
    const def = spans.find((s) => s.textContent === "def");
    return { gutter, def: def ? getComputedStyle(def).color : null, plain: getComputedStyle(root.querySelector(".cm-line")).color };
  });
  assert.equal(styled.gutter, "flex");
  assert.ok(styled.def && styled.def !== styled.plain, `"def" is highlighted: ${styled.def}`);
  await content.click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type("main()\n");
  assert.equal(await page.locator("#save-state").innerText(), "unsaved");
  await page.keyboard.press("Control+s");
  await page.locator('#save-state[data-state="saved"]').waitFor();
  assert.equal(
    readFileSync(join(ws, "train.py"), "utf8"),
    "import torch\n\n\ndef main():\n    print(torch.cuda.is_available())\nmain()\n",
  );
  // The header shows the file as saved (64 bytes before, 71 after).
  await page.waitForFunction(() => document.querySelector("#viewer .v-meta").textContent.startsWith("71 B · "));
  await page.screenshot({ path: join(ARTIFACTS, "files-editor.png") });
  // Escape closes the editor, as its close button's tooltip says, also with the focus in it.
  assert.ok(await page.evaluate(() => document.activeElement?.id === "editor"), "the focus is in the editor");
  await page.keyboard.press("Escape");
  await page.locator("#viewer").waitFor({ state: "hidden" });
  // Markdown is shown rendered, and a picture inline.
  await row("README.md").dblclick();
  await page.locator("#markdown h1").waitFor();
  assert.equal(await page.locator("#markdown h1").innerText(), "My instance");
  assert.equal(await page.locator("#markdown code").first().innerText(), "models/");
  await page.keyboard.press("Escape");
  // A big text file: only its first 2 MiB, read-only.
  writeFileSync(join(ws, "train.log"), "step 1 loss 0.5\n".repeat(250000));
  await page.click("#refresh");
  await row("train.log").dblclick();
  await page.locator("#truncated-notice").waitFor();
  assert.match(await page.locator("#truncated-notice").innerText(), /first 2\.10 MB of 4\.00 MB, read-only/);
  assert.equal(await page.locator("#editor .cm-content").getAttribute("aria-readonly"), "true");
  assert.equal(await page.locator("#save-file").count(), 0);
  await page.keyboard.press("Escape");
  // A new file opens in the editor.
  await page.click("#new-file");
  await page.fill("#dialog-input", "notes.md");
  await page.keyboard.press("Enter");
  await page.locator("#editor .cm-editor.cm-focused").waitFor();
  assert.equal(await page.locator("#viewer-name").innerText(), "notes.md");
  assert.equal(readFileSync(join(ws, "notes.md"), "utf8"), "");
  await page.keyboard.type("# Notes\n");
  await page.click("#save-file");
  await page.locator('#save-state[data-state="saved"]').waitFor();
  assert.equal(readFileSync(join(ws, "notes.md"), "utf8"), "# Notes\n");
  await page.click("#viewer-close");
  await row("portrait_0001.png").dblclick();
  await page.waitForFunction(() => document.querySelector("#viewer-image")?.naturalWidth === 1);
  await page.keyboard.press("Escape");
});

test("search below the folder: results stream in, a click goes to the folder with it selected", async () => {
  // Best first, not in the order found: names starting with the query, the shallowest, by path.
  await page.fill("#search-input", "xl");
  await page.locator('#search-results .row[data-path="models/VAE/sdxl_vae.safetensors"]').waitFor();
  await page.locator('#search-results[data-state="done"]').waitFor();
  const shown = await page.$$eval("#search-results .row:not([hidden])", (rs) =>
    rs.map((r) => [r.getBoundingClientRect().top, r.dataset.path]).sort((a, b) => a[0] - b[0]).map((x) => x[1]),
  );
  assert.deepEqual(shown, [
    "juggernautXL_v9_lightning.safetensors",
    "models/Lora/add-detail-xl.safetensors",
    "models/Stable-diffusion/juggernautXL_v9.safetensors",
    "models/Stable-diffusion/sd_xl_base_1.0.safetensors",
    "models/VAE/sdxl_vae.safetensors",
  ]);
  await page.fill("#search-input", "SDXL_v");
  await page.waitForFunction(() => /^1 name with “SDXL_v” below \//.test(document.querySelector("#search-status")?.textContent ?? ""));
  await page.locator('#search-results[data-state="done"]').waitFor();
  await page.click('#search-results .row[data-name="sdxl_vae.safetensors"]');
  await row("sdxl_vae.safetensors").waitFor();
  assert.equal(new URL(page.url()).hash, "#/models/VAE");
  assert.equal(await row("sdxl_vae.safetensors").getAttribute("aria-selected"), "true");
  assert.ok(await page.locator("#search-results").isHidden());
});

test("a folder of 100,000 entries lists at once and scrolls with a bounded DOM", async () => {
  const dir = join(ws, "many");
  mkdirSync(dir);
  for (let i = 0; i < MANY; i++) closeSync(openSync(join(dir, `f${String(i).padStart(6, "0")}.txt`), "w"));
  const t0 = Date.now();
  await page.click("#path-edit");
  await page.fill("#path-input", "/many");
  await page.keyboard.press("Enter");
  await row("f000000.txt").waitFor({ timeout: 20000 });
  const took = Date.now() - t0;
  assert.match(await page.locator("#counts").innerText(), /100,000 files/);
  const inDom = await rowsInDom();
  assert.ok(inDom > 10 && inDom < 80, `only about a screenful of rows in the DOM: ${inDom}`);
  // Half way down.
  await page.evaluate(() => {
    const list = document.querySelector("#files-list");
    list.scrollTop = (list.scrollHeight - list.clientHeight) / 2;
  });
  await page.waitForFunction(() => [...document.querySelectorAll("#files-list .row:not([hidden])")].some((r) => r.dataset.name === "f050000.txt"));
  assert.equal(await row("f000000.txt").count(), 0, "the first rows left the DOM");
  assert.ok((await rowsInDom()) < 80);
  // The wheel, then End: the last one is shown and selected.
  await page.mouse.move(600, 400);
  for (let i = 0; i < 5; i++) await page.mouse.wheel(0, 2000);
  await page.locator("#files-list").focus();
  await page.keyboard.press("End");
  await row("f099999.txt").waitFor();
  assert.equal(await row("f099999.txt").getAttribute("aria-selected"), "true");
  assert.ok(await row("f099999.txt").isVisible());
  assert.ok((await rowsInDom()) < 80);
  assert.ok(took < 15000, `listed in ${took} ms`);
});

test("on a phone, in the dark: it fits, the rows take two lines", async () => {
  const { phone, p } = await onPhone();
  await p.goto(`${base}/#/`);
  await p.locator('#files-list .row[data-name="models"]').waitFor();
  assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "no sideways scrolling");
  const bg = await p.evaluate(() => getComputedStyle(document.querySelector(".files-body")).backgroundColor);
  assert.equal(bg, "rgb(26, 29, 35)", "the dark palette");
  const box = await p.locator('#files-list .row[data-name="models"]').boundingBox();
  assert.equal(box.height, 54, "taller rows for fingers");
  // A tap opens a folder.
  await p.locator('#files-list .row[data-name="models"] .c-name').tap();
  await p.locator('#files-list .row[data-name="Lora"]').waitFor();
  await p.locator('#files-list .row[data-name="Stable-diffusion"] .c-name').tap();
  const model = p.locator('#files-list .row[data-name="juggernautXL_v9.safetensors"]');
  const size = await model.locator(".c-size").boundingBox();
  const name = await model.locator(".c-name").boundingBox();
  assert.ok(size.y >= name.y + name.height - 1, "the size goes under the name");
  // No columns on a phone: the header's sort keys sit side by side after "Name", not over
  // empty space at the right where columns would be.
  const head = async (k) => p.locator(`.thead .sort.c-${k}`).boundingBox();
  const [hName, hSize, hMod] = [await head("name"), await head("size"), await head("modified")];
  assert.ok(hSize.x - (hName.x + hName.width) < 24 && hMod.x - (hSize.x + hSize.width) < 24, `${JSON.stringify([hName, hSize, hMod])}`);
  assert.ok(hMod.x + hMod.width < 390 * 0.75, "the sort keys end well before the right edge");
  await model.locator(".c-check").tap();
  assert.equal(await model.getAttribute("aria-selected"), "true", "the checkbox selects (and does not open)");
  assert.ok(await model.locator(".c-check input").isChecked(), "and shows its tick");
  assert.ok(await p.locator("#viewer").isHidden());
  await p.screenshot({ path: join(ARTIFACTS, "files-phone-dark.png") });
  await phone.close();
});

test("an output folder of 2,000 pictures is a grid of thumbnails, newest first; the viewer shows the prompt", async () => {
  const dir = "outputs/txt2img-images/2026-12-03";
  const texts = JSON.parse(execFileSync(PYTHON, [join(HERE, "make_pictures.py"), join(ws, dir), "2000"], { encoding: "utf8" }));
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  await page.goto(`${base}/#/${dir}`);
  // The uploads panel of the tests before (one failed on purpose) would cover the viewer's side.
  if (await page.locator("#uploads-panel").isVisible()) await page.click("#uploads-close");
  const tile = (name) => page.locator(`#files-list .tile[data-name="${name}"]:not([hidden])`);
  // Newest first: the last one written leads, its thumbnail made on the server.
  await page.locator("#files-list.grid").waitFor();
  const first = await page.locator("#files-list .tile:not([hidden])").evaluateAll((ts) =>
    ts.sort((a, b) => a.dataset.item - b.dataset.item).slice(0, 2).map((t) => t.dataset.name),
  );
  assert.deepEqual(first, ["01999-2999.png", "01998-2998.png"]);
  await page.waitForFunction(() => {
    const img = document.querySelector('#files-list .tile[data-name="01999-2999.png"] img');
    return img && img.complete && img.naturalWidth === 64;
  });
  const tiles = () => page.locator("#files-list .tile:not([hidden])").count();
  assert.ok((await tiles()) < 200, `a bounded DOM: ${await tiles()} tiles for 2,004 pictures`);
  await page.screenshot({ path: join(ARTIFACTS, "files-gallery.png") });
  // Half way down: those tiles come into the DOM and get their thumbnails; the first ones leave.
  await page.evaluate(() => {
    const list = document.querySelector("#files-list");
    list.scrollTop = (list.scrollHeight - list.clientHeight) / 2;
  });
  await page.waitForFunction(() =>
    [...document.querySelectorAll("#files-list .tile.loaded:not([hidden])")].some((t) => /^0(09|10)\d\d-/.test(t.dataset.name)),
  );
  assert.equal(await tile("01999-2999.png").count(), 0);
  assert.ok((await tiles()) < 200);
  // The keyboard moves by a tile and by a row.
  await page.evaluate(() => (document.querySelector("#files-list").scrollTop = 0));
  await tile("01999-2999.png").click();
  const cols = await page.evaluate(() => Number(getComputedStyle(document.querySelector("#files-list")).getPropertyValue("--cols")));
  assert.ok(cols >= 4, `${cols} tiles a row at 1360 px`);
  await page.keyboard.press("ArrowRight");
  assert.equal(await tile("01998-2998.png").getAttribute("aria-selected"), "true");
  await page.keyboard.press("ArrowDown");
  const below = `0${1998 - cols}-${2998 - cols}.png`;
  assert.equal(await tile(below).getAttribute("aria-selected"), "true", below);

  // The viewer: the prompt, negative prompt and settings beside the picture, copied whole.
  await tile("01999-2999.png").dblclick();
  await page.locator("#gen-panel").waitFor();
  assert.equal(await page.locator("#gen-prompt").innerText(), "a lighthouse at dusk, oil painting");
  assert.equal(await page.locator("#gen-negative").innerText(), "blurry, text");
  const settings = await page.locator("#gen-settings").innerText();
  assert.match(settings, /Seed\s+2999/);
  assert.match(settings, /Lora hashes\s+detail: ab12, style: cd34/);
  await page.click("#gen-copy-all");
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, texts.first.replace("Seed: 1000", "Seed: 2999"));
  assert.match(await page.locator(".v-meta").innerText(), /^64×64 px/);
  await page.screenshot({ path: join(ARTIFACTS, "files-picture-prompt.png") });
  // Next and previous: the keys, and the buttons.
  await page.keyboard.press("ArrowRight");
  await page.waitForFunction(() => document.querySelector("#viewer-name")?.textContent === "01998-2998.png");
  await page.waitForFunction(() => document.querySelector("#gen-settings")?.textContent.includes("Seed2998"));
  await page.click("#viewer-prev");
  await page.waitForFunction(() => document.querySelector("#viewer-name")?.textContent === "01999-2999.png");
  // Zoom: in, the level shown, 0 fits again.
  await page.click("#zoom-in");
  assert.match(await page.locator("#zoom-level").innerText(), /^\d+ %$/);
  await page.keyboard.press("0");
  assert.equal(await page.locator("#zoom-level").innerText(), "Fit");
  await page.keyboard.press("Escape");

  // JPEG and WebP (EXIF UserComment), a non-Latin-1 prompt (iTXt), a picture without any.
  for (const [name, prompt] of [["forge.jpg", "a red fox in snow"], ["forge.webp", "a green forest"], ["unicode.png", "猫, ukiyo-e"]]) {
    await page.goto(`${base}/#/${dir}`);
    await page.locator("#search-input").fill(name);
    await page.locator(`#search-results .row[data-name="${name}"]`).click();
    await tile(name).dblclick();
    await page.locator("#gen-prompt").waitFor();
    assert.equal(await page.locator("#gen-prompt").innerText(), prompt, name);
    await page.keyboard.press("Escape");
  }
  await tile("plain.png").dblclick();
  await page.locator("#viewer-image").waitFor();
  await page.waitForFunction(() => /64×64 px/.test(document.querySelector(".v-meta")?.textContent ?? ""));
  assert.equal(await page.locator("#gen-panel").count(), 0, "no text, no panel");
  await page.keyboard.press("Escape");

  // Selecting in the grid is as in the list: Ctrl+click adds, the toolbar acts on them all.
  await page.locator("#files-list").focus();
  await page.keyboard.press("Home");
  await tile("01999-2999.png").click();
  await tile("01997-2997.png").click({ modifiers: ["Control"] });
  assert.match(await page.locator("#selection-actions").innerText(), /2 selected/);
  assert.equal(await page.locator("#files-list .tile.selected:not([hidden])").count(), 2);
  await page.keyboard.press("Escape");

  // The list instead, remembered for this folder across a reload; and back.
  await page.click("#view-toggle");
  await page.locator("#files-list:not(.grid) .row[data-name]:not([hidden])").first().waitFor();
  await page.reload();
  await row("01999-2999.png").waitFor();
  assert.equal(await page.locator("#files-list.grid").count(), 0);
  await page.click("#view-toggle");
  await page.locator("#files-list.grid").waitFor();

  // On a phone, in the dark: three tiles a row, nothing sideways; the prompt under the picture.
  const { phone, p } = await onPhone();
  await p.goto(`${base}/#/${dir}`);
  await p.locator("#files-list.grid .tile.loaded").first().waitFor();
  const phoneCols = await p.evaluate(() => Number(getComputedStyle(document.querySelector("#files-list")).getPropertyValue("--cols")));
  assert.equal(phoneCols, 3);
  assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "no sideways scrolling");
  await p.screenshot({ path: join(ARTIFACTS, "files-gallery-phone.png") });
  await p.locator('#files-list .tile[data-name="01999-2999.png"] .thumb').tap();
  await p.locator("#gen-prompt").waitFor();
  const [pic, gen] = [await p.locator(".stage").boundingBox(), await p.locator("#gen-panel").boundingBox()];
  assert.ok(gen.y >= pic.y + pic.height - 1, "the panel is under the picture");
  await p.screenshot({ path: join(ARTIFACTS, "files-picture-phone.png") });
  await phone.close();
});

test("share links: a folder shared with a password, opened by a stranger, then taken back", async () => {
  await page.goto(`${base}/`);
  await row("notebooks").waitFor();
  await row("notebooks").click();
  await page.click("#more");
  await page.click("#share");
  await page.selectOption("#share-expires", "1d");
  await page.fill("#share-password", "let me in");
  await page.click('#dialog [data-value="ok"]');
  const url = await page.locator("#share-url").innerText();
  assert.match(url, /\/\.gpubox\/s\/[0-9a-f]{32}$/);
  await page.click('#share-dialog [data-value="close"]');

  // A stranger: a browser with no session. The password, then the folder's list and a file.
  const stranger = await browser.newContext();
  const s = await stranger.newPage();
  await s.goto(url);
  await s.fill("#share-password", "wrong");
  await s.click(".share-unlock button");
  await s.locator(".share .error").waitFor();
  await s.fill("#share-password", "let me in");
  await s.click(".share-unlock button");
  await s.locator('.share-list li[data-name="explore.ipynb"]').waitFor();
  await s.screenshot({ path: join(ARTIFACTS, "share-folder.png") });
  const got = await s.evaluate(async (u) => (await fetch(`${u}/file?path=explore.ipynb`)).text(), url);
  assert.equal(got, readFileSync(join(ws, "notebooks/explore.ipynb"), "utf8"));
  assert.equal(await s.locator(".shell nav a").count(), 0, "a share page names no other service");

  // Listed for the owner, taken back: the stranger's next visit finds a plain 404 page.
  await page.click("#shares");
  const item = page.locator("#shares-list li[data-path='notebooks']");
  await item.waitFor();
  assert.match(await item.innerText(), /password/);
  await item.locator("button.danger").click();
  await item.waitFor({ state: "detached" });
  await page.click('#shares-dialog [data-value="close"]');
  const after = await s.goto(url);
  assert.equal(after.status(), 404);
  assert.match(await s.locator("h1").innerText(), /does not work/);
  await stranger.close();
});

test("a 300 MB upload through a proxy that refuses bodies over 100 MB (as Cloudflare does) arrives whole", async () => {
  const proxy = spawn(PYTHON, [join(HERE, "body_limit_proxy.py"), String(port), String(100 * 1000 * 1000)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    const proxyPort = await new Promise((resolve, reject) => {
      proxy.stdout.once("data", (d) => resolve(Number(String(d).trim())));
      proxy.once("exit", (code) => reject(new Error(`the proxy exited: ${code}`)));
    });
    const NAME = "through-the-proxy.bin";
    const file = join(tmp, NAME);
    const piece = randomBytes(1 << 20);
    const fd = openSync(file, "w");
    for (let i = 0; i < 300; i++) writeSync(fd, piece);
    closeSync(fd);
    const size = 300 * (1 << 20);
    const patches = [];
    const onRequest = (r) => {
      if (r.method() === "PATCH") patches.push(Number(r.headers()["content-length"] ?? 0));
    };
    page.on("request", onRequest);
    // The session cookie is the browser's for 127.0.0.1 on any port.
    await page.goto(`http://127.0.0.1:${proxyPort}/`);
    await row("models").waitFor();
    await page.setInputFiles("#upload-input", file);
    await page.locator(`#upload-list .up[data-name="${NAME}"][data-state="done"]`).waitFor({ state: "attached", timeout: 240000 });
    page.off("request", onRequest);
    const stats = await (await page.request.get(`http://127.0.0.1:${proxyPort}/.proxy-stats`)).json();
    assert.equal(stats.refused, 0, "no piece was refused");
    assert.ok(stats.largest > 0 && stats.largest <= 100 * 1000 * 1000, `largest body ${stats.largest}`);
    assert.ok(patches.length >= 6, `in pieces: ${patches}`);
    assert.equal(statSync(join(ws, NAME)).size, size);
    assert.equal(sha(readFileSync(join(ws, NAME))), sha(readFileSync(file)), "byte for byte the original");
    rmSync(join(ws, NAME));
    rmSync(file);
  } finally {
    proxy.kill();
  }
});

test("no script errors and nothing refused by the page's policy", () => {
  assert.deepEqual(problems, []);
});
