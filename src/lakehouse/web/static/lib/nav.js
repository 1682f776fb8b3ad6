// Moving between pages: the hash routes' links, and which page is the one on show (a page
// that awaits the server checks it is still current before it fills itself in).

let showPage = () => {};
let pollTimer = null;

// The route counter: each page shown takes the next number.
export let routeToken = 0;

// The router's showing of the page of the current address.
export function onNavigate(show) {
  showPage = show;
}

export function go(hash) {
  if (location.hash === hash) showPage();
  else location.hash = hash;
}

// A new page is on show: the pages before it are no longer current, their polling stops.
export function nextRoute() {
  routeToken += 1;
  clearTimeout(pollTimer);
  return routeToken;
}

// Whether the view that started an async step is still the one shown.
export function current(token) {
  return token === routeToken;
}

// Look again later (a run in progress); a change of page cancels it.
export function poll(fn, ms) {
  pollTimer = setTimeout(fn, ms);
}

export function tableHref(name) {
  return `#/tables/${encodeURIComponent(name)}`;
}
