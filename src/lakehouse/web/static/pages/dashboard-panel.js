// One panel of a dashboard: its box on the 12-column grid, its header (title, the engine
// that answered, the time it took) and its figure: a stat, a chart (line, area, bar, pie)
// or a table. A new result draws into the same box (a chart through setOption on the same
// chart); an error shows inside the box, the other panels are not concerned.

import { ApiError, errorBox } from "../lib/api.js";
import { badge } from "../lib/badges.js";
import { PALETTE, axisTooltip, esc, makeChart } from "../lib/charts.js";
import { clear, h, put, spinner } from "../lib/dom.js";
import { fmtAxis, fmtInt, fmtMeasure } from "../lib/format.js";
import { dataGrid } from "../lib/grid.js";
import { isNumericType, isTemporalType } from "../lib/types.js";

const CHART_KINDS = ["line", "area", "bar", "pie"];
let boxes = 0;

function clamp(value, low, high, fallback) {
  const n = Math.round(Number(value));
  return Number.isFinite(n) ? Math.min(Math.max(n, low), high) : fallback;
}

// Where the box sits: columns x+1 to x+w of 12, rows y+1 to y+h (auto when y is not given).
function place(el, grid) {
  const g = grid || {};
  const w = clamp(g.w, 1, 12, 12);
  const x = clamp(g.x, 0, 12 - w, 0);
  el.style.setProperty("--panel-column", `${x + 1} / span ${w}`);
  const rows = clamp(g.h, 1, 24, 3);
  const y = clamp(g.y, 0, 999, null);
  const row = y === null ? `auto / span ${rows}` : `${y + 1} / span ${rows}`;
  el.style.setProperty("--panel-row", row);
  el.style.setProperty("--panel-rows", `span ${rows}`);
}

function asList(value) {
  if (value === null || value === undefined || value === "") return [];
  return Array.isArray(value) ? value : [value];
}

function number(v) {
  if (v === null || v === undefined || v === "") return null;
  const n = Number(v);
  return Number.isNaN(n) ? null : n;
}

// The columns a panel draws: x (named, else the first column that is not a number), the
// series column (pivot) and the y columns (named, else every other numeric column).
function columnsOf(panel, result) {
  const { columns, types = [] } = result;
  const index = (name) => (name ? columns.indexOf(name) : -1);
  let x = index(panel.x);
  if (x < 0) x = Math.max(0, types.findIndex((t) => !isNumericType(t)));
  const series = index(panel.series);
  let ys = asList(panel.y)
    .map(index)
    .filter((i) => i >= 0);
  if (!ys.length)
    ys = columns.map((_, i) => i).filter((i) => i !== x && i !== series && isNumericType(types[i]));
  return { x, series, ys };
}

// The stat's figure: the first row's y column (or its first numeric column).
export function statValue(panel, result) {
  const row = result.rows[0];
  if (!row) return null;
  const named = asList(panel.y).map((name) => result.columns.indexOf(name));
  let i = named.find((n) => n >= 0);
  if (i === undefined) i = (result.types || []).findIndex((t) => isNumericType(t));
  return row[Math.max(i, 0)];
}

// The colour of a figure: the one of the highest threshold at or below it.
export function thresholdColor(thresholds, value) {
  const n = number(value);
  if (n === null) return null;
  let best = null;
  for (const t of thresholds || []) {
    const at = number(t.value);
    if (at !== null && at <= n && (best === null || at >= number(best.value))) best = t;
  }
  return best ? best.color : null;
}

function axisOption(panel, result) {
  const { columns, rows, types = [] } = result;
  const { x, series, ys } = columnsOf(panel, result);
  const time = isTemporalType(types[x]) && !/^time(32|64)/.test(types[x]);
  // One series per y column, or per value of the series column (its first y column).
  let groups = ys.map((y) => ({ name: columns[y], rows, y }));
  if (series >= 0 && ys.length) {
    const byValue = new Map();
    for (const r of rows) {
      const name = String(r[series] ?? "null");
      if (!byValue.has(name)) byValue.set(name, { name, rows: [], y: ys[0] });
      byValue.get(name).rows.push(r);
    }
    groups = [...byValue.values()];
  }
  let xAxis;
  let data;
  if (time) {
    // Days (a date column) are labelled as days, one tick at most per day.
    xAxis = /^date/.test(types[x])
      ? {
          type: "time",
          minInterval: 86400000,
          axisLabel: { formatter: "{MMM} {d}", hideOverlap: true },
        }
      : { type: "time", axisLabel: { hideOverlap: true } };
    data = (g) =>
      g.rows
        .filter((r) => r[x] !== null)
        .sort((a, b) => Date.parse(a[x]) - Date.parse(b[x]))
        .map((r) => [r[x], number(r[g.y])]);
  } else {
    const labels = [...new Set(rows.map((r) => String(r[x] ?? "null")))];
    xAxis = { type: "category", data: labels, axisLabel: { hideOverlap: true } };
    data = (g) => {
      const values = new Map(g.rows.map((r) => [String(r[x] ?? "null"), number(r[g.y])]));
      return labels.map((label) => values.get(label) ?? null);
    };
  }
  const kind = panel.kind === "area" ? "line" : panel.kind;
  const show = (v) => fmtMeasure(v, panel.format, panel.unit);
  const points = rows.length / Math.max(groups.length, 1);
  return {
    tooltip: {
      trigger: "axis",
      formatter: axisTooltip(time && (/^date/.test(types[x]) ? "date" : true), show),
    },
    legend: { show: groups.length > 1, top: 0, type: "scroll" },
    grid: { left: 8, right: 16, top: groups.length > 1 ? 30 : 10, bottom: 4, containLabel: true },
    xAxis,
    yAxis: {
      type: "value",
      scale: panel.kind === "line",
      axisLabel: { formatter: (v) => fmtAxis(v, panel.format, panel.unit) },
    },
    series: groups.map((g) => ({
      name: g.name,
      type: kind,
      data: data(g),
      showSymbol: points <= 40,
      barMaxWidth: 56,
      connectNulls: false,
      areaStyle: panel.kind === "area" ? { opacity: 0.25 } : undefined,
    })),
  };
}

