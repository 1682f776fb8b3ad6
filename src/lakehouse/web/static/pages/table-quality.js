// A table's quality tab: its score, the score over time, and the latest run's checks,
// with samples of failing rows.

import { ApiError, api } from "../lib/api.js";
import { statusBadge } from "../lib/badges.js";
import { clear, fact, h, link, put, spinner } from "../lib/dom.js";
import { fmtInt, numFormat } from "../lib/format.js";
import { PALETTE, axisTooltip, makeChart } from "../lib/charts.js";
import { recordTable } from "../lib/grid.js";
import { current } from "../lib/nav.js";

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

export async function tabQuality(panel, info, token) {
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
  const scoresBox = h("section", { id: "quality-over-time" });
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
    scoresBox,
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
  drawScores(scoresBox, info, token);
}

// The score at each run that checked the table (GET /tables/{name}/quality/history).
async function drawScores(el, info, token) {
  let data;
  try {
    data = await api(`/tables/${encodeURIComponent(info.name)}/quality/history?runs=60`);
  } catch {
    return; // the latest results above say what there is to say
  }
  if (!current(token) || !data.scores.length) return;
  const canvas = h("div", { class: "chart small-chart", id: "quality-scores" });
  put(
    el,
    h("h3", {}, "Score over time"),
    h("p", { class: "muted small" }, `${data.scores.length} run${data.scores.length === 1 ? "" : "s"}`),
    canvas,
  );
  const chart = makeChart(canvas);
  if (!chart) return;
  chart.setOption({
    animation: false,
    color: PALETTE,
    grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
    tooltip: { trigger: "axis", formatter: axisTooltip(true, (v) => `${numFormat.format(v)}%`) },
    xAxis: { type: "time" },
    yAxis: { type: "value", min: (v) => Math.max(0, Math.floor(v.min - 5)), max: 100 },
    series: [
      {
        name: "score",
        type: "line",
        showSymbol: true,
        data: data.scores.map((s) => [s.checked_at, s.score]),
      },
    ],
  });
}
