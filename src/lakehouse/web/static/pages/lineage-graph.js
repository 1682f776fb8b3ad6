// The lineage graph: tables in columns by depth, edges pointing downstream.

import { esc, makeChart } from "../lib/charts.js";
import { h } from "../lib/dom.js";
import { LAYER_COLORS } from "../lib/layers.js";
import { go, tableHref } from "../lib/nav.js";

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

export function drawLineage(el, data) {
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
