// The chart of a query result: bar, line, area, scatter or pie; the x axis and the
// series chosen from its columns, each series on the left or the right y axis (a 0-1
// rate beside counts), series split by the values of a column (a pivot), stacked.

import { PALETTE, axisTooltip, esc, makeChart } from "../lib/charts.js";
import { api, errorBox } from "../lib/api.js";
import { clear, h, put } from "../lib/dom.js";
import { numFormat } from "../lib/format.js";
import { state } from "../lib/state.js";
import { isNumericType, isTemporalType, isTextType } from "../lib/types.js";

const MAX_POINTS = 5000;
const MAX_PIVOT = 12; // series made from a column's values

function chartDefaults(result) {
  const types = result.types || [];
  const x = types.findIndex((t) => isTextType(t) || isTemporalType(t));
  const numeric = types.map((t, i) => i).filter((i) => isNumericType(types[i]) && i !== x);
  // Identifiers are numbers but rarely worth a series of their own.
  const measures = numeric.filter((i) => !/(^id$|_id$|^version)/i.test(result.columns[i]));
  return { x, series: (measures.length ? measures : numeric).slice(0, 8) };
}

const number = (v) => (v === null || v === undefined ? null : Number(v));

// `spec` (a saved query's chart: type, x, by, stacked, series with their axes) sets the
// controls instead of the defaults.
export function chartView(panel, result, spec = null) {
  const defaults = chartDefaults(result);
  if (!defaults.series.length) {
    put(panel, h("p", { class: "muted", id: "chart-empty" }, "No numeric column to chart."));
    return;
  }
  const kind = h(
    "select",
    { id: "chart-type", "aria-label": "Chart type" },
    ["bar", "line", "area", "scatter", "pie"].map((k) =>
      h("option", { value: k }, k[0].toUpperCase() + k.slice(1)),
    ),
  );
  const temporal = defaults.x >= 0 && isTemporalType(result.types[defaults.x]);
  kind.value = temporal ? "line" : "bar";
  const xSelect = h(
    "select",
    { id: "chart-x", "aria-label": "X axis" },
    h("option", { value: -1 }, "(row number)"),
    result.columns.map((c, i) => h("option", { value: i, selected: i === defaults.x }, c)),
  );
  const bySelect = h(
    "select",
    { id: "chart-by", "aria-label": "Series by" },
    h("option", { value: -1 }, "(none)"),
    result.columns.map((c, i) =>
      isNumericType(result.types[i]) ? null : h("option", { value: i }, c),
    ),
  );
  const stacked = h("input", { type: "checkbox", id: "chart-stacked" });
  const choices = result.columns
    .map((c, i) => [c, i])
    .filter(([, i]) => isNumericType(result.types[i]))
    .map(([c, i]) => {
      const box = h("input", { type: "checkbox", value: i, checked: defaults.series.includes(i) });
      const axis = h(
        "select",
        { class: "series-axis", "aria-label": `Axis of ${c}`, dataset: { column: c } },
        h("option", { value: "0" }, "left"),
        h("option", { value: "1" }, "right"),
      );
      return { i, box, axis, el: h("span", { class: "series-choice" }, h("label", {}, box, c), axis) };
    });
  const canvas = h("div", { class: "chart", id: "chart-canvas" });
  const snippet = h("pre", { id: "panel-snippet", class: "snippet", hidden: true });
  const adder = h("div", { id: "dashboard-adder" });
  const snippetButton = h(
    "button",
    {
      type: "button",
      class: "secondary outline small-button",
      id: "panel-snippet-button",
      onclick: () => {
        snippet.textContent = panelSnippet(result.sql || "", state.chartSpec);
        snippet.hidden = false;
        if (state.me && state.me.can && state.me.can.run_pipeline)
          addToDashboard(adder, result.sql || "");
      },
    },
    "Dashboard panel",
  );
  put(
    panel,
    h(
      "div",
      { class: "chart-controls" },
      h("label", {}, "Type ", kind),
      h("label", {}, "X axis ", xSelect),
      h("label", {}, "Series by ", bySelect),
      h("label", {}, stacked, " Stacked"),
      h(
        "fieldset",
        { class: "series" },
        h("legend", { class: "small muted" }, "Series (y axis)"),
        choices.map((c) => c.el),
      ),
      snippetButton,
    ),
    canvas,
    snippet,
    adder,
  );
  if (spec) applySpec(spec, result, { kind, xSelect, bySelect, stacked, choices });
  const chart = makeChart(canvas);
  if (!chart) return;
  const rows = result.rows.slice(0, MAX_POINTS);

  const draw = () => {
    const xi = Number(xSelect.value);
    const by = Number(bySelect.value);
    const chosen = choices.filter((c) => c.box.checked && c.i !== xi);
    state.chartSpec = {
      type: kind.value,
      x: xi >= 0 ? result.columns[xi] : null,
      by: by >= 0 ? result.columns[by] : null,
      stacked: stacked.checked,
      series: chosen.map((c) => ({ column: result.columns[c.i], axis: Number(c.axis.value) })),
    };
    if (kind.value === "pie") return drawPie(chart, result, rows, xi, chosen);
    const time =
      xi >= 0 && isTemporalType(result.types[xi]) && !/^time(32|64)/.test(result.types[xi]);
    const type = kind.value === "area" ? "line" : kind.value;
    const xKey = (r, n) => (xi >= 0 ? r[xi] : n + 1);
    let xs = [];
    const seenX = new Set();
    rows.forEach((r, n) => {
      const k = xKey(r, n);
      if (k === null || seenX.has(k)) return;
      seenX.add(k);
      xs.push(k);
    });
    if (time) xs.sort((a, b) => Date.parse(a) - Date.parse(b));
    // One series per chosen column, or per (value of `by`, column).
    const groups = [];
    if (by >= 0) {
      const values = [];
      for (const r of rows) if (!values.includes(r[by]) && values.length < MAX_PIVOT) values.push(r[by]);
      for (const v of values)
        for (const c of chosen)
          groups.push({
            name: chosen.length > 1 ? `${v ?? "null"} · ${result.columns[c.i]}` : String(v ?? "null"),
            col: c.i,
            axis: Number(c.axis.value),
            keep: (r) => r[by] === v,
          });
    } else {
      for (const c of chosen)
        groups.push({ name: result.columns[c.i], col: c.i, axis: Number(c.axis.value), keep: () => true });
    }
    const series = groups.map((g) => {
      const byX = new Map();
      rows.forEach((r, n) => {
        if (g.keep(r)) byX.set(xKey(r, n), number(r[g.col]));
      });
      const data = time
        ? xs.filter((x) => byX.has(x)).map((x) => [x, byX.get(x)])
        : xs.map((x) => (byX.has(x) ? byX.get(x) : null));
      return {
        name: g.name,
        type,
        data,
        yAxisIndex: g.axis,
        stack: stacked.checked ? `stack-${g.axis}` : undefined,
        areaStyle: kind.value === "area" ? { opacity: 0.35 } : undefined,
        showSymbol: type === "scatter" || rows.length <= 60,
        symbolSize: type === "scatter" ? 7 : undefined,
        connectNulls: false,
      };
    });
    const right = series.some((s) => s.yAxisIndex === 1);
    const yAxis = [
      { type: "value", scale: type !== "bar" && !stacked.checked, name: axisName(groups, 0) },
    ];
    if (right)
      yAxis.push({
        type: "value",
        scale: type !== "bar" && !stacked.checked,
        name: axisName(groups, 1),
        position: "right",
        splitLine: { show: false },
      });
    const xAxis = time
      ? { type: "time", name: result.columns[xi], nameLocation: "middle", nameGap: 32 }
      : {
          type: "category",
          data: xs.map((x) => String(x)),
          name: xi >= 0 ? result.columns[xi] : "row",
          nameLocation: "middle",
          nameGap: 32,
          axisLabel: { hideOverlap: true },
        };
    chart.setOption(
      {
        animation: false,
        color: PALETTE,
        tooltip: { trigger: "axis", formatter: axisTooltip(time) },
        legend: { top: 4, type: "scroll" },
        grid: { left: 16, right: 24, top: 48, bottom: xs.length > 60 ? 64 : 40, containLabel: true },
        xAxis,
        yAxis,
        dataZoom:
          xs.length > 60 ? [{ type: "inside" }, { type: "slider", height: 18, bottom: 8 }] : [],
        series,
      },
      { notMerge: true },
    );
  };
  for (const el of [kind, xSelect, bySelect, stacked]) el.addEventListener("change", draw);
  for (const c of choices) {
    c.box.addEventListener("change", draw);
    c.axis.addEventListener("change", draw);
  }
  draw();
  if (result.rows.length > MAX_POINTS || result.row_count > result.rows.length)
    put(panel, h("p", { class: "muted small" }, `The chart shows the first ${numFormat.format(rows.length)} rows.`));
}

