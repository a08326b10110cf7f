// The terminal page's DOM helpers are the shared ones.
export { h } from "../common/dom";
export { icon, iconButton } from "../common/icons";
