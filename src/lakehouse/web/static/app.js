// The Lakehouse web UI: one page, hash routes, plain DOM. Every value from the API goes
// into the page as text (textContent, attributes), never as markup.

const LAYERS = ["bronze", "silver", "gold", "system", "realtime"];
const LAYER_COLORS = {
  bronze: "#b5651d",
  silver: "#7d8a96",
  gold: "#c9a227",
  system: "#6f42c1",
  realtime: "#1f6feb",
};
const TABLE_TABS = ["schema", "preview", "history", "quality", "lineage"];
const ROW_DISPLAY_LIMIT = 1000;
const SQL_KEY = "lakehouse.sql";

const app = document.getElementById("app");
const state = { me: null, sql: null, result: null, charts: [] };

// ---------------------------------------------------------------- DOM helpers

function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Element.append with the helper's rules: null, undefined and false add nothing.
function put(el, ...children) {
  return append(el, children);
}

function clear(el) {
  el.replaceChildren();
  return el;
}

function link(href, text, props = {}) {
  return h("a", { href, ...props }, text);
}

function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}`.trim() }, text);
}

function layerBadge(layer) {
  const el = badge(layer || "?", "layer");
  el.style.setProperty("--layer-color", LAYER_COLORS[layer] || "#888");
  return el;
}

function statusBadge(status) {
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

// A check's result: passed, warning (a warn check found rows: kept and counted) or failed.
function checkStatus(r) {
  if (r.status) return r.status;
  if (r.passed) return "passed";
  return r.action === "warn" ? "warning" : "failed";
}

function checksSummary(results) {
  const count = (s) => results.filter((r) => checkStatus(r) === s).length;
  const parts = [`${count("passed")} of ${results.length} passed`];
  if (count("warning")) parts.push(`${count("warning")} with warnings`);
  if (count("failed")) parts.push(`${count("failed")} failed`);
  return parts.join(", ");
}

// The failing rows a check kept as a sample (for ingestion: file, reason and raw text).
function sampleCell(r) {
  let rows = [];
  try {
    rows = JSON.parse(r.sample || "[]");
  } catch {
    rows = [];
  }
  if (!Array.isArray(rows) || !rows.length) return "";
  return h(
    "details",
    { class: "check-sample" },
    h("summary", {}, `${rows.length} row${rows.length === 1 ? "" : "s"}`),
    h(
      "ul",
      {},
      rows.map((row) =>
        h(
          "li",
          { class: "mono small" },
          Object.entries(row)
            .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
            .join(" · "),
        ),
      ),
    ),
  );
}

function spinner(text = "Loading…") {
  return h("p", { class: "muted loading", "aria-busy": "true" }, text);
}

function tableHref(name) {
  return `#/tables/${encodeURIComponent(name)}`;
}

// ---------------------------------------------------------------- formatting

const intFormat = new Intl.NumberFormat("en-US");
const numFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 6 });

function fmtInt(n) {
  return n === null || n === undefined ? "" : intFormat.format(n);
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function fmtTime(value) {
  if (!value) return "";
  const text = String(value);
  const m = text.match(/^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/);
  if (!m) return text;
  const zone = !m[4] ? "" : m[4] === "Z" || /^[+-]00:?00$/.test(m[4]) ? " UTC" : ` ${m[4]}`;
  return `${m[1]} ${m[2]}${zone}`;
}

function fmtSeconds(s) {
  if (s === null || s === undefined) return "";
  const n = Number(s);
  if (n < 60) return `${n.toFixed(n < 10 ? 2 : 1)} s`;
  const minutes = Math.floor(n / 60);
  return `${minutes} min ${Math.round(n - 60 * minutes)} s`;
}

function ago(value) {
  const t = Date.parse(value);
  if (Number.isNaN(t)) return "";
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 0) return "";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function isNumericType(type) {
  return /^(u?int(8|16|32|64)|halffloat|float|double|decimal)/.test(String(type || ""));
}

function isTemporalType(type) {
  return /^(date|timestamp|time)/.test(String(type || ""));
}

function isTextType(type) {
  return /^(string|large_string|utf8|large_utf8)/.test(String(type || ""));
}

function cell(value, type) {
  if (value === null || value === undefined) return h("td", { class: "null" }, "null");
  if (typeof value === "object") {
    const text = JSON.stringify(value);
    return h("td", { class: "json", title: text }, text);
  }
  if (typeof value === "number") {
    return h(
      "td",
      { class: "num" },
      Number.isInteger(value) ? fmtInt(value) : numFormat.format(value),
    );
  }
  if (typeof value === "boolean") return h("td", { class: "bool" }, String(value));
  const text = isTemporalType(type) ? fmtTime(value) : String(value);
  const props = { title: text.length > 60 ? text : null };
  if (text.startsWith("pii:")) props.class = "masked-value";
  return h("td", props, text);
}

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, message, hint) {
    super(message);
    this.status = status;
    this.hint = hint;
  }
}

async function api(path, options = {}) {
  const init = { credentials: "same-origin", headers: { Accept: "application/json" }, ...options };
  if (options.json !== undefined) {
    init.method = options.method || "POST";
    init.headers = { ...init.headers, "Content-Type": "application/json" };
    init.body = JSON.stringify(options.json);
    delete init.json;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "the server did not answer", "is `lakehouse serve` still running?");
  }
  if (response.status === 401) {
    showLogin();
    throw new ApiError(401, "not logged in", null);
  }
  if (!response.ok) throw await apiError(response);
  if (options.raw) return response;
  return response.json();
}

async function apiError(response) {
  let message = `${response.status} ${response.statusText}`;
  let hint = null;
  try {
    const body = await response.json();
    if (body && body.error) {
      message = body.error.message || message;
      hint = body.error.hint || null;
    }
  } catch (err) {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message, hint);
}

