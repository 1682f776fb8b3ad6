// The SQL editor: a statement, its result as a table or chart, and its downloads.

import { api, errorBox } from "../lib/api.js";
import { badge, layerBadge } from "../lib/badges.js";
import { disposeCharts } from "../lib/charts.js";
import { clear, h, put, spinner } from "../lib/dom.js";
import { fmtInt, numFormat } from "../lib/format.js";
import { dataGrid } from "../lib/grid.js";
import { LAYERS } from "../lib/layers.js";
import { current, go, routeToken } from "../lib/nav.js";
import { app, state } from "../lib/state.js";
import { chartView } from "./sql-chart.js";

const SQL_KEY = "lakehouse.sql";

export function openInEditor(sql) {
  state.sql = sql;
  state.runOnOpen = true;
  sessionStorage.setItem(SQL_KEY, sql);
  go("#/sql");
}

export async function viewSql() {
  const token = routeToken;
  document.title = "SQL · Lakehouse";
  const saved =
    state.sql ??
    sessionStorage.getItem(SQL_KEY) ??
    "SELECT *\nFROM gold.daily_summary\nORDER BY day\nLIMIT 100";
  const editor = h("textarea", {
    id: "sql-editor",
    class: "sql",
    spellcheck: "false",
    autocapitalize: "off",
    autocomplete: "off",
    "aria-label": "SQL query",
    rows: 9,
  });
  editor.value = saved;
  const limit = h(
    "select",
    { id: "sql-limit", "aria-label": "Row limit" },
    [100, 1000, 10000, 100000].map((n) =>
      h("option", { value: n, selected: n === 1000 }, `${fmtInt(n)} rows`),
    ),
  );
  const runButton = h("button", { type: "button", id: "run-sql" }, "Run");
  const output = h("section", { id: "sql-output", "aria-live": "polite" });
  const sidebar = h("aside", { class: "sql-tables", "aria-label": "Tables" }, spinner());

  const run = async () => {
    const sql = editor.value.trim();
    if (!sql) return;
    state.sql = editor.value;
    sessionStorage.setItem(SQL_KEY, editor.value);
    runButton.setAttribute("aria-busy", "true");
    runButton.disabled = true;
    disposeCharts();
    put(clear(output), spinner("Running…"));
    try {
      const body = { sql, limit: Number(limit.value), format: "json" };
      const result = await api("/query", { json: body });
      if (!current(token)) return;
      state.result = { ...result, request: body };
      renderResult(output, state.result);
    } catch (err) {
      if (current(token)) put(clear(output), errorBox(err, "Query failed"));
    } finally {
      runButton.removeAttribute("aria-busy");
      runButton.disabled = false;
    }
  };
  runButton.addEventListener("click", run);
  editor.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      run();
    }
  });

  put(
    app,
    h("div", { class: "page-head" }, h("h1", {}, "SQL")),
    h(
      "div",
      { class: "sql-layout" },
      h(
        "div",
        { class: "sql-main" },
        editor,
        h(
          "div",
          { class: "editor-bar" },
          runButton,
          limit,
          h(
            "span",
            { class: "muted small" },
            h("kbd", {}, "Ctrl"),
            "+",
            h("kbd", {}, "Enter"),
            " runs · read-only: one SELECT over ",
            h("code", {}, "layer.table"),
            " names",
          ),
        ),
        output,
      ),
      sidebar,
    ),
  );
  editor.focus();
  loadSidebar(sidebar, editor, token);
  if (state.runOnOpen) {
    state.runOnOpen = false;
    await run();
  }
}

async function loadSidebar(el, editor, token) {
  try {
    const data = await api("/tables");
    if (!current(token)) return;
    put(
      clear(el),
      h("h3", {}, "Tables"),
      h("p", { class: "muted small" }, "Click to insert a name."),
    );
    for (const layer of LAYERS) {
      const tables = data.tables.filter((t) => t.layer === layer);
      if (!tables.length) continue;
      put(
        el,
        h(
          "details",
          { open: layer === "gold" },
          h("summary", {}, layerBadge(layer), ` ${tables.length}`),
          h(
            "ul",
            {},
            tables.map((t) =>
              h(
                "li",
                {},
                h(
                  "button",
                  {
                    type: "button",
                    class: "insert-name",
                    title: `Insert ${t.name}`,
                    onclick: () => insertAtCursor(editor, t.name),
                  },
                  t.name.split(".").slice(1).join("."),
                ),
              ),
            ),
          ),
        ),
      );
    }
  } catch (err) {
    if (current(token)) put(clear(el), errorBox(err));
  }
}

function insertAtCursor(editor, text) {
  const start = editor.selectionStart;
  const end = editor.selectionEnd;
  editor.setRangeText(text, start, end, "end");
  editor.focus();
}

function renderResult(output, result) {
  const meta = h(
    "div",
    { class: "result-meta", id: "result-meta" },
    h(
      "strong",
      { id: "row-count" },
      `${fmtInt(result.row_count)} row${result.row_count === 1 ? "" : "s"}`,
    ),
    result.truncated ? badge("truncated", "warn") : null,
    h("span", { class: "muted" }, `${numFormat.format(result.elapsed_ms)} ms`),
    result.cached ? badge("cached", "neutral") : null,
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
            onclick: (e) => download(fmt, e.currentTarget),
          },
          fmt === "csv" ? "CSV" : fmt[0].toUpperCase() + fmt.slice(1),
        ),
      ),
    ),
  );
  const views = h(
    "div",
    { class: "tabs", role: "tablist" },
    h(
      "button",
      { type: "button", role: "tab", "aria-selected": "true", dataset: { view: "table" } },
      "Table",
    ),
    h(
      "button",
      { type: "button", role: "tab", "aria-selected": "false", dataset: { view: "chart" } },
      "Chart",
    ),
  );
  const tablePanel = h(
    "div",
    { id: "result-table" },
    dataGrid(result.columns, result.rows, result.types),
  );
  const chartPanel = h("div", { id: "result-chart", hidden: true });
  let chartDrawn = false;
  views.addEventListener("click", (event) => {
    const button = event.target.closest("[data-view]");
    if (!button) return;
    for (const b of views.querySelectorAll("[data-view]"))
      b.setAttribute("aria-selected", String(b === button));
    const chart = button.dataset.view === "chart";
    tablePanel.hidden = chart;
    chartPanel.hidden = !chart;
    if (chart && !chartDrawn) {
      chartDrawn = true;
      chartView(chartPanel, result);
    } else if (chart) {
      for (const c of state.charts) c.resize();
    }
  });
  put(clear(output), meta, views, tablePanel, chartPanel);
}

async function download(format, button) {
  const request = state.result && state.result.request;
  if (!request) return;
  button.setAttribute("aria-busy", "true");
  try {
    const response = await api("/query", { json: { ...request, format }, raw: true });
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
