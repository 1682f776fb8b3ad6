// The Lakehouse web UI: one page, hash routes, plain DOM. Every value from the API goes
// into the page as text (textContent, attributes), never as markup.
//
// This entry logs in and starts the router (router.js); lib/ holds what the pages share
// (API client, DOM helpers, data grid, charts, formatting, state), pages/ one module per page.

import { ApiError, api, errorBox, onLoggedOut } from "./lib/api.js";
import { clear, put } from "./lib/dom.js";
import { renderWho } from "./lib/header.js";
import { onNavigate } from "./lib/nav.js";
import { app, state } from "./lib/state.js";
import { showLogin } from "./pages/login.js";
import { route } from "./router.js";

onLoggedOut(() => showLogin());
onNavigate(route);

async function start() {
  const params = new URLSearchParams(location.search);
  if (params.has("login")) {
    const failed = params.get("login") === "failed";
    history.replaceState(null, "", `/${location.hash}`);
    if (failed) {
      showLogin(true);
      return;
    }
  }
  try {
    state.me = await api("/me");
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401))
      put(clear(app), errorBox(err, "The server did not answer"));
    return;
  }
  document.body.classList.remove("logged-out");
  renderWho(state.me);
  window.addEventListener("hashchange", route);
  await route();
}

start();
