// Dashboards: the list of the server's dashboard files, and one dashboard: its panels on a
// 12-column grid, each fetched on its own for a time range and the dashboard's variables
// (both in the address, so that a view can be shared), fetched again every refresh_seconds
// until paused or the page is left.

import { api } from "../lib/api.js";
import { badge, statusBadge } from "../lib/badges.js";
import { clear, h, link, put } from "../lib/dom.js";
import { fmtClock, fmtDuration } from "../lib/format.js";
import { recordTable } from "../lib/grid.js";
import { current, onLeave, routeToken } from "../lib/nav.js";
import { app } from "../lib/state.js";
import { RANGES, rangeBounds, rangeCode, rangeLabel } from "../lib/time-range.js";
import { panelBox } from "./dashboard-panel.js";

const REFRESH_CHOICES = [0, 5, 10, 30, 60, 300, 900];

export function dashboardHref(name, query = null) {
  const q = query ? query.toString() : "";
  return `#/dashboards/${encodeURIComponent(name)}${q ? `?${q}` : ""}`;
}

function refreshText(seconds) {
  return seconds > 0 ? `every ${fmtDuration(seconds)}` : "off";
}

export async function viewDashboards() {
  const token = routeToken;
  document.title = "Dashboards · Lakehouse";
  const data = await api("/dashboards");
  if (!current(token)) return;
  put(app, h("div", { class: "page-head" }, h("h1", {}, "Dashboards")));
  if (!data.dashboards.length) {
    put(
      app,
      h(
        "div",
        { class: "empty-state", id: "dashboards-empty" },
        h("h3", {}, "No dashboards"),
        h(
          "p",
          { class: "muted" },
          "A dashboard is a YAML file in the folder the server reads dashboards from (",
          h("code", {}, "lakehouse serve --dashboards"),
          ").",
        ),
      ),
    );
    return;
  }
  put(
    app,
    recordTable(
      data.dashboards,
      [
        {
          label: "Dashboard",
          render: (d) => link(dashboardHref(d.name), d.title || d.name),
        },
        { label: "File", render: (d) => h("span", { class: "mono" }, d.file) },
        { key: "panels", label: "Panels", num: true },
        { label: "Refresh", render: (d) => (d.error ? null : refreshText(d.refresh_seconds)) },
        {
          label: "Status",
          render: (d) =>
            d.error
              ? h(
                  "span",
                  { class: "dash-file-error" },
                  badge("does not parse", "bad"),
                  h("span", { class: "error-text small" }, d.error),
                )
              : statusBadge("ok"),
        },
      ],
      { id: "dashboard-list" },
    ),
  );
}

// A problem of the file: where (file:line, panel), what, and what to do.
function problemItem(problem) {
  if (problem === null || typeof problem !== "object") return h("li", {}, String(problem));
  const where = [problem.line ? `${problem.file}:${problem.line}` : problem.file]
    .concat(problem.panel ? [`panel ${problem.panel}`] : [])
    .filter(Boolean)
    .join(", ");
  return h(
    "li",
    { dataset: { severity: problem.severity || "error" } },
    problem.severity === "warning" ? badge("warning", "warn") : badge("error", "bad"),
    where ? h("span", { class: "mono" }, where, ": ") : null,
    problem.message ?? JSON.stringify(problem),
    problem.hint ? h("span", { class: "muted" }, ` (${problem.hint})`) : null,
  );
}

// A variable's first value: its default, else a select's first option (dates: the
// server's today when none is given).
function initialValue(variable) {
  if (variable.default !== null && variable.default !== undefined) return String(variable.default);
  if (variable.kind === "select" && variable.options && variable.options.length)
    return String(variable.options[0]);
  return variable.kind === "text" ? "" : null;
}

// One input of a variable: a select of its options, a text or a date, with its label.
function variableField(variable, value, index, onChange) {
  const id = `dash-var-${index}`;
  let input;
  if (variable.kind === "select" && Array.isArray(variable.options)) {
    const options = variable.options.map((o) => String(o ?? ""));
    if (value !== null && !options.includes(value)) options.unshift(value);
    input = h(
      "select",
      { id },
      options.map((o) => h("option", { value: o, selected: o === value }, o)),
    );
  } else {
    input = h("input", {
      id,
      type: variable.kind === "date" ? "date" : "text",
      value: value ?? "",
      autocomplete: "off",
      spellcheck: "false",
    });
  }
  input.dataset.variable = variable.name;
  // A text goes when it is done (Enter or leaving the field); a select or date at once.
  input.addEventListener("change", () => onChange(variable.name, input.value));
  // A select whose options could not be read says why under it.
  const error = variable.error
    ? h(
        "small",
        { class: "error-text", id: `${id}-error` },
        variable.error.message,
        variable.error.hint ? ` (${variable.error.hint})` : null,
      )
    : null;
  if (error) input.setAttribute("aria-describedby", error.id);
  return h(
    "div",
    { class: "dash-field" },
    h("label", { for: id }, variable.label || variable.name),
    input,
    error,
  );
}

