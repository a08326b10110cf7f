// The images, run with podman (the container runtime here; see tests/container/setup): the base
// image built from a locally made Debian base and the gpubox binary built on this machine, run
// the way Vast runs it (ports published, a workspace volume). Every port refuses without login;
// login works; the file manager lists the workspace; a terminal in Chromium runs `echo`; the log
// viewer shows the services; HEALTHCHECK turns healthy; the environment reaches SSH sessions;
// `podman stop` ends it quickly with exit code 0; a second container on the same volume finds the
// data and the browser session; a non-root UID works; Vast's SSH/Jupyter mode (on-start line) and
// the optional sshd work. Then the forge image, built from its own Dockerfile on top of that base
// with a stand-in Forge repository (Forge's launch.py contract, serving the Gradio stand-in): login
// on 8010, the waiting page, the Open button's token, the app through the proxy, the launcher's
// arguments, tcmalloc, and a workspace whose existing files are kept. Also: quick and named
// Cloudflare tunnels with a stand-in cloudflared, and deploy/kubernetes/ under podman kube play.
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chownSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { ARTIFACTS, BIN, HERE, ROOT, freePort, launchBrowser, logIn } from "./harness.mjs";

const IMAGE = "localhost/vastai-base:test";
const FORGE = "localhost/vastai-forge:test";
const PASSWORD = "container-pw-123";
const TOKEN = "vast-open-button-token-0123456789abcdef";
const RUN = `gpubox-ct-${process.pid}`;
const VOLUME = `${RUN}-ws`;
const containers = [];
let browser;
let basic;

