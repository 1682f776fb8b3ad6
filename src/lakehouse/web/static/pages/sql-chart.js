// The chart of a query result: type, x axis and series chosen from its columns.

import { PALETTE, axisTooltip, makeChart } from "../lib/charts.js";
import { h, put } from "../lib/dom.js";
import { isNumericType, isTemporalType, isTextType } from "../lib/types.js";

function chartDefaults(result) {
  const types = result.types || [];
  let x = types.findIndex((t) => isTextType(t) || isTemporalType(t));
  const numeric = types.map((t, i) => i).filter((i) => isNumericType(types[i]) && i !== x);
  // Identifiers are numbers but rarely worth a series of their own.
  const measures = numeric.filter((i) => !/(^id$|_id$|^version)/i.test(result.columns[i]));
  return { x, series: (measures.length ? measures : numeric).slice(0, 8) };
}

export function chartView(panel, result) {
  const defaults = chartDefaults(result);
  if (!defaults.series.length) {
    put(panel, h("p", { class: "muted", id: "chart-empty" }, "No numeric column to chart."));
    return;
  }
  const kind = h(
    "select",
    { id: "chart-type", "aria-label": "Chart type" },
    h("option", { value: "bar" }, "Bar"),
    h("option", { value: "line" }, "Line"),
  );
  const temporal = defaults.x >= 0 && isTemporalType(result.types[defaults.x]);
  kind.value = temporal ? "line" : "bar";
  const xSelect = h(
    "select",
    { id: "chart-x", "aria-label": "X axis" },
    h("option", { value: -1 }, "(row number)"),
    result.columns.map((c, i) => h("option", { value: i, selected: i === defaults.x }, c)),
  );
  const boxes = result.columns
    .map((c, i) => [c, i])
    .filter(([, i]) => isNumericType(result.types[i]))
    .map(([c, i]) =>
      h(
        "label",
        { class: "series-choice" },
        h("input", { type: "checkbox", value: i, checked: defaults.series.includes(i) }),
        c,
      ),
    );
  const canvas = h("div", { class: "chart", id: "chart-canvas" });
  put(
    panel,
    h(
      "div",
      { class: "chart-controls" },
      h("label", {}, "Type ", kind),
      h("label", {}, "X axis ", xSelect),
      h("fieldset", { class: "series" }, h("legend", { class: "small muted" }, "Series"), boxes),
    ),
    canvas,
  );
  const chart = makeChart(canvas);
  if (!chart) return;
  const draw = () => {
    const xi = Number(xSelect.value);
    const chosen = boxes
      .map((b) => b.querySelector("input"))
      .filter((i) => i.checked)
      .map((i) => Number(i.value))
      .filter((i) => i !== xi);
    const rows = result.rows.slice(0, 5000);
    const time =
      xi >= 0 && isTemporalType(result.types[xi]) && !/^time(32|64)/.test(result.types[xi]);
    const number = (v) => (v === null || v === undefined ? null : Number(v));
    let xAxis;
    let points;
    if (time) {
      // Dates and timestamps on a time axis, in time order.
      const sorted = rows
        .filter((r) => r[xi] !== null)
        .sort((a, b) => Date.parse(a[xi]) - Date.parse(b[xi]));
      xAxis = { type: "time", name: result.columns[xi], nameLocation: "middle", nameGap: 32 };
      points = (i) => sorted.map((r) => [r[xi], number(r[i])]);
    } else {
      const labels = rows.map((r, n) => (xi >= 0 ? String(r[xi] ?? "null") : String(n + 1)));
      xAxis = {
        type: "category",
        data: labels,
        name: xi >= 0 ? result.columns[xi] : "row",
        nameLocation: "middle",
        nameGap: 32,
        axisLabel: { hideOverlap: true },
      };
      points = (i) => rows.map((r) => number(r[i]));
    }
    chart.setOption(
      {
        animation: false,
        color: PALETTE,
        tooltip: { trigger: "axis", formatter: axisTooltip(time) },
        legend: { top: 4, type: "scroll" },
        grid: {
          left: 16,
          right: 24,
          top: 40,
          bottom: rows.length > 60 ? 64 : 40,
          containLabel: true,
        },
        xAxis,
        yAxis: { type: "value", scale: kind.value === "line" },
        dataZoom:
          rows.length > 60 ? [{ type: "inside" }, { type: "slider", height: 18, bottom: 8 }] : [],
        series: chosen.map((i) => ({
          name: result.columns[i],
          type: kind.value,
          data: points(i),
          showSymbol: rows.length <= 60,
          connectNulls: false,
        })),
      },
      { notMerge: true },
    );
  };
  kind.addEventListener("change", draw);
  xSelect.addEventListener("change", draw);
  for (const b of boxes) b.addEventListener("change", draw);
  draw();
  if (result.rows.length > 5000)
    put(panel, h("p", { class: "muted small" }, "The chart shows the first 5,000 rows."));
}
