// The tables browser: every table by layer, searched by name, description and column.

import { api } from "../lib/api.js";
import { badge, layerBadge } from "../lib/badges.js";
import { clear, h, link, put } from "../lib/dom.js";
import { ago, fmtBytes, fmtInt, fmtTime } from "../lib/format.js";
import { recordTable } from "../lib/grid.js";
import { LAYERS } from "../lib/layers.js";
import { current, routeToken, tableHref } from "../lib/nav.js";
import { app } from "../lib/state.js";

export async function viewTables(q) {
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