function podman(...args) {
  return execFileSync("podman", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

function podmanStatus(...args) {
  return spawnSync("podman", args, { encoding: "utf8" });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts a container from `image` with `ports` (container port -> host port), `extra` options and
 * a `command` in place of the CMD; returns its name. */
function start(name, image, ports, extra = [], command = []) {
  const args = ["run", "-d", "--name", name];
  for (const [inner, outer] of Object.entries(ports)) args.push("-p", `127.0.0.1:${outer}:${inner}`);
  podman(...args, ...extra, image, ...command);
  containers.push(name);
  return name;
}

/** Waits until `url` answers /.gpubox/health (gpubox is listening); shows the log on failure. */
async function waitHealthy(name, port, ms = 60000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/.gpubox/health`);
      if (r.ok) return;
    } catch {}
    await sleep(200);
  }
  throw new Error(`${name} did not answer on ${port}:\n${podmanStatus("logs", name).stdout}${podmanStatus("logs", name).stderr}`);
}

before(async () => {
  const setup = execFileSync(join(ROOT, "tests", "container", "setup"), { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const base = setup.trim().split("\n").pop();
  copyFileSync(BIN, join(ROOT, "images", "base", "gpubox"));
  chmodSync(join(ROOT, "images", "base", "gpubox"), 0o755);
  execFileSync(
    "podman",
    [
      "build", "--format", "docker", "-f", "images/base/Dockerfile",
      "--build-arg", `BASE_IMAGE=${base}`, "--build-arg", "GPUBOX_FROM=prebuilt",
      // pkg.cloudflare.com is not reachable here: the tunnel test mounts the stand-in instead.
      "--build-arg", "CLOUDFLARED_VERSION=", "-t", IMAGE, ".",
    ],
    { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] },
  );
  podman("volume", "create", VOLUME);
  basic = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString("base64")}`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const c of containers) podmanStatus("rm", "-f", "-t", "0", c);
  podmanStatus("volume", "rm", "-f", VOLUME);
});

let ports;
let cookie;

test("the base image: every port refuses without login, and each app works behind it", async () => {
  ports = { 7010: await freePort(), 7020: await freePort(), 7030: await freePort() };
  const name = start(`${RUN}-a`, IMAGE, ports, ["-v", `${VOLUME}:/workspace`, "-e", `PASSWORD=${PASSWORD}`, "-e", "HF_TOKEN=hf_test_token"]);
  await waitHealthy(name, ports[7030]);

  for (const port of Object.values(ports)) {
    for (const path of ["/", "/api/list?path=", "/api/status", "/api/sessions"]) {
      const r = await fetch(`http://127.0.0.1:${port}${path}`, { redirect: "manual" });
      assert.equal(r.status, 401, `${port}${path} without login`);
    }
    const wrong = await fetch(`http://127.0.0.1:${port}/`, {
      headers: { authorization: `Basic ${Buffer.from("admin:admin").toString("base64")}` },
    });
    assert.equal(wrong.status, 401, `${port}: the default password is not the one set`);
  }

  // The file manager lists the workspace; a file saved there is on the volume.
  const put = await fetch(`http://127.0.0.1:${ports[7010]}/api/file?path=hello.txt`, {
    method: "PUT",
    headers: { authorization: basic },
    body: "kept on the volume\n",
  });
  assert.equal(put.status, 200, await put.text());
  const list = await (await fetch(`http://127.0.0.1:${ports[7010]}/api/list?path=`, { headers: { authorization: basic } })).json();
  const names = list.entries.map((e) => e.name);
  assert.ok(names.includes("hello.txt") && names.includes("logs"), JSON.stringify(names));

  // The log viewer shows the services; sshd is switched off.
  const status = await (await fetch(`http://127.0.0.1:${ports[7030]}/api/status`, { headers: { authorization: basic } })).json();
  const services = JSON.stringify(status.services);
  for (const s of ["files", "terminal", "logs"]) assert.ok(JSON.stringify(status).includes(`"${s}"`), `${s} in ${services}`);
  const lines = await (await fetch(`http://127.0.0.1:${ports[7030]}/api/lines?limit=200`, { headers: { authorization: basic } })).text();
  assert.match(lines, /switched off \(enabled = false\): sshd/);
  assert.match(lines, /variables written to \/etc\/environment/);

  // The environment for SSH sessions: the container's variables, not gpubox's login secret.
  const env = podman("exec", name, "cat", "/etc/environment");
  assert.match(env, /^HF_TOKEN="hf_test_token"$/m);
  assert.match(env, /^WORKSPACE="\/workspace"$/m);
  assert.doesNotMatch(env, /PASSWORD/);

  // A terminal in the browser: log in on 7020, run echo in a real shell in the container.
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await context.newPage();
  await page.goto(`http://127.0.0.1:${ports[7020]}/`);
  await logIn(page, "admin", PASSWORD);
  await page.waitForSelector("#term .xterm-rows");
  await page.locator("#term").click();
  await page.keyboard.type("echo container-$((6*7)) $(id -un)");
  await page.keyboard.press("Enter");
  await page.waitForFunction(
    () => [...document.querySelectorAll("#term .xterm-rows > div")].some((r) => /^container-42 root/.test(r.textContent.replace(/\u00a0/g, " "))),
    null,
    { timeout: 15000 },
  );
  await page.screenshot({ path: join(ARTIFACTS, "container-terminal.png") });
  cookie = (await context.cookies()).find((c) => c.name === "gpubox_session");
  assert.ok(cookie, "the login set a session cookie");
  await context.close();
});

test("HEALTHCHECK turns healthy, and podman stop ends the container within 10 s with exit code 0", async () => {
  const name = `${RUN}-a`;
  const config = JSON.parse(podman("inspect", "--format", "{{json .Config.Healthcheck}}", name));
  assert.deepEqual(config.Test, ["CMD", "gpubox", "health"]);
  // podman runs health checks from systemd timers, which this host lacks: run the check itself.
  let health = "";
  for (let i = 0; i < 20 && health !== "healthy"; i++) {
    podmanStatus("healthcheck", "run", name);
    health = podman("inspect", "--format", "{{.State.Health.Status}}", name);
    if (health !== "healthy") await sleep(500);
  }
  assert.equal(health, "healthy");

  const t0 = Date.now();
  podman("stop", "-t", "10", name);
  const took = Date.now() - t0;
  assert.ok(took < 10000, `podman stop took ${took} ms`);
  assert.equal(podman("inspect", "--format", "{{.State.ExitCode}}", name), "0");
  const log = podman("logs", name);
  assert.match(log, /all services stopped; gpubox exits/);
});

test("a second container on the same volume finds the data and the browser session", async () => {
  const name = start(`${RUN}-b`, IMAGE, ports, ["-v", `${VOLUME}:/workspace`, "-e", `PASSWORD=${PASSWORD}`]);
  await waitHealthy(name, ports[7010]);
  const headers = { cookie: `gpubox_session=${cookie.value}` };
  const r = await fetch(`http://127.0.0.1:${ports[7010]}/api/file?path=hello.txt`, { headers });
  assert.equal(r.status, 200, "the session from the first container still logs in");
  assert.equal(await r.text(), "kept on the volume\n");
  podman("stop", "-t", "10", name);
});

test("a non-root UID runs the image with a workspace it owns", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gpubox-ct-"));
  const ws = join(dir, "ws");
  mkdirSync(ws);
  chownSync(ws, 1000, 1000);
  const port = await freePort();
  const name = start(`${RUN}-u`, IMAGE, { 7010: port }, ["--user", "1000:1000", "-v", `${ws}:/workspace`, "-e", `PASSWORD=${PASSWORD}`]);
  await waitHealthy(name, port);
  const put = await fetch(`http://127.0.0.1:${port}/api/file?path=mine.txt`, { method: "PUT", headers: { authorization: basic }, body: "x" });
  assert.equal(put.status, 200);
  const lines = podman("logs", name);
  assert.match(lines, /environment: cannot write \/etc\/environment/, "a non-root gpubox says it cannot export, and runs on");
  assert.match(podman("exec", name, "stat", "-c", "%u", "/workspace/mine.txt"), /^1000$/);
  podman("stop", "-t", "10", name);
  assert.equal(podman("inspect", "--format", "{{.State.ExitCode}}", name), "0");
});