function pieOption(panel, result) {
  const { x, ys } = columnsOf(panel, result);
  const y = ys[0];
  const show = (v) => fmtMeasure(v, panel.format, panel.unit);
  return {
    tooltip: {
      trigger: "item",
      // Markup of escaped values only (ECharts inserts tooltip strings as HTML).
      formatter: (p) =>
        `${p.marker}${esc(p.name)}: <b>${esc(show(p.value))}</b> (${esc(p.percent)} %)`,
    },
    legend: { type: "scroll", orient: "vertical", right: 0, top: "middle" },
    series: [
      {
        type: "pie",
        radius: ["35%", "70%"],
        center: ["40%", "50%"],
        label: { show: false },
        data:
          y === undefined
            ? []
            : result.rows.map((r) => ({ name: String(r[x] ?? "null"), value: number(r[y]) })),
      },
    ],
  };
}

export function panelBox(panel) {
  boxes += 1;
  const titleId = `panel-title-${boxes}`;
  const kind = panel.kind;
  const meta = h("span", { class: "panel-meta" });
  const note = h("div", { class: "panel-note" }, spinner());
  const content = h("div", { class: `panel-content panel-${kind}`, hidden: true });
  const el = h(
    "section",
    {
      class: "panel",
      "aria-labelledby": titleId,
      dataset: { panel: panel.id, kind },
    },
    h(
      "header",
      { class: "panel-head" },
      h(
        "h2",
        { class: "panel-title", id: titleId, title: panel.description || null },
        panel.title || panel.id,
      ),
      meta,
    ),
    h("div", { class: "panel-body" }, note, content),
  );
  place(el, panel.grid);
  let chart = null;
  let figure = null;

  const showNote = (...children) => {
    put(clear(note), ...children);
    note.hidden = false;
    content.hidden = true;
  };

  const showMeta = (result) => {
    clear(meta);
    if (result.engine) {
      put(meta, badge(result.engine, `engine engine-${result.engine}`));
      meta.lastChild.title = `answered by the ${result.engine} engine`;
    }
    if (result.elapsed_ms !== null && result.elapsed_ms !== undefined)
      put(meta, h("span", { class: "elapsed" }, `${fmtInt(Math.round(result.elapsed_ms))} ms`));
    if (result.truncated) put(meta, badge("truncated", "warn"));
  };

  const fail = (err) => {
    el.dataset.state = "error";
    showNote(errorBox(err, "This panel failed"));
  };

  const draw = (result) => {
    if (kind === "stat") {
      const value = statValue(panel, result);
      if (!figure) {
        figure = h("div", { class: "stat-value" });
        put(content, figure);
      }
      figure.textContent = fmtMeasure(value, panel.format, panel.unit);
      figure.title = value === null || value === undefined ? "no value" : String(value);
      const color = thresholdColor(panel.thresholds, value);
      figure.style.color = color || "";
      return true;
    }
    if (!result.rows.length) {
      showNote(h("p", { class: "muted small" }, "No rows."));
      return false;
    }
    if (kind === "table") {
      const old = content.querySelector(".grid-wrap");
      const [top, left] = old ? [old.scrollTop, old.scrollLeft] : [0, 0];
      put(clear(content), dataGrid(result.columns, result.rows, result.types, { max: 500 }));
      const wrap = content.querySelector(".grid-wrap");
      wrap.tabIndex = 0; // scrolled with the keyboard
      wrap.setAttribute("aria-labelledby", titleId);
      wrap.scrollTop = top;
      wrap.scrollLeft = left;
      return true;
    }
    if (!CHART_KINDS.includes(kind)) {
      showNote(h("p", { class: "muted small" }, `Unknown panel kind “${kind}”.`));
      return false;
    }
    // The chart is made once, when its box first has a result to show, then updated.
    content.hidden = false;
    note.hidden = true;
    if (!figure) {
      figure = h("div", { class: "panel-chart" });
      put(content, figure);
      chart = makeChart(figure);
      if (!chart) return true;
      chart.setOption({ animation: false, color: PALETTE, aria: { enabled: true } });
    } else if (chart) {
      chart.resize();
    }
    if (chart) {
      const option = kind === "pie" ? pieOption(panel, result) : axisOption(panel, result);
      chart.setOption(option, { replaceMerge: ["series"] });
    }
    return true;
  };

  const show = (result) => {
    showMeta(result);
    el.dataset.rows = String(result.row_count ?? result.rows?.length ?? 0);
    if (result.error) {
      fail(new ApiError(0, result.error.message, result.error.hint));
      return;
    }
    if (draw(result)) {
      el.dataset.state = "ok";
      note.hidden = true;
      content.hidden = false;
    } else {
      el.dataset.state = "empty";
    }
  };

  const busy = (on) => {
    el.classList.toggle("is-loading", on);
  };

  return { el, panel, show, fail, busy };
}
