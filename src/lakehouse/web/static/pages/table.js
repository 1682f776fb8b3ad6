// One table: its facts and tabs (schema, preview, profile, facets, history, quality,
// lineage).

import { api, errorBox } from "../lib/api.js";
import { badge, layerBadge } from "../lib/badges.js";
import { clear, fact, h, link, put, spinner } from "../lib/dom.js";
import { fmtBytes, fmtInt, fmtTime } from "../lib/format.js";
import { dataGrid, recordTable } from "../lib/grid.js";
import { current, routeToken } from "../lib/nav.js";
import { app, state } from "../lib/state.js";
import { lineageLists } from "./lineage.js";
import { openInEditor } from "./sql.js";
import { tabHistory } from "./table-history.js";
import { tabFacets, tabProfile } from "./table-profile.js";
import { tabQuality } from "./table-quality.js";

const TABLE_TABS = ["schema", "preview", "profile", "facets", "history", "quality", "lineage"];

export async function viewTable(name, tab, query = new URLSearchParams()) {
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
    profile: tabProfile,
    facets: tabFacets,
    history: tabHistory,
    quality: tabQuality,
    lineage: tabLineage,
  };
  try {
    await views[tab](panel, info, token, query);
  } catch (err) {
    if (current(token)) put(panel, errorBox(err));
  }
}

async function tabSchema(panel, info, token) {
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
  const readersBox = h("section", { id: "readers", class: "readers" });
  put(panel, readersBox);
  readersPanel(readersBox, info, token);
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

async function tabPreview(panel, info, token, query) {
  put(panel, spinner());
  const sample = query && query.get("sample") === "1";
  const data = await api(
    `/tables/${encodeURIComponent(info.name)}/preview?limit=100${sample ? "&sample=true" : ""}`,
  );
  if (!current(token)) return;
  const base = `#/tables/${encodeURIComponent(info.name)}/preview`;
  put(
    clear(panel),
    h(
      "p",
      { class: "muted small" },
      `${fmtInt(data.rows.length)} row${data.rows.length === 1 ? "" : "s"}`,
      sample ? " drawn at random · " : data.truncated ? " (the first of more) · " : " · ",
      sample
        ? link(base, "First rows", { id: "preview-first" })
        : link(`${base}?sample=1`, "A random sample", { id: "preview-sample" }),
    ),
    dataGrid(data.columns, data.rows, data.types || []),
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

// Who may read the table: the roles (and, for whoever manages access, the grants).
async function readersPanel(el, info, token) {
  try {
    const data = await api(`/tables/${encodeURIComponent(info.name)}/readers`);
    if (!current(token)) return;
    const roles = data.roles.filter((r) => r.reads);
    put(
      el,
      h("h3", {}, "Who may read it"),
      h(
        "p",
        { class: "small" },
        "Roles: ",
        roles.map((r, i) => [
          i ? ", " : "",
          h("span", { class: "mono" }, r.role),
          r.pii ? " (pii values)" : " (pii masked)",
        ]),
      ),
      data.grants && data.grants.length
        ? h(
            "p",
            { class: "small", id: "readers-grants" },
            "Grants: ",
            data.grants.map((g, i) => [i ? ", " : "", `${g.privilege} on ${g.on} to ${g.to}`]),
          )
        : null,
    );
  } catch (err) {
    if (current(token)) put(el, errorBox(err));
  }
}
