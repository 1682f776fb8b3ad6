// The hash routes: which page each address shows. A page is a module in pages/ whose view
// fills the page element; it gets a route here and, for a section, a link in index.html's
// nav (data-nav: the address's first part).

import { ApiError, errorBox } from "./lib/api.js";
import { disposeCharts } from "./lib/charts.js";
import { clear, h, link, put } from "./lib/dom.js";
import { markNav } from "./lib/header.js";
import { go, nextRoute } from "./lib/nav.js";
import { app, state } from "./lib/state.js";
import { viewDashboard, viewDashboards } from "./pages/dashboards.js";
import { viewHealth } from "./pages/health.js";
import { viewLineage, viewLineagePicker } from "./pages/lineage.js";
import { viewRun } from "./pages/run.js";
import { viewRuns } from "./pages/runs.js";
import { viewSql } from "./pages/sql.js";
import { viewTable } from "./pages/table.js";
import { viewTables } from "./pages/tables.js";

const routes = [
  [/^#?\/?$/, () => go("#/tables")],
  [/^#\/tables\/?$/, (m, query) => viewTables(query.get("q") || "")],
  [
    /^#\/tables\/([^/]+)(?:\/([a-z]+))?$/,
    (m, query) => viewTable(decodeURIComponent(m[1]), m[2] || "schema", query),
  ],
  [/^#\/sql\/?$/, (m, query) => viewSql(query)],
  [/^#\/lineage\/?$/, () => viewLineagePicker()],
  [/^#\/lineage\/([^/]+)$/, (m) => viewLineage(decodeURIComponent(m[1]))],
  [/^#\/runs\/?$/, () => viewRuns()],
  [/^#\/runs\/([^/]+)$/, (m) => viewRun(decodeURIComponent(m[1]))],
  [/^#\/dashboards\/?$/, () => viewDashboards()],
  [/^#\/dashboards\/([^/]+)$/, (m, query) => viewDashboard(decodeURIComponent(m[1]), query)],
  [/^#\/health\/?$/, () => viewHealth()],
];

export async function route() {
  if (!state.me) return;
  nextRoute();
  disposeCharts();
  const [path, search] = (location.hash || "#/").split("?");
  const query = new URLSearchParams(search || "");
  for (const [pattern, view] of routes) {
    const m = path.match(pattern);
    if (m) {
      markNav((path.split("/")[1] || "tables").replace(/\W/g, ""));
      clear(app);
      try {
        await view(m, query);
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 401)) put(app, errorBox(err));
      }
      return;
    }
  }
  markNav("");
  put(
    clear(app),
    h("h1", {}, "Not found"),
    h("p", {}, "No page here. ", link("#/tables", "Browse the tables")),
  );
}
