// Tables of data: query results and previews (a grid of typed cells) and lists of
// records with chosen columns.

import { h } from "./dom.js";
import { fmtInt, fmtTime, numFormat } from "./format.js";
import { isNumericType, isTemporalType } from "./types.js";

const ROW_DISPLAY_LIMIT = 1000;

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

export function dataGrid(columns, rows, types = [], options = {}) {
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
export function recordTable(records, spec, props = {}) {
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
