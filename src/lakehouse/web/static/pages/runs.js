// Pipelines and their recent runs; a pipeline can be started from here.

import { api, errorBox } from "../lib/api.js";
import { layerBadge, statusBadge } from "../lib/badges.js";
import { h, link, put } from "../lib/dom.js";
import { ago, fmtSeconds, fmtTime } from "../lib/format.js";
import { recordTable } from "../lib/grid.js";
import { LAYERS } from "../lib/layers.js";
import { current, go, routeToken } from "../lib/nav.js";
import { app, state } from "../lib/state.js";

export async function viewRuns() {
  const token = routeToken;
  document.title = "Runs · Lakehouse";
  const [pipes, runs] = await Promise.all([api("/pipelines"), api("/runs?limit=50")]);
  if (!current(token)) return;
  const canRun = Boolean(state.me.can && state.me.can.run_pipeline);
  put(app, h("div", { class: "page-head" }, h("h1", {}, "Pipelines")));
  if (!pipes.pipelines.length) {
    put(
      app,
      h(
        "p",
        { class: "muted" },
        "No pipelines: start the server with ",
        h("code", {}, "lakehouse serve --pipelines DIR"),
        ".",
      ),
    );
  } else {
    put(
      app,
      recordTable(
        pipes.pipelines,
        [
          { label: "Pipeline", render: (p) => h("strong", { class: "mono" }, p.name) },
          {
            label: "Description",
            render: (p) => h("span", { class: "desc" }, p.description || ""),
          },
          {
            label: "Datasets",
            render: (p) => {
              const counts = {};
              for (const d of p.datasets) counts[d.layer] = (counts[d.layer] || 0) + 1;
              return h(
                "span",
                {},
                LAYERS.filter((l) => counts[l]).map((l) =>
                  h("span", { class: "count-chip" }, layerBadge(l), ` ${counts[l]}`),
                ),
              );
            },
          },
          {
            label: "Last run",
            render: (p) =>
              p.last_run
                ? h(
                    "span",
                    {},
                    statusBadge(p.last_run.status),
                    " ",
                    link(
                      `#/runs/${encodeURIComponent(p.last_run.run_id)}`,
                      ago(p.last_run.started_at) || fmtTime(p.last_run.started_at),
                    ),
                  )
                : h("span", { class: "muted" }, "never"),
          },
          {
            label: "",
            render: (p) =>
              canRun
                ? h(
                    "span",
                    { class: "run-controls" },
                    h(
                      "label",
                      { class: "small" },
                      h("input", {
                        type: "checkbox",
                        class: "full-refresh",
                        dataset: { pipeline: p.name },
                      }),
                      "full refresh",
                    ),
                    h(
                      "button",
                      {
                        type: "button",
                        class: "small-button run-pipeline",
                        dataset: { pipeline: p.name },
                        onclick: (e) => startRun(p.name, e.currentTarget),
                      },
                      "Run",
                    ),
                  )
                : h("span", {}),
          },
        ],
        { id: "pipelines-table" },
      ),
    );
  }
  put(app, h("h2", {}, "Recent runs"));
  if (!runs.runs.length) {
    put(app, h("p", { class: "muted", id: "runs-empty" }, "No runs yet."));
    return;
  }
  put(app, runsTable(runs.runs));
}

export function runsTable(runs) {
  return recordTable(
    runs,
    [
      {
        label: "Run",
        render: (r) =>
          link(`#/runs/${encodeURIComponent(r.run_id)}`, r.run_id, { class: "mono run-link" }),
      },
      { key: "pipeline", label: "Pipeline" },
      { label: "Kind", render: (r) => r.kind || "run" },
      { label: "Status", render: (r) => statusBadge(r.status) },
      {
        label: "Started",
        render: (r) => h("span", { title: ago(r.started_at) }, fmtTime(r.started_at)),
      },
      { label: "Duration", num: true, render: (r) => fmtSeconds(r.seconds) },
      { key: "datasets", label: "Datasets", num: true },
      { key: "rows_written", label: "Rows written", num: true },
      {
        label: "Error",
        render: (r) => (r.error ? h("span", { class: "error-text small" }, r.error) : ""),
      },
    ],
    { id: "runs-table" },
  );
}

async function startRun(name, button) {
  const box = document.querySelector(`.full-refresh[data-pipeline="${CSS.escape(name)}"]`);
  button.setAttribute("aria-busy", "true");
  button.disabled = true;
  try {
    const started = await api(`/pipelines/${encodeURIComponent(name)}/runs`, {
      json: { full_refresh: Boolean(box && box.checked), select: [] },
    });
    go(`#/runs/${encodeURIComponent(started.run_id)}`);
  } catch (err) {
    button.removeAttribute("aria-busy");
    button.disabled = false;
    app.prepend(errorBox(err, "Could not start the run"));
  }
}
