// Head view: for one layer, lines from each query token (left) to each key
// token (right), one colour per head, opacity = weight (divided among the
// shown heads, as in bertviz). Hover a token to see only its lines, the
// per-head weight boxes and the weights as numbers; click a token to pin it,
// then hover the other side for per-head weights. Swatches: click toggles a
// head, double-click shows it alone or restores all.

const MIDDLE_WIDTH = 150;

function createHeadView(context, panel, options) {
  const { trace, controls } = context;
  const filters = options.block != null ? context.filters.filter((f) => f.block === options.block) : context.filters;
  const bar = h("div", "av-toolbar", panel);
  const layerSelect = options.fixed ? null : labeled(bar, "Layer", h("select", "av-layer"));
  const filterSelect = filters.length > 1 ? labeled(bar, "Filter", selectOf(filters.map((_, i) => i), filters.map((f) => f.label))) : null;
  if (filterSelect) filterSelect.classList.add("av-filter");
  const swatches = h("div", "av-swatches", bar);
  const readout = h("div", "av-readout", panel, "Hover a token.");
  const activeOf = {};  // block index -> bool per included head

  const store = makeStore(
    { filter: 0, layer: options.layer || 0, hover: null, pinned: null },
    draw,
  );
  const state = store.state;
  const pane = makeTokenPane(
    panel,
    (at) => { if (!sameToken(at, state.hover)) store.setState({ hover: at }); },
    (at) => store.setState({ pinned: sameToken(at, state.pinned) ? null : at }),
  );
  pane.scroll.addEventListener("scroll", () => store.setState({}), { passive: true });

  const currentBlock = () => trace.blocks[filters[state.filter].block];
  const activeHeads = () => {
    const block = currentBlock();
    if (!activeOf[block.index]) {
      activeOf[block.index] = block.heads.map((head, i) => !options.heads || options.heads.includes(i));
    }
    return activeOf[block.index];
  };

  function fillLayers() {
    if (!layerSelect) return;
    const block = currentBlock();
    layerSelect.textContent = "";
    block.layers.forEach((layer, i) => { h("option", null, layerSelect, String(layer)).value = String(i); });
    state.layer = Math.min(state.layer, block.layers.length - 1);
    layerSelect.value = String(state.layer);
  }
  function fillSwatches() {
    const block = currentBlock();
    swatches.textContent = "";
    block.heads.forEach((head, i) => {
      const swatch = h("span", "av-swatch", swatches);
      swatch.dataset.head = i;
      swatch.title = "head " + head + " (click: toggle, double-click: alone / all)";
      swatch.style.background = headColor(head);
    });
    swatches.dataset.block = block.index;
  }
  if (layerSelect) layerSelect.onchange = () => store.setState({ layer: +layerSelect.value, pinned: null });
  if (filterSelect) {
    filterSelect.onchange = () => {
      store.setState({ filter: +filterSelect.value, hover: null, pinned: null });
      fillLayers();
      fillSwatches();
    };
  }
  swatches.addEventListener("click", (event) => {
    const swatch = event.target.closest(".av-swatch");
    if (!swatch) return;
    const active = activeHeads(), i = +swatch.dataset.head;
    if (active[i] && active.filter(Boolean).length === 1) return;  // keep one head shown
    active[i] = !active[i];
    store.setState({});
  });
  swatches.addEventListener("dblclick", (event) => {
    const swatch = event.target.closest(".av-swatch");
    if (!swatch) return;
    const active = activeHeads(), i = +swatch.dataset.head;
    const alone = active[i] && active.filter(Boolean).length === 1;
    active.forEach((_, j) => { active[j] = alone || j === i; });
    store.setState({});
  });
  fillLayers();
  fillSwatches();

  function draw() {
    const filter = filters[state.filter];
    const block = currentBlock();
    const layer = block.loaded[state.layer];
    if (!layer) {
      readout.textContent = "Decoding layer " + block.layers[state.layer] + "…";
      block.layer(state.layer).then(() => store.setState({}), context.fail);
      return;
    }
    const active = activeHeads();
    const shownHeads = [];
    active.forEach((on, i) => { if (on) shownHeads.push(i); });
    for (const swatch of swatches.children) swatch.classList.toggle("av-off", !active[+swatch.dataset.head]);

    const qs = visibleIndices(block.querySequence, filter.q, controls.hideSpecial);
    const ks = visibleIndices(block.keySequence, filter.k, controls.hideSpecial);
    const tokenWidth = Math.min(260, Math.max(90, Math.max(tokenTextWidth(block.queryTokens, qs), tokenTextWidth(block.keyTokens, ks)) + 60));
    pane.setTokens(state.filter + "/" + controls.hideSpecial, block.queryTokens, qs, block.keyTokens, ks, tokenWidth, MIDDLE_WIDTH);

    const pinnedFocus = state.pinned && (!state.hover || state.hover.side !== state.pinned.side);
    const focus = pinnedFocus ? state.pinned : state.hover;
    const lines = drawHeadLayer(pane, block, layer, qs, ks, shownHeads, focus, controls, tokenWidth);
    pane.highlight(focus);
    describe(block, layer, focus, shownHeads);

    panel.dataset.layer = block.layers[state.layer];
    panel.dataset.filter = filter.label;
    panel.dataset.active = shownHeads.map((i) => block.heads[i]).join(",");
    panel.dataset.focus = focus ? focus.side + ":" + focus.index : "";
    panel.dataset.lines = lines;
    if (!panel.dataset.firstDrawnAt) panel.dataset.firstDrawnAt = performance.now().toFixed(1);
    panel.dataset.drawn = (+panel.dataset.drawn || 0) + 1;
  }

  // The readout: the focused token, or per-head weights between a pinned
  // token and the hovered token on the other side.
  function describe(block, layer, focus, shownHeads) {
    const name = (tokens, i) => '"' + tokens[i].shown + '" (' + tokens[i].raw + ", #" + i + ")";
    const { pinned, hover } = state;
    if (pinned && hover && hover.side !== pinned.side) {
      const q = pinned.side === "q" ? pinned.index : hover.index;
      const k = pinned.side === "q" ? hover.index : pinned.index;
      const scales = rowScales(block, layer, controls);
      const parts = shownHeads.map((i) => {
        const row = i * block.nq + q;
        const w = layer.levels[row * block.nk + k] * scales.weight[row];
        return "H" + block.heads[i] + " " + formatWeight(w);
      });
      readout.textContent = "Layer " + block.layers[state.layer] + ": " + name(block.queryTokens, q) + " → " +
        name(block.keyTokens, k) + ": " + parts.join(" · ");
    } else if (focus) {
      const tokens = focus.side === "q" ? block.queryTokens : block.keyTokens;
      readout.textContent = (focus.side === "q" ? "Query " : "Key ") + name(tokens, focus.index) +
        ", id " + tokens[focus.index].id + (state.pinned ? "  (pinned: hover the other side for per-head weights)" : "");
    } else {
      readout.textContent = "Hover a token; click to pin it.";
    }
  }

  store.setState({});
  return { refresh: () => { store.setState({}); } };
}

