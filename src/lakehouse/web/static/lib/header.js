// The page header: who is logged in, and which section the page is in.

import { badge } from "./badges.js";
import { clear, h, put } from "./dom.js";

export function renderWho(me) {
  const el = clear(document.getElementById("whoami"));
  put(
    el,
    h("span", { class: "principal", title: "logged in as" }, me.name),
    badge(me.role, `role role-${me.role}`),
  );
}

export function markNav(section) {
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}
