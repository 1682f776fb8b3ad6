// Health: the warehouse's totals, its layers, the quality of each table, the health report
// (health-report.js: each table's state and reasons, the alerts), the latest runs.

import { api } from "../lib/api.js";
import { layerBadge, statusBadge } from "../lib/badges.js";
import { makeChart } from "../lib/charts.js";
import { h, link, put } from "../lib/dom.js";
import { ago, fmtBytes, fmtInt, fmtTime } from "../lib/format.js";
import { recordTable } from "../lib/grid.js";
import { LAYERS, LAYER_COLORS } from "../lib/layers.js";
import { current, routeToken } from "../lib/nav.js";
import { app } from "../lib/state.js";
import { loadReport, reportBlocks } from "./health-report.js";
import { runsTable } from "./runs.js";

export async function viewHealth() {
  const token = routeToken;
  document.title = "Health · Lakehouse";
  const [health, catalog, quality, runs, report] = await Promise.all([
    api("/health"),
    api("/catalog"),
    api("/quality").catch(() => ({ tables: [] })),
    api("/runs?limit=5").catch(() => ({ runs: [] })),
    loadReport(),
  ]);
  if (!current(token)) return;
  const layers = LAYERS.filter((l) => catalog.layers[l]).concat(
    Object.keys(catalog.layers).filter((l) => !LAYERS.includes(l)),
  );
  const chartEl = h("div", { class: "chart small-chart", id: "layer-chart" });
  put(
    app,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Health"),
      h("div", { class: "head-tools", id: "health-status" }, statusBadge(health.status)),
    ),
    h(
      "div",
      { class: "tiles" },
      tile("Tables", fmtInt(catalog.tables)),
      tile("Rows", fmtInt(catalog.rows)),
      tile("Size", fmtBytes(catalog.bytes)),
      tile("Version", health.version),
    ),
    h("p", { class: "muted small" }, "Warehouse ", h("span", { class: "mono" }, health.warehouse)),
    h("h2", {}, "Layers"),
    h(
      "div",
      { class: "two-col" },
      recordTable(
        layers.map((l) => ({ layer: l, ...catalog.layers[l] })),
        [
          { label: "Layer", render: (r) => layerBadge(r.layer) },
          { key: "tables", label: "Tables", num: true },
          { key: "rows", label: "Rows", num: true },
          { label: "Size", num: true, render: (r) => fmtBytes(r.bytes) },
          { key: "files", label: "Files", num: true },
          {
            label: "Last update",
            render: (r) => h("span", { title: fmtTime(r.last_update) }, ago(r.last_update)),
          },
        ],
        { id: "layers-table" },
      ),
      chartEl,
    ),
  );
  const chart = makeChart(chartEl);
  if (chart) {
    chart.setOption({
      animation: false,
      title: {
        text: "Rows per layer",
        left: "center",
        textStyle: { fontSize: 13, fontWeight: 500 },
      },
      tooltip: { trigger: "axis" },
      grid: { left: 10, right: 10, top: 36, bottom: 10, containLabel: true },
      xAxis: { type: "category", data: layers },
      yAxis: { type: "value" },
      series: [
        {
          type: "bar",
          data: layers.map((l) => ({
            value: catalog.layers[l].rows,
            itemStyle: { color: LAYER_COLORS[l] || "#888" },
          })),
        },
      ],
    });
  }
  if (quality.tables && quality.tables.length) {
    put(
      app,
      h("h2", {}, "Quality"),
      recordTable(
        quality.tables,
        [
          {
            label: "Table",
            render: (r) =>
              link(`#/tables/${encodeURIComponent(r.table)}/quality`, r.table, { class: "mono" }),
          },
          {
            label: "Checks passed",
            num: true,
            render: (r) => `${fmtInt(r.passed)} / ${fmtInt(r.checks)}`,
          },
          {
            label: "Warnings",
            num: true,
            render: (r) => fmtInt(r.warnings ?? 0),
          },
          {
            label: "Result",
            render: (r) =>
              statusBadge(r.status || (r.passed === r.checks ? "passed" : "failed")),
          },
          { key: "failed_rows", label: "Failed rows", num: true },
          {
            label: "Checked",
            render: (r) => h("span", { title: fmtTime(r.checked_at) }, ago(r.checked_at)),
          },
        ],
        { id: "quality-overview" },
      ),
    );
  }
  put(app, ...reportBlocks(report));
  if (runs.runs && runs.runs.length) put(app, h("h2", {}, "Latest runs"), runsTable(runs.runs));
}

function tile(label, value) {
  return h(
    "div",
    { class: "tile" },
    h("div", { class: "tile-value" }, value),
    h("div", { class: "tile-label" }, label),
  );
}
