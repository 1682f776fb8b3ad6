// Charts (ECharts, loaded by the page as a global): made, resized with the window,
// disposed of when the page changes.

import { h } from "./dom.js";
import { state } from "./state.js";

export function disposeCharts() {
  for (const chart of state.charts) chart.dispose();
  state.charts = [];
}

export function makeChart(el) {
  if (!window.echarts) {
    el.replaceChildren(
      h(
        "p",
        { class: "muted" },
        "The chart library is not installed: run `npm ci` in src/lakehouse/web.",
      ),
    );
    return null;
  }
  const chart = window.echarts.init(el, null, { renderer: "canvas" });
  state.charts.push(chart);
  return chart;
}

window.addEventListener("resize", () => {
  for (const chart of state.charts) {
    chart.resize();
    if (chart.lakehouseRedraw) chart.lakehouseRedraw();
  }
});

// A value for the markup of a tooltip (ECharts inserts tooltip strings as HTML).
export function esc(value) {
  return String(value ?? "").replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c],
  );
}
