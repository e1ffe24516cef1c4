// What a printed weight promises (web/core.js formatWeight, formatAggregate):
// a number without "≈" is the exact value rounded to the digits it prints; one
// with "≈" (a mean of heads) is within one unit of its last digit; "<0.001" a
// non-zero weight below 0.001; "0" only for an exact zero. Returns null when
// the text keeps its promise, else what is wrong.
export function checkPrinted(text, exact) {
  if (text === "<0.001") return exact > 0 && exact < 0.001 ? null : `"<0.001" printed for ${exact}`;
  const approximate = text.startsWith("≈");
  const body = approximate ? text.slice(1) : text;
  const match = body.match(/^(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/);
  if (!match) return `"${text}" is not a number`;
  const value = parseFloat(body);
  if (value === 0) return exact === 0 ? null : `"${text}" printed for the non-zero weight ${exact}`;
  if (exact === 0 && !approximate) return `"${text}" printed for a zero weight`;
  const decimals = match[2] ? match[2].length : 0;
  const unit = Math.pow(10, (match[3] ? +match[3] : 0) - decimals);
  const allowed = (approximate ? 1 : 0.5) * unit * (1 + 1e-9);
  const error = Math.abs(value - exact);
  return error <= allowed ? null : `"${text}" is ${error.toPrecision(3)} from the exact ${exact} (allowed ${allowed.toPrecision(3)})`;
}

// How many significant digits a printed number has (for reports).
export function significantDigits(text) {
  const digits = text.replace(/^≈/, "").replace(/e.*$/, "").replace(".", "").replace(/^0+/, "");
  return digits.length;
}