test("Vast's SSH and Jupyter modes: the entrypoint is replaced, the on-start line starts gpubox, a second start is harmless", async () => {
  const port = await freePort();
  // Vast runs its own launcher instead of the image's CMD, then the template's on-start script.
  const name = start(`${RUN}-j`, IMAGE, { 7030: port }, ["-e", `PASSWORD=${PASSWORD}`], ["sleep", "infinity"]);
  const first = podman("exec", name, "gpubox", "run", "--detach");
  assert.match(first, /gpubox is running in the background/);
  await waitHealthy(name, port);
  const r = await fetch(`http://127.0.0.1:${port}/api/status`, { headers: { authorization: basic } });
  assert.equal(r.status, 200);
  const second = podmanStatus("exec", name, "gpubox", "run", "--detach");
  assert.equal(second.status, 0, second.stderr);
  assert.match(second.stdout, /already running/);
  assert.match(podman("exec", name, "cat", "/etc/environment"), /^WORKSPACE="\/workspace"$/m);
  assert.match(podman("exec", name, "gpubox", "health"), /healthy/);
});

test("ENABLE_SSH=1: sshd lets the key in, not a password, and the session sees the environment", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gpubox-ct-ssh-"));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "key")]);
  const key = readFileSync(join(dir, "key.pub"), "utf8").trim();
  // RunPod's variable, PUBLIC_KEY, may hold several keys, one per line.
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "key2")]);
  const key2 = readFileSync(join(dir, "key2.pub"), "utf8").trim();
  const port = await freePort();
  const web = await freePort();
  const name = start(`${RUN}-s`, IMAGE, { 22: port, 7030: web }, [
    "-e", `PASSWORD=${PASSWORD}`, "-e", "ENABLE_SSH=1", "-e", `SSH_PUBLIC_KEY=${key}`, "-e", "HF_TOKEN=hf_ssh_token",
    "-e", `PUBLIC_KEY=ssh-ed25519 AAAAnotused other\n${key2}`,
  ]);
  await waitHealthy(name, web);
  const ssh = (...extra) =>
    spawnSync(
      "ssh",
      [
        "-p", String(port), "-o", "StrictHostKeyChecking=no", "-o", `UserKnownHostsFile=${join(dir, "known")}`,
        "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", ...extra, "root@127.0.0.1", "echo ssh-ok $HF_TOKEN $WORKSPACE",
      ],
      { encoding: "utf8" },
    );
  let r;
  for (let i = 0; i < 40; i++) {
    r = ssh("-i", join(dir, "key"), "-o", "IdentitiesOnly=yes");
    if (r.status === 0) break;
    await sleep(250);
  }
  assert.equal(r.status, 0, `${r.stderr}\n${podman("logs", name)}`);
  assert.equal(r.stdout.trim(), "ssh-ok hf_ssh_token /workspace");
  const second = ssh("-i", join(dir, "key2"), "-o", "IdentitiesOnly=yes");
  assert.equal(second.status, 0, `the second key of PUBLIC_KEY: ${second.stderr}`);
  const nokey = ssh("-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive");
  assert.notEqual(nokey.status, 0, "no login without the key");
  assert.match(nokey.stderr, /Permission denied/);
});

