// What the pages share: the page's main element, the user logged in, the SQL editor's
// statement and last result, and the charts on show.

export const app = document.getElementById("app");
export const state = { me: null, sql: null, result: null, charts: [] };
