// The SQL editor: several tabs of statements, `:name` parameters with inputs, the result
// a page at a time (sortable, filterable) or as a chart, saved queries, the caller's
// history, and a link that opens the same statement with the same parameters
// (#/sql?sql=...&p.name=value; #/sql?query=ID opens a saved query).

import { ApiError, api, errorBox } from "../lib/api.js";
import { disposeCharts } from "../lib/charts.js";
import { clear, h, put, spinner } from "../lib/dom.js";
import { fmtInt, numFormat } from "../lib/format.js";
import { current, go, routeToken } from "../lib/nav.js";
import { resultGrid } from "../lib/result-grid.js";
import { parameterNames } from "../lib/sql-params.js";
import { app, state } from "../lib/state.js";
import { historyPanel, savedPanel, tablesPanel } from "./sql-panels.js";
import { renderOutput } from "./sql-result.js";

const TABS_KEY = "lakehouse.sql.tabs";
const DEFAULT_SQL = "SELECT *\nFROM gold.daily_summary\nORDER BY day\nLIMIT 100";

function loadTabs() {
  try {
    const saved = JSON.parse(localStorage.getItem(TABS_KEY) || "null");
    if (saved && Array.isArray(saved.tabs) && saved.tabs.length) return saved;
  } catch {
    // a damaged entry: start afresh
  }
  return { tabs: [{ title: "Query 1", sql: DEFAULT_SQL, params: {} }], active: 0 };
}

function storeTabs(tabs) {
  localStorage.setItem(TABS_KEY, JSON.stringify(tabs));
}

// "Query N" for a new tab, N the first number no tab has.
function freeTitle(tabs) {
  let n = tabs.tabs.length + 1;
  while (tabs.tabs.some((t) => t.title === `Query ${n}`)) n += 1;
  return `Query ${n}`;
}

export function openInEditor(sql) {
  go(`#/sql?sql=${encodeURIComponent(sql)}`);
}

// The address of a statement and its parameters' values.
export function shareUrl(sql, params) {
  const q = new URLSearchParams({ sql });
  for (const [k, v] of Object.entries(params || {})) if (v !== "" && v !== null) q.set(`p.${k}`, v);
  return `${location.origin}/#/sql?${q.toString()}`;
}

async function completionSchema() {
  if (state.schema && Date.now() - state.schema.at < 60_000) return state.schema.data;
  try {
    const data = await api("/query/schema");
    state.schema = { at: Date.now(), data };
    return data;
  } catch (err) {
    return { layers: [], tables: [], functions: [] };
  }
}

