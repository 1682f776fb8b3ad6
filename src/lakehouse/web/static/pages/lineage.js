// Lineage: the table picker, and one table's graph and lists of what is up- and
// downstream.

import { api } from "../lib/api.js";
import { layerBadge } from "../lib/badges.js";
import { h, link, put } from "../lib/dom.js";
import { LAYERS, LAYER_COLORS } from "../lib/layers.js";
import { current, go, routeToken, tableHref } from "../lib/nav.js";
import { app } from "../lib/state.js";
import { drawLineage } from "./lineage-graph.js";

export function lineageLists(data) {
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

export async function viewLineagePicker() {
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

export async function viewLineage(name) {
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