function errorBox(err, title = "Error") {
  if (err instanceof ApiError && err.status === 401) return h("div");
  const message =
    err instanceof ApiError ? err.message : String(err && err.message ? err.message : err);
  return h(
    "div",
    { class: "error-box", role: "alert" },
    h("strong", {}, err instanceof ApiError && err.status ? `${title} (${err.status})` : title),
    h("pre", { class: "error-message" }, message),
    err instanceof ApiError && err.hint
      ? h("p", { class: "error-hint" }, "Hint: ", err.hint)
      : null,
  );
}

// ---------------------------------------------------------------- data grid

function dataGrid(columns, rows, types = [], options = {}) {
  const shown = rows.slice(0, options.max || ROW_DISPLAY_LIMIT);
  const numeric = columns.map((_, i) => isNumericType(types[i]));
  const thead = h(
    "thead",
    {},
    h(
      "tr",
      {},
      columns.map((c, i) =>
        h("th", { class: numeric[i] ? "num" : null, title: types[i] || null, scope: "col" }, c),
      ),
    ),
  );
  const tbody = h(
    "tbody",
    {},
    shown.map((row) =>
      h(
        "tr",
        {},
        row.map((v, i) => cell(v, types[i])),
      ),
    ),
  );
  const wrap = h(
    "div",
    { class: "grid-wrap scroll" },
    h("table", { class: "data-table" }, thead, tbody),
  );
  if (rows.length > shown.length) {
    return h(
      "div",
      {},
      wrap,
      h(
        "p",
        { class: "muted small" },
        `Showing the first ${fmtInt(shown.length)} of ${fmtInt(rows.length)} rows; download the result for all of them.`,
      ),
    );
  }
  if (!rows.length) return h("div", {}, wrap, h("p", { class: "muted small" }, "No rows."));
  return wrap;
}

// A table of records with chosen columns: [{key, label, num, render}]
function recordTable(records, spec, props = {}) {
  return h(
    "div",
    { class: "grid-wrap" },
    h(
      "table",
      { class: "data-table", ...props },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          spec.map((c) => h("th", { class: c.num ? "num" : null, scope: "col" }, c.label)),
        ),
      ),
      h(
        "tbody",
        {},
        records.map((r) =>
          h(
            "tr",
            {},
            spec.map((c) => {
              const value = c.render ? c.render(r) : r[c.key];
              if (value instanceof Node) return h("td", { class: c.num ? "num" : null }, value);
              if (value === null || value === undefined || value === "")
                return h("td", { class: c.num ? "num null" : "null" }, c.empty ?? "");
              return h(
                "td",
                { class: c.num ? "num" : null },
                c.num && typeof value === "number" ? fmtInt(value) : value,
              );
            }),
          ),
        ),
      ),
    ),
  );
}

// ---------------------------------------------------------------- login and header

function showLogin(failed = false) {
  disposeCharts();
  clear(document.getElementById("whoami"));
  document.body.classList.add("logged-out");
  put(
    clear(app),
    h(
      "section",
      { class: "login-card", id: "login-needed" },
      h("h1", {}, "Log in to Lakehouse"),
      failed
        ? h(
            "p",
            { class: "error-box", role: "alert" },
            "That login link was not accepted: its token is unknown. Each start of the server prints a new one.",
          )
        : null,
      h(
        "p",
        {},
        "Open the login URL printed by ",
        h("code", {}, "lakehouse serve"),
        " in this browser:",
      ),
      h(
        "pre",
        { class: "sample" },
        `Open this URL to log in as admin (valid while this server runs):\n    ${location.origin}/?token=lh_…`,
      ),
      h(
        "p",
        { class: "muted" },
        "For another user, create a token with ",
        h("code", {}, "lakehouse token create --name NAME --role ROLE"),
        " and open ",
        h("code", {}, "/?token=TOKEN"),
        ".",
      ),
    ),
  );
}

function renderWho(me) {
  const el = clear(document.getElementById("whoami"));
  put(
    el,
    h("span", { class: "principal", title: "logged in as" }, me.name),
    badge(me.role, `role role-${me.role}`),
  );
}