test("CF_QUICK_TUNNELS=true and CF_TUNNEL_TOKEN: a tunnel per app and a named one, with a stand-in cloudflared", async () => {
  // pkg.cloudflare.com cannot be reached here: the stand-in (the real one's output, Cloudflare's
  // edge played on a local port) sits where the package puts cloudflared.
  const web = await freePort();
  const token = Buffer.from(JSON.stringify({ a: "0123456789abcdef", t: "5a1e3a0c-4c8a-4d2b-9d55-1c6a2f0c1b7e", s: "c2VjcmV0" })).toString("base64");
  const name = start(`${RUN}-t`, IMAGE, { 7030: web }, [
    "-e", `PASSWORD=${PASSWORD}`, "-e", "CF_QUICK_TUNNELS=true", "-e", `CF_TUNNEL_TOKEN=${token}`,
    "-e", "CLOUDFLARED_STANDIN_DIR=/tmp",
    "-e", 'CLOUDFLARED_STANDIN_INGRESS=[{"hostname":"box.example.com","service":"http://localhost:7010"}]',
    "-v", `${join(ROOT, "tests", "fixtures", "cloudflared")}:/usr/local/bin/cloudflared:ro`,
  ]);
  await waitHealthy(name, web);
  let status;
  for (let i = 0; i < 100; i++) {
    status = JSON.parse(podman("exec", name, "gpubox", "status", "--json"));
    if (status.tunnels.length === 4) break;
    await sleep(200);
  }
  const byPort = Object.fromEntries(status.tunnels.filter((t) => t.via !== "tunnel").map((t) => [t.port, t.url]));
  assert.deepEqual(Object.keys(byPort).sort(), ["7010", "7020", "7030"], JSON.stringify(status.tunnels));
  for (const url of Object.values(byPort)) assert.match(url, /^https:\/\/[a-z0-9-]+\.trycloudflare\.com$/);
  assert.ok(status.tunnels.some((t) => t.url === "https://box.example.com" && t.port === 7010 && t.via === "tunnel"));
  // Through the terminal's tunnel, as Cloudflare's edge would reach it.
  const host = byPort[7020].replace("https://", "");
  const code = podman("exec", name, "sh", "-c", `curl -s -o /dev/null -w '%{http_code}' -H 'Host: ${host}' http://127.0.0.1:$(cat /tmp/${host})/`);
  assert.equal(code, "401", "the login is in front of the tunnel too");
  // The status page lists the addresses; the token reaches no SSH session's environment.
  const st = await (await fetch(`http://127.0.0.1:${web}/api/status`, { headers: { authorization: basic } })).json();
  assert.deepEqual(st.links.find((l) => l.port === 7020).tunnels, [byPort[7020]]);
  const env = podman("exec", name, "cat", "/etc/environment");
  assert.match(env, /^CF_QUICK_TUNNELS="true"$/m);
  assert.doesNotMatch(env, /CF_TUNNEL_TOKEN/);
});

