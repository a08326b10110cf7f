// The status panel: every service's state, the machine as the container sees it and its history
// (./charts), the alerts and the idle stop (./alerts), links to every service with copy buttons,
// and Vast's facts. Polls /api/status every 2 s (background requests: not activity for the idle
// stop).

import { AlertsView } from "./alerts";
import { Machine, pollJson, ServiceStatus, Status } from "./api";
import { Charts } from "./charts";
import { fill, h } from "./dom";
import { bytes, duration } from "./format";
import { serviceColour } from "./render";
import { copyText } from "../common/clipboard";

const POLL_MS = 2000;

function bar(used: number, total: number, label: string): HTMLElement {
  const pct = total > 0 ? Math.min(100, (used / total) * 100) : 0;
  const fillEl = h("div", { class: pct >= 90 ? "fill bad" : pct >= 75 ? "fill warn" : "fill" });
  fillEl.style.width = `${pct.toFixed(1)}%`;
  return h(
    "div",
    { class: "meter" },
    h("div", { class: "bar", role: "meter", "aria-valuenow": Math.round(pct), "aria-valuemin": 0, "aria-valuemax": 100, "aria-label": label }, fillEl),
    h("div", { class: "meter-label" }, label),
  );
}

function fact(name: string, ...value: (Node | string)[]): HTMLElement[] {
  return [h("dt", null, name), h("dd", null, ...value)];
}

/** How the last run ended, short: the exit code or the signal; red only when it was not asked
 * for (a stop or restart ends a service with SIGTERM, which is no crash). */
function exitCell(s: ServiceStatus): HTMLElement {
  const e = s.last_exit;
  if (!e) return h("td", { class: "exit muted" }, "–");
  const short = e.code !== null ? String(e.code) : (e.signal ?? e.text);
  if (s.last_exit_asked) return h("td", { class: "exit asked", title: `${e.text}: stopped on request` }, short);
  return h("td", { class: e.code === 0 ? "exit" : "exit bad-text", title: e.text }, short);
}

function servicesTable(services: ServiceStatus[]): HTMLElement {
  const rows: HTMLElement[] = [];
  for (const s of services) {
    rows.push(
      h(
        "tr",
        { "data-service": s.name, "data-state": s.state, class: s.error ? "has-error" : undefined },
        h(
          "td",
          { class: "name" },
          h("span", { class: `svc svc-c${serviceColour(s.name)}`, title: s.name }, s.name),
          s.oneshot ? h("div", { class: "tag", title: "runs once: done or failed is its result" }, "oneshot") : null,
        ),
        h("td", { class: "state" }, h("span", { class: `pill st-${s.state}` }, s.state)),
        h("td", { class: "ready" }, s.ready ? h("span", { class: "yes", title: "ready" }, "✓") : h("span", { class: "muted", title: "not ready" }, "–")),
        h("td", { class: "num" }, s.uptime_ms === null ? "–" : duration(s.uptime_ms / 1000)),
        h("td", { class: "num restarts" }, String(s.restarts)),
        exitCell(s),
      ),
    );
    if (s.error) rows.push(h("tr", { class: "error-row", "data-service": s.name }, h("td", { colspan: 6, class: "err-text" }, s.error)));
  }
  return h(
    "table",
    { class: "status-services", id: "status-services" },
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        h("th", null, "Service"),
        h("th", null, "State"),
        h("th", null, "Ready"),
        h("th", null, "Up"),
        h("th", { title: "restarts" }, "Restarts"),
        h("th", { title: "last exit: code or signal" }, "Exit"),
      ),
    ),
    h("tbody", null, ...rows),
  );
}

function machineFacts(m: Machine, st: Status): HTMLElement {
  const dl = h("dl", { class: "facts", id: "status-machine" });
  const cpu = `${m.cpus} ${m.cpus === 1 ? "CPU" : "CPUs"}`;
  dl.append(...fact("CPU", m.cpu_quota === null ? `${cpu}, no quota` : `${cpu}, quota ${+m.cpu_quota.toFixed(2)} cores`));
  if (m.load) dl.append(...fact("Load", m.load.map((l) => l.toFixed(2)).join("  ")));
  const memTotal = m.memory.limit ?? m.memory.total;
  if (m.memory.used !== null && memTotal) {
    const of = m.memory.limit !== null ? "limit" : "total";
    dl.append(...fact("Memory", bar(m.memory.used, memTotal, `${bytes(m.memory.used)} of ${bytes(memTotal)} (${of})`)));
  } else {
    dl.append(...fact("Memory", `${bytes(m.memory.used)} used`));
  }
  if (m.shm) {
    const dd: (Node | string)[] = [`${bytes(m.shm.size)} (${bytes(m.shm.used)} used)`];
    if (m.shm.warning) dd.push(h("div", { class: "warn-text", role: "alert" }, m.shm.warning));
    dl.append(...fact("/dev/shm", ...dd));
  }
  if (m.disk) {
    dl.append(
      ...fact(
        "Disk",
        bar(m.disk.used, m.disk.total, `${bytes(m.disk.used)} used, ${bytes(m.disk.free)} free`),
        h("div", { class: "muted small" }, m.disk.path),
      ),
    );
  }
  for (const g of m.gpus) {
    const parts: (Node | string)[] = [h("div", null, g.name)];
    if (g.memory_used !== null && g.memory_total) {
      parts.push(bar(g.memory_used, g.memory_total, `${bytes(g.memory_used)} of ${bytes(g.memory_total)}`));
    }
    const bits = [];
    if (g.utilization !== null) bits.push(`${g.utilization}% busy`);
    if (g.temperature !== null) bits.push(`${g.temperature} °C`);
    if (bits.length) parts.push(h("div", { class: "muted small" }, bits.join(" · ")));
    dl.append(...fact(`GPU ${g.index}`, ...parts));
  }
  if (m.uptime_s !== null) dl.append(...fact("Up", duration(m.uptime_s)));
  dl.append(...fact("gpubox", `${st.gpubox.version}, up ${duration(st.gpubox.uptime_s)}`));
  return dl;
}

