// Badges: plain, a layer's (in its colour) and a status's (good, bad, warn, neutral).

import { h } from "./dom.js";
import { LAYER_COLORS } from "./layers.js";

export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}`.trim() }, text);
}

export function layerBadge(layer) {
  const el = badge(layer || "?", "layer");
  el.style.setProperty("--layer-color", LAYER_COLORS[layer] || "#888");
  return el;
}

export function statusBadge(status) {
  const ok = ["ok", "succeeded", "passed"];
  const bad = ["failed", "error", "interrupted", "rolled back"];
  const warn = ["warning"];
  const kind = ok.includes(status)
    ? "good"
    : bad.includes(status)
      ? "bad"
      : warn.includes(status)
        ? "warn"
        : "neutral";
  return badge(status ?? "unknown", kind);
}