function axisName(groups, axis) {
  const names = [...new Set(groups.filter((g) => g.axis === axis).map((g) => g.name))];
  return names.length === 1 ? names[0] : "";
}

function drawPie(chart, result, rows, xi, chosen) {
  const c = chosen[0];
  if (!c) return;
  const data = rows.map((r, n) => ({
    name: String(xi >= 0 ? (r[xi] ?? "null") : n + 1),
    value: number(r[c.i]),
  }));
  chart.setOption(
    {
      animation: false,
      color: PALETTE,
      tooltip: {
        trigger: "item",
        formatter: (p) => `${esc(p.name)}: <b>${esc(numFormat.format(p.value))}</b> (${esc(p.percent)}%)`,
      },
      legend: { top: 4, type: "scroll" },
      series: [{ name: result.columns[c.i], type: "pie", radius: ["30%", "65%"], top: 32, data }],
    },
    { notMerge: true },
  );
}

// The chart as a panel of a dashboard file (docs/DASHBOARDS.md). The editor's :name
// parameters are a dashboard's $name variables; scatter is drawn as a line there.
export function panelOf(sql, spec) {
  const title = spec.series.map((s) => s.column).join(" and ") || "Chart";
  const panel = {
    title,
    kind: { scatter: "line" }[spec.type] || spec.type,
    sql: sql.replace(/(^|[^:]):([A-Za-z_][A-Za-z0-9_]*)/g, "$1$$$2").trim(),
    y: spec.series.map((s) => s.column),
  };
  if (spec.x) panel.x = spec.x;
  if (spec.by) panel.series = spec.by;
  return panel;
}

