// The page's small widgets; the builder and the icons are the shared ones.
import { h, type Attrs } from "../common/dom";
import { icon, type IconName } from "../common/icons";

export { append, fill, h } from "../common/dom";
export { icon, iconButton, type IconName } from "../common/icons";

/** A toolbar button: an icon and a label (the label hides on narrow screens, the title stays). */
export function button(iconName: IconName | null, label: string, attrs: Attrs = {}): HTMLButtonElement {
  return h(
    "button",
    { type: "button", title: label, ...attrs },
    iconName ? icon(iconName) : null,
    h("span", { class: "label" }, label),
  );
}
