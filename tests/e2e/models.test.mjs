// The file manager's Models view in headless Chromium against the real binary, with a stand-in of
// Civitai's and Hugging Face's APIs (tests/fixtures/model_hub.py) whose downloads go on to a CDN
// on another host name (tests/fixtures/dlserver.py): paste a Civitai page link, see what it is
// and where it goes, download it; the model appears in its category with its preview; a model
// that needs a login says how to get a token.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { ARTIFACTS, HERE, PYTHON, freePort, launchBrowser, logIn, startGpubox, useWebDist } from "./harness.mjs";

const USER = "e2e";
const PASSWORD = "e2e-password-123";
const FIXTURES = join(HERE, "..", "fixtures");
let gpubox, browser, page, port, ws, hub, cdn;
const root = mkdtempSync(join(tmpdir(), "gpubox-e2e-hub-"));
const problems = [];

async function listening(p) {
  for (let i = 0; i < 200; i++) {
    try {
      execFileSync("python3", ["-c", `import socket; socket.create_connection(("127.0.0.1", ${p}), 0.2)`], { stdio: "ignore" });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nothing listens on ${p}`);
}

before(async () => {
  // What the stand-ins serve: models of random bytes and a JPEG preview.
  writeFileSync(join(root, "add_detail.safetensors"), Buffer.alloc(2_000_000, 7));
  writeFileSync(join(root, "early.safetensors"), Buffer.alloc(10_000, 8));
  writeFileSync(join(root, "liar.safetensors"), Buffer.alloc(10_000, 9));
  writeFileSync(join(root, "sd_xl_vae.safetensors"), Buffer.alloc(10_000, 10));
  execFileSync(PYTHON, ["-c", `from PIL import Image; Image.new("RGB", (96, 64), (200, 80, 40)).save("${join(root, "preview.jpeg")}", quality=90)`]);
  const [hubPort, cdnPort] = [await freePort(), await freePort()];
  cdn = spawn("python3", [join(FIXTURES, "dlserver.py"), String(cdnPort), root], { stdio: "ignore" });
  hub = spawn("python3", [join(FIXTURES, "model_hub.py"), String(hubPort), String(cdnPort), root], { stdio: "ignore" });
  await listening(hubPort);
  await listening(cdnPort);
  // gpubox finds "Civitai" and "Hugging Face" there (it inherits this environment).
  process.env.CIVITAI_ENDPOINT = `http://127.0.0.1:${hubPort}`;
  process.env.HF_ENDPOINT = `http://127.0.0.2:${hubPort}/hf`;
  delete process.env.CIVITAI_TOKEN;
  delete process.env.HF_TOKEN;
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
  for (const d of ["Stable-diffusion", "Lora", "VAE"]) mkdirSync(join(ws, "forge/models", d), { recursive: true });
  browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: "light" });
  await useWebDist(context);
  page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on("console", (m) => {
    if (m.type() === "error" && !/favicon|status of 40[049]|status of 502/.test(m.text())) problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(`http://127.0.0.1:${port}/`);
  await logIn(page, USER, PASSWORD);
});

after(async () => {
  await browser?.close();
  if (gpubox) assert.equal(await gpubox.stop(), 0);
  for (const p of [hub, cdn]) p?.kill();
  rmSync(root, { recursive: true, force: true });
  if (gpubox) rmSync(gpubox.dir, { recursive: true, force: true });
});

test("paste a Civitai link: what it is, where it goes; downloaded with its preview into its category", async () => {
  await page.click("#models-btn");
  await page.locator('#models-view .model-cat[data-category="lora"]').waitFor();
  assert.match(await page.locator('.model-cat[data-category="lora"]').innerText(), /None yet/);
  await page.fill("#model-link", "https://civitai.com/models/58390/detail-tweaker-lora?modelVersionId=62833");
  await page.click("#model-resolve");
  await page.locator("#model-name").waitFor();
  assert.equal(await page.locator("#model-name").innerText(), "Detail Tweaker LoRA");
  assert.match(await page.locator("#model-found").innerText(), /LORA · SD 1\.5 · version v1\.0/);
  assert.match(await page.locator("#model-found").innerText(), /add_detail\.safetensors · 2\.00 MB/);
  assert.equal(await page.locator("#model-category").inputValue(), "lora", "the type chose the folder");
  await page.screenshot({ path: join(ARTIFACTS, "files-models-found.png") });
  await page.click("#model-add-btn");
  const item = page.locator('.model-cat[data-category="lora"] li[data-name="add_detail.safetensors"]');
  await item.waitFor({ timeout: 30000 });
  await page.waitForFunction(() => {
    const img = document.querySelector('.model-cat[data-category="lora"] li[data-name="add_detail.safetensors"] img');
    return img && img.complete && img.naturalWidth > 0;
  });
  assert.match(await item.innerText(), /2\.00 MB/);
  assert.match(await item.innerText(), /Civitai/);
  assert.ok(existsSync(join(ws, "forge/models/Lora/add_detail.preview.png")));
  assert.deepEqual(readFileSync(join(ws, "forge/models/Lora/add_detail.safetensors")), Buffer.alloc(2_000_000, 7));
  assert.equal(await item.locator(".m-identify").count(), 0, "its hash is known");
  // One put there by hand (the same bytes): Identify finds it on Civitai by its hash.
  writeFileSync(join(ws, "forge/models/Lora/by-hand.safetensors"), Buffer.alloc(2_000_000, 7));
  await page.click("#models-close");
  await page.click("#models-btn");
  const mine = page.locator('.model-cat[data-category="lora"] li[data-name="by-hand.safetensors"]');
  await mine.locator(".m-identify").click();
  await mine.locator("a", { hasText: "Civitai" }).waitFor({ timeout: 30000 });
  assert.ok(existsSync(join(ws, "forge/models/Lora/by-hand.preview.png")));
  await page.screenshot({ path: join(ARTIFACTS, "files-models.png") });
});

test("a model that needs a login says how to get a token; a link that is not a model says what is", async () => {
  await page.fill("#model-link", "urn:air:sdxl:checkpoint:civitai:900@999");
  await page.click("#model-resolve");
  await page.locator("#model-name").waitFor();
  assert.equal(await page.locator("#model-category").inputValue(), "checkpoints");
  await page.click("#model-add-btn");
  await page.locator(".toast", { hasText: "API Keys" }).waitFor({ timeout: 30000 });
  assert.equal(existsSync(join(ws, "forge/models/Stable-diffusion/early.safetensors")), false);
  await page.fill("#model-link", "https://example.com/x.safetensors");
  await page.click("#model-resolve");
  await page.locator("#model-error").waitFor();
  assert.match(await page.locator("#model-error").innerText(), /neither Civitai nor Hugging Face/);
  await page.keyboard.press("Escape");
  assert.ok(await page.locator("#models-view").isHidden());
});

test("no script errors and nothing refused by the page's policy", () => {
  assert.deepEqual(problems, []);
});
