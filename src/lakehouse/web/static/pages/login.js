// The login page: how to log in, shown whenever the server answers 401.

import { disposeCharts } from "../lib/charts.js";
import { clear, h, put } from "../lib/dom.js";
import { app } from "../lib/state.js";

export function showLogin(failed = false) {
  disposeCharts();
  clear(document.getElementById("whoami"));
  document.body.classList.add("logged-out");
  put(
    clear(app),
    h(
      "section",
      { class: "login-card", id: "login-needed" },
      h("h1", {}, "Log in to Lakehouse"),
      failed
        ? h(
            "p",
            { class: "error-box", role: "alert" },
            "That login link was not accepted: its token is unknown. Each start of the server prints a new one.",
          )
        : null,
      h(
        "p",
        {},
        "Open the login URL printed by ",
        h("code", {}, "lakehouse serve"),
        " in this browser:",
      ),
      h(
        "pre",
        { class: "sample" },
        `Open this URL to log in as admin (valid while this server runs):\n    ${location.origin}/?token=lh_…`,
      ),
      h(
        "p",
        { class: "muted" },
        "For another user, create a token with ",
        h("code", {}, "lakehouse token create --name NAME --role ROLE"),
        " and open ",
        h("code", {}, "/?token=TOKEN"),
        ".",
      ),
    ),
  );
}