function links(st: Status): HTMLElement {
  const list = h("ul", { class: "links", id: "status-links" });
  const rows = st.links.flatMap((l) => [
    ...(l.url ? [{ name: l.name, url: l.url, tunnel: false }] : []),
    ...l.tunnels.map((url) => ({ name: l.name, url, tunnel: true })),
  ]);
  for (const l of rows) {
    const button = h("button", { type: "button", class: "copy", "data-url": l.url, title: `copy ${l.url}` }, "Copy");
    button.addEventListener("click", async () => {
      const ok = await copyText(l.url);
      button.textContent = ok ? "Copied" : "Select it";
      button.classList.toggle("done", ok);
      window.setTimeout(() => {
        button.textContent = "Copy";
        button.classList.remove("done");
      }, 1500);
    });
    list.append(
      h(
        "li",
        { "data-service": l.name, class: l.tunnel ? "tunnel" : "direct" },
        h("span", { class: "link-name" }, l.tunnel ? `${l.name} · tunnel` : l.name),
        h("a", { href: l.url, target: "_blank", rel: "noopener", class: "link-url" }, l.url.replace(/^https?:\/\//, "")),
        button,
      ),
    );
  }
  return list;
}

function vastFacts(vast: Record<string, string | null>): HTMLElement {
  const dl = h("dl", { class: "facts", id: "status-vast" });
  const names: Record<string, string> = { container_id: "Container", public_ip: "Public IP", gpu_count: "GPUs" };
  for (const [k, v] of Object.entries(vast)) if (v) dl.append(...fact(names[k] ?? k, v));
  return dl;
}

export class StatusPanel {
  readonly el: HTMLElement;
  private error: HTMLElement;
  private services = h("div", null, h("p", { class: "muted" }, "Loading…"));
  private machine = h("div");
  private links = h("div");
  private vast = h("div");
  private vastTitle = h("h3", { hidden: true }, "Vast.ai");
  private linksKey = "";
  private vastKey = "";
  private charts = new Charts();
  private alerts = new AlertsView();
  /** Called with the services' names on every answer. */
  onServices: (names: string[]) => void = () => {};

  constructor(onClose: () => void) {
    this.error = h("p", { class: "error", role: "status", hidden: true });
    const close = h("button", { type: "button", class: "icon close", title: "close (s)", "aria-label": "close the status panel" }, "×");
    close.addEventListener("click", onClose);
    this.el = h(
      "aside",
      { id: "status", class: "lg-status", "aria-label": "status" },
      h("div", { class: "status-head" }, h("h2", null, "Status"), close),
      this.error,
      h("h3", null, "Services"),
      this.services,
      h("h3", null, "Machine"),
      this.machine,
      h("h3", null, "History"),
      this.charts.el,
      h("h3", null, "Alerts"),
      this.alerts.el,
      h("h3", null, "Idle stop"),
      this.alerts.idle,
      h("h3", null, "Links"),
      this.links,
      this.vastTitle,
      this.vast,
    );
  }

  start(): void {
    this.charts.start();
    this.alerts.start();
    const poll = async () => {
      if (!document.hidden || !this.linksKey) {
        try {
          this.render(await pollJson<Status>("/api/status"));
          this.error.hidden = true;
        } catch (e) {
          this.error.textContent = `The status could not be read (${(e as Error).message}); trying again.`;
          this.error.hidden = false;
        }
      }
      window.setTimeout(poll, POLL_MS);
    };
    void poll();
  }

  private render(st: Status): void {
    this.onServices(st.services.map((s) => s.name));
    fill(this.services, servicesTable(st.services));
    fill(this.machine, machineFacts(st.machine, st));
    // Rebuilt only when they change, so that a selection in them survives the polling.
    const linksKey = JSON.stringify([st.links, st.tls, st.tunnel_problem]);
    if (linksKey !== this.linksKey) {
      this.linksKey = linksKey;
      // With a self-signed certificate the browser asks the user to trust it: the fingerprint
      // here is what to compare with the one the browser shows.
      const tls = st.tls
        ? h(
            "p",
            { class: "small muted", id: "status-tls" },
            `HTTPS with ${st.tls.source}. SHA-256 fingerprint: `,
            h("code", { class: "fingerprint" }, st.tls.fingerprint),
          )
        : null;
      const problem = st.tunnel_problem
        ? h("p", { class: "small", id: "status-tunnel-problem" }, `Tunnels: ${st.tunnel_problem}`)
        : null;
      fill(this.links, st.links.length ? links(st) : h("p", { class: "muted" }, "No service has a port."), tls, problem);
    }
    const vastKey = JSON.stringify(st.vast);
    if (vastKey !== this.vastKey) {
      this.vastKey = vastKey;
      this.vastTitle.hidden = !st.vast;
      fill(this.vast, st.vast ? vastFacts(st.vast) : null);
    }
  }
}
