// The heat scale of every heatmap in the views (web/*.js) and of the layers x
// heads summary of `attnviz heads`' report (web/heads/report.js, which embeds
// this file alone: src/viz/heads_report.cpp): one scale, so a statistic is
// coloured alike on both pages.

// Text colour readable on a background of r, g, b (0..255): black or white by
// the background's relative luminance (WCAG), for numbers drawn on colour.
function textColorOn(r, g, b) {
  const linear = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
  const luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  return luminance > 0.179 ? "#000000" : "#ffffff";
}

// Heatmap colour tables (256 entries of r, g, b): white to dark blue in the
// light theme (as src/viz/static_view.cpp), black to yellow in the dark one.
function heatTable(dark) {
  const stops = dark
    ? [[20, 20, 24], [60, 30, 110], [180, 50, 100], [245, 130, 40], [250, 240, 120]]
    : [[255, 255, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];
  const table = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const x = (i / 255) * 4, s = Math.min(3, Math.floor(x)), t = x - s;
    for (let c = 0; c < 3; c++) table[i * 3 + c] = Math.round(stops[s][c] + t * (stops[s + 1][c] - stops[s][c]));
  }
  return table;
}

// The colour of a head statistic v in a layers x heads heatmap whose finite
// values run from low to high (the Head stats tab, the heads report): the
// light or dark heat scale at (v - low) / (high - low), its lightest when all
// are equal; null for a statistic not defined there (null, NaN).
// { fill: "rgb(r,g,b)", text: the readable text colour on it }.
const statHeatTables = [null, null];  // light, dark: made once
function statColour(v, low, high, dark) {
  if (v == null || Number.isNaN(v)) return null;
  const x = high > low ? Math.min(Math.max((v - low) / (high - low), 0), 1) : 0;
  const table = statHeatTables[dark ? 1 : 0] || (statHeatTables[dark ? 1 : 0] = heatTable(dark));
  const c = Math.round(x * 255) * 3;
  const r = table[c], g = table[c + 1], b = table[c + 2];
  return { fill: "rgb(" + r + "," + g + "," + b + ")", text: textColorOn(r, g, b) };
}
