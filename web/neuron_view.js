// Neuron view: for one layer and head, hover (or click to pin) a query token
// to see how its attention is computed: the query vector q, each key vector
// k, the elementwise q×k, q·k×scale, the block's additive bias (when the model
// adds one, e.g. T5's relative positions) and the score they sum to, and the
// softmax, as bertviz shows them. Works for any trace that kept queries and
// keys. q and k are the payload's 8-bit vectors, so the score is approximate;
// the softmax shown is the trace's own weight (the same numbers as the lines and
// the other views), so it never disagrees with the trace. Keys the model masks
// (after the query of a causal block, or a -inf bias) are hidden. Blocks whose
// score is not q·k×scale + bias say so in a note.

const NEURON_NUMBER_WIDTH = 72;
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
  if (blockSelect) blockSelect.classList.add("av-block");
  const layerSelect = labeled(bar, "Layer", h("select", "av-layer"));
  const headSelect = labeled(bar, "Head", h("select", "av-head"));
  const expand = h("button", "av-expand", bar, "Show q, k, q×k");
  expand.type = "button";
  const note = h("div", "av-note", panel, "The scores of this block cannot be decomposed into q·k × scale + a bias: " +
    "the model adds a term that depends on the query's or the key's content (such as relative position scores). " +
    "The weights shown are the trace's attention, not a softmax of q·k.");
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
    note.hidden = block.decomposable;
    const layer = block.loaded[state.layer], qk = block.loadedQK[state.layer];
    const bias = block.hasBias ? block.loadedBias[state.layer] : null;
    if (!layer || !qk || (block.hasBias && !bias)) {
      readout.textContent = "Decoding layer " + block.layers[state.layer] + "…";
      Promise.all([block.layer(state.layer), block.queriesKeys(state.layer), block.hasBias ? block.scoreBias(state.layer) : null])
        .then(() => store.setState({}), context.fail);
      return;
    }
    const qs = visibleIndices(block.querySequence, "all", controls.hideSpecial);
    const ks = visibleIndices(block.keySequence, "all", controls.hideSpecial);
    const d = block.headDim, cell = Math.max(2, Math.min(12, Math.floor(192 / d)));
    const vector = d * cell;
    // number columns: q·k × scale[, bias, score], softmax
    const numberCount = block.hasBias ? 4 : 2;
    const middle = state.expanded ? 3 * (vector + 12) + numberCount * NEURON_NUMBER_WIDTH + NEURON_LINES_WIDTH : MIDDLE_WIDTH;
    const tokenWidth = Math.min(220, Math.max(80, Math.max(tokenTextWidth(block.queryTokens, qs), tokenTextWidth(block.keyTokens, ks)) + 70));
    pane.setTokens(controls.hideSpecial + "/" + state.block, block.queryTokens, qs, block.keyTokens, ks, tokenWidth, middle);

    const focusAt = state.hover && state.hover.side === "q" ? state.hover : state.pinned;
    const q = focusAt ? focusAt.index : -1;
    const { ctx, top, bottom } = pane.begin();
    const y = (pos) => pos * ROW_HEIGHT;
    const rowVisible = (pos) => y(pos) + ROW_HEIGHT >= top && y(pos) <= bottom;
    const hi = state.head, nq = block.nq, nk = block.nk;
    const scales = rowScales(block, layer, controls);
    const biasAt = bias && q >= 0 ? (hi * nq + q) * nk : -1;
    const masked = (k) => (block.causal && k > q) || (biasAt >= 0 && bias[biasAt + k] === -Infinity);
    pane.highlight(focusAt);
    for (const [k, node] of pane.kNodes) node.classList.toggle("av-masked", q >= 0 && masked(k));

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
    const shownKeys = ks.filter((k) => !masked(k));
    const row = hi * nq + q, log = controls.scale === "log";
    // scaled[j] = q·k × scale, biases[j] the model's bias, totals[j] their sum: the score;
    // soft[j] the trace's weight, softmax of the exact score (renormalized as the
    // other views do when special tokens are hidden).
    const scaled = new Float64Array(shownKeys.length), biases = new Float64Array(shownKeys.length);
    const totals = new Float64Array(shownKeys.length), soft = new Float64Array(shownKeys.length);
    shownKeys.forEach((k, j) => {
      const kScale = qk.kScale[hi * nk + k], kBase = (hi * nk + k) * d;
      let dot = 0;
      for (let i = 0; i < d; i++) dot += query[i] * qk.k[kBase + i] * kScale;
      scaled[j] = dot * scoreScale;
      biases[j] = biasAt >= 0 ? bias[biasAt + k] : 0;
      totals[j] = scaled[j] + biases[j];
      soft[j] = layer.levels[row * nk + k] * scales.weight[row];
    });

    // Attention lines from the query to its keys (trace weights).
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

    const numbers = new Map(), at = new Map(shownKeys.map((k, j) => [k, j]));
    shownKeys.forEach((k, j) => numbers.set(k, formatWeight(soft[j])));
    pane.setNumbers("k", numbers);
    for (const [k, node] of pane.kNodes) {
      const j = at.get(k), shown = j !== undefined;
      node.dataset.score = shown ? scaled[j].toFixed(3) : "";
      node.dataset.bias = shown && block.hasBias ? biases[j].toFixed(3) : "";
      node.dataset.total = shown && block.decomposable ? totals[j].toFixed(3) : "";
    }

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
      // The number columns, left to right: [label, value of key j as text].
      const numberColumns = [["q·k × scale", (j) => scaled[j].toFixed(2)]];
      if (block.hasBias) numberColumns.push(["bias", (j) => biases[j].toFixed(2)], ["score", (j) => totals[j].toFixed(2)]);
      numberColumns.push([block.decomposable ? "softmax" : "attention", (j) => formatWeight(soft[j])]);
      setLegend([["query q", columns.query], ["key k", columns.key], ["q × k", columns.product]].concat(
        numberColumns.map(([label], c) => [label, numbersAt + c * NEURON_NUMBER_WIDTH])));
      shownKeys.forEach((k, j) => {
        const pos = pane.kPos[k];
        if (!rowVisible(pos)) return;
        const key = keyVector(k), product = key.map((v, i) => v * query[i]);
        drawVector(ctx, key, largest(key), columns.key, y(pos), cell);
        drawVector(ctx, product, largest(product), columns.product, y(pos), cell);
        ctx.fillStyle = ink;
        numberColumns.forEach(([, text], c) => ctx.fillText(text(j), numbersAt + c * NEURON_NUMBER_WIDTH, y(pos) + 14));
      });
    }
    const token = block.queryTokens[q];
    const form = block.decomposable
      ? "score = q·k × " + scoreScale.toPrecision(4) + (block.hasBias ? " + bias" : "") + ", softmax over " + shownKeys.length + " keys"
      : "score = q·k × " + scoreScale.toPrecision(4) + " + a query-dependent term (see the note); attention over " + shownKeys.length + " keys";
    const biasMasks = biasAt >= 0 && ks.some((k) => bias[biasAt + k] === -Infinity);
    const hidden = [block.causal ? "future keys" : "", biasMasks ? "keys the bias masks" : ""].filter(Boolean).join(" and ");
    readout.textContent = "Layer " + block.layers[state.layer] + ", head " + block.heads[hi] + ': query "' + token.shown +
      '" (' + token.raw + ", #" + q + "): " + form + (hidden ? " (" + hidden + " hidden)" : "") + ".";
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
