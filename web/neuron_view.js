// Neuron view: for one layer and head, hover (or click to pin) a query token
// to see how its attention is computed: the query vector q, each key vector
// k, the elementwise q×k, q·k×scale, the block's additive bias (when the model
// adds one, e.g. T5's relative positions) and the score they sum to, and the
// softmax, as bertviz shows them. Works for any trace that kept queries and
// keys. q and k are the payload's 8-bit vectors, so q·k × scale and the score
// are printed with the most their rounding can move them ("2.41 ±0.03"); the
// bias is exact; the softmax is the trace's exact stored weight (block.exact),
// the same number the other views print. Keys the model masks (after the
// query of a causal block, or a -inf bias) are hidden. Blocks whose score is
// not q·k×scale + bias say so in a note. The middle columns take the width the
// panel has, each as wide as its widest number or label, so the legend never
// overlaps and the key tokens stay in view.

const NEURON_LINES_WIDTH = 70;
const NEURON_NUMBER_FONT = "11px sans-serif";
const NEURON_VECTOR_LABEL = 52;  // the narrowest vector column: room for its legend label

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
  const precision = h("div", "av-hint av-precision", panel, "q·k × scale and the score are computed from the page's " +
    "8-bit q and k: ± is the most that rounding can move them. The bias and the softmax (the trace's stored weight) are exact.");
  // Column names above the expanded columns; scrolls sideways with the pane.
  const legend = h("div", "av-legend", panel);
  const legendRow = h("div", "av-legend-row", legend);

  // Opens on the page's initial layer and first initial head (--open-layer, --open-heads).
  const open = context.open ? context.open(blocks[0]) : { layer: 0, heads: null };
  const store = makeStore({ block: 0, layer: open.layer, head: open.heads ? open.heads[0] : 0, hover: null, pinned: null, expanded: false }, draw, panel);
  const state = store.state;
  const pane = makeTokenPane(
    panel,
    (at) => { if (!sameToken(at, state.hover)) store.setState({ hover: at }); },
    (at) => { if (at.side === "q") store.setState({ pinned: sameToken(at, state.pinned) ? null : at }); },
  );
  pane.scroll.addEventListener("scroll", () => {
    legendRow.style.transform = "translateX(" + -pane.scroll.scrollLeft + "px)";
    store.setState({});
  }, { passive: true });
  let exactKey = null, exactAt = null, measure = null;
  let widths = { key: null, columns: [] };  // the number columns' widths, grown as needed for a layer and head

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
    precision.hidden = !state.expanded;
    const layer = block.loaded[state.layer], qk = block.loadedQK[state.layer];
    const bias = block.hasBias ? block.loadedBias[state.layer] : null;
    const wanted = state.block + "/" + state.layer;
    if (exactKey !== wanted) { exactKey = wanted; exactAt = null; }
    if (!layer || !qk || (block.hasBias && !bias) || !exactAt) {
      readout.textContent = "Decoding layer " + block.layers[state.layer] + "…";
      Promise.all([block.layer(state.layer), block.queriesKeys(state.layer), block.hasBias ? block.scoreBias(state.layer) : null,
        block.exact(state.layer)])
        .then(([, , , at]) => { if (exactKey === wanted) exactAt = at; store.setState({}); }, context.fail);
      return;
    }
    const qs = visibleIndices(block.querySequence, "all", controls.hideSpecial);
    const ks = visibleIndices(block.keySequence, "all", controls.hideSpecial);
    const hi = state.head, nq = block.nq, nk = block.nk, d = block.headDim;
    const tokenWidth = Math.min(300, Math.max(80, Math.max(tokenTextWidth(block.queryTokens, qs), tokenTextWidth(block.keyTokens, ks)) + 70));

    const focusAt = state.hover && state.hover.side === "q" ? state.hover : state.pinned;
    const q = focusAt ? focusAt.index : -1;
    const biasAt = bias && q >= 0 ? (hi * nq + q) * nk : -1;
    const masked = (k) => (block.causal && k > q) || (biasAt >= 0 && bias[biasAt + k] === -Infinity);
    const shownKeys = q >= 0 ? ks.filter((k) => !masked(k)) : [];
    const scoreScale = block.scoreScales ? block.scoreScales[state.layer] : block.scoreScale;
    const numbers = q >= 0 ? focusNumbers(block, qk, bias, exactAt, hi, q, shownKeys, scoreScale, controls.hideSpecial) : null;

    // The number columns, left to right: [label, text of key j].
    const numberColumns = [["q·k × scale", (j) => numbers.scaled[j]]];
    if (block.hasBias) numberColumns.push(["bias", (j) => numbers.biases[j]], ["score", (j) => numbers.totals[j]]);
    numberColumns.push([block.decomposable ? "softmax" : "attention", (j) => numbers.weights[j]]);
    const layoutKey = [state.block, state.layer, state.head, controls.hideSpecial].join("/");
    if (widths.key !== layoutKey) widths = { key: layoutKey, columns: numberColumns.map(() => 0) };
    if (state.expanded && numbers) {
      const ctx = measure || (measure = document.createElement("canvas").getContext("2d"));
      ctx.font = NEURON_NUMBER_FONT;
      numberColumns.forEach(([label, text], c) => {
        let widest = ctx.measureText(label).width;
        for (let j = 0; j < shownKeys.length; j++) widest = Math.max(widest, ctx.measureText(text(j)).width);
        // in steps of 16 px, so a new query rarely moves the columns
        widths.columns[c] = Math.max(widths.columns[c], Math.ceil((widest + 14) / 16) * 16);
      });
    }
    const numbersWidth = widths.columns.reduce((a, b) => a + b, 0) || numberColumns.length * 64;
    // The vector cells as large as the panel allows (up to 12 px, down to 1 px).
    const room = (panel.clientWidth || 1000) - 2 * tokenWidth - numbersWidth - NEURON_LINES_WIDTH - 3 * 12 - 24;
    const cell = Math.max(1, Math.min(12, Math.floor(room / (3 * d))));
    const vectorSpace = Math.max(d * cell, NEURON_VECTOR_LABEL) + 12;
    const middle = state.expanded ? 12 + 3 * vectorSpace + numbersWidth + NEURON_LINES_WIDTH : MIDDLE_WIDTH;
    pane.setTokens(controls.hideSpecial + "/" + state.block, block.queryTokens, qs, block.keyTokens, ks, tokenWidth, middle);

    const { ctx, top, bottom } = pane.begin();
    const y = (pos) => pos * ROW_HEIGHT;
    const rowVisible = (pos) => y(pos) + ROW_HEIGHT >= top && y(pos) <= bottom;
    const scales = rowScales(block, layer, controls);
    pane.highlight(focusAt);
    for (const [k, node] of pane.kNodes) node.classList.toggle("av-masked", q >= 0 && masked(k));

    if (!state.expanded || q < 0) setLegend([]);
    if (q < 0) {
      pane.setNumbers("k", null);
      for (const node of pane.kNodes.values()) node.dataset.score = node.dataset.bias = node.dataset.total = "";
      readout.textContent = "Hover a query token (left); click to pin it.";
      finish(block, null);
      return;
    }
    const row = hi * nq + q, log = controls.scale === "log";

    // Attention lines from the query to its keys (coloured as the other views draw them).
    const x2 = tokenWidth + middle, x1 = x2 - NEURON_LINES_WIDTH + 6;
    ctx.strokeStyle = headColor(block.heads[hi], controls.dark);
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

    const weights = new Map(), at = new Map(shownKeys.map((k, j) => [k, j]));
    shownKeys.forEach((k, j) => weights.set(k, numbers.weights[j]));
    pane.setNumbers("k", weights);
    for (const [k, node] of pane.kNodes) {
      const j = at.get(k), shown = j !== undefined;
      node.dataset.score = shown ? numbers.scaled[j] : "";
      node.dataset.bias = shown && block.hasBias ? numbers.biases[j] : "";
      node.dataset.total = shown && block.decomposable && block.hasBias ? numbers.totals[j] : "";
    }

    if (state.expanded) {
      let left = tokenWidth + 12;
      const columns = { query: left, key: (left += vectorSpace), product: (left += vectorSpace) };
      const numbersAt = [left + vectorSpace];
      widths.columns.forEach((w) => numbersAt.push(numbersAt[numbersAt.length - 1] + w));
      const vectorOf = (values, scale, base) => {
        const v = new Float32Array(d);
        for (let i = 0; i < d; i++) v[i] = values[base + i] * scale;
        return v;
      };
      const largest = (v) => v.reduce((m, x) => Math.max(m, Math.abs(x)), 1e-12);
      const query = vectorOf(qk.q, qk.qScale[row], row * d);
      drawVector(ctx, query, largest(query), columns.query, y(pane.qPos[q]), cell);
      const ink = getComputedStyle(pane.scroll).color;
      ctx.font = NEURON_NUMBER_FONT;
      ctx.textAlign = "left";
      setLegend([["query q", columns.query], ["key k", columns.key], ["q × k", columns.product]].concat(
        numberColumns.map(([label], c) => [label, numbersAt[c]])));
      shownKeys.forEach((k, j) => {
        const pos = pane.kPos[k];
        if (!rowVisible(pos)) return;
        const keyRow = hi * nk + k, key = vectorOf(qk.k, qk.kScale[keyRow], keyRow * d), product = key.map((v, i) => v * query[i]);
        drawVector(ctx, key, largest(key), columns.key, y(pos), cell);
        drawVector(ctx, product, largest(product), columns.product, y(pos), cell);
        ctx.fillStyle = ink;
        numberColumns.forEach(([, text], c) => ctx.fillText(text(j), numbersAt[c], y(pos) + 14));
      });
    }
    const token = block.queryTokens[q];
    const form = block.decomposable
      ? "score = q·k × " + scoreScale.toPrecision(4) + (block.hasBias ? " + bias" : "") + ", softmax over " + shownKeys.length + " keys"
      : "score = q·k × " + scoreScale.toPrecision(4) + " + a query-dependent term (see the note); attention over " + shownKeys.length + " keys";
    const biasMasks = biasAt >= 0 && ks.some((k) => bias[biasAt + k] === -Infinity);
    const hidden = [block.causal ? "future keys" : "", biasMasks ? "keys the bias masks" : ""].filter(Boolean).join(" and ");
    readout.textContent = "Layer " + block.layers[state.layer] + ", head " + block.heads[hi] + ': query "' + token.shown +
      '" (' + token.raw + ", #" + q + "): " + form + (hidden ? " (" + hidden + " hidden)" : "") +
      (controls.hideSpecial ? "; weights renormalized without special tokens" : "") + ".";
    finish(block, q);
  }

  function setLegend(labels) {
    const key = JSON.stringify(labels);
    if (legend.dataset.key === key) return;
    legend.dataset.key = key;
    legendRow.textContent = "";
    for (const [text, x] of labels) h("span", null, legendRow, text).style.left = x + "px";
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

// The numbers of one focused query, as printed, for each shown key j:
// scaled[j] = q·k × scale and totals[j] = scaled + bias from the 8-bit
// vectors, with their error bound; biases[j] exact; weights[j] the exact
// stored weight (renormalized over the non-special keys when they are hidden,
// as every view does).
function focusNumbers(block, qk, bias, exactAt, hi, q, keys, scoreScale, hideSpecial) {
  const d = block.headDim, nq = block.nq, nk = block.nk, row = hi * nq + q;
  const qStep = qk.qScale[row], qBase = row * d;
  let qAbs = 0;
  for (let i = 0; i < d; i++) qAbs += Math.abs(qk.q[qBase + i]) * qStep;
  let kept = 1;
  if (hideSpecial) {
    kept = 0;
    block.keyTokens.forEach((token, k) => { if (!token.special) kept += exactAt(hi, q, k); });
  }
  const out = { scaled: [], biases: [], totals: [], weights: [] };
  for (const k of keys) {
    const keyRow = hi * nk + k, kStep = qk.kScale[keyRow], kBase = keyRow * d;
    let dot = 0, kAbs = 0;
    for (let i = 0; i < d; i++) {
      const kv = qk.k[kBase + i] * kStep;
      dot += qk.q[qBase + i] * qStep * kv;
      kAbs += Math.abs(kv);
    }
    // Rounding moves each entry by at most half a step: |qk − q'k'| <=
    // Σ|q'|·k_step/2 + Σ|k'|·q_step/2 + d·q_step·k_step/4.
    const error = Math.abs(scoreScale) * ((qAbs * kStep) / 2 + (kAbs * qStep) / 2 + (d * qStep * kStep) / 4);
    const scaled = dot * scoreScale, b = bias ? bias[row * nk + k] : 0;
    out.scaled.push(formatWithError(scaled, error));
    out.biases.push(formatExact(b));
    out.totals.push(formatWithError(scaled + b, error));
    const w = exactAt(hi, q, k);
    // renormalized: computed from several stored weights, so printed as an aggregate ("≈")
    out.weights.push(hideSpecial ? formatAggregate(kept > 0 ? w / kept : 0) : formatWeight(w));
  }
  return out;
}

// "2.41 ±0.03": the error rounded up (after adding the half unit that
// printing the value can move it) to one significant digit, two when it
// starts with a 1, and the value to the same digits.
function formatWithError(value, error) {
  if (!(error > 0)) return formatExact(value);
  let unit = Math.pow(10, Math.floor(Math.log10(error)));
  if (error / unit < 2) unit /= 10;
  const bound = Math.ceil((error + unit / 2) / unit - 1e-9) * unit;
  const decimals = Math.max(0, -Math.round(Math.log10(unit)));
  return value.toFixed(decimals) + " ±" + bound.toFixed(decimals);
}

// An exact value, rounded to what the column has room for.
function formatExact(value) {
  return Math.abs(value) >= 1e4 ? value.toExponential(2) : value.toFixed(2);
}
