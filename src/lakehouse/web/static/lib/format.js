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

const twoDecimals = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
const oneDecimal = new Intl.NumberFormat("en-US", {
  minimumFractionDigits: 1,
  maximumFractionDigits: 1,
});
const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
const DURATION_UNITS = { ms: 0.001, s: 1, sec: 1, min: 60, m: 60, h: 3600, d: 86400 };

// Seconds as the largest two units that say them: "850 ms", "12.5 s", "3 min 5 s", "2 h 4 min".
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(Number(seconds))) return "";
  const s = Number(seconds);
  const sign = s < 0 ? "-" : "";
  const a = Math.abs(s);
  if (a < 1) return `${sign}${Math.round(a * 1000)} ms`;
  if (a < 60) return `${sign}${twoDecimals.format(Math.round(a * 10) / 10)} s`;
  const whole = Math.round(a);
  const [big, small, bigUnit, smallUnit] =
    whole < 3600
      ? [Math.floor(whole / 60), whole % 60, "min", "s"]
      : whole < 86400
        ? [Math.floor(whole / 3600), Math.floor((whole % 3600) / 60), "h", "min"]
        : [Math.floor(whole / 86400), Math.floor((whole % 86400) / 3600), "d", "h"];
  return `${sign}${big} ${bigUnit}${small ? ` ${small} ${smallUnit}` : ""}`;
}

// An amount in unit: a currency code (USD) as Intl writes it, a symbol ($) before the
// amount, a word after it; shortened (1.2K) for an axis.
function currency(n, unit, short = false) {
  const digits = short ? { notation: "compact", maximumFractionDigits: 1 } : {
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
  };
  if (/^[A-Z]{3}$/.test(unit || "")) {
    return new Intl.NumberFormat("en-US", { style: "currency", currency: unit, ...digits }).format(
      n,
    );
  }
  const text = new Intl.NumberFormat("en-US", digits).format(Math.abs(n));
  const sign = n < 0 ? "-" : "";
  if (!unit) return `${sign}${text}`;
  return /^\p{Sc}+$/u.test(unit) ? `${sign}${unit}${text}` : `${sign}${text} ${unit}`;
}

// A measure as a dashboard shows it, by its format (number, percent of a 0-1 share,
// currency in unit, duration in unit (seconds by default), bytes, text) and unit: 0.123
// percent -> "12.3 %", 1234.5 currency USD -> "$1,234.50", 95 duration -> "1 min 35 s".
export function fmtMeasure(value, format = null, unit = null) {
  if (value === null || value === undefined || value === "") return "—";
  const n = typeof value === "number" ? value : Number(value);
  if (format === "text" || typeof value === "boolean" || Number.isNaN(n)) {
    return unit ? `${value} ${unit}` : String(value);
  }
  if (format === "bytes") return fmtBytes(n);
  if (format === "percent") return `${oneDecimal.format(n * 100)} %`;
  if (format === "currency") return currency(n, unit);
  if (format === "duration") return fmtDuration(n * (DURATION_UNITS[unit] ?? 1));
  const text = Number.isInteger(n) ? fmtInt(n) : twoDecimals.format(n);
  return unit ? `${text} ${unit}` : text;
}

// The same, shorter, for the labels of a chart's value axis: "12 %", "$1.2K", "1.5M".
export function fmtAxis(value, format = null, unit = null) {
  const n = Number(value);
  if (Number.isNaN(n)) return String(value ?? "");
  if (format === "percent") return `${compact.format(n * 100)} %`;
  if (format === "currency") return currency(n, unit, true);
  if (format === "duration") return fmtDuration(n * (DURATION_UNITS[unit] ?? 1));
  if (format === "bytes") return fmtBytes(n);
  return unit ? `${compact.format(n)} ${unit}` : compact.format(n);
}

// The time of day, 24-hour: "08:59:12".
export function fmtClock(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}
