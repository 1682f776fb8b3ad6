// The health report and the alerts on the Health page: the overall state and its reasons,
// each layer's tables with their state and reasons, the firing alerts, the alert history.

import { api } from "../lib/api.js";
import { badge, layerBadge } from "../lib/badges.js";
import { h, link } from "../lib/dom.js";
import { ago, fmtBytes, fmtInt, fmtTime } from "../lib/format.js";
import { recordTable } from "../lib/grid.js";
import { LAYERS } from "../lib/layers.js";

const KINDS = {
  healthy: "good",
  ok: "good",
  succeeded: "good",
  failed: "bad",
  resolved: "good",
  delivered: "good",
  degraded: "warn",
  warning: "warn",
  pending: "warn",
  fired: "bad",
  unhealthy: "bad",
  critical: "bad",
};

export function stateBadge(state) {
  return badge(state ?? "unknown", KINDS[state] || "neutral");
}

// The report and the alerts (null when the caller may not have them).
export async function loadReport() {
  const [report, alerts] = await Promise.all([
    api("/health/report").catch(() => null),
    api("/alerts?limit=50").catch(() => null),
  ]);
  return { report, alerts };
}

function span(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Number(seconds);
  if (s >= 86400) return `${(s / 86400).toFixed(1)} d`;
  if (s >= 3600) return `${(s / 3600).toFixed(1)} h`;
  if (s >= 60) return `${Math.round(s / 60)} min`;
  return `${Math.round(s)} s`;
}

function reasons(list) {
  if (!list || !list.length) return "";
  return h("ul", { class: "reasons" }, list.map((r) => h("li", {}, r)));
}

function tablesOfLayer(tables) {
  return recordTable(
    tables,
    [
      {
        label: "Table",
        render: (t) => link(`#/tables/${encodeURIComponent(t.table)}`, t.table, { class: "mono" }),
      },
      { label: "State", render: (t) => stateBadge(t.state) },
      { label: "Reasons", render: (t) => reasons(t.reasons) },
      {
        label: "Age / SLA",
        render: (t) => (t.sla_seconds ? `${span(t.age_seconds)} / ${span(t.sla_seconds)}` : span(t.age_seconds)),
      },
      { label: "Last run", render: (t) => (t.last_run ? stateBadge(t.last_run.status) : "") },
      {
        label: "Quality",
        num: true,
        render: (t) => (t.quality_pass_rate === null ? "" : `${Math.round(t.quality_pass_rate * 100)} %`),
      },
      { key: "small_files", label: "Small files", num: true },
      { label: "Size", num: true, render: (t) => fmtBytes(t.size_bytes) },
      {
        label: "Growth / day",
        num: true,
        render: (t) => (t.growth_bytes_per_day === null ? "" : fmtBytes(t.growth_bytes_per_day)),
      },
      { key: "versions_since_compaction", label: "Since compaction", num: true },
      { label: "Serving lag", num: true, render: (t) => span(t.serving_lag_seconds) },
    ],
    { class: "data-table health-tables" },
  );
}

function alertTable(rows, id, withEvent) {
  const spec = [
    {
      label: "When",
      render: (a) => h("span", { title: fmtTime(a.occurred_at) }, ago(a.occurred_at) || fmtTime(a.occurred_at)),
    },
    { label: "Rule", render: (a) => h("span", { class: "mono" }, a.rule) },
    { label: "Severity", render: (a) => stateBadge(a.severity) },
    { label: "Subject", render: (a) => h("span", { class: "mono" }, a.subject) },
    { key: "message", label: "Message" },
  ];
  if (withEvent) {
    spec.splice(1, 0, { label: "Event", render: (a) => stateBadge(a.event) });
    spec.push({ label: "Delivery", render: (a) => stateBadge(a.delivery) });
  }
  return recordTable(rows, spec, { id });
}

// The blocks of the page, in order.
export function reportBlocks({ report, alerts }) {
  const out = [];
  if (report) {
    out.push(
      h(
        "h2",
        {},
        "Report ",
        h("span", { id: "report-state" }, stateBadge(report.state)),
        h("span", { class: "muted small" }, ` ${fmtInt(report.tables.length)} tables, ${fmtTime(report.generated_at)}`),
      ),
    );
    if (report.reasons.length) out.push(h("div", { id: "report-reasons" }, reasons(report.reasons)));
    const layers = LAYERS.filter((l) => report.layers[l]).concat(
      Object.keys(report.layers).filter((l) => !LAYERS.includes(l)),
    );
    for (const layer of layers) {
      const tables = report.tables.filter((t) => t.layer === layer);
      out.push(
        h(
          "section",
          { class: "health-layer", "data-layer": layer },
          h("h3", {}, layerBadge(layer), " ", stateBadge(report.layers[layer].state)),
          tablesOfLayer(tables),
        ),
      );
    }
  }
  if (report && report.pipelines.length) {
    out.push(h("h3", {}, "Pipelines"));
    out.push(
      recordTable(
        report.pipelines,
        [
          { label: "Pipeline", render: (p) => h("span", { class: "mono" }, p.pipeline) },
          { label: "State", render: (p) => stateBadge(p.state) },
          { label: "Reasons", render: (p) => reasons(p.reasons) },
          { key: "schedule", label: "Schedule" },
          { label: "Last run", render: (p) => (p.last_run ? stateBadge(p.last_run.status) : "") },
          { label: "Behind", num: true, render: (p) => (p.schedule ? span(p.lag_seconds) : "") },
        ],
        { id: "health-pipelines" },
      ),
    );
  }
  if (alerts) {
    out.push(h("h2", {}, "Firing alerts"));
    out.push(
      alerts.firing.length
        ? alertTable(alerts.firing, "alerts-firing", false)
        : h("p", { class: "muted", id: "alerts-firing" }, "No alert is firing."),
    );
    if (alerts.history.length) {
      out.push(h("h2", {}, "Alert history"));
      out.push(alertTable(alerts.history, "alerts-history", true));
    }
  }
  return out;
}
