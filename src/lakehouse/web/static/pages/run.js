// One run: its figures per dataset, followed while it is in progress.

import { api, errorBox } from "../lib/api.js";
import { statusBadge } from "../lib/badges.js";
import { clear, fact, h, link, put, spinner } from "../lib/dom.js";
import { countsText, fmtInt, fmtSeconds, fmtTime } from "../lib/format.js";
import { recordTable } from "../lib/grid.js";
import { current, poll, routeToken, tableHref } from "../lib/nav.js";
import { app } from "../lib/state.js";

export async function viewRun(id) {
  const token = routeToken;
  document.title = `Run ${id} · Lakehouse`;
  const run = await api(`/runs/${encodeURIComponent(id)}`);
  if (!current(token)) return;
  put(
    clear(app),
    h(
      "nav",
      { class: "crumbs", "aria-label": "Breadcrumb" },
      link("#/runs", "Runs"),
      " / ",
      h("span", { class: "mono" }, id),
    ),
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, "Run ", h("span", { class: "mono" }, run.run_id || id)),
      h("div", { class: "head-tools", id: "run-status" }, statusBadge(run.status)),
    ),
    h(
      "dl",
      { class: "facts" },
      fact("Pipeline", run.pipeline || ""),
      run.kind === "replay" ? fact("Kind", "replay of quarantined rows") : null,
      fact("Started", fmtTime(run.started_at) || "—"),
      fact("Ended", fmtTime(run.ended_at) || "—"),
      fact("Duration", fmtSeconds(run.seconds) || "—"),
      run.full_refresh ? fact("Full refresh", "yes") : null,
      run.selection ? fact("Selection", run.selection) : null,
      run.rows_written !== undefined ? fact("Rows written", fmtInt(run.rows_written)) : null,
    ),
    run.error
      ? h(
          "div",
          { class: "error-box", role: "alert" },
          h("strong", {}, "Error"),
          h("pre", { class: "error-message" }, run.error),
        )
      : null,
  );
  const datasets = run.datasets || [];
  if (datasets.length) {
    const total = (k) => datasets.reduce((s, d) => s + (d[k] || 0), 0);
    put(
      app,
      h("h2", {}, "Datasets"),
      recordTable(
        [
          ...datasets,
          {
            dataset: "Total",
            rows_read: total("rows_read"),
            rows_written: total("rows_written"),
            rows_dropped: total("rows_dropped"),
            rows_quarantined: total("rows_quarantined"),
            rows_deduplicated: total("rows_deduplicated"),
            seconds: total("seconds"),
            total: true,
          },
        ],
        [
          {
            label: "Dataset",
            render: (d) =>
              d.total
                ? h("strong", {}, "Total")
                : link(tableHref(d.dataset), d.dataset, { class: "mono" }),
          },
          { key: "kind", label: "Kind" },
          { label: "Status", render: (d) => (d.total ? "" : statusBadge(d.status)) },
          { key: "rows_read", label: "Read", num: true },
          { key: "rows_written", label: "Written", num: true },
          {
            label: "Dropped",
            num: true,
            render: (d) =>
              d.rows_dropped
                ? h(
                    "span",
                    { title: countsText(d.dropped_by) ? `by ${countsText(d.dropped_by)}` : null },
                    fmtInt(d.rows_dropped),
                  )
                : d.rows_dropped,
          },
          { key: "rows_quarantined", label: "Quarantined", num: true },
          { key: "rows_deduplicated", label: "Deduplicated", num: true },
          {
            label: "Rescued values",
            render: (d) => countsText(d.rescued_values),
          },
          { key: "version_written", label: "Version", num: true },
          {
            label: "Seconds",
            num: true,
            render: (d) =>
              d.seconds === null || d.seconds === undefined ? "" : Number(d.seconds).toFixed(2),
          },
          {
            label: "Error",
            render: (d) => (d.error ? h("span", { class: "error-text small" }, d.error) : ""),
          },
        ],
        { id: "datasets-table" },
      ),
    );
  } else if (!["starting", "running"].includes(run.status)) {
    put(app, h("p", { class: "muted" }, "No dataset figures recorded for this run."));
  }
  if (["starting", "running"].includes(run.status)) {
    put(app, spinner("The run is in progress; this page follows it."));
    poll(() => {
      if (current(token)) viewRun(id).catch((err) => put(app, errorBox(err)));
    }, 1500);
  }
}
