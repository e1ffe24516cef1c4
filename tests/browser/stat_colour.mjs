// The colour a head statistic must get in a layers x heads heatmap, on the views'
// Head stats tab and on the report of `attnviz heads` alike (web/heat_scale.js
// statColour, light theme), from the scale's definition written out here: five
// stops from white to dark blue (src/viz/static_view.cpp draws with the same),
// linear between them, at (v - low) / (high - low) rounded to 1/255 (0 when all
// values are equal); low and high: the finite values of the heatmap.
const STOPS = [[255, 255, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];

export function expectedStatColour(v, low, high) {
  const x = high > low ? Math.round(((v - low) / (high - low)) * 255) / 255 : 0;
  const at = x * 4, i = Math.min(3, Math.floor(at)), t = at - i;
  const channel = (c) => Math.round(STOPS[i][c] + t * (STOPS[i + 1][c] - STOPS[i][c]));
  return `rgb(${channel(0)},${channel(1)},${channel(2)})`;
}

// A colour as the page's style or attribute holds it ("rgb(1, 2, 3)"), without spaces.
export function shownColour(text) {
  return text.replace(/\s+/g, "");
}
