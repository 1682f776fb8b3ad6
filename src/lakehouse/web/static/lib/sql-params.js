// The `:name` parameters of a statement (not `::` casts, nor inside strings, quoted
// names or comments), in order of first use.

const TOKEN = /('(?:[^']|'')*')|("(?:[^"]|"")*")|(--[^\n]*|\/\*[\s\S]*?\*\/)|(::)|[:$]([A-Za-z_][A-Za-z0-9_]*)|[\s\S]/g;

export function parameterNames(sql) {
  const names = [];
  for (const m of String(sql || "").matchAll(TOKEN)) {
    if (m[5] && !names.includes(m[5])) names.push(m[5]);
  }
  return names;
}
