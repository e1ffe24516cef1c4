// The report page of `attnviz heads`: per-head statistics over a corpus, drawn
// after Clark et al. (2019), "What Does BERT Look At?". Input: the stats.json
// document (docs/analysis.md). Every text from the data goes in through
// textContent or attributes, never as markup.

const SVG_NS = "http://www.w3.org/2000/svg";
const STAT_LABELS = {
  entropy: "entropy (nats)",
  distance: "mean distance (tokens)",
  cls: "attention to [CLS]/BOS",
  sep: "attention to [SEP]/EOS",
  punct: "attention to punctuation",
  self: "attention to the token itself",
  prev: "attention to the previous token",
  next: "attention to the next token",
  top1: "top-1 share",
};
// Clark et al.'s thresholds for naming a head's behaviour in the embedding plot.
const BEHAVIOURS = [
  { stat: "punct", above: 0.6, label: "attends to punctuation", color: "#159d82" },
  { stat: "sep", above: 0.6, label: "attends to [SEP]/EOS", color: "#59d98e" },
  { stat: "cls", above: 0.6, label: "attends to [CLS]/BOS", color: "#9b59b6" },
  { stat: "next", above: 0.5, label: "attends to next", color: "#e74c3c" },
  { stat: "prev", above: 0.5, label: "attends to previous", color: "#3498db" },
];
const SCATTER = [
  { stat: "cls", color: "#e74c3c", label: "[CLS]/BOS" },
  { stat: "sep", color: "#3498db", label: "[SEP]/EOS" },
  { stat: "punct", color: "#9b59b6", label: "punctuation" },
];

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmt(v, digits) {
  return v === null || v === undefined ? "n/a" : v.toFixed(digits === undefined ? 3 : digits);
}

function finiteValues(matrix) {
  return matrix.flat().filter((v) => v !== null);
}

function layerMeans(matrix) {
  return matrix.map((row) => {
    const values = row.filter((v) => v !== null);
    return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
  });
}