export function panelSnippet(sql, spec) {
  if (!spec) return "";
  const panel = panelOf(sql, spec);
  const id = panel.title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "chart";
  const lines = [`- id: ${id}`, `  title: ${JSON.stringify(panel.title)}`, `  kind: ${panel.kind}`];
  if (panel.x) lines.push(`  x: ${JSON.stringify(panel.x)}`);
  lines.push(`  y: [${panel.y.map((c) => JSON.stringify(c)).join(", ")}]`);
  if (panel.series) lines.push(`  series: ${JSON.stringify(panel.series)}`);
  if (spec.series.some((s) => s.axis === 1))
    lines.push("  # a dashboard panel has one y axis: the right-axis series share it");
  lines.push("  sql: |");
  for (const line of panel.sql.split("\n")) lines.push(`    ${line}`);
  return `${lines.join("\n")}\n`;
}

// Add the chart to a dashboard file of the server (for roles that run pipelines).
async function addToDashboard(el, sql) {
  let listed;
  try {
    listed = await api("/dashboards");
  } catch (err) {
    put(el, errorBox(err, "No dashboards"));
    return;
  }
  const choice = h(
    "select",
    { id: "dashboard-choice", "aria-label": "Dashboard" },
    listed.dashboards.map((d) => h("option", { value: d.name }, d.title)),
  );
  const said = h("span", { class: "small", id: "dashboard-added", "aria-live": "polite" });
  const add = h(
    "button",
    {
      type: "button",
      class: "secondary outline small-button",
      id: "dashboard-add",
      onclick: async () => {
        try {
          const done = await api(`/dashboards/${encodeURIComponent(choice.value)}/panels`, {
            json: panelOf(sql, state.chartSpec),
          });
          put(
            clear(said),
            `Added as ${done.panel} to `,
            h("a", { href: `#/dashboards/${encodeURIComponent(done.dashboard)}` }, done.dashboard),
            ".",
          );
        } catch (err) {
          put(clear(said), errorBox(err, "Not added"));
        }
      },
    },
    "Add to dashboard",
  );
  put(clear(el), h("div", { class: "chart-controls" }, choice, add, said));
}

function applySpec(spec, result, { kind, xSelect, bySelect, stacked, choices }) {
  const at = (name) => (name ? result.columns.indexOf(name) : -1);
  if (spec.type) kind.value = spec.type;
  xSelect.value = String(at(spec.x));
  if (spec.by && at(spec.by) >= 0) bySelect.value = String(at(spec.by));
  stacked.checked = Boolean(spec.stacked);
  if (Array.isArray(spec.series) && spec.series.length) {
    const axes = new Map(spec.series.map((s) => [s.column, String(s.axis || 0)]));
    for (const c of choices) {
      const name = result.columns[c.i];
      c.box.checked = axes.has(name);
      if (axes.has(name)) c.axis.value = axes.get(name);
    }
  }
}
