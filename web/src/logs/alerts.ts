// The alerts in the status panel (/api/alerts): where they are sent, the latest ones with what
// became of each delivery (or why none was made), a button that sends a test one, and the idle
// stop's state. Polled every 5 s while the panel is shown and the tab in view (background
// requests: not activity for the idle stop).

import { request } from "../common/api";
import { describe } from "../common/idle";
import { Alert, Alerts, getJson, pollJson } from "./api";
import { fill, h } from "./dom";
import { absoluteTime } from "./format";

const POLL_MS = 5000;
/** Alerts listed; the server keeps more. */
const SHOWN = 20;

const NO_TARGET =
  "Alerts are sent nowhere, only kept here. To be told, set ALERT_WEBHOOK, NTFY_TOPIC_URL, DISCORD_WEBHOOK_URL or SLACK_WEBHOOK_URL, or [alerts] in the configuration.";

function alertItem(a: Alert, now: number): HTMLElement {
  const t = absoluteTime(a.time_ms, now);
  const deliveries = a.deliveries.map((d) => {
    const tries = d.attempts > 1 ? ` after ${d.attempts} tries` : "";
    const what = d.state === "failed" ? `failed${tries}${d.error ? `: ${d.error}` : ""}` : d.state === "sent" ? `sent${tries}` : "sending…";
    return h("li", { class: `delivery d-${d.state}`, "data-target": d.target }, `${d.target}: ${what}`);
  });
  return h(
    "li",
    { class: a.held ? "alert held" : "alert", "data-id": a.id, "data-kind": a.kind, "data-level": a.level },
    h(
      "div",
      { class: "alert-head" },
      h("time", { class: "alert-time", datetime: new Date(a.time_ms).toISOString() }, `${t.day}${t.hms}`),
      h("span", { class: `pill lv-${a.level}` }, a.level),
      h("span", { class: "alert-title" }, a.title),
    ),
    a.text ? h("div", { class: "alert-text" }, a.text) : null,
    a.repeats ? h("div", { class: "alert-note" }, `${a.repeats} more like it were not sent before this one`) : null,
    a.held ? h("div", { class: "alert-note" }, `Not sent: ${a.held}`) : null,
    deliveries.length ? h("ul", { class: "deliveries" }, ...deliveries) : null,
  );
}

export class AlertsView {
  /** Where alerts go, the test button and the list. */
  readonly el: HTMLElement;
  /** The idle stop's state, shown under its own heading. */
  readonly idle = h("p", { class: "small", id: "status-idle" }, "…");
  private targets = h("p", { class: "small", id: "alerts-targets" });
  private tested = h("span", { class: "small muted", id: "alerts-tested", role: "status" });
  private list = h("div");
  private error = h("p", { class: "error small", role: "status", hidden: true });
  private key = "";
  private timer = 0;

  constructor() {
    const test = h("button", { type: "button", id: "alerts-test" }, "Send a test alert");
    test.addEventListener("click", async () => {
      test.disabled = true;
      this.tested.textContent = "sending…";
      try {
        const { targets } = await request<{ targets: number }>("POST", "/.gpubox/api/alerts/test");
        this.tested.textContent = targets
          ? `Sent to ${targets} ${targets === 1 ? "target" : "targets"}: see below whether it arrived.`
          : "Kept below: no target is set.";
      } catch (e) {
        this.tested.textContent = `Not sent: ${(e as Error).message}`;
      } finally {
        test.disabled = false;
      }
      void this.load(false);
    });
    this.el = h("div", { class: "alerts" }, this.targets, h("div", { class: "alerts-test" }, test, this.tested), this.error, this.list);
  }

  start(): void {
    void this.load(false);
  }

  /** Asks for the alerts (`background`: the page's own refresh) and sets the next look. */
  private async load(background: boolean): Promise<void> {
    window.clearTimeout(this.timer);
    try {
      this.render(await (background ? pollJson<Alerts>("/api/alerts") : getJson<Alerts>("/api/alerts")));
      this.error.hidden = true;
    } catch (e) {
      this.error.textContent = `The alerts could not be read (${(e as Error).message}); trying again.`;
      this.error.hidden = false;
    }
    this.timer = window.setTimeout(() => this.refresh(), POLL_MS);
  }

  /** The timer's refresh: only while someone can see the list. */
  private refresh(): void {
    if (!document.hidden && this.el.getClientRects().length > 0) void this.load(true);
    else this.timer = window.setTimeout(() => this.refresh(), POLL_MS);
  }

  private render(a: Alerts): void {
    const now = Date.now();
    this.idle.textContent = describe(a.idle, now);
    // Rebuilt only when they change, so that a selection in them survives the polling.
    const key = JSON.stringify([a.targets, a.alerts.slice(0, SHOWN)]);
    if (key === this.key) return;
    this.key = key;
    fill(
      this.targets,
      ...(a.targets.length
        ? ["Sent to ", ...a.targets.flatMap((t, i) => [i ? ", " : "", h("code", null, `${t.kind} ${t.url}`)]), "."]
        : [NO_TARGET]),
    );
    const older = a.alerts.length - SHOWN;
    fill(
      this.list,
      a.alerts.length
        ? h("ul", { class: "alert-list", id: "status-alerts" }, ...a.alerts.slice(0, SHOWN).map((x) => alertItem(x, now)))
        : h("p", { class: "muted small", id: "status-alerts-none" }, "No alert yet."),
      older > 0 ? h("p", { class: "muted small" }, `${older} older ${older === 1 ? "alert is" : "alerts are"} not shown.`) : null,
    );
  }
}
