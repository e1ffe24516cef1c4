// Neuron view: for one layer and head, hover (or click to pin) a query token
// to see how its attention is computed: the query vector q, each key vector
// k, the elementwise q×k, the score q·k×scale and its softmax, as bertviz
// shows them. Works for any trace that kept queries and keys (the payload's
// 8-bit vectors); keys after the query of a causal block are hidden.

const NEURON_NUMBER_WIDTH = 64;
const NEURON_LINES_WIDTH = 70;

function createNeuronView(context, panel) {
  const { trace, controls } = context;
  const blocks = trace.blocks.filter((b) => b.hasQK);
  if (!blocks.length) {
    h("p", "av-empty", panel, "This trace has no queries and keys, so there is no neuron view. " +
      "Run the model keeping them (attnviz view --view neuron does).");
    return { refresh() {} };
  }
  const bar = h("div", "av-toolbar", panel);
  const blockSelect = blocks.length > 1
    ? labeled(bar, "Block", selectOf(blocks.map((_, i) => i), blocks.map((b) => b.name))) : null;
  const layerSelect = labeled(bar, "Layer", h("select", "av-layer"));
  const headSelect = labeled(bar, "Head", h("select", "av-head"));
  const expand = h("button", "av-expand", bar, "Show q, k, q×k");
  expand.type = "button";
  const readout = h("div", "av-readout", panel, "Hover a query token (left).");
  const legend = h("div", "av-legend", panel);  // column names above the expanded columns

  const store = makeStore({ block: 0, layer: 0, head: 0, hover: null, pinned: null, expanded: false }, draw);
  const state = store.state;
  const pane = makeTokenPane(
    panel,
    (at) => { if (!sameToken(at, state.hover)) store.setState({ hover: at }); },
    (at) => { if (at.side === "q") store.setState({ pinned: sameToken(at, state.pinned) ? null : at }); },
  );
  pane.scroll.addEventListener("scroll", () => store.setState({}), { passive: true });

  function fillSelects() {
    fillLayerHeadSelects(blocks[state.block], state, layerSelect, headSelect);
  }
  if (blockSelect) blockSelect.onchange = () => { store.setState({ block: +blockSelect.value, hover: null, pinned: null }); fillSelects(); };
  layerSelect.onchange = () => store.setState({ layer: +layerSelect.value });
  headSelect.onchange = () => store.setState({ head: +headSelect.value });
  expand.onclick = () => {
    store.setState({ expanded: !state.expanded });
    expand.textContent = state.expanded ? "Hide q, k, q×k" : "Show q, k, q×k";
  };
  fillSelects();

  function draw() {
    const block = blocks[state.block];
    const layer = block.loaded[state.layer], qk = block.loadedQK[state.layer];
    if (!layer || !qk) {
      readout.textContent = "Decoding layer " + block.layers[state.layer] + "…";
      Promise.all([block.layer(state.layer), block.queriesKeys(state.layer)]).then(() => store.setState({}), context.fail);
      return;
    }
    const qs = visibleIndices(block.querySequence, "all", controls.hideSpecial);
    const ks = visibleIndices(block.keySequence, "all", controls.hideSpecial);
    const d = block.headDim, cell = Math.max(2, Math.min(12, Math.floor(192 / d)));
    const vector = d * cell;
    const middle = state.expanded ? 3 * (vector + 12) + 2 * NEURON_NUMBER_WIDTH + NEURON_LINES_WIDTH : MIDDLE_WIDTH;
    const tokenWidth = Math.min(220, Math.max(80, Math.max(tokenTextWidth(block.queryTokens, qs), tokenTextWidth(block.keyTokens, ks)) + 70));
    pane.setTokens(controls.hideSpecial + "/" + state.block, block.queryTokens, qs, block.keyTokens, ks, tokenWidth, middle);

    const focusAt = state.hover && state.hover.side === "q" ? state.hover : state.pinned;
    const q = focusAt ? focusAt.index : -1;
    const { ctx, top, bottom } = pane.begin();
    const y = (pos) => pos * ROW_HEIGHT;
    const rowVisible = (pos) => y(pos) + ROW_HEIGHT >= top && y(pos) <= bottom;
    const hi = state.head, nq = block.nq, nk = block.nk;
    const scales = rowScales(block, layer, controls);
    pane.highlight(focusAt);
    for (const [k, node] of pane.kNodes) node.classList.toggle("av-masked", q >= 0 && block.causal && k > q);

    if (!state.expanded || q < 0) setLegend([]);
    if (q < 0) {
      pane.setNumbers("k", null);
      readout.textContent = "Hover a query token (left); click to pin it.";
      finish(block, null);
      return;
    }
    // The computation, from the payload's 8-bit queries and keys.
    const qScale = qk.qScale[hi * nq + q], qBase = (hi * nq + q) * d;
    const scoreScale = block.scoreScales ? block.scoreScales[state.layer] : block.scoreScale;
    const query = new Float32Array(d);
    for (let i = 0; i < d; i++) query[i] = qk.q[qBase + i] * qScale;
    const shownKeys = ks.filter((k) => !(block.causal && k > q));
    const scores = new Float64Array(shownKeys.length);
    let top1 = -Infinity;
    shownKeys.forEach((k, j) => {
      const kScale = qk.kScale[hi * nk + k], kBase = (hi * nk + k) * d;
      let dot = 0;
      for (let i = 0; i < d; i++) dot += query[i] * qk.k[kBase + i] * kScale;
      scores[j] = dot * scoreScale;
      if (scores[j] > top1) top1 = scores[j];
    });
    let total = 0;
    const soft = scores.map((s) => { const e = Math.exp(s - top1); total += e; return e; });
    soft.forEach((e, j) => { soft[j] = e / total; });

    // Attention lines from the query to its keys (trace weights).
    const row = hi * nq + q, log = controls.scale === "log";
    const x2 = tokenWidth + middle, x1 = x2 - NEURON_LINES_WIDTH + 6;
    ctx.strokeStyle = headColor(block.heads[hi]);
    ctx.lineWidth = 1.5;
    shownKeys.forEach((k) => {
      const alpha = shade(layer.levels[row * nk + k] * scales.intensity[row], log);
      if (alpha < 1 / 255) return;
      ctx.globalAlpha = alpha;
      ctx.beginPath();
      ctx.moveTo(state.expanded ? x1 : tokenWidth, y(pane.qPos[q]) + ROW_HEIGHT / 2);
      ctx.lineTo(x2, y(pane.kPos[k]) + ROW_HEIGHT / 2);
      ctx.stroke();
    });
    ctx.globalAlpha = 1;

    const numbers = new Map(), scoreText = new Map();
    shownKeys.forEach((k, j) => { numbers.set(k, formatWeight(soft[j])); scoreText.set(k, scores[j].toFixed(3)); });
    pane.setNumbers("k", numbers);
    for (const [k, node] of pane.kNodes) node.dataset.score = scoreText.get(k) || "";

    if (state.expanded) {
      let left = tokenWidth + 12;
      const columns = { query: left, key: (left += vector + 12), product: (left += vector + 12) };
      const numbersAt = left + vector + 12;
      const keyVector = (k) => {
        const kScale = qk.kScale[hi * nk + k], kBase = (hi * nk + k) * d, v = new Float32Array(d);
        for (let i = 0; i < d; i++) v[i] = qk.k[kBase + i] * kScale;
        return v;
      };
      const largest = (v) => v.reduce((m, x) => Math.max(m, Math.abs(x)), 1e-12);
      const queryMax = largest(query);
      drawVector(ctx, query, queryMax, columns.query, y(pane.qPos[q]), cell);
      const ink = getComputedStyle(pane.scroll).color;
      ctx.font = "11px sans-serif";
      ctx.textAlign = "left";
      setLegend([["query q", columns.query], ["key k", columns.key], ["q × k", columns.product],
        ["q·k × scale", numbersAt], ["softmax", numbersAt + NEURON_NUMBER_WIDTH]]);
      shownKeys.forEach((k, j) => {
        const pos = pane.kPos[k];
        if (!rowVisible(pos)) return;
        const key = keyVector(k), product = key.map((v, i) => v * query[i]);
        drawVector(ctx, key, largest(key), columns.key, y(pos), cell);
        drawVector(ctx, product, largest(product), columns.product, y(pos), cell);
        ctx.fillStyle = ink;
        ctx.fillText(scores[j].toFixed(2), numbersAt, y(pos) + 14);
        ctx.fillText(formatWeight(soft[j]), numbersAt + NEURON_NUMBER_WIDTH, y(pos) + 14);
      });
    }
    const token = block.queryTokens[q];
    readout.textContent = "Layer " + block.layers[state.layer] + ", head " + block.heads[hi] + ': query "' + token.shown +
      '" (' + token.raw + ", #" + q + "): score = q·k × " + scoreScale.toPrecision(4) +
      ", then softmax over " + shownKeys.length + " keys" + (block.causal ? " (future keys hidden)" : "") + ".";
    finish(block, q);
  }

  function setLegend(labels) {
    const key = JSON.stringify(labels);
    if (legend.dataset.key === key) return;
    legend.dataset.key = key;
    legend.textContent = "";
    for (const [text, x] of labels) h("span", null, legend, text).style.left = x + "px";
  }

  function finish(block, q) {
    panel.dataset.layer = block.layers[state.layer];
    panel.dataset.head = block.heads[state.head];
    panel.dataset.query = q == null ? "" : q;
    panel.dataset.expanded = state.expanded ? "1" : "0";
    if (!panel.dataset.firstDrawnAt) panel.dataset.firstDrawnAt = performance.now().toFixed(1);
    panel.dataset.drawn = (+panel.dataset.drawn || 0) + 1;
  }

  store.setState({});
  return { refresh: () => { pane.key = null; store.setState({}); } };
}

// One vector as a row of cells: blue for positive, orange for negative,
// opacity = |value| / largest.
function drawVector(ctx, values, largest, x, y, cell) {
  for (let i = 0; i < values.length; i++) {
    const v = values[i] / largest;
    ctx.fillStyle = v >= 0 ? "rgb(33, 113, 181)" : "rgb(230, 85, 13)";
    ctx.globalAlpha = Math.min(1, Math.abs(v));
    ctx.fillRect(x + i * cell, y + 3, cell - (cell > 3 ? 1 : 0), ROW_HEIGHT - 6);
  }
  ctx.globalAlpha = 1;
}
