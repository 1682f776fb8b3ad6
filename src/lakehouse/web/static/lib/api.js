// The client of the server's API: requests with the login cookie, errors with the
// server's message and hint, and the box that shows them.

import { h } from "./dom.js";

let loggedOut = () => {};

// What to do when the server says the browser is not logged in (401).
export function onLoggedOut(handler) {
  loggedOut = handler;
}

export class ApiError extends Error {
  constructor(status, message, hint, position = null) {
    super(message);
    this.status = status;
    this.hint = hint;
    this.position = position; // where in a statement the error is: {line, column}
  }
}

export async function api(path, options = {}) {
  const init = { credentials: "same-origin", headers: { Accept: "application/json" }, ...options };
  if (options.json !== undefined) {
    init.method = options.method || "POST";
    init.headers = { ...init.headers, "Content-Type": "application/json" };
    init.body = JSON.stringify(options.json);
    delete init.json;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "the server did not answer", "is `lakehouse serve` still running?");
  }
  if (response.status === 401) {
    loggedOut();
    throw new ApiError(401, "not logged in", null);
  }
  if (!response.ok) throw await apiError(response);
  if (options.raw) return response;
  return response.json();
}

async function apiError(response) {
  let message = `${response.status} ${response.statusText}`;
  let hint = null;
  let position = null;
  try {
    const body = await response.json();
    if (body && body.error) {
      message = body.error.message || message;
      hint = body.error.hint || null;
      position = body.error.position || null;
    }
  } catch (err) {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message, hint, position);
}

export function errorBox(err, title = "Error") {
  if (err instanceof ApiError && err.status === 401) return h("div");
  const message =
    err instanceof ApiError ? err.message : String(err && err.message ? err.message : err);
  return h(
    "div",
    { class: "error-box", role: "alert" },
    h("strong", {}, err instanceof ApiError && err.status ? `${title} (${err.status})` : title),
    h("pre", { class: "error-message" }, message),
    err instanceof ApiError && err.hint
      ? h("p", { class: "error-hint" }, "Hint: ", err.hint)
      : null,
  );
}
