// A statement's result under the editor: its figures (rows, time, cached, truncated),
// the downloads, and the table (a page at a time) or the chart.

import { api, errorBox } from "../lib/api.js";
import { badge } from "../lib/badges.js";
import { disposeCharts } from "../lib/charts.js";
import { clear, h, put, spinner } from "../lib/dom.js";
import { fmtInt, numFormat } from "../lib/format.js";
import { chartView } from "./sql-chart.js";

export function renderOutput(output, grid, request, page, savedChart = null) {
  const meta = h(
    "div",
    { class: "result-meta", id: "result-meta" },
    h("strong", { id: "row-count" }, `${fmtInt(page.total)} row${page.total === 1 ? "" : "s"}`),
    page.truncated ? badge("truncated", "warn") : null,
    h("span", { class: "muted", id: "elapsed" }, `${numFormat.format(page.elapsed_ms)} ms`),
    page.cached ? badge("cached", "neutral") : null,
    h(
      "span",
      { class: "downloads" },
      h("span", { class: "muted small" }, "Download"),
      ["csv", "parquet", "arrow"].map((fmt) =>
        h(
          "button",
          {
            type: "button",
            class: "secondary outline small-button",
            dataset: { format: fmt },
            onclick: (e) => download(request, fmt, e.currentTarget),
          },
          fmt === "csv" ? "CSV" : fmt[0].toUpperCase() + fmt.slice(1),
        ),
      ),
    ),
  );
  const views = h(
    "div",
    { class: "tabs", role: "tablist" },
    h("button", { type: "button", role: "tab", "aria-selected": "true", dataset: { view: "table" } }, "Table"),
    h("button", { type: "button", role: "tab", "aria-selected": "false", dataset: { view: "chart" } }, "Chart"),
  );
  const tablePanel = h("div", { id: "result-table-panel" }, grid.element);
  const chartPanel = h("div", { id: "result-chart", hidden: true });
  views.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-view]");
    if (!button) return;
    for (const b of views.querySelectorAll("[data-view]"))
      b.setAttribute("aria-selected", String(b === button));
    const chart = button.dataset.view === "chart";
    tablePanel.hidden = chart;
    chartPanel.hidden = !chart;
    if (chart) {
      disposeCharts();
      put(clear(chartPanel), spinner());
      try {
        const rows = await api("/query/page", { json: { ...request, offset: 0, size: 5000 } });
        clear(chartPanel);
        chartView(chartPanel, { ...rows, row_count: rows.total, sql: request.sql }, savedChart);
      } catch (err) {
        put(clear(chartPanel), errorBox(err, "Chart failed"));
      }
    }
  });
  put(clear(output), meta, views, tablePanel, chartPanel);
}

async function download(request, format, button) {
  button.setAttribute("aria-busy", "true");
  try {
    const body = { sql: request.sql, params: request.params, limit: request.limit, format };
    const response = await api("/query", { json: body, raw: true });
    const blob = await response.blob();
    const disposition = response.headers.get("Content-Disposition") || "";
    const m = disposition.match(/filename="?([^";]+)"?/);
    const a = h("a", { href: URL.createObjectURL(blob), download: m ? m[1] : `result.${format}` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (err) {
    const output = document.getElementById("sql-output");
    if (output) output.prepend(errorBox(err, "Download failed"));
  } finally {
    button.removeAttribute("aria-busy");
  }
}
