// Moving between pages: the hash routes' links, and which page is the one on show (a page
// that awaits the server checks it is still current before it fills itself in).

let showPage = () => {};
let pollTimer = null;
let leaving = [];

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

// A new page is on show: the pages before it are no longer current, their polling stops
// and what they asked to be told of their leaving runs (timers, listeners).
export function nextRoute() {
  routeToken += 1;
  clearTimeout(pollTimer);
  const hooks = leaving;
  leaving = [];
  for (const hook of hooks) hook();
  return routeToken;
}

// What to do when the page on show is left (the next route, or the same one shown again).
export function onLeave(hook) {
  leaving.push(hook);
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