function sameToken(a, b) {
  return a === b || (a != null && b != null && a.side === b.side && a.index === b.index);
}

// Draws one layer of a block into a token pane; returns the number of lines.
// Without focus: every line whose opacity is visible at 8-bit colour. With
// focus (a token on either side): that token's lines, the per-head boxes on
// the other side (opacity = weight) and the mean weight as a number.
function drawHeadLayer(pane, block, layer, qs, ks, shownHeads, focus, controls, tokenWidth) {
  const { ctx, top, bottom } = pane.begin();
  const { nq, nk } = block, log = controls.scale === "log";
  const scales = rowScales(block, layer, controls);
  const x1 = tokenWidth, x2 = tokenWidth + pane.middle, n = shownHeads.length;
  const buckets = 64, minimum = 1 / 255;
  let lines = 0;
  ctx.lineWidth = 1.5;
  const qPos = pane.qPos, kPos = pane.kPos;
  const y = (pos) => (pos + 0.5) * ROW_HEIGHT;

  const strokeBuckets = (paths, color) => {
    ctx.strokeStyle = color;
    for (let b = 0; b < buckets; b++) {
      if (!paths[b]) continue;
      ctx.globalAlpha = Math.max(0.5, b) / buckets;
      ctx.stroke(paths[b]);
    }
    ctx.globalAlpha = 1;
  };
  const addLine = (paths, alpha, ya, yb) => {
    if ((ya < top && yb < top) || (ya > bottom && yb > bottom)) return;
    const b = Math.min(buckets - 1, Math.round(alpha * buckets));
    const path = paths[b] || (paths[b] = new Path2D());
    path.moveTo(x1, ya);
    path.lineTo(x2, yb);
    lines++;
  };

  if (!focus) {
    // The smallest intensity whose line is visible (opacity >= 1/255 after
    // sharing among n heads), so most cells are skipped by one comparison.
    const visible = log ? Math.pow(10, 3 * (n * minimum - 1)) : n * minimum;
    for (const i of shownHeads) {
      const paths = [];
      for (const q of qs) {
        const row = i * nq + q, base = row * nk, mul = scales.intensity[row], yq = y(qPos[q]);
        if (mul <= 0) continue;
        const least = Math.max(1, visible / mul - 1e-9);
        for (const k of ks) {
          const level = layer.levels[base + k];
          if (level < least) continue;
          const alpha = shade(level * mul, log) / n;
          if (alpha >= minimum) addLine(paths, alpha, yq, y(kPos[k]));
        }
      }
      strokeBuckets(paths, headColor(block.heads[i]));
    }
    pane.setNumbers("q", null);
    pane.setNumbers("k", null);
    return lines;
  }

  // Focus: the other side's tokens get boxes and numbers.
  const fromQuery = focus.side === "q";
  const others = fromQuery ? ks : qs;
  const sums = new Float64Array(others.length);
  const boxLeft = fromQuery ? x2 : 0, boxWidth = tokenWidth / n;
  shownHeads.forEach((i, slot) => {
    const paths = [], color = headColor(block.heads[i]);
    ctx.fillStyle = color;
    others.forEach((other, o) => {
      const q = fromQuery ? focus.index : other, k = fromQuery ? other : focus.index;
      const row = i * nq + q, level = layer.levels[row * nk + k];
      sums[o] += level * scales.weight[row];
      if (level === 0) return;
      const x = shade(level * scales.intensity[row], log);
      const yo = y(fromQuery ? kPos[k] : qPos[q]);
      if (yo + ROW_HEIGHT < top || yo - ROW_HEIGHT > bottom) return;
      ctx.globalAlpha = x;
      ctx.fillRect(boxLeft + slot * boxWidth, yo - ROW_HEIGHT / 2, boxWidth, ROW_HEIGHT);
      ctx.globalAlpha = 1;
      if (x / n >= minimum) addLine(paths, x / n, y(qPos[q]), y(kPos[k]));
    });
    strokeBuckets(paths, color);
  });
  const numbers = new Map();
  others.forEach((other, o) => numbers.set(other, formatWeight(sums[o] / n)));
  pane.setNumbers(fromQuery ? "k" : "q", numbers);
  pane.setNumbers(fromQuery ? "q" : "k", null);
  return lines;
}
