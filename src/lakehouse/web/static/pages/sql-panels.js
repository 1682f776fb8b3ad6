// The SQL editor's side panels: the tables the caller may read (a click inserts the
// name), the saved queries it may open, its own history.

import { api, errorBox } from "../lib/api.js";
import { layerBadge } from "../lib/badges.js";
import { clear, h, put, spinner } from "../lib/dom.js";
import { ago, fmtInt } from "../lib/format.js";
import { LAYERS } from "../lib/layers.js";

export function tablesPanel(el, schema, insert) {
  put(clear(el), h("h3", {}, "Tables"), h("p", { class: "muted small" }, "Click to insert a name."));
  for (const layer of LAYERS) {
    const tables = schema.tables.filter((t) => t.layer === layer);
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
                  title: `Insert ${t.name}: ${t.columns.map((c) => c.name).join(", ")}`,
                  onclick: () => insert(t.name),
                },
                t.name.split(".").slice(1).join("."),
              ),
            ),
          ),
        ),
      ),
    );
  }
}

function shortSql(sql) {
  const one = sql.replace(/\s+/g, " ").trim();
  return one.length > 90 ? `${one.slice(0, 88)}…` : one;
}

export async function savedPanel(el, use) {
  put(clear(el), h("h3", {}, "Saved queries"), spinner());
  try {
    const data = await api("/queries");
    const list = h("ul", { class: "saved-list", id: "saved-list" });
    for (const q of data.queries) {
      put(
        list,
        h(
          "li",
          {},
          h(
            "a",
            { href: `#/sql?query=${q.id}`, class: "saved-name", title: q.sql, dataset: { id: q.id } },
            q.name,
          ),
          q.description ? h("p", { class: "muted small" }, q.description) : null,
          h("span", { class: "muted small" }, `${q.owner} · ${ago(q.updated_at)}`),
        ),
      );
    }
    put(
      clear(el),
      h("h3", {}, "Saved queries"),
      data.queries.length ? list : h("p", { class: "muted small" }, "None yet: Save names the statement."),
    );
  } catch (err) {
    put(clear(el), h("h3", {}, "Saved queries"), errorBox(err));
  }
}

export async function historyPanel(el, use) {
  try {
    const data = await api("/query/history?limit=20");
    const list = h("ol", { class: "history-list", id: "history-list" });
    for (const entry of data.history) {
      put(
        list,
        h(
          "li",
          { class: entry.error ? "failed" : null },
          h(
            "button",
            { type: "button", class: "history-entry", title: entry.sql, onclick: () => use(entry) },
            shortSql(entry.sql),
          ),
          h(
            "span",
            { class: "muted small" },
            entry.error
              ? "failed"
              : `${fmtInt(entry.row_count)} row${entry.row_count === 1 ? "" : "s"}`,
            ` · ${ago(entry.at)}`,
          ),
        ),
      );
    }
    put(
      clear(el),
      h("h3", {}, "History"),
      data.history.length ? list : h("p", { class: "muted small" }, "Your statements show here."),
    );
  } catch (err) {
    put(clear(el), h("h3", {}, "History"), errorBox(err));
  }
}