test("the forge image, built from its Dockerfile with a stand-in Forge: Forge behind the login on 8010", async () => {
  // Forge's source and torch's CUDA wheels cannot be fetched here: the Dockerfile clones a
  // stand-in repository instead (tests/container/fake-forge: a launch.py with Forge's contract,
  // serving the Gradio stand-in), over git's HTTP protocol from this machine.
  const dir = mkdtempSync(join(tmpdir(), "gpubox-fake-forge-"));
  const work = join(dir, "work");
  mkdirSync(work);
  copyFileSync(join(ROOT, "tests", "container", "fake-forge", "launch.py"), join(work, "launch.py"));
  mkdirSync(join(work, "modules"));
  copyFileSync(join(ROOT, "tests", "container", "fake-forge", "modules", "launch_utils.py"), join(work, "modules", "launch_utils.py"));
  copyFileSync(join(HERE, "forge_standin.py"), join(work, "forge_standin.py"));
  copyFileSync(join(HERE, "requirements.txt"), join(work, "requirements_versions.txt"));
  const git = (cwd, ...args) => execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", ...args], { cwd, encoding: "utf8" }).trim();
  git(work, "init", "-q");
  git(work, "add", ".");
  git(work, "commit", "-q", "-m", "a stand-in for Forge");
  const ref = git(work, "rev-parse", "HEAD");
  mkdirSync(join(dir, "served"));
  git(dir, "clone", "-q", "--bare", work, join(dir, "served", "forge.git"));
  git(join(dir, "served", "forge.git"), "update-server-info");
  const gitPort = await freePort();
  const server = spawn("python3", ["-m", "http.server", String(gitPort), "--bind", "127.0.0.1", "--directory", join(dir, "served")], { stdio: "ignore" });
  // This machine reaches PyPI through a proxy whose CA only the host trusts: the build's pip gets it.
  writeFileSync(join(dir, "pip.conf"), "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n");
  const trust = ["-v", "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro", "-v", `${join(dir, "pip.conf")}:/etc/pip.conf:ro`];
  try {
    execFileSync(
      "podman",
      [
        "build", "--format", "docker", "--network", "host", ...trust, "-f", "images/forge/Dockerfile",
        "--build-arg", `BASE_IMAGE=${IMAGE}`, "--build-arg", "PYTHON=python3.11",
        "--build-arg", `FORGE_REPO=http://127.0.0.1:${gitPort}/forge.git`, "--build-arg", `FORGE_REF=${ref}`,
        "--build-arg", "TORCH_COMMAND=pip --version", "-t", FORGE, ".",
      ],
      { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] },
    );
  } finally {
    server.kill();
  }
  const env = JSON.parse(podman("inspect", "--format", "{{json .Config.Env}}", FORGE));
  assert.ok(env.includes("OPEN_BUTTON_PORT=8010"), env.join(" "));
  assert.ok("8010/tcp" in JSON.parse(podman("inspect", "--format", "{{json .Config.ExposedPorts}}", FORGE)));

  // A workspace with a model in it already: it is kept as it is.
  const ws = join(dir, "ws");
  mkdirSync(join(ws, "forge", "models", "Lora"), { recursive: true });
  writeFileSync(join(ws, "forge", "models", "Lora", "mine.safetensors"), "my own lora");
  const port = await freePort();
  const files = await freePort();
  const name = start(`${RUN}-f`, FORGE, { 8010: port, 7010: files }, [
    "-e", `PASSWORD=${PASSWORD}`, "-e", `OPEN_BUTTON_TOKEN=${TOKEN}`, "-e", "FORGE_ARGS=--api --theme dark",
    "-v", `${ws}:/workspace`,
  ]);
  await waitHealthy(name, port);
  assert.equal((await fetch(`http://127.0.0.1:${port}/`, { redirect: "manual" })).status, 401);
  // Before Forge listens, gpubox's waiting page stands in for it.
  const waiting = await fetch(`http://127.0.0.1:${port}/`, { headers: { authorization: basic, accept: "text/html" } });
  assert.equal(waiting.status, 503);
  assert.match(await waiting.text(), /forge/);

  // The layout for models exists from the start, beside what was there.
  const list = await (await fetch(`http://127.0.0.1:${files}/api/list?path=forge/models`, { headers: { authorization: basic } })).json();
  for (const f of ["Stable-diffusion", "Lora", "VAE", "ControlNet", "ESRGAN", "text_encoder", "embeddings"]) {
    assert.ok(list.entries.some((e) => e.name === f), `forge/models/${f}`);
  }
  assert.equal(readFileSync(join(ws, "forge", "models", "Lora", "mine.safetensors"), "utf8"), "my own lora");

  // Vast's Open button: OPEN_BUTTON_PORT with ?token=, the token Vast put in OPEN_BUTTON_TOKEN.
  const opened = await browser.newContext();
  const tab = await opened.newPage();
  await tab.goto(`http://127.0.0.1:${port}/?token=${TOKEN}`);
  await tab.waitForSelector("gradio-app, .gradio-container", { timeout: 60000 });
  assert.equal(new URL(tab.url()).search, "", "the token is dropped from the address bar");
  await opened.close();

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForSelector("#username");
  await page.screenshot({ path: join(ARTIFACTS, "container-login.png") });
  await logIn(page, "admin", PASSWORD);
  await page.waitForSelector("gradio-app, .gradio-container", { timeout: 60000 });
  const ping = await page.evaluate(async () => (await fetch("/internal/ping")).status);
  assert.equal(ping, 200, "Forge's own routes pass through the proxy");
  await page.screenshot({ path: join(ARTIFACTS, "container-forge.png") });
  await context.close();

  // How forge-launch started Forge: its data in the workspace, FORGE_ARGS appended, tcmalloc.
  const launch = JSON.parse(readFileSync(join(ws, "forge", "launch.json"), "utf8"));
  assert.deepEqual(launch.argv, [
    "--port", "7860", "--data-dir", "/workspace/forge", "--embeddings-dir", "/workspace/forge/models/embeddings",
    "--gradio-allowed-path", "/opt/forge", "--api", "--theme", "dark",
  ]);
  assert.match(launch.ld_preload, /libtcmalloc/);
  assert.equal(launch.python, "/opt/forge/venv/bin/python");
  podman("stop", "-t", "20", name);
  assert.equal(podman("inspect", "--format", "{{.State.ExitCode}}", name), "0");
});

