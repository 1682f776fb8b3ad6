// Formatting on demand: keywords in capitals, each main clause on a line of its own,
// the select list one item a line. Strings, quoted names and comments stay as written.

const KEYWORDS = new Set(
  ("select from where group by order having limit offset join left right inner outer full " +
    "cross on and or not as with union all distinct case when then else end in is null " +
    "like ilike between asc desc nulls first last over partition window qualify using " +
    "exists cast interval true false filter except intersect version timestamp of")
    .split(" "),
);
const BREAK_BEFORE = [
  "select", "from", "where", "group by", "order by", "having", "limit", "offset", "union",
  "union all", "except", "intersect", "qualify", "window", "left join", "right join",
  "inner join", "full join", "cross join", "join", "left outer join",
];

const TOKEN = /('(?:[^']|'')*')|("(?:[^"]|"")*")|(--[^\n]*|\/\*[\s\S]*?\*\/)|([A-Za-z_][A-Za-z0-9_]*)|(\s+)|([\s\S])/g;

export function formatSql(text) {
  const tokens = [];
  for (const m of text.matchAll(TOKEN)) {
    if (m[5]) tokens.push({ kind: "space", text: " " });
    else if (m[4]) {
      const lower = m[4].toLowerCase();
      tokens.push({ kind: "word", text: KEYWORDS.has(lower) ? lower.toUpperCase() : m[4], lower });
    } else tokens.push({ kind: m[3] ? "comment" : "other", text: m[0] });
  }
  let out = "";
  let depth = 0;
  let inSelect = false;
  let pending = ""; // what goes before the next token: a space or a new line
  const emit = (value) => {
    out += (out ? pending : "") + value;
    pending = "";
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.kind === "space") {
      if (!pending) pending = " ";
      continue;
    }
    if (t.kind === "comment") {
      emit(t.text);
      pending = t.text.startsWith("--") ? "\n" : " ";
      continue;
    }
    if (t.kind === "word" && depth === 0) {
      const next = tokens.slice(i + 1).find((x) => x.kind === "word");
      const two = next ? `${t.lower} ${next.lower}` : "";
      const qualifier = /(LEFT|RIGHT|INNER|FULL|CROSS|OUTER)$/.test(out);
      if ((BREAK_BEFORE.includes(two) || BREAK_BEFORE.includes(t.lower)) && !qualifier) {
        pending = "\n";
        emit(t.text);
        inSelect = t.lower === "select";
        pending = inSelect ? "\n  " : " ";
        if (inSelect && next && next.lower === "distinct") {
          while (tokens[i + 1] && tokens[i + 1] !== next) i++;
          i++;
          out += " DISTINCT";
        }
        continue;
      }
    }
    if (t.text === "(") depth += 1;
    if (t.text === ")") depth = Math.max(0, depth - 1);
    if (t.text === "," && depth === 0 && inSelect) {
      pending = "";
      emit(",");
      pending = "\n  ";
      continue;
    }
    if (t.text === "," || t.text === ")" || t.text === "." || (out.endsWith(".") && t.kind === "word") || out.endsWith("("))
      pending = pending.includes("\n") ? pending : "";
    emit(t.text);
  }
  return out.trim() + "\n";
}
