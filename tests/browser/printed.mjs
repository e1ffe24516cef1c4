// What a printed weight promises (web/core.js formatWeight, formatAggregate):
// a number without "≈" is the exact value rounded to the digits it prints; one
// with "≈" (a mean of heads) is within one unit of its last digit; "<0.001" a
// non-zero weight below 0.001; "0" only for an exact zero. The one parser of
// printed weights for every browser test (and the notebook test).

// The interval a printed weight claims, or null when the text is no printed
// weight: "0.0123" -> [0.01225, 0.01235]; "≈0.123" -> [0.122, 0.124];
// "<0.001" -> the open interval (0, 0.001); "0" -> exactly 0. value is the
// printed number (NaN for "<0.001"); a label after the number ("≈0.123 (mean
// of 12 heads)") is ignored.
export function printedRange(text) {
  const body = text.trim().replace(/\s*\(.*\)$/, "");
  if (body === "<0.001") return { low: 0, high: 0.001, open: true, approximate: false, value: NaN };
  const approximate = body.startsWith("≈");
  const match = (approximate ? body.slice(1) : body).match(/^(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/);
  if (!match) return null;
  const value = parseFloat(approximate ? body.slice(1) : body);
  if (value === 0) return { low: 0, high: 0, open: false, approximate, value };
  const decimals = match[2] ? match[2].length : 0;
  const unit = Math.pow(10, (match[3] ? +match[3] : 0) - decimals);
  const allowed = (approximate ? 1 : 0.5) * unit * (1 + 1e-9);
  return { low: value - allowed, high: value + allowed, open: false, approximate, value };
}

// Returns null when the text keeps its promise for the exact weight, else
// what is wrong. slack widens the claimed interval (for a reference that is
// itself only within slack of the weights the page printed from).
export function checkPrinted(text, exact, slack = 0) {
  const range = printedRange(text);
  if (!range) return `"${text}" is not a printed weight`;
  if (range.open) return exact > 0 && exact < range.high + slack ? null : `"${text}" printed for ${exact}`;
  if (range.value === 0) return exact === 0 ? null : `"${text}" printed for the non-zero weight ${exact}`;
  if (exact === 0 && !range.approximate) return `"${text}" printed for a zero weight`;
  const error = Math.abs(range.value - exact), allowed = (range.high - range.value) + slack;
  return error <= allowed ? null : `"${text}" is ${error.toPrecision(3)} from the exact ${exact} (allowed ${allowed.toPrecision(3)})`;
}

// How many significant digits a printed number has (for reports).
export function significantDigits(text) {
  const digits = text.replace(/^≈/, "").replace(/e.*$/, "").replace(".", "").replace(/^0+/, "");
  return digits.length;
}
