// A query result a page at a time: the server sorts, filters and counts (POST
// /query/page), the page holds only the rows on show. Headers sort (click: ascending,
// again: descending, again: unsorted) and show each column's type; a filter per column;
// nulls marked; numbers and times formatted by type in the browser's locale and time
// zone; a cell or a row copied to the clipboard; columns resized by dragging.

import { api, errorBox } from "./api.js";
import { clear, h, put } from "./dom.js";
import { fmtInt } from "./format.js";
import { isNumericType, isTemporalType } from "./types.js";

const locale = navigator.language || "en-US";
const numbers = new Intl.NumberFormat(locale, { maximumFractionDigits: 6 });
// A time with a zone in the browser's zone (named); one without a zone as it is.
const stamps = new Intl.DateTimeFormat(locale, {
  dateStyle: "medium",
  timeStyle: "long",
});
const wallClock = new Intl.DateTimeFormat(locale, {
  dateStyle: "medium",
  timeStyle: "medium",
  timeZone: "UTC",
});

// A value as the grid shows it, and a title with the raw value when they differ.
export function shown(value, type) {
  if (value === null || value === undefined) return { text: "null", cls: "null" };
  if (typeof value === "object") return { text: JSON.stringify(value), cls: "json" };
  if (typeof value === "boolean") return { text: String(value), cls: "bool" };
  if (isNumericType(type)) {
    const n = Number(value);
    return { text: Number.isFinite(n) ? numbers.format(n) : String(value), cls: "num" };
  }
  if (isTemporalType(type) && /^timestamp/.test(type)) {
    const hasZone = /tz=/.test(type);
    const t = Date.parse(hasZone ? value : `${String(value).replace(" ", "T")}Z`);
    if (!Number.isNaN(t)) {
      const text = hasZone ? stamps.format(t) : wallClock.format(t);
      return { text, cls: "time", raw: String(value) };
    }
  }
  const text = String(value);
  return { text, cls: text.startsWith("pii:") ? "masked-value" : null };
}

function shortType(type) {
  return String(type || "")
    .replace(/^timestamp\[(\w+)(, tz=(.*))?\]$/, (m, unit, z, tz) => (tz ? `timestamp ${tz}` : "timestamp"))
    .replace(/^decimal128/, "decimal");
}

async function copyText(text, status) {
  try {
    await navigator.clipboard.writeText(text);
    status.textContent = "Copied.";
  } catch (err) {
    status.textContent = "The browser refused the clipboard.";
  }
  status.dataset.copied = text;
}

