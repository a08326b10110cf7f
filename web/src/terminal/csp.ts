// xterm.js's DOM renderer styles the terminal with <style> elements whose text it sets (colours,
// font, cell size, the 256-colour classes) and paints truecolour cells with
// setAttribute("style", ...). gpubox serves its pages with `style-src 'self'`, under which the
// browser ignores both: they are inline CSS. Constructable stylesheets and CSSOM writes are not
// inline CSS, so this page routes both through them instead of weakening the policy:
// - a <style> element's text goes into an adopted stylesheet, and the element itself stays out
//   of the document (there it could only be refused, with an error in the console);
// - setAttribute("style", css) becomes el.style.cssText = css.
// It is installed before the terminal opens; nothing else on this page uses either.

const sheets = new Map<HTMLStyleElement, CSSStyleSheet>();

export function allowXtermStyles(): void {
  Object.defineProperty(HTMLStyleElement.prototype, "textContent", {
    configurable: true,
    get(this: HTMLStyleElement): string {
      const sheet = sheets.get(this);
      return sheet ? Array.from(sheet.cssRules, (r) => r.cssText).join("\n") : "";
    },
    set(this: HTMLStyleElement, css: string | null) {
      let sheet = sheets.get(this);
      if (!sheet) {
        sheet = new CSSStyleSheet();
        sheets.set(this, sheet);
        document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
      }
      sheet.replaceSync(css ?? "");
    },
  });
  HTMLStyleElement.prototype.remove = function (this: HTMLStyleElement): void {
    const sheet = sheets.get(this);
    sheets.delete(this);
    if (sheet) document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => s !== sheet);
  };

  const appendChild = Node.prototype.appendChild;
  Node.prototype.appendChild = function <T extends Node>(this: Node, child: T): T {
    return child instanceof HTMLStyleElement ? child : (appendChild.call(this, child) as T);
  };

  const setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (this: Element, name: string, value: string): void {
    if (name.toLowerCase() === "style" && (this instanceof HTMLElement || this instanceof SVGElement)) {
      this.style.cssText = value;
      return;
    }
    setAttribute.call(this, name, value);
  };
}
