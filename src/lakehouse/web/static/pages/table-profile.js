// A table's data profile (per column: null share, distinct values, least and greatest,
// most frequent values, a histogram) and its facets (Datasette's: the most frequent
// values of a few columns among the rows matching the values clicked, with those rows).
// Both come from the API (GET /tables/{name}/profile, /facets): pii the caller sees
// masked is profiled and faceted as its pseudonyms.

import { api } from "../lib/api.js";
import { PALETTE, esc, makeChart } from "../lib/charts.js";
import { clear, fact, h, put, spinner } from "../lib/dom.js";
import { fmtInt, fmtTime, numFormat } from "../lib/format.js";
import { dataGrid } from "../lib/grid.js";
import { current } from "../lib/nav.js";

const pct = new Intl.NumberFormat(navigator.language || "en-US", {
  style: "percent",
  maximumFractionDigits: 1,
});

function facetHref(table, chosen) {
  const q = new URLSearchParams();
  for (const [c, v] of Object.entries(chosen)) q.append("where", `${c}=${v ?? ""}`);
  const text = q.toString();
  return `#/tables/${encodeURIComponent(table)}/facets${text ? `?${text}` : ""}`;
}

function valueText(v, kind) {
  if (v === null || v === undefined) return "null";
  if (typeof v === "number") return numFormat.format(v);
  return kind === "time" ? fmtTime(v) : String(v);
}

export async function tabProfile(panel, info, token) {
  put(panel, spinner("Profiling…"));
  const data = await api(`/tables/${encodeURIComponent(info.name)}/profile`);
  if (!current(token)) return;
  const cards = data.columns.map((c) => {
    const hist = c.histogram ? h("div", { class: "histogram", dataset: { column: c.name } }) : null;
    const card = h(
      "article",
      { class: "profile-card", dataset: { column: c.name } },
      h("h3", {}, h("span", { class: "mono" }, c.name), " ", h("span", { class: "muted small mono" }, c.type)),
      h(
        "dl",
        {},
        fact("Nulls", h("span", { class: "null-share" }, `${pct.format(c.null_share)} (${fmtInt(c.nulls)})`)),
        fact(
          "Distinct",
          h(
            "span",
            { class: "distinct", title: c.distinct_exact ? null : "an estimate (HyperLogLog)" },
            c.distinct === null ? "—" : `${c.distinct_exact ? "" : "≈ "}${fmtInt(c.distinct)}`,
          ),
        ),
        fact("Min", h("span", { class: "min" }, valueText(c.min, c.kind))),
        fact("Max", h("span", { class: "max" }, valueText(c.max, c.kind))),
        c.masked ? fact("Masked", "values are pseudonyms") : null,
        c.unique ? fact("Top values", "nearly all distinct") : null,
      ),
      c.top_values.length
        ? h(
            "details",
            { open: c.kind === "text" || c.kind === "boolean" },
            h("summary", { class: "small" }, "Top values"),
            h(
              "ol",
              { class: "top-values" },
              c.top_values.map((t) =>
                h(
                  "li",
                  {},
                  h(
                    "a",
                    {
                      class: "facet-value",
                      href: facetHref(info.name, { [c.name]: t.value }),
                      title: `Rows where ${c.name} is ${valueText(t.value)}`,
                    },
                    valueText(t.value),
                  ),
                  h("span", { class: "muted" }, fmtInt(t.count)),
                ),
              ),
            ),
          )
        : null,
      hist,
    );
    return { card, hist, column: c };
  });
  put(
    clear(panel),
    h(
      "p",
      { class: "muted small", id: "profile-meta" },
      `${fmtInt(data.rows)} rows at version ${fmtInt(data.version)} · computed in ${numFormat.format(data.seconds)} s`,
      data.cached ? " · kept for this version" : "",
    ),
    h("div", { class: "profile-grid", id: "profile" }, cards.map((c) => c.card)),
  );
  for (const { hist, column } of cards) {
    if (!hist) continue;
    const chart = makeChart(hist);
    if (!chart) continue;
    chart.setOption({
      animation: false,
      color: PALETTE,
      grid: { left: 4, right: 4, top: 4, bottom: 4, containLabel: false },
      tooltip: {
        trigger: "item",
        formatter: (p) => {
          const bin = column.histogram[p.dataIndex];
          return `${esc(numFormat.format(bin.from))} – ${esc(numFormat.format(bin.to))}: <b>${esc(fmtInt(bin.count))}</b>`;
        },
      },
      xAxis: { type: "category", show: false, data: column.histogram.map((b) => b.from) },
      yAxis: { type: "value", show: false },
      series: [{ type: "bar", barCategoryGap: "8%", data: column.histogram.map((b) => b.count) }],
    });
  }
}

export async function tabFacets(panel, info, token, query) {
  put(panel, spinner());
  const chosen = {};
  for (const item of query.getAll("where")) {
    const at = item.indexOf("=");
    if (at > 0) chosen[item.slice(0, at)] = item.slice(at + 1);
  }
  let columns = query.getAll("column");
  if (!columns.length) {
    const profile = await api(`/tables/${encodeURIComponent(info.name)}/profile`);
    columns = profile.suggested_facets;
  }
  columns = [...new Set([...columns, ...Object.keys(chosen)])];
  if (!columns.length) {
    put(clear(panel), h("p", { class: "muted" }, "No column with few distinct values to facet on."));
    return;
  }
  const q = new URLSearchParams();
  for (const c of columns) q.append("column", c);
  for (const [c, v] of Object.entries(chosen)) q.append("where", `${c}=${v}`);
  const data = await api(`/tables/${encodeURIComponent(info.name)}/facets?${q.toString()}`);
  if (!current(token)) return;
  put(
    clear(panel),
    Object.keys(chosen).length
      ? h(
          "div",
          { class: "chosen-facets", id: "chosen-facets" },
          Object.entries(chosen).map(([c, v]) => {
            const rest = { ...chosen };
            delete rest[c];
            return h(
              "a",
              { href: facetHref(info.name, rest), class: "badge tag", title: "Remove this filter" },
              `${c} = ${v === "" ? "null" : v} ×`,
            );
          }),
        )
      : null,
    h(
      "div",
      { class: "facets", id: "facets" },
      data.facets.map((f) =>
        h(
          "section",
          { dataset: { column: f.column } },
          h("h4", { class: "mono" }, f.column),
          h(
            "ol",
            { class: "top-values" },
            f.values.map((v) =>
              h(
                "li",
                {},
                h(
                  "a",
                  {
                    class: "facet-value",
                    href: facetHref(info.name, { ...chosen, [f.column]: v.value === null ? "" : v.value }),
                  },
                  valueText(v.value),
                ),
                h("span", { class: "muted" }, fmtInt(v.count)),
              ),
            ),
          ),
        ),
      ),
    ),
    h("p", { class: "muted small", id: "facet-count" }, `${fmtInt(data.count)} matching rows`),
    dataGrid(data.columns, data.rows, data.types),
  );
}