// request: {sql, params, limit}; onPage(meta) after each page arrives; onError(err).
export function resultGrid(request, { onPage, onError, size = 100 } = {}) {
  const view = { offset: 0, sort: [], filters: {} };
  const wrap = h("div", { class: "result-grid", id: "result-table" });
  const status = h("span", { class: "muted small", id: "copy-status", "aria-live": "polite" });
  const pager = h("div", { class: "pager" });
  let last = null;
  let selected = null; // [row, column]
  let seq = 0;
  let record = true; // the first page is the run the history keeps; the others are views

  async function load() {
    const mine = ++seq;
    wrap.setAttribute("aria-busy", "true");
    try {
      const body = {
        ...request,
        offset: view.offset,
        size,
        sort: view.sort,
        filters: view.filters,
        record,
      };
      record = false;
      const page = await api("/query/page", { json: body });
      if (mine !== seq) return;
      last = page;
      draw(page);
      if (onPage) onPage(page);
    } catch (err) {
      if (mine !== seq) return;
      if (onError) onError(err);
      else put(clear(wrap), errorBox(err, "Query failed"));
    } finally {
      if (mine === seq) wrap.removeAttribute("aria-busy");
    }
  }

  function sortBy(column) {
    const was = view.sort.find((s) => s.column === column);
    if (!was) view.sort = [{ column, direction: "asc" }];
    else if (was.direction === "asc") view.sort = [{ column, direction: "desc" }];
    else view.sort = [];
    view.offset = 0;
    load();
  }

  function draw(page) {
    const types = page.types || [];
    const head = h(
      "tr",
      {},
      page.columns.map((c, i) => {
        const sorted = view.sort.find((s) => s.column === c);
        return h(
          "th",
          {
            scope: "col",
            class: isNumericType(types[i]) ? "num" : null,
            "aria-sort": sorted ? (sorted.direction === "asc" ? "ascending" : "descending") : "none",
            dataset: { column: c },
          },
          h(
            "button",
            { type: "button", class: "sort-button", title: `Sort by ${c}`, onclick: () => sortBy(c) },
            h("span", { class: "col-name" }, c),
            h("span", { class: "sort-mark", "aria-hidden": "true" }, sorted ? (sorted.direction === "asc" ? " ▲" : " ▼") : ""),
          ),
          h("span", { class: "col-type" }, shortType(types[i])),
        );
      }),
    );
    const filters = h(
      "tr",
      { class: "filters" },
      page.columns.map((c) =>
        h(
          "th",
          {},
          h("input", {
            type: "text",
            class: "col-filter",
            placeholder: "filter",
            "aria-label": `Filter ${c}`,
            dataset: { column: c },
            value: view.filters[c] || "",
            title: "text it contains, or =v, >v, <v, >=v, <=v, null, !null; Enter applies",
            onkeydown: (e) => {
              if (e.key !== "Enter") return;
              const value = e.currentTarget.value.trim();
              if (value) view.filters[c] = value;
              else delete view.filters[c];
              view.offset = 0;
              load();
            },
          }),
        ),
      ),
    );
    const body = h(
      "tbody",
      {},
      page.rows.map((row, r) =>
        h(
          "tr",
          { dataset: { row: page.offset + r } },
          row.map((v, i) => {
            const s = shown(v, types[i]);
            return h(
              "td",
              {
                class: s.cls,
                title: s.raw || (s.text.length > 60 ? s.text : null),
                tabindex: "-1",
                onclick: (e) => select(e.currentTarget, r, i),
              },
              s.text,
            );
          }),
        ),
      ),
    );
    const table = h("table", { class: "data-table sortable" }, h("thead", {}, head, filters), body);
    put(clear(wrap), h("div", { class: "grid-wrap scroll" }, table));
    if (!page.rows.length) put(wrap, h("p", { class: "muted small" }, "No rows."));
    drawPager(page);
  }

  function select(td, r, i) {
    for (const el of wrap.querySelectorAll("td.selected")) el.classList.remove("selected");
    td.classList.add("selected");
    selected = [r, i];
  }

  function drawPager(page) {
    const first = page.total ? page.offset + 1 : 0;
    const lastRow = page.offset + page.rows.length;
    put(
      clear(pager),
      h(
        "button",
        {
          type: "button",
          class: "secondary outline small-button",
          id: "page-prev",
          disabled: page.offset === 0,
          onclick: () => {
            view.offset = Math.max(0, view.offset - size);
            load();
          },
        },
        "← Previous",
      ),
      h("span", { id: "page-range", class: "small" }, `${fmtInt(first)}–${fmtInt(lastRow)} of ${fmtInt(page.total)}`),
      h(
        "button",
        {
          type: "button",
          class: "secondary outline small-button",
          id: "page-next",
          disabled: lastRow >= page.total,
          onclick: () => {
            view.offset += size;
            load();
          },
        },
        "Next →",
      ),
      h(
        "button",
        {
          type: "button",
          class: "secondary outline small-button",
          id: "copy-cell",
          onclick: () => {
            if (!selected || !last) return;
            const v = last.rows[selected[0]][selected[1]];
            copyText(v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v), status);
          },
        },
        "Copy cell",
      ),
      h(
        "button",
        {
          type: "button",
          class: "secondary outline small-button",
          id: "copy-row",
          onclick: () => {
            if (!selected || !last) return;
            const row = Object.fromEntries(last.columns.map((c, i) => [c, last.rows[selected[0]][i]]));
            copyText(JSON.stringify(row), status);
          },
        },
        "Copy row",
      ),
      status,
    );
  }

  load();
  return { element: h("div", {}, wrap, pager), reload: load, current: () => last };
}
