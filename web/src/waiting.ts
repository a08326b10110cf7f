// The proxy's waiting page, kept live: polls the service's state and latest log lines, and
// loads the app as soon as the service is ready. Without JavaScript the page refreshes itself
// instead (a <noscript> meta refresh), so this is an improvement, not a requirement. The polling
// is the page's own (background): a tab left waiting does not keep the instance from its idle
// stop.

import { BACKGROUND } from "./common/api";

interface ServiceView {
  name: string;
  state: string;
  ready: boolean;
  headline: string;
  detail: string;
  tail: string[];
}

const POLL_MS = 1500;

function start(root: HTMLElement): void {
  const name = root.dataset.service ?? "";
  const headline = root.querySelector<HTMLElement>("h1");
  const detail = root.querySelector<HTMLElement>("p.muted");
  const log = root.querySelector<HTMLElement>("pre.log");

  async function poll(): Promise<void> {
    try {
      const res = await fetch(`/.gpubox/api/services/${encodeURIComponent(name)}`, {
        headers: { Accept: "application/json", ...BACKGROUND },
        cache: "no-store",
      });
      if (res.ok) {
        const view = (await res.json()) as ServiceView;
        if (view.ready) {
          window.location.reload();
          return;
        }
        if (headline) headline.textContent = view.headline;
        if (detail) detail.textContent = view.detail;
        if (log) {
          const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
          log.textContent = view.tail.length ? view.tail.join("\n") : `(${name} has printed nothing yet)`;
          if (atBottom) log.scrollTop = log.scrollHeight;
        }
      }
    } catch {
      // gpubox itself is restarting, or the network dropped: try again.
    }
    window.setTimeout(poll, POLL_MS);
  }
  window.setTimeout(poll, POLL_MS);
}

const root = document.querySelector<HTMLElement>("[data-service]");
if (root) start(root);