function markNav(section) {
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

// ---------------------------------------------------------------- charts

function disposeCharts() {
  for (const chart of state.charts) chart.dispose();
  state.charts = [];
}

function makeChart(el) {
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

// ---------------------------------------------------------------- routes

const routes = [
  [/^#?\/?$/, () => go("#/tables")],
  [/^#\/tables\/?$/, (m, query) => viewTables(query.get("q") || "")],
  [
    /^#\/tables\/([^/]+)(?:\/([a-z]+))?$/,
    (m) => viewTable(decodeURIComponent(m[1]), m[2] || "schema"),
  ],
  [/^#\/sql\/?$/, () => viewSql()],
  [/^#\/lineage\/?$/, () => viewLineagePicker()],
  [/^#\/lineage\/([^/]+)$/, (m) => viewLineage(decodeURIComponent(m[1]))],
  [/^#\/runs\/?$/, () => viewRuns()],
  [/^#\/runs\/([^/]+)$/, (m) => viewRun(decodeURIComponent(m[1]))],
  [/^#\/health\/?$/, () => viewHealth()],
];

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

let routeToken = 0;
let pollTimer = null;

async function route() {
  if (!state.me) return;
  routeToken += 1;
  clearTimeout(pollTimer);
  disposeCharts();
  const [path, search] = (location.hash || "#/").split("?");
  const query = new URLSearchParams(search || "");
  for (const [pattern, view] of routes) {
    const m = path.match(pattern);
    if (m) {
      markNav((path.split("/")[1] || "tables").replace(/\W/g, ""));
      clear(app);
      try {
        await view(m, query);
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 401)) put(app, errorBox(err));
      }
      return;
    }
  }
  markNav("");
  put(
    clear(app),
    h("h1", {}, "Not found"),
    h("p", {}, "No page here. ", link("#/tables", "Browse the tables")),
  );
}

// Whether the view that started an async step is still the one shown.
function current(token) {
  return token === routeToken;
}

// ---------------------------------------------------------------- tables browser

async function viewTables(q) {
  const token = routeToken;
  document.title = "Tables · Lakehouse";
  const search = h("input", {
    type: "search",
    id: "table-search",
    placeholder: "Search names, descriptions and columns",
    value: q,
    "aria-label": "Search tables",
    autocomplete: "off",
  });
  const results = h("div", { id: "table-list" });
  put(
    app,
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Tables"),
      h("div", { class: "head-tools" }, search),
    ),
    results,
  );
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const text = search.value.trim();
      history.replaceState(null, "", text ? `#/tables?q=${encodeURIComponent(text)}` : "#/tables");
      loadTableList(results, text, token);
    }, 200);
  });
  await loadTableList(results, q, token);
  if (q) search.focus();
}

let listRequest = 0;

async function loadTableList(el, q, token) {
  listRequest += 1;
  const mine = listRequest;
  const data = await api(`/tables${q ? `?q=${encodeURIComponent(q)}` : ""}`);
  if (!current(token) || mine !== listRequest) return; // a newer search answers instead
  const byLayer = new Map(LAYERS.map((l) => [l, []]));
  for (const t of data.tables) {
    if (!byLayer.has(t.layer)) byLayer.set(t.layer, []);
    byLayer.get(t.layer).push(t);
  }
  clear(el);
  if (q && !data.tables.length) {
    put(el, h("p", { class: "muted" }, `No table matches “${q}”.`));
    return;
  }
  for (const [layer, tables] of byLayer) {
    if (q && !tables.length) continue;
    const rows = tables.reduce((sum, t) => sum + (t.row_count || 0), 0);
    put(
      el,
      h(
        "section",
        { class: "layer-section", dataset: { layer } },
        h(
          "h2",
          { class: "layer-title" },
          layerBadge(layer),
          h(
            "span",
            { class: "muted small" },
            `${tables.length} table${tables.length === 1 ? "" : "s"} · ${fmtInt(rows)} rows`,
          ),
        ),
        tables.length
          ? recordTable(tables, [
              {
                label: "Table",
                render: (t) => link(tableHref(t.name), t.name, { class: "table-link" }),
              },
              {
                label: "Description",
                render: (t) => h("span", { class: "desc" }, t.description || ""),
              },
              {
                label: "Tags",
                render: (t) =>
                  h(
                    "span",
                    {},
                    (t.tags || []).map((tag) => badge(tag, "tag")),
                  ),
              },
              { key: "row_count", label: "Rows", num: true },
              { label: "Size", num: true, render: (t) => fmtBytes(t.size_bytes) },
              { key: "version", label: "Version", num: true },
              {
                label: "Updated",
                render: (t) => h("span", { title: fmtTime(t.updated_at) }, ago(t.updated_at)),
              },
            ])
          : h("p", { class: "muted small empty-layer" }, "No tables."),
      ),
    );
  }
}

// ---------------------------------------------------------------- one table

async function viewTable(name, tab) {
  const token = routeToken;
  if (!TABLE_TABS.includes(tab)) tab = "schema";
  document.title = `${name} · Lakehouse`;
  const info = await api(`/tables/${encodeURIComponent(name)}`);
  if (!current(token)) return;
  const canQuery = state.me.can && state.me.can.query;
  put(
    app,
    h(
      "nav",
      { class: "crumbs", "aria-label": "Breadcrumb" },
      link("#/tables", "Tables"),
      " / ",
      link(`#/tables?q=${encodeURIComponent(info.layer)}`, info.layer),
      " / ",
      h("span", {}, info.name.split(".").slice(1).join(".")),
    ),
    h(
      "div",
      { class: "page-head" },
      h(
        "h1",
        { class: "table-title" },
        layerBadge(info.layer),
        h("span", { class: "mono" }, info.name),
      ),
      h(
        "div",
        { class: "head-tools" },
        canQuery
          ? h(
              "button",
              {
                type: "button",
                id: "query-table",
                onclick: () => openInEditor(`SELECT * FROM ${info.name} LIMIT 100`),
              },
              "Query this table",
            )
          : null,
        h(
          "a",
          {
            href: `#/lineage/${encodeURIComponent(info.name)}`,
            role: "button",
            class: "secondary outline",
          },
          "Lineage graph",
        ),
      ),
    ),
    info.description ? h("p", { class: "lead" }, info.description) : null,
    h(
      "dl",
      { class: "facts" },
      fact("Rows", fmtInt(info.row_count)),
      fact("Size", fmtBytes(info.size_bytes)),
      fact("Files", fmtInt(info.num_files)),
      fact("Version", fmtInt(info.version)),
      fact("Updated", fmtTime(info.updated_at)),
      fact("Owner", info.owner || "—"),
      info.tags && info.tags.length
        ? fact(
            "Tags",
            h(
              "span",
              {},
              info.tags.map((t) => badge(t, "tag")),
            ),
          )
        : null,
    ),
  );
  const tabs = h(
    "div",
    { class: "tabs", role: "tablist" },
    TABLE_TABS.map((t) =>
      h(
        "a",
        {
          href: `#/tables/${encodeURIComponent(info.name)}/${t}`,
          role: "tab",
          "aria-selected": t === tab ? "true" : "false",
          dataset: { tab: t },
        },
        t[0].toUpperCase() + t.slice(1),
      ),
    ),
  );
  const panel = h("section", { class: "tab-panel", role: "tabpanel", id: `tab-${tab}` });
  put(app, tabs, panel);
  const views = {
    schema: tabSchema,
    preview: tabPreview,
    history: tabHistory,
    quality: tabQuality,
    lineage: tabLineage,
  };
  try {
    await views[tab](panel, info, token);
  } catch (err) {
    if (current(token)) put(panel, errorBox(err));
  }
}

function fact(label, value) {
  return h("div", {}, h("dt", {}, label), h("dd", {}, value));
}

function tabSchema(panel, info) {
  put(
    panel,
    recordTable(
      info.columns.map((c, i) => ({ ...c, position: i + 1 })),
      [
        { key: "position", label: "#", num: true },
        { label: "Column", render: (c) => h("span", { class: "mono" }, c.name) },
        { label: "Type", render: (c) => h("span", { class: "mono type" }, c.type || "") },
        { label: "Nullable", render: (c) => (c.nullable ? "yes" : "no") },
        {
          label: "Tags",
          render: (c) =>
            h(
              "span",
              {},
              (c.tags || []).map((t) => badge(t, t === "pii" ? "tag pii" : "tag")),
              (c.inherited_tags || []).map((t) => {
                const tag = badge(`${t} (inherited)`, t === "pii" ? "tag pii inherited" : "tag");
                if (c.inherited_from) tag.title = `inherited from ${c.inherited_from}`;
                return tag;
              }),
              c.masked ? badge("masked", "masked") : null,
            ),
        },
      ],
      { id: "schema-table" },
    ),
  );
  const options = [];
  if (info.partition_by && info.partition_by.length)
    options.push(fact("Partitioned by", info.partition_by.join(", ")));
  if (info.keys && info.keys.length) options.push(fact("Keys", info.keys.join(", ")));
  if (info.retention_days !== null && info.retention_days !== undefined)
    options.push(fact("Retention", `${info.retention_days} days`));
  if (info.location)
    options.push(fact("Location", h("span", { class: "mono small" }, info.location)));
  if (options.length) put(panel, h("dl", { class: "facts options" }, options));
  if (info.columns.some((c) => c.masked)) {
    put(
      panel,
      h(
        "p",
        { class: "muted small" },
        "Masked columns show a stable pseudonym (pii: and 12 hex digits) instead of their values.",
      ),
    );
  }
}

async function tabPreview(panel, info, token) {
  put(panel, spinner());
  const data = await api(`/tables/${encodeURIComponent(info.name)}/preview?limit=100`);
  if (!current(token)) return;
  put(
    clear(panel),
    h(
      "p",
      { class: "muted small" },
      `${fmtInt(data.rows.length)} row${data.rows.length === 1 ? "" : "s"}${data.truncated ? " (the first of more)" : ""}`,
    ),
    dataGrid(data.columns, data.rows, data.types || []),
  );
}

async function tabHistory(panel, info, token) {
  put(panel, spinner());
  const data = await api(`/tables/${encodeURIComponent(info.name)}/history`);
  if (!current(token)) return;
  const metric = (v, ...keys) => {
    for (const k of keys) if (v.metrics && v.metrics[k] !== undefined) return v.metrics[k];
    return null;
  };
  put(
    clear(panel),
    recordTable(
      data.versions,
      [
        { key: "version", label: "Version", num: true },
        { label: "Time", render: (v) => fmtTime(v.timestamp) },
        { label: "Operation", render: (v) => h("span", { class: "mono" }, v.operation || "") },
        {
          label: "Parameters",
          render: (v) =>
            h(
              "span",
              { class: "small mono" },
              Object.entries(v.parameters || {})
                .map(([k, x]) => `${k}=${typeof x === "object" ? JSON.stringify(x) : x}`)
                .join(" "),
            ),
        },
        {
          label: "Rows added",
          num: true,
          render: (v) =>
            fmtInt(
              v.rows_added ??
                metric(v, "num_added_rows", "num_output_rows", "num_target_rows_inserted"),
            ),
        },
        {
          label: "Files +/−",
          num: true,
          render: (v) =>
            `${fmtInt(metric(v, "num_added_files") ?? 0)} / ${fmtInt(metric(v, "num_removed_files") ?? 0)}`,
        },
        { key: "user", label: "By" },
      ],
      { id: "history-table" },
    ),
  );
}

async function tabQuality(panel, info, token) {
  put(panel, spinner());
  let data;
  try {
    data = await api(`/tables/${encodeURIComponent(info.name)}/quality`);
  } catch (err) {
    if (!current(token)) return;
    if (err instanceof ApiError && (err.status === 400 || err.status === 404)) {
      put(
        clear(panel),
        h(
          "div",
          { class: "empty-state", id: "quality-empty" },
          h("h3", {}, "No quality results yet"),
          h("p", { class: "muted" }, err.message),
          err.hint ? h("p", { class: "muted small" }, err.hint) : null,
        ),
      );
      return;
    }
    throw err;
  }
  if (!current(token)) return;
  const latestRun = data.results.length ? data.results[0].run_id : null;
  const latest = data.results.filter((r) => r.run_id === latestRun);
  const score = Number(data.score);
  const level = score >= 99 ? "good" : score >= 90 ? "warn" : "bad";
  put(
    clear(panel),
    h(
      "div",
      { class: "quality-head" },
      h(
        "div",
        { class: `score ${level}`, id: "quality-score" },
        h("span", { class: "score-value" }, `${numFormat.format(score)}%`),
        h("span", { class: "score-label" }, "quality score"),
      ),
      h(
        "dl",
        { class: "facts" },
        fact("Checks", checksSummary(latest)),
        fact("Quarantined rows", fmtInt(data.quarantined)),
        fact(
          "Run",
          latestRun
            ? link(`#/runs/${encodeURIComponent(latestRun)}`, latestRun, { class: "mono" })
            : "—",
        ),
      ),
    ),
    recordTable(
      latest,
      [
        { label: "Expectation", render: (r) => h("span", { class: "mono" }, r.expectation) },
        { key: "check_type", label: "Check" },
        { key: "action", label: "On failure" },
        { label: "Result", render: (r) => statusBadge(checkStatus(r)) },
        { key: "failed_rows", label: "Failed rows", num: true },
        { key: "total_rows", label: "Rows checked", num: true },
        { label: "Detail", render: (r) => h("span", { class: "small" }, r.detail || "") },
        { label: "Sample", render: sampleCell },
      ],
      { id: "quality-table" },
    ),
  );
}

async function tabLineage(panel, info, token) {
  put(panel, spinner());
  const data = await api(`/catalog/lineage/${encodeURIComponent(info.name)}`);
  if (!current(token)) return;
  put(
    clear(panel),
    h(
      "p",
      {},
      link(`#/lineage/${encodeURIComponent(info.name)}`, "Open the lineage graph →", {
        id: "open-lineage",
      }),
    ),
    lineageLists(data),
  );
}

function lineageLists(data) {
  const up = data.nodes.filter((n) => n.depth < 0);
  const down = data.nodes.filter((n) => n.depth > 0);
  const list = (nodes, id) =>
    nodes.length
      ? h(
          "ul",
          { class: "node-list", id },
          nodes.map((n) =>
            h(
              "li",
              { dataset: { node: n.name } },
              layerBadge(n.layer),
              " ",
              n.registered
                ? link(tableHref(n.name), n.name, { class: "mono" })
                : h("span", { class: "mono muted" }, n.name),
              h(
                "span",
                { class: "muted small" },
                ` ${Math.abs(n.depth)} step${Math.abs(n.depth) === 1 ? "" : "s"}`,
              ),
            ),
          ),
        )
      : h("p", { class: "muted small", id }, "None recorded.");
  return h(
    "div",
    { class: "lineage-lists" },
    h("div", {}, h("h3", {}, `Upstream (${up.length})`), list(up, "upstream-list")),
    h("div", {}, h("h3", {}, `Downstream (${down.length})`), list(down, "downstream-list")),
  );
}

// ---------------------------------------------------------------- SQL editor

function openInEditor(sql) {
  state.sql = sql;
  state.runOnOpen = true;
  sessionStorage.setItem(SQL_KEY, sql);
  go("#/sql");
}

async function viewSql() {
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

function chartDefaults(result) {
  const types = result.types || [];
  let x = types.findIndex((t) => isTextType(t) || isTemporalType(t));
  const numeric = types.map((t, i) => i).filter((i) => isNumericType(types[i]) && i !== x);
  // Identifiers are numbers but rarely worth a series of their own.
  const measures = numeric.filter((i) => !/(^id$|_id$|^version)/i.test(result.columns[i]));
  return { x, series: (measures.length ? measures : numeric).slice(0, 8) };
}

function chartView(panel, result) {
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
        color: [
          "#1f6feb",
          "#c9a227",
          "#2da44e",
          "#d1242f",
          "#8250df",
          "#bc4c00",
          "#0a7f86",
          "#6e7781",
        ],
        tooltip: {
          trigger: "axis",
          // Markup of escaped values only (ECharts inserts tooltip strings as HTML).
          formatter: (items) => {
            const list = Array.isArray(items) ? items : [items];
            if (!list.length) return "";
            const head = esc(
              time
                ? fmtTime(list[0].axisValue && new Date(list[0].axisValue).toISOString())
                : list[0].axisValueLabel,
            );
            const lines = list.map((p) => {
              const v = Array.isArray(p.value) ? p.value[1] : p.value;
              const shown = v === null || v === undefined ? "null" : numFormat.format(v);
              return `${p.marker}${esc(p.seriesName)}: <b>${esc(shown)}</b>`;
            });
            return [head, ...lines].join("<br>");
          },
        },
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

// ---------------------------------------------------------------- lineage graph

async function viewLineagePicker() {
  const token = routeToken;
  document.title = "Lineage · Lakehouse";
  const data = await api("/tables");
  if (!current(token)) return;
  const select = h(
    "select",
    { id: "lineage-table", "aria-label": "Table" },
    h("option", { value: "" }, "Choose a table…"),
    LAYERS.map((layer) => {
      const tables = data.tables.filter((t) => t.layer === layer);
      return tables.length
        ? h(
            "optgroup",
            { label: layer },
            tables.map((t) => h("option", { value: t.name }, t.name)),
          )
        : null;
    }),
  );
  select.addEventListener("change", () => {
    if (select.value) go(`#/lineage/${encodeURIComponent(select.value)}`);
  });
  put(
    app,
    h("div", { class: "page-head" }, h("h1", {}, "Lineage")),
    h(
      "p",
      { class: "lead" },
      "Where a table's rows come from and where they go, as recorded by pipeline runs.",
    ),
    h("div", { class: "narrow" }, select),
  );
}

async function viewLineage(name) {
  const token = routeToken;
  document.title = `Lineage of ${name} · Lakehouse`;
  const data = await api(`/catalog/lineage/${encodeURIComponent(name)}`);
  if (!current(token)) return;
  const canvas = h("div", { class: "chart lineage-graph", id: "lineage-graph" });
  const scroller = h("div", { class: "graph-scroll" }, canvas);
  put(
    app,
    h(
      "nav",
      { class: "crumbs", "aria-label": "Breadcrumb" },
      link("#/lineage", "Lineage"),
      " / ",
      h("span", {}, data.table),
    ),
    h(
      "div",
      { class: "page-head" },
      h(
        "h1",
        { class: "table-title" },
        layerBadge(data.layer),
        h("span", { class: "mono" }, data.table),
      ),
      h(
        "div",
        { class: "head-tools" },
        link(tableHref(data.table), "Table details", {
          role: "button",
          class: "secondary outline",
        }),
      ),
    ),
    h(
      "p",
      { class: "legend" },
      LAYERS.map((l) =>
        h(
          "span",
          { class: "legend-item" },
          h("span", { class: "swatch", style: `background:${LAYER_COLORS[l]}` }),
          l,
        ),
      ),
      h(
        "span",
        { class: "muted small" },
        " · upstream on the left, downstream on the right; click a table to open it",
      ),
    ),
    scroller,
    lineageLists(data),
  );
  drawLineage(canvas, data);
}

function layoutLineage(data) {
  // Columns by depth (upstream left, downstream right), pushed apart where an edge joins
  // two tables of one depth, so every edge points rightwards; within a column, tables are
  // ordered by the mean row of their neighbours already placed (few crossings).
  const level = new Map(data.nodes.map((n) => [n.name, n.depth]));
  for (let pass = 0; pass < data.nodes.length; pass += 1) {
    let moved = false;
    for (const e of data.edges) {
      if (!level.has(e.source) || !level.has(e.target)) continue;
      const a = level.get(e.source);
      const b = level.get(e.target);
      if (b > a) continue;
      if (a > 0 && b > 0) level.set(e.target, a + 1);
      else if (a < 0 && b < 0) level.set(e.source, b - 1);
      else continue; // an edge back into the table itself: a cycle, drawn as it is
      moved = true;
    }
    if (!moved) break;
  }
  const columns = new Map();
  for (const node of data.nodes) {
    const l = level.get(node.name);
    if (!columns.has(l)) columns.set(l, []);
    columns.get(l).push(node);
  }
  const levels = [...columns.keys()].sort((a, b) => a - b);
  const neighbours = new Map(data.nodes.map((n) => [n.name, []]));
  for (const e of data.edges) {
    if (neighbours.has(e.source)) neighbours.get(e.source).push(e.target);
    if (neighbours.has(e.target)) neighbours.get(e.target).push(e.source);
  }
  const position = new Map();
  for (const l of levels) {
    const nodes = columns.get(l);
    const score = (n) => {
      const placed = neighbours
        .get(n.name)
        .filter((m) => position.has(m))
        .map((m) => position.get(m));
      return placed.length ? placed.reduce((x, y) => x + y, 0) / placed.length : Infinity;
    };
    nodes.sort((x, y) => score(x) - score(y) || x.name.localeCompare(y.name));
    nodes.forEach((n, i) => position.set(n.name, i - (nodes.length - 1) / 2));
  }
  const tallest = Math.max(...levels.map((l) => columns.get(l).length));
  return { position, level, levels, tallest };
}

function tint(hex, share) {
  // The colour mixed with white (share 0: white, 1: the colour), as a solid colour.
  const n = parseInt(hex.slice(1), 16);
  const mix = (c) => Math.round(255 - (255 - c) * share);
  return `rgb(${mix(n >> 16)}, ${mix((n >> 8) & 255)}, ${mix(n & 255)})`;
}

function drawLineage(el, data) {
  const { position, level, levels, tallest } = layoutLineage(data);
  const charWidth = 7.3;
  const boxHeight = 30;
  const boxWidth = (name) => name.length * charWidth + 28;
  const widest = Math.max(...data.nodes.map((n) => boxWidth(n.name)));
  const margin = 16;
  const rowHeight = 58;
  // One band per depth, wide enough for the widest name; the drawing scrolls sideways when
  // the page is narrower than that.
  el.style.height = `${data.nodes.length <= 1 ? 120 : Math.max(240, Math.min(1400, tallest * rowHeight + 50))}px`;
  el.style.minWidth = `${levels.length * (widest + 70) + 2 * margin}px`;
  const chart = makeChart(el);
  if (!chart) return;
  const column = new Map(levels.map((l, i) => [l, i]));
  const half = Math.max(tallest, 2) / 2;
  const grid = {
    left: margin + widest / 2,
    right: margin + widest / 2,
    top: 25 + boxHeight / 2,
    bottom: 25 + boxHeight / 2,
  };
  const xMin = levels.length === 1 ? -1 : 0;
  const xMax = levels.length === 1 ? 1 : levels.length - 1;
  const yMin = -half + 0.5;
  const yMax = half - 0.5;
  const where = (name) => {
    const node = data.nodes.find((n) => n.name === name);
    return node ? [column.get(level.get(name)), position.get(name)] : null;
  };
  const nodes = data.nodes.map((n) => {
    const selected = n.name === data.table;
    const color = LAYER_COLORS[n.layer] || "#888888";
    return {
      id: n.name,
      name: n.name,
      value: where(n.name),
      depth: n.depth,
      layer: n.layer,
      registered: n.registered,
      symbol: "rect",
      symbolSize: [boxWidth(n.name), boxHeight],
      cursor: n.registered ? "pointer" : "default",
      itemStyle: {
        color: selected ? color : tint(color, n.registered ? 0.22 : 0.08),
        shadowBlur: selected ? 8 : 0,
        shadowColor: "rgba(0,0,0,0.25)",
      },
      label: {
        show: true,
        color: selected ? "#ffffff" : n.registered ? "#1f2328" : "#656d76",
        fontWeight: selected ? "bold" : "normal",
        fontStyle: n.registered ? "normal" : "italic",
        fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
        fontSize: 12,
      },
    };
  });
  // Edges from the right side of a box to the left side of the next, in axis units; the
  // pixel sizes of the boxes are turned into units from the drawing's current size.
  const edges = () => {
    const xUnit = (chart.getWidth() - grid.left - grid.right) / (xMax - xMin);
    const yUnit = (chart.getHeight() - grid.top - grid.bottom) / Math.max(yMax - yMin, 1);
    return data.edges
      .map((e) => {
        const a = where(e.source);
        const b = where(e.target);
        if (!a || !b) return null;
        const aw = boxWidth(e.source) / 2 / xUnit;
        const bw = boxWidth(e.target) / 2 / xUnit;
        const hh = (boxHeight / 2 + 2) / yUnit;
        let from;
        let to;
        if (b[0] > a[0])
          [from, to] = [
            [a[0] + aw, a[1]],
            [b[0] - bw - 2 / xUnit, b[1]],
          ];
        else if (b[0] < a[0])
          [from, to] = [
            [a[0] - aw, a[1]],
            [b[0] + bw + 2 / xUnit, b[1]],
          ];
        else {
          const down = b[1] > a[1] ? 1 : -1;
          [from, to] = [
            [a[0], a[1] + down * hh],
            [b[0], b[1] - down * hh],
          ];
        }
        return {
          coords: [from, to],
          source: e.source,
          target: e.target,
          job: e.job,
          operation: e.operation,
          observed: e.observed,
          lineStyle: {
            type: e.observed ? "solid" : "dashed",
            curveness: b[0] === a[0] ? 0.4 : 0.08,
          },
        };
      })
      .filter(Boolean);
  };
  const hidden = { show: false };
  chart.setOption({
    animation: false,
    grid,
    xAxis: {
      type: "value",
      min: xMin,
      max: xMax,
      axisLine: hidden,
      axisTick: hidden,
      axisLabel: hidden,
      splitLine: hidden,
    },
    yAxis: {
      type: "value",
      min: yMin,
      max: yMax,
      inverse: true,
      axisLine: hidden,
      axisTick: hidden,
      axisLabel: hidden,
      splitLine: hidden,
    },
    tooltip: {
      formatter: (p) => {
        // ECharts puts tooltip strings in as markup: every value is escaped.
        const d = p.data;
        if (p.seriesType === "lines") {
          const job = d.job ? `<br><span style="color:#666">${esc(d.job)}</span>` : "";
          const note = d.observed ? "" : "<br>(declared, not yet observed)";
          return `${esc(d.source)} → ${esc(d.target)}<br>${esc(d.operation || "")}${job}${note}`;
        }
        const place =
          d.depth === 0
            ? "this table"
            : d.depth < 0
              ? `${-d.depth} step(s) upstream`
              : `${d.depth} step(s) downstream`;
        return `<b>${esc(d.name)}</b><br>${esc(d.layer)} · ${place}${d.registered ? "" : "<br>(not in the catalog)"}`;
      },
    },
    series: [
      {
        type: "lines",
        coordinateSystem: "cartesian2d",
        clip: false,
        z: 1,
        symbol: ["none", "arrow"],
        symbolSize: 8,
        lineStyle: { color: "#8c959f", width: 1.5, opacity: 0.95 },
        emphasis: { lineStyle: { color: "#57606a", width: 2.5 } },
        data: edges(),
      },
      {
        type: "graph",
        coordinateSystem: "cartesian2d",
        z: 2,
        data: nodes,
        links: [],
        label: { position: "inside" },
        emphasis: { scale: false, itemStyle: { shadowBlur: 10, shadowColor: "rgba(0,0,0,0.3)" } },
      },
    ],
  });
  chart.lakehouseRedraw = () => chart.setOption({ series: [{ data: edges() }] });
  chart.on("click", (p) => {
    if (p.seriesType === "graph" && p.data.registered) go(tableHref(p.data.name));
  });
  if (data.nodes.length <= 1) {
    el.parentElement.after(
      h(
        "p",
        { class: "muted small note" },
        "No lineage recorded for this table yet: no pipeline run wrote it from other tables or read it.",
      ),
    );
  }
}

function esc(value) {
  return String(value ?? "").replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c],
  );
}

// ---------------------------------------------------------------- pipelines and runs

async function viewRuns() {
  const token = routeToken;
  document.title = "Runs · Lakehouse";
  const [pipes, runs] = await Promise.all([api("/pipelines"), api("/runs?limit=50")]);
  if (!current(token)) return;
  const canRun = Boolean(state.me.can && state.me.can.run_pipeline);
  put(app, h("div", { class: "page-head" }, h("h1", {}, "Pipelines")));
  if (!pipes.pipelines.length) {
    put(
      app,
      h(
        "p",
        { class: "muted" },
        "No pipelines: start the server with ",
        h("code", {}, "lakehouse serve --pipelines DIR"),
        ".",
      ),
    );
  } else {
    put(
      app,
      recordTable(
        pipes.pipelines,
        [
          { label: "Pipeline", render: (p) => h("strong", { class: "mono" }, p.name) },
          {
            label: "Description",
            render: (p) => h("span", { class: "desc" }, p.description || ""),
          },
          {
            label: "Datasets",
            render: (p) => {
              const counts = {};
              for (const d of p.datasets) counts[d.layer] = (counts[d.layer] || 0) + 1;
              return h(
                "span",
                {},
                LAYERS.filter((l) => counts[l]).map((l) =>
                  h("span", { class: "count-chip" }, layerBadge(l), ` ${counts[l]}`),
                ),
              );
            },
          },
          {
            label: "Last run",
            render: (p) =>
              p.last_run
                ? h(
                    "span",
                    {},
                    statusBadge(p.last_run.status),
                    " ",
                    link(
                      `#/runs/${encodeURIComponent(p.last_run.run_id)}`,
                      ago(p.last_run.started_at) || fmtTime(p.last_run.started_at),
                    ),
                  )
                : h("span", { class: "muted" }, "never"),
          },
          {
            label: "",
            render: (p) =>
              canRun
                ? h(
                    "span",
                    { class: "run-controls" },
                    h(
                      "label",
                      { class: "small" },
                      h("input", {
                        type: "checkbox",
                        class: "full-refresh",
                        dataset: { pipeline: p.name },
                      }),
                      "full refresh",
                    ),
                    h(
                      "button",
                      {
                        type: "button",
                        class: "small-button run-pipeline",
                        dataset: { pipeline: p.name },
                        onclick: (e) => startRun(p.name, e.currentTarget),
                      },
                      "Run",
                    ),
                  )
                : h("span", {}),
          },
        ],
        { id: "pipelines-table" },
      ),
    );
  }
  put(app, h("h2", {}, "Recent runs"));
  if (!runs.runs.length) {
    put(app, h("p", { class: "muted", id: "runs-empty" }, "No runs yet."));
    return;
  }
  put(app, runsTable(runs.runs));
}

// "{"amount": 2, "v": 1}" (a JSON text of counts) -> "amount 2, v 1"
function countsText(text) {
  if (!text) return "";
  let counts;
  try {
    counts = typeof text === "string" ? JSON.parse(text) : text;
  } catch {
    return "";
  }
  return Object.entries(counts || {})
    .map(([name, n]) => `${name} ${fmtInt(n)}`)
    .join(", ");
}

function runsTable(runs) {
  return recordTable(
    runs,
    [
      {
        label: "Run",
        render: (r) =>
          link(`#/runs/${encodeURIComponent(r.run_id)}`, r.run_id, { class: "mono run-link" }),
      },
      { key: "pipeline", label: "Pipeline" },
      { label: "Kind", render: (r) => r.kind || "run" },
      { label: "Status", render: (r) => statusBadge(r.status) },
      {
        label: "Started",
        render: (r) => h("span", { title: ago(r.started_at) }, fmtTime(r.started_at)),
      },
      { label: "Duration", num: true, render: (r) => fmtSeconds(r.seconds) },
      { key: "datasets", label: "Datasets", num: true },
      { key: "rows_written", label: "Rows written", num: true },
      {
        label: "Error",
        render: (r) => (r.error ? h("span", { class: "error-text small" }, r.error) : ""),
      },
    ],
    { id: "runs-table" },
  );
}

async function startRun(name, button) {
  const box = document.querySelector(`.full-refresh[data-pipeline="${CSS.escape(name)}"]`);
  button.setAttribute("aria-busy", "true");
  button.disabled = true;
  try {
    const started = await api(`/pipelines/${encodeURIComponent(name)}/runs`, {
      json: { full_refresh: Boolean(box && box.checked), select: [] },
    });
    go(`#/runs/${encodeURIComponent(started.run_id)}`);
  } catch (err) {
    button.removeAttribute("aria-busy");
    button.disabled = false;
    app.prepend(errorBox(err, "Could not start the run"));
  }
}

async function viewRun(id) {
  const token = routeToken;
  document.title = `Run ${id} · Lakehouse`;
  const run = await api(`/runs/${encodeURIComponent(id)}`);
  if (!current(token)) return;
  put(
    clear(app),
    h(
      "nav",
      { class: "crumbs", "aria-label": "Breadcrumb" },
      link("#/runs", "Runs"),
      " / ",
      h("span", { class: "mono" }, id),
    ),
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Run ", h("span", { class: "mono" }, run.run_id || id)),
      h("div", { class: "head-tools", id: "run-status" }, statusBadge(run.status)),
    ),
    h(
      "dl",
      { class: "facts" },
      fact("Pipeline", run.pipeline || ""),
      run.kind === "replay" ? fact("Kind", "replay of quarantined rows") : null,
      fact("Started", fmtTime(run.started_at) || "—"),
      fact("Ended", fmtTime(run.ended_at) || "—"),
      fact("Duration", fmtSeconds(run.seconds) || "—"),
      run.full_refresh ? fact("Full refresh", "yes") : null,
      run.selection ? fact("Selection", run.selection) : null,
      run.rows_written !== undefined ? fact("Rows written", fmtInt(run.rows_written)) : null,
    ),
    run.error
      ? h(
          "div",
          { class: "error-box", role: "alert" },
          h("strong", {}, "Error"),
          h("pre", { class: "error-message" }, run.error),
        )
      : null,
  );
  const datasets = run.datasets || [];
  if (datasets.length) {
    const total = (k) => datasets.reduce((s, d) => s + (d[k] || 0), 0);
    put(
      app,
      h("h2", {}, "Datasets"),
      recordTable(
        [
          ...datasets,
          {
            dataset: "Total",
            rows_read: total("rows_read"),
            rows_written: total("rows_written"),
            rows_dropped: total("rows_dropped"),
            rows_quarantined: total("rows_quarantined"),
            rows_deduplicated: total("rows_deduplicated"),
            seconds: total("seconds"),
            total: true,
          },
        ],
        [
          {
            label: "Dataset",
            render: (d) =>
              d.total
                ? h("strong", {}, "Total")
                : link(tableHref(d.dataset), d.dataset, { class: "mono" }),
          },
          { key: "kind", label: "Kind" },
          { label: "Status", render: (d) => (d.total ? "" : statusBadge(d.status)) },
          { key: "rows_read", label: "Read", num: true },
          { key: "rows_written", label: "Written", num: true },
          {
            label: "Dropped",
            num: true,
            render: (d) =>
              d.rows_dropped
                ? h(
                    "span",
                    { title: countsText(d.dropped_by) ? `by ${countsText(d.dropped_by)}` : null },
                    fmtInt(d.rows_dropped),
                  )
                : d.rows_dropped,
          },
          { key: "rows_quarantined", label: "Quarantined", num: true },
          { key: "rows_deduplicated", label: "Deduplicated", num: true },
          {
            label: "Rescued values",
            render: (d) => countsText(d.rescued_values),
          },
          { key: "version_written", label: "Version", num: true },
          {
            label: "Seconds",
            num: true,
            render: (d) =>
              d.seconds === null || d.seconds === undefined ? "" : Number(d.seconds).toFixed(2),
          },
          {
            label: "Error",
            render: (d) => (d.error ? h("span", { class: "error-text small" }, d.error) : ""),
          },
        ],
        { id: "datasets-table" },
      ),
    );
  } else if (!["starting", "running"].includes(run.status)) {
    put(app, h("p", { class: "muted" }, "No dataset figures recorded for this run."));
  }
  if (["starting", "running"].includes(run.status)) {
    put(app, spinner("The run is in progress; this page follows it."));
    pollTimer = setTimeout(() => {
      if (current(token)) viewRun(id).catch((err) => put(app, errorBox(err)));
    }, 1500);
  }
}

// ---------------------------------------------------------------- health and dashboard

async function viewHealth() {
  const token = routeToken;
  document.title = "Health · Lakehouse";
  const [health, catalog, quality, runs] = await Promise.all([
    api("/health"),
    api("/catalog"),
    api("/quality").catch(() => ({ tables: [] })),
    api("/runs?limit=5").catch(() => ({ runs: [] })),
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

// ---------------------------------------------------------------- start

async function start() {
  const params = new URLSearchParams(location.search);
  if (params.has("login")) {
    const failed = params.get("login") === "failed";
    history.replaceState(null, "", `/${location.hash}`);
    if (failed) {
      showLogin(true);
      return;
    }
  }
  try {
    state.me = await api("/me");
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401))
      put(clear(app), errorBox(err, "The server did not answer"));
    return;
  }
  document.body.classList.remove("logged-out");
  renderWho(state.me);
  window.addEventListener("hashchange", route);
  await route();
}

start();
