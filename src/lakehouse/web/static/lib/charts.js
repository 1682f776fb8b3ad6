// Charts (ECharts, loaded by the page as a global): made, resized with the window,
// disposed of when the page changes.

import { h } from "./dom.js";
import { fmtTime, numFormat } from "./format.js";
import { state } from "./state.js";

// The colours of a chart's series, in order.
export const PALETTE = [
  "#1f6feb",
  "#c9a227",
  "#2da44e",
  "#d1242f",
  "#8250df",
  "#bc4c00",
  "#0a7f86",
  "#6e7781",
];

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

// The tooltip of an axis chart: the x value (a time when the axis is one, a day when time
// is "date"), then each series' marker, name and value as show writes it: markup of
// escaped values only (ECharts inserts tooltip strings as HTML).
export function axisTooltip(time, show = (v) => numFormat.format(v)) {
  return (items) => {
    const list = Array.isArray(items) ? items : [items];
    if (!list.length) return "";
    const at = time && list[0].axisValue ? new Date(list[0].axisValue).toISOString() : null;
    const head = esc(
      !time ? list[0].axisValueLabel : time === "date" ? at?.slice(0, 10) : fmtTime(at),
    );
    const lines = list.map((p) => {
      const v = Array.isArray(p.value) ? p.value[1] : p.value;
      const shown = v === null || v === undefined ? "null" : show(v);
      return `${p.marker}${esc(p.seriesName)}: <b>${esc(shown)}</b>`;
    });
    return [head, ...lines].join("<br>");
  };
}