// An x/y chart frame: returns the svg and scale functions.
function frame(width, height, xDomain, yDomain, xLabel, yLabel) {
  const margin = { left: 56, right: 16, top: 12, bottom: 40 };
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "chart" });
  const x = (v) => margin.left + ((v - xDomain[0]) / (xDomain[1] - xDomain[0] || 1)) * (width - margin.left - margin.right);
  const y = (v) => height - margin.bottom - ((v - yDomain[0]) / (yDomain[1] - yDomain[0] || 1)) * (height - margin.top - margin.bottom);
  root.appendChild(svg("line", { x1: margin.left, y1: y(yDomain[0]), x2: width - margin.right, y2: y(yDomain[0]), class: "axis" }));
  root.appendChild(svg("line", { x1: margin.left, y1: margin.top, x2: margin.left, y2: y(yDomain[0]), class: "axis" }));
  for (let i = 0; i <= 4; i++) {
    const v = yDomain[0] + ((yDomain[1] - yDomain[0]) * i) / 4;
    root.appendChild(svg("text", { x: margin.left - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" }, fmt(v, 2)));
  }
  root.appendChild(svg("text", { x: (width + margin.left) / 2, y: height - 6, class: "label", "text-anchor": "middle" }, xLabel));
  root.appendChild(svg("text", { x: 14, y: height / 2, class: "label", "text-anchor": "middle", transform: `rotate(-90 14 ${height / 2})` }, yLabel));
  return { root, x, y, margin, bottom: height - margin.bottom };
}

function layerTicks(chart, layers) {
  for (let l = 0; l < layers; l++)
    chart.root.appendChild(svg("text", { x: chart.x(l + 1), y: chart.bottom + 16, class: "tick", "text-anchor": "middle" }, String(l)));
}

function headsReportBoot(root, stats) {
  const state = { block: 0, stat: "sep", selected: null, colourBy: "behaviour" };
  root.appendChild(el("h1", {}, `Attention heads of ${stats.model}`));
  root.appendChild(el("p", { class: "summary", id: "summary" },
    `${stats.examples} examples (${stats.tokens} tokens) from ${stats.input}` +
    `${stats.pairs ? ", sentence pairs" : ""}; architecture ${stats.architecture}. ` +
    "Each statistic is a mean over every query row of the corpus; layers and heads count from 0."));
  if (stats.non_finite) root.appendChild(el("p", { class: "warning" }, `NaN or inf: ${stats.non_finite}`));
  const controls = el("div", { class: "controls" });
  root.appendChild(controls);
  if (stats.blocks.length > 1) {
    const blockSelect = el("select", { id: "block-select", "aria-label": "attention block" });
    stats.blocks.forEach((b, i) => blockSelect.appendChild(el("option", { value: String(i) }, b.name)));
    blockSelect.addEventListener("change", () => { state.block = Number(blockSelect.value); state.selected = null; render(); });
    controls.appendChild(el("label", {}, "Block "));
    controls.appendChild(blockSelect);
  }
  const statSelect = el("select", { id: "stat-select", "aria-label": "statistic" });
  for (const name of stats.statistics) {
    const option = el("option", { value: name }, STAT_LABELS[name] || name);
    if (name === state.stat) option.selected = true;
    statSelect.appendChild(option);
  }
  statSelect.addEventListener("change", () => { state.stat = statSelect.value; render(); });
  controls.appendChild(el("label", {}, " Heatmap colour "));
  controls.appendChild(statSelect);
  const content = el("div", { id: "content" });
  root.appendChild(content);

  function section(title, note) {
    const s = el("section");
    s.appendChild(el("h2", {}, title));
    if (note) s.appendChild(el("p", { class: "note" }, note));
    content.appendChild(s);
    return s;
  }

  function select(layer, head) {
    state.selected = [layer, head];
    render();
  }

  function heatmap(block) {
    const s = section("Summary", "Layers x heads; colour = the chosen statistic. Click a head for its numbers.");
    const matrix = block.means[state.stat];
    const values = finiteValues(matrix);
    const lo = values.length ? Math.min(...values) : 0;
    const hi = values.length ? Math.max(...values) : 1;
    const cell = Math.max(14, Math.min(40, Math.floor(560 / block.n_heads)));
    const left = 60, top = 24;
    const root = svg("svg", { id: "heatmap", width: left + cell * block.n_heads + 10, height: top + cell * block.n_layers + 36, class: "chart" });
    for (let h = 0; h < block.n_heads; h++)
      root.appendChild(svg("text", { x: left + cell * h + cell / 2, y: top - 6, class: "tick", "text-anchor": "middle" }, String(h)));
    for (let l = 0; l < block.n_layers; l++) {
      root.appendChild(svg("text", { x: left - 6, y: top + cell * l + cell / 2 + 4, class: "tick", "text-anchor": "end" }, `layer ${l}`));
      for (let h = 0; h < block.n_heads; h++) {
        const v = matrix[l][h];
        const selected = state.selected && state.selected[0] === l && state.selected[1] === h;
        const rect = svg("rect", {
          x: left + cell * h, y: top + cell * l, width: cell - 1, height: cell - 1,
          fill: v === null ? "#ccc" : statColour(v, lo, hi, false).fill,  // web/heat_scale.js, as the Head stats tab
          class: "cell" + (selected ? " selected" : ""),
          "data-layer": l, "data-head": h, "data-stat": state.stat, "data-value": v === null ? "" : String(v),
        });
        rect.appendChild(svg("title", {}, `layer ${l}, head ${h}: ${STAT_LABELS[state.stat]} ${fmt(v, 4)}`));
        rect.addEventListener("click", () => select(l, h));
        root.appendChild(rect);
      }
    }
    root.appendChild(svg("text", { x: left, y: top + cell * block.n_layers + 22, class: "tick" }, `${fmt(lo, 3)} (light) to ${fmt(hi, 3)} (dark)`));
    s.appendChild(root);
    if (state.selected) {
      const [l, h] = state.selected;
      const table = el("table", { id: "head-details" });
      table.appendChild(el("caption", {}, `Layer ${l}, head ${h}`));
      for (const name of stats.statistics) {
        const tr = el("tr");
        tr.appendChild(el("th", {}, STAT_LABELS[name] || name));
        tr.appendChild(el("td", { "data-stat": name }, fmt(block.means[name][l][h], 4)));
        table.appendChild(tr);
      }
      s.appendChild(table);
    }
  }

  function specialScatter(block) {
    const s = section("Attention to special tokens and punctuation",
      "Each point is a head (Clark et al., figure 2); lines join each layer's mean over its heads.");
    const L = block.n_layers;
    const all = SCATTER.flatMap((p) => finiteValues(block.means[p.stat]));
    const top = Math.max(1e-9, ...all);
    const chart = frame(640, 300, [0.5, L + 0.5], [0, Math.min(1, top * 1.05)], "layer", "average attention");
    layerTicks(chart, L);
    SCATTER.forEach((p, k) => {
      const matrix = block.means[p.stat];
      const offset = (k - 1) * 0.12;
      const means = layerMeans(matrix);
      let path = "";
      means.forEach((m, l) => { if (m !== null) path += `${path ? "L" : "M"}${chart.x(l + 1 + offset)},${chart.y(m)}`; });
      if (path) chart.root.appendChild(svg("path", { d: path, stroke: p.color, fill: "none", class: "mean-line" }));
      for (let l = 0; l < L; l++)
        for (let h = 0; h < block.n_heads; h++) {
          const v = matrix[l][h];
          if (v === null) continue;
          const dot = svg("circle", { cx: chart.x(l + 1 + offset), cy: chart.y(v), r: 3.5, fill: p.color,
            class: `point point-${p.stat}`, "data-layer": l, "data-head": h, "data-stat": p.stat, "data-value": String(v) });
          dot.appendChild(svg("title", {}, `layer ${l}, head ${h}: ${p.label} ${fmt(v, 4)}`));
          dot.addEventListener("click", () => select(l, h));
          chart.root.appendChild(dot);
        }
      chart.root.appendChild(svg("circle", { cx: 70 + k * 120, cy: 20, r: 4, fill: p.color }));
      chart.root.appendChild(svg("text", { x: 78 + k * 120, y: 24, class: "tick" }, p.label));
    });
    chart.root.id = "special-scatter";
    s.appendChild(chart.root);
  }

  function entropyPlot(block) {
    const s = section("Entropy by layer",
      "Each point is a head's mean attention entropy; the line is each layer's mean, the dashed line even attention over the keys.");
    const L = block.n_layers;
    const values = finiteValues(block.means.entropy);
    const top = Math.max(block.uniform_entropy || 0, ...values, 1e-9) * 1.05;
    const chart = frame(640, 280, [0.5, L + 0.5], [0, top], "layer", "entropy (nats)");
    layerTicks(chart, L);
    if (block.uniform_entropy !== null) {
      chart.root.appendChild(svg("line", { x1: chart.x(0.5), x2: chart.x(L + 0.5), y1: chart.y(block.uniform_entropy), y2: chart.y(block.uniform_entropy), class: "uniform", id: "uniform-entropy", "data-value": String(block.uniform_entropy) }));
      chart.root.appendChild(svg("text", { x: chart.x(L + 0.5) - 4, y: chart.y(block.uniform_entropy) - 5, class: "tick", "text-anchor": "end" }, `even attention ${fmt(block.uniform_entropy, 2)}`));
    }
    const means = layerMeans(block.means.entropy);
    let path = "";
    means.forEach((m, l) => { if (m !== null) path += `${path ? "L" : "M"}${chart.x(l + 1)},${chart.y(m)}`; });
    if (path) chart.root.appendChild(svg("path", { d: path, stroke: "#3498db", fill: "none", class: "mean-line" }));
    for (let l = 0; l < L; l++)
      for (let h = 0; h < block.n_heads; h++) {
        const v = block.means.entropy[l][h];
        if (v === null) continue;
        const dot = svg("circle", { cx: chart.x(l + 1), cy: chart.y(v), r: 3.5, fill: "#3498db", class: "point point-entropy", "data-layer": l, "data-head": h, "data-stat": "entropy", "data-value": String(v) });
        dot.appendChild(svg("title", {}, `layer ${l}, head ${h}: entropy ${fmt(v, 4)} nats`));
        dot.addEventListener("click", () => select(l, h));
        chart.root.appendChild(dot);
      }
    chart.root.id = "entropy-plot";
    s.appendChild(chart.root);
  }

  function behaviourOf(block, l, h) {
    for (const b of BEHAVIOURS) {
      const v = block.means[b.stat][l][h];
      if (v !== null && v > b.above) return b;
    }
    return null;
  }

  function embedding(block) {
    const js = block.jensen_shannon;
    const s = section("Heads embedded by Jensen-Shannon distance",
      js ? `Classical multidimensional scaling of the distances sqrt(mean JS divergence) between heads, from ${js.examples} examples (${js.query_rows} query rows). Close heads attend alike.`
         : "No Jensen-Shannon distances in this report (--js-examples 0).");
    if (!js) return;
    const toggle = el("select", { id: "colour-by", "aria-label": "colour by" });
    for (const [value, label] of [["behaviour", "colour by behaviour"], ["layer", "colour by layer"]]) {
      const option = el("option", { value }, label);
      if (value === state.colourBy) option.selected = true;
      toggle.appendChild(option);
    }
    toggle.addEventListener("change", () => { state.colourBy = toggle.value; render(); });
    s.appendChild(toggle);
    const xs = js.mds.map((p) => p[0]), ys = js.mds.map((p) => p[1]);
    const pad = (a) => { const lo = Math.min(...a), hi = Math.max(...a); const d = (hi - lo) * 0.08 || 1; return [lo - d, hi + d]; };
    const chart = frame(520, 420, pad(xs), pad(ys), "MDS axis 1", "MDS axis 2");
    const seen = new Set();
    let legendY = 20;
    js.mds.forEach((p, i) => {
      const l = Math.floor(i / block.n_heads), h = i % block.n_heads;
      let color = "#95a5a6", label = "other";
      if (state.colourBy === "layer") {
        color = `hsl(${(240 * l) / Math.max(1, block.n_layers - 1)}, 70%, 45%)`;
        label = `layer ${l}`;
      } else {
        const b = behaviourOf(block, l, h);
        if (b) { color = b.color; label = b.label; }
      }
      const selected = state.selected && state.selected[0] === l && state.selected[1] === h;
      const dot = svg("circle", { cx: chart.x(p[0]), cy: chart.y(p[1]), r: selected ? 6 : 4.5, fill: color,
        class: "point point-mds" + (selected ? " selected" : ""), "data-layer": l, "data-head": h, "data-x": String(p[0]), "data-y": String(p[1]) });
      dot.appendChild(svg("title", {}, `layer ${l}, head ${h} (${label})`));
      dot.addEventListener("click", () => select(l, h));
      chart.root.appendChild(dot);
      if (!seen.has(label)) {
        seen.add(label);
        chart.root.appendChild(svg("circle", { cx: 400, cy: legendY - 4, r: 4, fill: color }));
        chart.root.appendChild(svg("text", { x: 408, y: legendY, class: "tick" }, label));
        legendY += 14;
      }
    });
    chart.root.id = "mds-plot";
    s.appendChild(chart.root);
  }

  function table(block) {
    const s = section("All heads", "Means over the corpus; n/a: not defined for this block (see docs/analysis.md).");
    const t = el("table", { id: "stats-table" });
    const head = el("tr");
    head.appendChild(el("th", {}, "layer"));
    head.appendChild(el("th", {}, "head"));
    for (const name of stats.statistics) head.appendChild(el("th", {}, name));
    t.appendChild(head);
    for (let l = 0; l < block.n_layers; l++)
      for (let h = 0; h < block.n_heads; h++) {
        const tr = el("tr", { "data-layer": l, "data-head": h });
        tr.appendChild(el("td", {}, String(l)));
        tr.appendChild(el("td", {}, String(h)));
        for (const name of stats.statistics) tr.appendChild(el("td", { "data-stat": name }, fmt(block.means[name][l][h], 4)));
        t.appendChild(tr);
      }
    s.appendChild(t);
  }

  function render() {
    content.replaceChildren();
    const block = stats.blocks[state.block];
    heatmap(block);
    specialScatter(block);
    entropyPlot(block);
    embedding(block);
    table(block);
  }
  render();
}