test("Kubernetes: deploy/kubernetes/gpubox.yaml under podman kube play: the ports, the login, a clean stop", async () => {
  const manifest = readFileSync(join(ROOT, "deploy", "kubernetes", "gpubox.yaml"), "utf8");
  // The grace period covers the longest stop: every stop_timeout in the forge image's config,
  // one after another (gpubox stops them in dependency order), and a tunnel's 5 s.
  const grace = Number(/terminationGracePeriodSeconds: (\d+)/.exec(manifest)[1]);
  const config = readFileSync(join(ROOT, "images", "forge", "gpubox.toml"), "utf8");
  const stops = [...config.matchAll(/stop_timeout = "(\d+)s"/g)].reduce((a, m) => a + Number(m[1]), 0);
  assert.ok(grace > stops + 10 + 5, `grace ${grace} s against ${stops} s of stop timeouts, provisioning's 10 s and a tunnel's 5 s`);

  // What podman 4.3 (here) cannot take is changed for the run, and only that:
  // - its kube play keeps a Secret's YAML but then reads it as JSON and fails
  //   ("secret ... is not valid JSON"), so the Secret's values are put in the env directly;
  // - a containerPort is published on the same host port: a free port is given instead;
  // - names carry this run's, so that nothing here meets anything else on the machine.
  const secret = Object.fromEntries([...manifest.matchAll(/^  (password|token): "([^"]*)"$/gm)].map((m) => [m[1], m[2]]));
  assert.ok(secret.password && secret.token, "the Secret holds the password and the token");
  const ports = { 7010: await freePort(), 7020: await freePort(), 7030: await freePort(), 8010: await freePort() };
  const pod = `${RUN}-k8s`;
  let text = manifest.split(/^---$/m).filter((doc) => !/^kind: Secret$/m.test(doc)).join("---");
  text = text
    .replace(/valueFrom:\n\s+secretKeyRef: \{name: gpubox-login, key: (\w+)\}/g, (_, key) => `value: "${secret[key]}"`)
    .replace(/containerPort: (\d+)\}/g, (_, p) => `containerPort: ${p}, hostPort: ${ports[p]}}`)
    .replace("image: ghcr.io/codechips/vastai-forge:latest", `image: ${FORGE}`)
    .replaceAll("gpubox-workspace", `${pod}-ws`)
    .replace(/^  name: gpubox$/gm, `  name: ${pod}`);
  assert.doesNotMatch(text, /secretKeyRef|vastai-forge:latest|gpubox-workspace/);
  const dir = mkdtempSync(join(tmpdir(), "gpubox-ct-k8s-"));
  const file = join(dir, "gpubox.yaml");
  writeFileSync(file, text);
  try {
    podman("kube", "play", file);
    const container = podman("ps", "-a", "--filter", `pod=${pod}-pod-0`, "--format", "{{.Names}}").split("\n").find((n) => !n.includes("infra"));
    assert.ok(container, "the Deployment's container runs");
    await waitHealthy(container, ports[7030]);
    for (const port of Object.values(ports)) {
      const r = await fetch(`http://127.0.0.1:${port}/`, { redirect: "manual" });
      assert.equal(r.status, 401, `${port} without login`);
    }
    const basicK8s = `Basic ${Buffer.from(`admin:${secret.password}`).toString("base64")}`;
    const list = await fetch(`http://127.0.0.1:${ports[7010]}/api/list?path=forge/models`, { headers: { authorization: basicK8s } });
    assert.equal(list.status, 200, "the Secret's password logs in");
    const opened = await fetch(`http://127.0.0.1:${ports[8010]}/?token=${secret.token}`, { redirect: "manual" });
    assert.ok([302, 303].includes(opened.status) && /gpubox_session=/.test(opened.headers.get("set-cookie")), "the Secret's token logs in");
    assert.equal(podman("exec", container, "sh", "-c", "mount | grep -c ' /workspace '"), "1", "the claim is mounted");
    // A clean stop: SIGTERM, everything stopped in order, exit code 0, well within the grace period.
    const t0 = Date.now();
    podman("pod", "stop", "-t", String(grace), `${pod}-pod-0`);
    assert.ok(Date.now() - t0 < grace * 1000, `stopped in ${Date.now() - t0} ms`);
    assert.equal(podman("inspect", "--format", "{{.State.ExitCode}}", container), "0");
  } finally {
    podmanStatus("kube", "down", file);
    podmanStatus("volume", "rm", "-f", `${pod}-ws`);
    rmSync(dir, { recursive: true, force: true });
  }
});
