// Shared by the end-to-end tests: start the real gpubox binary with a config in a temp dir,
// launch Debian's Chromium, and stop both afterwards.
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(HERE, "..", "..");
export const BIN = process.env.GPUBOX_BIN ?? join(ROOT, "target", "debug", "gpubox");
export const PYTHON = process.env.E2E_PYTHON ?? join(ROOT, ".cache", "e2e-venv", "bin", "python");
export const ARTIFACTS = join(ROOT, "target", "e2e");
mkdirSync(ARTIFACTS, { recursive: true });

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/** Starts gpubox with `body` after a workspace line; resolves once `readyLine` is printed. */
export async function startGpubox(body, readyLine) {
  const dir = mkdtempSync(join(tmpdir(), "gpubox-e2e-"));
  const config = join(dir, "gpubox.toml");
  writeFileSync(config, `workspace = "${dir}/ws"\n${body}`);
  const proc = spawn(BIN, ["--control", join(dir, "c.sock"), "run", "--config", config], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = [];
  await new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`gpubox did not print ${readyLine}:\n${lines.join("\n")}`)), 60000);
    proc.stdout.on("data", (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        if (line.includes(readyLine)) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
    proc.on("exit", (code) => reject(new Error(`gpubox exited with ${code}:\n${lines.join("\n")}`)));
  });
  return {
    dir,
    proc,
    lines,
    async stop() {
      const exited = new Promise((resolve) => proc.on("exit", (code) => resolve(code)));
      proc.kill("SIGTERM");
      return exited;
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export async function logIn(page, user, password) {
  await page.fill("#username", user);
  await page.fill("#password", password);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
}

/**
 * With E2E_WEB_DIST set (a folder written by `node build.mjs` in web/), the page's scripts and
 * stylesheets come from there instead of the binary's embedded copy: for working on the
 * front-end without rebuilding gpubox. Unset (as in scripts/test), the binary's own are used.
 */
export async function useWebDist(context) {
  const dist = process.env.E2E_WEB_DIST;
  if (!dist) return;
  const { readFileSync } = await import("node:fs");
  await context.route("**/.gpubox/assets/*", (route) => {
    const name = new URL(route.request().url()).pathname.split("/").pop();
    const type = name.endsWith(".css") ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8";
    try {
      route.fulfill({ status: 200, contentType: type, body: readFileSync(join(dist, name)) });
    } catch {
      route.continue();
    }
  });
}

/** A phone-size touch browser (dark unless told), with `storageState` (a login) when given, the
 * web build of E2E_WEB_DIST when set. */
export async function phoneContext(browser, { width = 390, height = 780, colorScheme = "dark", storageState } = {}) {
  const phone = await browser.newContext({ viewport: { width, height }, colorScheme, hasTouch: true, isMobile: true, storageState });
  await useWebDist(phone);
  return phone;
}
