// Time ranges relative to now ("last 7 days", "all"): the picker's choices, their short
// codes for an address (7d, all) and the from/to instants they stand for.

export const RANGES = [
  ["15m", "Last 15 minutes"],
  ["1h", "Last hour"],
  ["24h", "Last 24 hours"],
  ["7d", "Last 7 days"],
  ["30d", "Last 30 days"],
  ["all", "All time"],
];

const UNITS = {
  m: [60, "minute"],
  h: [3600, "hour"],
  d: [86400, "day"],
  w: [604800, "week"],
};

// "last 7 days", "last hour", "7d", "all" -> "7d", "1h", "7d", "all"; null for anything else.
export function rangeCode(text) {
  const t = String(text ?? "")
    .trim()
    .toLowerCase();
  if (t === "all" || t === "all time") return "all";
  let m = t.match(/^(\d+)\s*([mhdw])$/);
  if (m && Number(m[1]) > 0) return `${Number(m[1])}${m[2]}`;
  m = t.match(/^last\s+(?:(\d+)\s+)?(minute|hour|day|week)s?$/);
  if (m && (m[1] === undefined || Number(m[1]) > 0)) return `${Number(m[1] ?? 1)}${m[2][0]}`;
  return null;
}

// "7d" -> "Last 7 days", "1h" -> "Last hour", "all" -> "All time".
export function rangeLabel(code) {
  const known = RANGES.find(([c]) => c === code);
  if (known) return known[1];
  const m = String(code).match(/^(\d+)([mhdw])$/);
  if (!m) return String(code);
  const n = Number(m[1]);
  const word = UNITS[m[2]][1];
  return n === 1 ? `Last ${word}` : `Last ${n} ${word}s`;
}

// The instants a range stands for now, as ISO timestamps of whole seconds (the same range
// asked within a second is the same question): {from, to}; all time is from the epoch.
export function rangeBounds(code, now = new Date()) {
  const to = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const m = String(code).match(/^(\d+)([mhdw])$/);
  const from = m ? new Date(to.getTime() - Number(m[1]) * UNITS[m[2]][0] * 1000) : new Date(0);
  return { from: from.toISOString(), to: to.toISOString() };
}
