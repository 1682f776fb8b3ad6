// Numbers, sizes, times and durations as the UI shows them.

const intFormat = new Intl.NumberFormat("en-US");
export const numFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 6 });

export function fmtInt(n) {
  return n === null || n === undefined ? "" : intFormat.format(n);
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function fmtTime(value) {
  if (!value) return "";
  const text = String(value);
  const m = text.match(/^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$/);
  if (!m) return text;
  const zone = !m[4] ? "" : m[4] === "Z" || /^[+-]00:?00$/.test(m[4]) ? " UTC" : ` ${m[4]}`;
  return `${m[1]} ${m[2]}${zone}`;
}

export function fmtSeconds(s) {
  if (s === null || s === undefined) return "";
  const n = Number(s);
  if (n < 60) return `${n.toFixed(n < 10 ? 2 : 1)} s`;
  const minutes = Math.floor(n / 60);
  return `${minutes} min ${Math.round(n - 60 * minutes)} s`;
}

export function ago(value) {
  const t = Date.parse(value);
  if (Number.isNaN(t)) return "";
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 0) return "";
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

// "{"amount": 2, "v": 1}" (a JSON text of counts) -> "amount 2, v 1"
export function countsText(text) {
  if (!text) return "";
  let counts;
  try {
    counts = typeof text === "string" ? JSON.parse(text) : text;
  } catch {
    return "";
  }
  return Object.entries(counts || {})
    .map(([name, n]) => `${name} ${fmtInt(n)}`)
    .join(", ");
}