export async function viewDashboard(name, query) {
  const token = routeToken;
  document.title = "Dashboard · Lakehouse";
  const def = await api(`/dashboards/${encodeURIComponent(name)}`);
  if (!current(token)) return;
  const title = def.title || def.name || name;
  document.title = `${title} · Dashboards · Lakehouse`;
  const variables = def.variables || [];
  const fallbackRefresh = Number(def.refresh_seconds) > 0 ? Number(def.refresh_seconds) : 0;

  // What is on show: from the address first, else the dashboard's defaults.
  const view = {
    range: rangeCode(query.get("range")) || rangeCode(def.time_range) || "all",
    refresh: query.has("refresh")
      ? Math.max(0, Number.parseInt(query.get("refresh"), 10) || 0)
      : fallbackRefresh,
    values: {},
  };
  for (const v of variables)
    view.values[v.name] = query.has(v.name) ? query.get(v.name) : initialValue(v);

  const address = () => {
    const q = new URLSearchParams();
    q.set("range", view.range);
    for (const v of variables) {
      if (view.values[v.name] !== null) q.set(v.name, view.values[v.name]);
    }
    if (view.refresh !== fallbackRefresh) q.set("refresh", String(view.refresh));
    return q;
  };
  const remember = () => history.replaceState(null, "", dashboardHref(name, address()));

  // The controls: time range, variables, refresh interval, pause, refresh now.
  const ranges = [...RANGES];
  if (!ranges.some(([code]) => code === view.range))
    ranges.splice(-1, 0, [view.range, rangeLabel(view.range)]);
  const rangeSelect = h(
    "select",
    { id: "dash-range" },
    ranges.map(([code, label]) =>
      h("option", { value: code, selected: code === view.range }, label),
    ),
  );
  const refreshChoices = [...new Set([...REFRESH_CHOICES, fallbackRefresh, view.refresh])].sort(
    (a, b) => a - b,
  );
  const refreshSelect = h(
    "select",
    { id: "dash-refresh-every" },
    refreshChoices.map((s) =>
      h("option", { value: s, selected: s === view.refresh }, s ? fmtDuration(s) : "Off"),
    ),
  );
  const pauseButton = h(
    "button",
    { type: "button", id: "dash-pause", class: "secondary outline small-button" },
    "Pause",
  );
  const refreshButton = h(
    "button",
    { type: "button", id: "dash-refresh", class: "secondary outline small-button" },
    "Refresh now",
  );
  const updated = h("span", { id: "dash-updated", class: "muted small" });
  const fields = variables.map((v, i) =>
    variableField(v, view.values[v.name], i, (key, value) => {
      view.values[key] = value === "" && v.kind === "date" ? null : value;
      remember();
      load();
    }),
  );

  const boxes = (def.panels || []).map((p) => panelBox(p));
  const problems = def.problems || [];
  put(
    app,
    h(
      "div",
      { class: "page-head" },
      h(
        "div",
        {},
        h("span", { class: "crumbs" }, link("#/dashboards", "Dashboards"), " / ", def.name || name),
        h("h1", { id: "dash-title" }, title),
      ),
      h(
        "div",
        { class: "head-tools dash-refresh-tools" },
        updated,
        h(
          "div",
          { class: "dash-field" },
          h("label", { for: "dash-refresh-every" }, "Auto-refresh"),
          refreshSelect,
        ),
        pauseButton,
        refreshButton,
      ),
    ),
    h(
      "form",
      {
        class: "dash-controls",
        id: "dash-controls",
        "aria-label": "Filters",
        onsubmit: (e) => e.preventDefault(),
      },
      h(
        "div",
        { class: "dash-field" },
        h("label", { for: "dash-range" }, "Time range"),
        rangeSelect,
      ),
      fields,
    ),
    problems.length
      ? h(
          "div",
          { class: "warn-box", id: "dash-problems", role: "status" },
          h("strong", {}, "Problems in the dashboard file"),
          h("ul", {}, problems.map(problemItem)),
        )
      : null,
    boxes.length
      ? h("div", { class: "dash-grid", id: "dash-grid" }, boxes.map((b) => b.el))
      : h("p", { class: "muted", id: "dash-no-panels" }, "This dashboard has no panels."),
  );

  // Fetching: every panel on its own; a newer round makes an older one's answers stale.
  let round = 0;
  let timer = null;
  let paused = false;
  const base = `/dashboards/${encodeURIComponent(name)}/panels/`;

  const schedule = () => {
    clearTimeout(timer);
    timer = null;
    if (!paused && view.refresh > 0 && current(token))
      timer = setTimeout(load, view.refresh * 1000);
  };

  const load = async () => {
    clearTimeout(timer);
    round += 1;
    const mine = round;
    const params = new URLSearchParams(rangeBounds(view.range));
    for (const v of variables) {
      const value = view.values[v.name];
      if (value !== null && value !== undefined) params.set(v.name, value);
    }
    const fresh = () => current(token) && mine === round;
    await Promise.all(
      boxes.map(async (box) => {
        box.busy(true);
        try {
          const result = await api(`${base}${encodeURIComponent(box.panel.id)}?${params}`);
          if (fresh()) box.show(result);
        } catch (err) {
          if (fresh()) box.fail(err);
        } finally {
          if (fresh()) box.busy(false);
        }
      }),
    );
    if (!fresh()) return;
    const now = new Date();
    put(
      clear(updated),
      "updated ",
      h("time", { datetime: now.toISOString(), id: "dash-updated-at" }, fmtClock(now)),
    );
    schedule();
  };

  const showPaused = () => {
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", String(paused));
    pauseButton.disabled = view.refresh === 0;
    pauseButton.title = view.refresh
      ? `${paused ? "Resume" : "Pause"} the refresh ${refreshText(view.refresh)}`
      : "Auto-refresh is off";
  };

  rangeSelect.addEventListener("change", () => {
    view.range = rangeSelect.value;
    remember();
    load();
  });
  refreshSelect.addEventListener("change", () => {
    view.refresh = Number(refreshSelect.value);
    remember();
    showPaused();
    schedule();
  });
  pauseButton.addEventListener("click", () => {
    paused = !paused;
    showPaused();
    schedule();
  });
  refreshButton.addEventListener("click", () => load());
  onLeave(() => {
    clearTimeout(timer);
    round += 1;
  });
  showPaused();
  await load();
}