export async function viewSql(query = new URLSearchParams()) {
  const token = routeToken;
  document.title = "SQL · Lakehouse";
  const tabs = loadTabs();
  let runNow = false;
  if (query.has("sql") || query.has("query")) {
    let opened = { title: freeTitle(tabs), sql: query.get("sql") || "", params: {} };
    if (query.has("query")) {
      const saved = await api(`/queries/${encodeURIComponent(query.get("query"))}`);
      if (!current(token)) return;
      opened = {
        title: saved.name,
        sql: saved.sql,
        params: { ...saved.params },
        saved: saved.id,
        chart: saved.chart,
      };
    }
    for (const [k, v] of query.entries()) if (k.startsWith("p.")) opened.params[k.slice(2)] = v;
    const same = tabs.tabs.findIndex((t) => t.sql === opened.sql);
    if (same >= 0) {
      const title = opened.saved ? opened.title : tabs.tabs[same].title;
      tabs.tabs[same] = { ...tabs.tabs[same], ...opened, title };
      tabs.active = same;
    } else {
      tabs.tabs.push(opened);
      tabs.active = tabs.tabs.length - 1;
    }
    storeTabs(tabs);
    runNow = true;
  }
  const schema = await completionSchema();
  if (!current(token)) return;
  const { createEditor } = await import("../lib/sql-editor.js");
  if (!current(token)) return;

  const tab = () => tabs.tabs[tabs.active];
  const tabBar = h("div", { class: "tabs editor-tabs", role: "tablist", id: "editor-tabs" });
  const editorBox = h("div", { class: "editor-box" });
  const paramsBox = h("div", { class: "sql-params", id: "sql-params" });
  const limit = h(
    "select",
    { id: "sql-limit", "aria-label": "Row limit" },
    [100, 1000, 10000, 100000, 1000000].map((n) =>
      h("option", { value: n, selected: n === 1000 }, `${fmtInt(n)} rows`),
    ),
  );
  const runButton = h("button", { type: "button", id: "run-sql" }, "Run");
  const output = h("section", { id: "sql-output", "aria-live": "polite" });
  const saveBox = h("div", { id: "save-box", hidden: true });
  const shareBox = h("div", { id: "share-box", hidden: true });
  const side = h("aside", { class: "sql-tables", "aria-label": "Tables, saved queries, history" });

  let editor = null;
  const onChange = (text) => {
    tab().sql = text;
    storeTabs(tabs);
    drawParams();
  };
  function mountEditor() {
    if (editor) editor.destroy();
    editor = createEditor(editorBox, { doc: tab().sql, schema, onRun: run, onChange });
  }

  function drawParams() {
    const names = parameterNames(tab().sql);
    const values = tab().params || (tab().params = {});
    const shownNames = [...paramsBox.querySelectorAll("input")].map((i) => i.dataset.param);
    if (shownNames.join(",") === names.join(",")) return;
    put(
      clear(paramsBox),
      names.length ? h("span", { class: "muted small" }, "Parameters") : null,
      names.map((n) =>
        h(
          "label",
          { class: "param" },
          h("code", {}, `:${n}`),
          h("input", {
            type: "text",
            id: `param-${n}`,
            dataset: { param: n },
            value: values[n] ?? "",
            oninput: (e) => {
              values[n] = e.currentTarget.value;
              storeTabs(tabs);
            },
            onkeydown: (e) => {
              if (e.key === "Enter") run();
            },
          }),
        ),
      ),
    );
  }

  function drawTabs() {
    put(
      clear(tabBar),
      tabs.tabs.map((t, i) =>
        h(
          "span",
          { class: "editor-tab" },
          h(
            "button",
            {
              type: "button",
              role: "tab",
              "aria-selected": String(i === tabs.active),
              dataset: { tab: i },
              onclick: () => switchTo(i),
            },
            t.title,
          ),
          tabs.tabs.length > 1
            ? h(
                "button",
                {
                  type: "button",
                  class: "close-tab",
                  title: `Close ${t.title}`,
                  "aria-label": `Close ${t.title}`,
                  onclick: () => closeTab(i),
                },
                "×",
              )
            : null,
        ),
      ),
      h(
        "button",
        { type: "button", class: "new-tab", id: "new-tab", title: "New tab", onclick: newTab },
        "+",
      ),
    );
  }
  function switchTo(i) {
    tabs.active = i;
    storeTabs(tabs);
    drawTabs();
    mountEditor();
    clear(paramsBox);
    drawParams();
    clear(output);
  }
  function newTab() {
    tabs.tabs.push({ title: freeTitle(tabs), sql: "", params: {} });
    switchTo(tabs.tabs.length - 1);
    editor.focus();
  }
  function closeTab(i) {
    tabs.tabs.splice(i, 1);
    switchTo(Math.min(tabs.active, tabs.tabs.length - 1));
  }

  function paramValues(sql) {
    const values = {};
    for (const n of parameterNames(sql)) values[n] = (tab().params || {})[n] ?? "";
    return values;
  }

  async function run() {
    const { sql, from } = editor.runnable();
    if (!sql.trim()) return;
    const request = { sql, params: paramValues(sql), limit: Number(limit.value) };
    state.chartSpec = null;
    const savedChart = tab().chart && sql === tab().sql ? tab().chart : null;
    runButton.setAttribute("aria-busy", "true");
    runButton.disabled = true;
    disposeCharts();
    put(clear(output), spinner("Running…"));
    const done = () => {
      runButton.removeAttribute("aria-busy");
      runButton.disabled = false;
    };
    const grid = resultGrid(request, {
      onPage: (page) => {
        done();
        if (!current(token)) return;
        state.result = { request, page };
        if (!output.querySelector("#result-meta")) {
          renderOutput(output, grid, request, page, savedChart);
          if (savedChart) output.querySelector('[data-view="chart"]').click();
        } else updateMeta(page);
        historyPanel(historyBox, useEntry);
      },
      onError: (err) => {
        done();
        if (!current(token)) return;
        if (!output.querySelector("#result-meta")) {
          put(clear(output), errorBox(err, "Query failed"));
          if (err instanceof ApiError && err.position) {
            const where = `at line ${err.position.line}, column ${err.position.column}`;
            put(output.querySelector(".error-box"), h("p", { class: "error-hint", id: "error-at" }, where));
            editor.markError(err.message, err.position, from);
          }
          else if (err instanceof ApiError && err.status === 400) editor.markError(err.message, null, from);
        } else {
          output.querySelector("#result-table").prepend(errorBox(err, "Query failed"));
        }
        historyPanel(historyBox, useEntry);
      },
    });
  }

  function updateMeta(page) {
    const count = document.getElementById("row-count");
    if (count) count.textContent = `${fmtInt(page.total)} row${page.total === 1 ? "" : "s"}`;
    const ms = document.getElementById("elapsed");
    if (ms) ms.textContent = `${numFormat.format(page.elapsed_ms)} ms`;
  }

  function useEntry(entry) {
    tab().sql = entry.sql;
    tab().params = { ...(entry.params || {}) };
    if (entry.id && entry.name) tab().saved = entry.id;
    storeTabs(tabs);
    editor.setText(entry.sql);
    clear(paramsBox);
    drawParams();
    editor.focus();
  }

  function openSave() {
    const current_ = tab();
    const name = h("input", { type: "text", id: "save-name", value: current_.title.startsWith("Query ") ? "" : current_.title, placeholder: "Name", "aria-label": "Name" });
    const description = h("textarea", { id: "save-description", rows: 2, placeholder: "What it answers", "aria-label": "Description" });
    const message = h("span", { class: "muted small", id: "save-message" });
    put(
      clear(saveBox),
      h(
        "div",
        { class: "save-form" },
        name,
        description,
        h(
          "button",
          {
            type: "button",
            id: "save-confirm",
            onclick: async () => {
              const sql = editor.text();
              try {
                const chart = state.chartSpec || null;
                const saved = await api("/queries", {
                  json: { name: name.value, description: description.value, sql, params: paramValues(sql), chart },
                });
                current_.title = saved.name;
                current_.saved = saved.id;
                current_.chart = saved.chart;
                storeTabs(tabs);
                drawTabs();
                message.textContent = `Saved as “${saved.name}”.`;
                savedPanel(savedBox, useEntry);
                saveBox.hidden = true;
              } catch (err) {
                put(clear(message), errorBox(err, "Not saved"));
              }
            },
          },
          "Save",
        ),
        message,
      ),
    );
    saveBox.hidden = false;
    name.focus();
  }

  function openShare() {
    const sql = editor.text();
    const url = shareUrl(sql, paramValues(sql));
    const input = h("input", { type: "text", id: "share-url", readonly: true, value: url, "aria-label": "Link to this query" });
    put(clear(shareBox), h("div", { class: "share-form" }, input, h("span", { class: "muted small" }, "Anyone who may read its tables can open it.")));
    shareBox.hidden = false;
    input.select();
    navigator.clipboard?.writeText(url).catch(() => {});
  }

  const tablesBox = h("div", { id: "tables-panel" });
  const savedBox = h("div", { id: "saved-panel" });
  const historyBox = h("div", { id: "history-panel" });
  put(side, tablesBox, savedBox, historyBox);

  put(
    app,
    h("div", { class: "page-head" }, h("h1", {}, "SQL")),
    h(
      "div",
      { class: "sql-layout" },
      h(
        "div",
        { class: "sql-main" },
        tabBar,
        editorBox,
        paramsBox,
        h(
          "div",
          { class: "editor-bar" },
          runButton,
          limit,
          h("button", { type: "button", class: "secondary outline", id: "format-sql", onclick: () => editor.format() }, "Format"),
          h("button", { type: "button", class: "secondary outline", id: "save-sql", onclick: openSave }, "Save"),
          h("button", { type: "button", class: "secondary outline", id: "share-sql", onclick: openShare }, "Share"),
          h(
            "span",
            { class: "muted small" },
            h("kbd", {}, "Ctrl"),
            "+",
            h("kbd", {}, "Enter"),
            " runs the selection (or all) · ",
            h("kbd", {}, "Ctrl"),
            "+",
            h("kbd", {}, "Space"),
            " completes",
          ),
        ),
        saveBox,
        shareBox,
        output,
      ),
      side,
    ),
  );
  runButton.addEventListener("click", run);
  drawTabs();
  mountEditor();
  drawParams();
  editor.focus();
  tablesPanel(tablesBox, schema, (name) => editor.insert(name));
  savedPanel(savedBox, useEntry);
  historyPanel(historyBox, useEntry);
  if (runNow) await run();
}
