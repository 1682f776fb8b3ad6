// Arrow type names of result columns: numeric, temporal, text.

export function isNumericType(type) {
  return /^(u?int(8|16|32|64)|halffloat|float|double|decimal)/.test(String(type || ""));
}

export function isTemporalType(type) {
  return /^(date|timestamp|time)/.test(String(type || ""));
}

export function isTextType(type) {
  return /^(string|large_string|utf8|large_utf8)/.test(String(type || ""));
}
