// Copying text: the Clipboard API where the page is a secure context (HTTPS, or localhost); over
// plain HTTP (a Vast port without a tunnel) the old way, a selected off-screen textarea and
// execCommand("copy"), which browsers still allow from a click.

export async function copyText(text: string): Promise<boolean> {
  if (!text) return false;
  if (window.isSecureContext && navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Denied (the page lost focus, say): try the old way.
    }
  }
  const focused = document.activeElement as HTMLElement | null;
  const area = document.createElement("textarea");
  area.className = "copy-buffer";
  area.setAttribute("aria-hidden", "true");
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  } finally {
    area.remove();
    focused?.focus?.({ preventScroll: true });
  }
  return ok;
}
