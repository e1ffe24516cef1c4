// Head view: for one layer, lines from each query token (left) to each key
// token (right), one colour per head, opacity = weight (divided among the
// shown heads, as in bertviz). Hover (or tab to) a token to see only its
// lines, the per-head weight boxes and the weights as numbers; click to pin
// it, then hover the other side for per-head weights. Swatches: click toggles
// a head, double-click shows it alone or restores all; they take keyboard
// focus too. A minimap beside long inputs shows where the layer's attention
// goes (queries down, keys across) and the rows in view; click it to scroll.
//
// Work per frame is bounded at any length: without a focused token, the lines
// are chosen once per setting (all of them up to LINE_BUDGET; beyond, each
// query's strongest keys up to LINE_MASS of its weight) and drawn into tiles
// of TILE_HEIGHT pixels, each drawn once, on first sight, and then copied,
// so scrolling only copies pixels. Numbers come from the exact stream.

const MIDDLE_WIDTH = 150;
const LINE_BUDGET = 12000;
const LINE_MASS = 0.9;
const FULL_SCAN_CELLS = 40000;  // per head: 200 x 200 tokens
const SUMMARY_KEYS = 8;
const THIN_LINE = 0.75;
const LONG_LINE_ROWS = 40;
const TILE_HEIGHT = 400;
const MINIMAP_WIDTH = 72;

function createHeadView(context, panel, options) {
  const { trace, controls } = context;
  const filters = options.block != null ? context.filters.filter((f) => f.block === options.block) : context.filters;
  const bar = h("div", "av-toolbar", panel);
  const layerSelect = options.fixed ? null : labeled(bar, "Layer", h("select", "av-layer"));
  const filterSelect = filters.length > 1 ? labeled(bar, "Filter", selectOf(filters.map((_, i) => i), filters.map((f) => f.label))) : null;
  if (filterSelect) filterSelect.classList.add("av-filter");
  const swatches = h("div", "av-swatches", bar);
  swatches.setAttribute("role", "toolbar");
  swatches.setAttribute("aria-label", "heads");
  const settleSwatches = rovingFocus(swatches, ".av-swatch", null);
  const status = h("div", "av-hint av-status", panel);
  const readout = h("div", "av-readout av-head-readout", panel, "Hover a token.");
  const activeOf = {};  // block index -> bool per included head
  const firstBlock = trace.blocks[filters[0].block];
  const opened = options.fixed ? { layer: options.layer || 0, heads: options.heads } : context.open(firstBlock);

  const store = makeStore({ filter: 0, layer: opened.layer, hover: null, pinned: null }, draw, panel);
  const state = store.state;
  const body = h("div", "av-head-body", panel);
  const pane = makeTokenPane(
    body,
    (at) => { if (!sameToken(at, state.hover)) store.setState({ hover: at }); },
    (at) => store.setState({ pinned: sameToken(at, state.pinned) ? null : at }),
  );
  pane.scroll.addEventListener("scroll", () => store.setState({}), { passive: true });
  const minimap = h("canvas", "av-minimap", body);
  minimap.title = "Where this layer's attention goes: queries down, keys across (the largest of the shown heads). Click to scroll.";
  minimap.addEventListener("click", (event) => {
    const rect = minimap.getBoundingClientRect();
    const fraction = (event.clientY - rect.top) / rect.height;
    pane.scroll.scrollTop = fraction * pane.height - pane.scroll.clientHeight / 2;
  });
  const lineCache = { key: null }, tiles = { key: null, canvases: [] }, mapCache = { key: null };
  let prefetch = 0;

  const currentBlock = () => trace.blocks[filters[state.filter].block];
  const activeHeads = () => {
    const block = currentBlock();
    if (!activeOf[block.index]) {
      const chosen = block.index === firstBlock.index ? opened.heads : null;
      activeOf[block.index] = block.heads.map((head, i) => !chosen || chosen.includes(i));
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
      swatch.tabIndex = -1;
      swatch.setAttribute("role", "button");
      swatch.title = block.measure ? block.measure : "head " + head + " (click or Enter: toggle, double-click: alone / all)";
      swatch.setAttribute("aria-label", block.measure || "head " + head);
    });
    swatches.dataset.block = block.index;
    settleSwatches();
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
    const started = performance.now();
    const filter = filters[state.filter];
    const block = currentBlock();
    const layer = block.loaded[state.layer];
    if (!layer) {
      readout.textContent = "Decoding layer " + block.layers[state.layer] + "…";
      const li = state.layer;
      // The exact numbers follow in the background, ready for the first hover.
      block.layer(li).then(() => { store.setState({}); setTimeout(() => block.exact(li).catch(context.fail), 50); }, context.fail);
      return;
    }
    const active = activeHeads();
    const shownHeads = [];
    active.forEach((on, i) => { if (on) shownHeads.push(i); });
    for (const swatch of swatches.children) {
      swatch.classList.toggle("av-off", !active[+swatch.dataset.head]);
      swatch.style.background = headColor(block.heads[+swatch.dataset.head], controls.dark);
      swatch.setAttribute("aria-pressed", String(active[+swatch.dataset.head]));
    }

    const qs = visibleIndices(block.querySequence, filter.q, controls.hideSpecial);
    const ks = visibleIndices(block.keySequence, filter.k, controls.hideSpecial);
    const tokenWidth = Math.min(260, Math.max(90, Math.max(tokenTextWidth(block.queryTokens, qs), tokenTextWidth(block.keyTokens, ks)) + 72));  // room for the number chip
    pane.setTokens(state.filter + "/" + controls.hideSpecial, block.queryTokens, qs, block.keyTokens, ks, tokenWidth, MIDDLE_WIDTH);

    const pinnedFocus = state.pinned && (!state.hover || state.hover.side !== state.pinned.side);
    const focus = pinnedFocus ? state.pinned : state.hover;
    // Numbers need the exact stream: decode it on the first focus, draw numbers when it is in.
    const exact = block.loadedExact[state.layer];
    if ((focus || state.pinned) && !exact) block.exact(state.layer).then(() => store.setState({}), context.fail);
    const settings = [block.index, state.layer, state.filter, shownHeads.join(","), controls.scale, controls.scaling, controls.hideSpecial, tokenTextVersion].join("/");
    let lines;
    if (focus) {
      lines = drawFocus(pane, block, layer, exact, qs, ks, shownHeads, focus, controls, tokenWidth, rowSums);
    } else {
      lines = drawTiles(block, layer, qs, ks, shownHeads, settings, tokenWidth);
      pane.setNumbers("q", null);
      pane.setNumbers("k", null);
    }
    pane.highlight(focus);
    drawMinimap(block, layer, qs, ks, shownHeads, settings);
    describe(block, exact, focus, shownHeads);
    showStatus(block, qs, ks);

    panel.dataset.layer = block.layers[state.layer];
    panel.dataset.filter = filter.label;
    panel.dataset.active = shownHeads.map((i) => block.heads[i]).join(",");
    panel.dataset.focus = focus ? focus.side + ":" + focus.index : "";
    panel.dataset.lines = lines;
    panel.dataset.scale = controls.scale;
    panel.dataset.scaling = controls.scaling;
    panel.dataset.exact = exact ? "1" : "";
    if (!panel.dataset.firstDrawnAt) panel.dataset.firstDrawnAt = performance.now().toFixed(1);
    panel.dataset.drawMs = (performance.now() - started).toFixed(2);
    // Not done while the numbers of a focused token wait for the exact stream.
    if (exact || !(focus || state.pinned)) panel.dataset.drawn = (+panel.dataset.drawn || 0) + 1;
  }

  // Per layer: each row's weight on the keys left when special tokens are
  // hidden (rows are renormalized by it): 1 minus its weight on special keys,
  // which are few and mostly large, so their exact values keep it close.
  const sumsOf = {};
  function rowSums(block, exact) {
    const key = block.index + "/" + state.layer;
    if (sumsOf[key]) return sumsOf[key];
    const nh = block.heads.length, { nq, nk } = block, layer = block.loaded[state.layer];
    const special = [];
    block.keyTokens.forEach((t, k) => { if (t.special) special.push(k); });
    const sums = new Float64Array(nh * nq);
    for (let i = 0; i < nh; i++)
      for (let q = 0; q < nq; q++) {
        if (!(layer.rowMax[i * nq + q] > 0)) continue;
        let on = 0;
        for (const k of special) on += exact(i, q, k);
        sums[i * nq + q] = Math.max(1e-12, 1 - on);
      }
    return (sumsOf[key] = sums);
  }

  function showStatus(block, qs, ks) {
    const parts = ["Colour: " + controls.scale + ", " + (controls.scaling === "row" ? "per-row scaled (each query's largest weight is full colour)" : "one scale for all rows")];
    if (lineCache.bounded)
      parts.push("lines: each query's strongest keys (at most " + lineCache.perRow + " a head) up to " + Math.round(LINE_MASS * 100) +
        "% of its weight, within " + LONG_LINE_ROWS + " tokens: " + lineCache.kept + " lines (the minimap shows the rest; hover a token for all of its lines)");
    if (controls.hideSpecial) parts.push("special tokens hidden: rows renormalized over the rest");
    parts.push(qs.length + " × " + ks.length + " tokens");
    const text = parts.join(" · ");
    if (status.textContent !== text) status.textContent = status.title = text;
  }

  // The lines of the layer without a focused token, chosen once per setting:
  // for each shown head, [query row, key row, opacity bucket] triples: every
  // visible line while there are at most LINE_BUDGET of them (and at most
  // FULL_SCAN_CELLS shown cells a head); beyond, each query's strongest keys,
  // from the layer's summary, up to LINE_MASS of its weight and at most
  // LINE_BUDGET / (heads x queries) keys.
  function chooseLines(block, layer, qs, ks, shownHeads, settings) {
    if (lineCache.key === settings) return lineCache;
    const { nq, nk } = block, log = controls.scale === "log", n = shownHeads.length;
    const scales = rowScales(block, layer, controls);
    const minimum = 1 / 255;
    // The smallest intensity whose line is visible (opacity >= 1/255 after
    // sharing among n heads), so most cells are skipped by one comparison.
    const visible = log ? Math.pow(10, 3 * (n * minimum - 1)) : n * minimum;
    const least = (row) => Math.max(1, visible / scales.intensity[row] - 1e-9);
    const kPos = pane.kPos, qPos = pane.qPos;
    const bucket = (level, mul) => {
      const alpha = shade(level * mul, log) / n;
      return alpha >= minimum ? Math.min(63, Math.round(alpha * 64)) : -1;
    };
    // Every visible line, while they stay within LINE_BUDGET.
    const all = () => {
      const heads = [];
      let kept = 0;
      for (const i of shownHeads) {
        const out = [];
        for (const q of qs) {
          const row = i * nq + q, base = row * nk, mul = scales.intensity[row];
          if (mul <= 0) continue;
          const floor = least(row), yq = qPos[q];
          for (const k of ks) {
            const level = layer.levels[base + k];
            if (level < floor) continue;
            const b = bucket(level, mul);
            if (b >= 0) out.push(yq, kPos[k], b);
          }
          if (kept + out.length / 3 > LINE_BUDGET) return null;
        }
        kept += out.length / 3;
        heads.push({ head: block.heads[i], lines: Int32Array.from(out) });
      }
      return { heads, kept, bounded: false };
    };
    // Each query's strongest keys (the layer summary is sorted), until LINE_MASS of its weight.
    const strongest = () => {
      const summary = layerSummary(block, layer);
      const perRow = Math.max(1, Math.min(SUMMARY_KEYS, Math.floor(LINE_BUDGET / Math.max(1, n * qs.length))));
      const heads = [];
      let kept = 0;
      for (const i of shownHeads) {
        const out = [];
        for (const q of qs) {
          const row = i * nq + q, mul = scales.intensity[row];
          if (mul <= 0) continue;
          const floor = least(row), yq = qPos[q], mass = LINE_MASS * summary.sums[row];
          let taken = 0, sum = 0;
          for (let j = 0; j < SUMMARY_KEYS && taken < perRow && sum < mass; j++) {
            const level = summary.levels[row * SUMMARY_KEYS + j];
            if (level < floor) break;
            const k = summary.keys[row * SUMMARY_KEYS + j];
            sum += level;
            if (kPos[k] < 0) continue;  // filtered out or hidden
            taken++;
            // Lines over LONG_LINE_ROWS rows would be haze crossing every screen (and
            // most of the drawing time): left out; the minimap and hovering show them.
            if (Math.abs(yq - kPos[k]) > LONG_LINE_ROWS) continue;
            const b = bucket(level, mul);
            if (b >= 0) out.push(yq, kPos[k], b);
          }
        }
        kept += out.length / 3;
        heads.push({ head: block.heads[i], lines: Int32Array.from(out) });
      }
      return { heads, kept, bounded: true, perRow };
    };
    const chosen = (qs.length * ks.length <= FULL_SCAN_CELLS && all()) || strongest();
    Object.assign(lineCache, { key: settings }, chosen);
    return lineCache;
  }

  // Draws the visible band from cached tiles; renders missing tiles in view
  // now and the ones next to them while idle.
  function drawTiles(block, layer, qs, ks, shownHeads, settings, tokenWidth) {
    const t0 = performance.now();
    const chosen = chooseLines(block, layer, qs, ks, shownHeads, settings);
    panel.dataset.chooseMs = (performance.now() - t0).toFixed(1);
    const tileKey = settings + "/" + controls.dark + "/" + (window.devicePixelRatio || 1) + "/" + pane.height;
    if (tiles.key !== tileKey) {
      tiles.key = tileKey;
      tiles.canvases = [];
    }
    const { ctx, top, bottom } = pane.begin();
    const count = Math.ceil(pane.height / TILE_HEIGHT);
    const first = Math.floor(top / TILE_HEIGHT), last = Math.min(count - 1, Math.floor((bottom - 1) / TILE_HEIGHT));
    const t1 = performance.now();
    let rendered = 0;
    for (let t = first; t <= last; t++) {
      if (!tiles.canvases[t]) { tiles.canvases[t] = renderTile(chosen, t); rendered++; }
      ctx.drawImage(tiles.canvases[t], tokenWidth, t * TILE_HEIGHT, MIDDLE_WIDTH, TILE_HEIGHT);
    }
    panel.dataset.tilesMs = (performance.now() - t1).toFixed(1);
    panel.dataset.tilesRendered = rendered;
    // Neighbours next, one per idle turn, so that scrolling finds them ready.
    const wanted = [];
    for (let d = 1; d <= 3; d++) for (const t of [last + d, first - d]) if (t >= 0 && t < count) wanted.push(t);
    clearTimeout(prefetch);
    const next = () => {
      if (tiles.key !== tileKey) return;
      const t = wanted.find((i) => !tiles.canvases[i]);
      if (t == null) return;
      tiles.canvases[t] = renderTile(chosen, t);
      prefetch = setTimeout(next, 0);
    };
    prefetch = setTimeout(next, 0);
    return chosen.kept;
  }

  function renderTile(chosen, t) {
    const ratio = window.devicePixelRatio || 1, top = t * TILE_HEIGHT, bottom = top + TILE_HEIGHT;
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(MIDDLE_WIDTH * ratio);
    canvas.height = Math.round(TILE_HEIGHT * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, -top * ratio);
    // Thin lines on long inputs: canvas draws lines under 1 px wide several times faster.
    ctx.lineWidth = chosen.bounded ? THIN_LINE : 1.5;
    const half = ROW_HEIGHT / 2;
    for (const { head, lines } of chosen.heads) {
      const paths = [];
      for (let j = 0; j < lines.length; j += 3) {
        const ya = lines[j] * ROW_HEIGHT + half, yb = lines[j + 1] * ROW_HEIGHT + half;
        if ((ya < top - 2 && yb < top - 2) || (ya > bottom + 2 && yb > bottom + 2)) continue;
        const b = lines[j + 2];
        const path = paths[b] || (paths[b] = new Path2D());
        path.moveTo(0, ya);
        path.lineTo(MIDDLE_WIDTH, yb);
      }
      ctx.strokeStyle = headColor(head, controls.dark);
      paths.forEach((path, b) => {
        ctx.globalAlpha = Math.max(0.5, b) / 64;
        ctx.stroke(path);
      });
      ctx.globalAlpha = 1;
    }
    return canvas;
  }

  // The minimap of the whole layer (all queries down, all keys across): per
  // pixel the largest intensity of the shown heads there, in the heatmap
  // colours; the rows in view are outlined.
  function drawMinimap(block, layer, qs, ks, shownHeads, settings) {
    const wanted = qs.length > 40;
    minimap.hidden = !wanted;
    if (!wanted) return;
    const height = Math.max(60, Math.min(pane.scroll.clientHeight || 300, 600));
    const key = settings + "/" + controls.dark + "/" + height;
    if (mapCache.key !== key) {
      const summary = layerSummary(block, layer), width = summary.mapWidth, rows = block.nq;
      const scales = rowScales(block, layer, controls), log = controls.scale === "log";
      const image = new ImageData(width, rows), table = heatTable(controls.dark);
      for (let q = 0; q < rows; q++) {
        for (let c = 0; c < width; c++) {
          let top = 0;
          for (const i of shownHeads) {
            const row = i * block.nq + q, x = summary.map[row * width + c] * scales.intensity[row];
            if (x > top) top = x;
          }
          const t = Math.round(shade(top, log) * 255) * 3, at = (q * width + c) * 4;
          image.data[at] = table[t];
          image.data[at + 1] = table[t + 1];
          image.data[at + 2] = table[t + 2];
          image.data[at + 3] = 255;
        }
      }
      const source = document.createElement("canvas");
      source.width = width;
      source.height = rows;
      source.getContext("2d").putImageData(image, 0, 0);
      Object.assign(mapCache, { key, source, height });
    }
    const ctx = fitCanvas(minimap, MINIMAP_WIDTH, mapCache.height);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(mapCache.source, 0, 0, MINIMAP_WIDTH, mapCache.height);
    const scroll = pane.scroll, total = Math.max(1, pane.height);
    const y = (scroll.scrollTop / total) * mapCache.height, band = Math.max(3, ((scroll.clientHeight || 0) / total) * mapCache.height);
    ctx.strokeStyle = controls.dark ? "#ffffff" : "#d00000";
    ctx.lineWidth = 1.5;
    ctx.strokeRect(0.75, y + 0.75, MINIMAP_WIDTH - 1.5, Math.min(band, mapCache.height - y) - 1.5);
  }

  // The readout: the focused token, or per-head weights between a pinned
  // token and the hovered token on the other side.
  function describe(block, exact, focus, shownHeads) {
    const name = (tokens, i) => '"' + tokens[i].shown + '" (' + tokens[i].raw + ", #" + i + ")";
    const { pinned, hover } = state;
    const n = shownHeads.length;
    if (pinned && hover && hover.side !== pinned.side) {
      const q = pinned.side === "q" ? pinned.index : hover.index;
      const k = pinned.side === "q" ? hover.index : pinned.index;
      const parts = shownHeads.map((i) => {
        if (!exact) return headLabel(block, i) + " …";
        const w = exact(i, q, k);
        if (!controls.hideSpecial) return headLabel(block, i) + " " + formatWeight(w);
        return headLabel(block, i) + " " + formatAggregate(w / rowSums(block, exact)[i * block.nq + q]);
      });
      readout.textContent = readout.title = "Layer " + block.layers[state.layer] + ": " + name(block.queryTokens, q) + " → " +
        name(block.keyTokens, k) + ": " + parts.join(" · ") + (controls.hideSpecial ? " (renormalized without special tokens)" : "");
    } else if (focus) {
      const tokens = focus.side === "q" ? block.queryTokens : block.keyTokens;
      const what = [n > 1 ? "numbers: " + meanLabel(n) : "", controls.hideSpecial ? "renormalized without special tokens" : ""].filter(Boolean).join(", ");
      readout.textContent = (focus.side === "q" ? "Query " : "Key ") + name(tokens, focus.index) +
        (hasTokenId(tokens[focus.index]) ? ", id " + tokens[focus.index].id : "") + (what ? " · " + what : "") +
        (state.pinned ? "  (pinned: hover the other side for per-head weights)" : "");
    } else {
      readout.textContent = "Hover a token, or tab to one and use the arrow keys; click or Enter pins it.";
    }
  }

  store.setState({});
  return {
    refresh: () => { store.setState({}); },
    // One head alone (the head stats' click): block index, layer and head as indices.
    showHead(blockIndex, layer, head) {
      const at = filters.findIndex((f) => f.block === blockIndex && f.q === "all");
      if (at < 0) return;
      if (filterSelect) filterSelect.value = String(at);
      store.setState({ filter: at, layer, hover: null, pinned: null });
      fillLayers();
      state.layer = layer;
      if (layerSelect) layerSelect.value = String(layer);
      fillSwatches();
      const active = activeHeads();
      active.forEach((_, j) => { active[j] = j === head; });
      store.setState({});
    },
  };
}

// A head's name in the readout: "H3", or the measure of a rollout / flow block.
function headLabel(block, i) {
  return block.measure ? block.measure : "H" + block.heads[i];
}

// One pass over a layer, once, for the head view of long inputs: per row
// (head × query) its SUMMARY_KEYS largest levels with their keys, strongest
// first, its level sum, and its largest level in each of the minimap's
// columns of keys.
function layerSummary(block, layer) {
  if (layer.headSummary) return layer.headSummary;
  const { nq, nk } = block, rows = block.heads.length * nq, K = SUMMARY_KEYS;
  const mapWidth = Math.min(MINIMAP_WIDTH, nk);
  const keys = new Int32Array(rows * K), levels = new Uint8Array(rows * K), sums = new Float64Array(rows);
  const map = new Uint8Array(rows * mapWidth), column = new Int32Array(nk);
  for (let k = 0; k < nk; k++) column[k] = Math.floor((k * mapWidth) / nk);
  const all = layer.levels;
  for (let row = 0; row < rows; row++) {
    const base = row * nk, at = row * K, mapAt = row * mapWidth;
    let sum = 0, weakest = 0;  // levels[at + K - 1]: the smallest kept
    for (let k = 0; k < nk; k++) {
      const level = all[base + k];
      if (level === 0) continue;
      sum += level;
      if (level > map[mapAt + column[k]]) map[mapAt + column[k]] = level;
      if (level <= weakest) continue;
      let j = K - 1;
      while (j > 0 && levels[at + j - 1] < level) {
        levels[at + j] = levels[at + j - 1];
        keys[at + j] = keys[at + j - 1];
        j--;
      }
      levels[at + j] = level;
      keys[at + j] = k;
      weakest = levels[at + K - 1];
    }
    sums[row] = sum;
  }
  return (layer.headSummary = { keys, levels, sums, map, mapWidth });
}

function sameToken(a, b) {
  return a === b || (a != null && b != null && a.side === b.side && a.index === b.index);
}

// A focused token (either side): its lines, the per-head boxes on the other
// side (opacity = weight) and the weights as numbers: exact for one head,
// the labelled mean (≈) for several or when rows are renormalized. Returns
// the number of lines drawn.
function drawFocus(pane, block, layer, exact, qs, ks, shownHeads, focus, controls, tokenWidth, rowSums) {
  const { ctx, top, bottom } = pane.begin();
  const { nq, nk } = block, log = controls.scale === "log";
  const scales = rowScales(block, layer, controls);
  const x1 = tokenWidth, x2 = tokenWidth + pane.middle, n = shownHeads.length;
  const buckets = 64, minimum = 1 / 255;
  let lines = 0;
  const thin = shownHeads.length * (focus.side === "q" ? ks.length : qs.length) > 1000;
  ctx.lineWidth = thin ? THIN_LINE : 1.5;
  const qPos = pane.qPos, kPos = pane.kPos;
  const y = (pos) => (pos + 0.5) * ROW_HEIGHT;

  const fromQuery = focus.side === "q";
  const others = fromQuery ? ks : qs;
  const sums = new Float64Array(others.length);
  const sumsOfRows = exact && controls.hideSpecial ? rowSums(block, exact) : null;
  const boxLeft = fromQuery ? x2 : 0, boxWidth = tokenWidth / n;
  shownHeads.forEach((i, slot) => {
    const paths = [], color = headColor(block.heads[i], controls.dark);
    ctx.fillStyle = color;
    others.forEach((other, o) => {
      const q = fromQuery ? focus.index : other, k = fromQuery ? other : focus.index;
      const row = i * nq + q, level = layer.levels[row * nk + k];
      if (exact) sums[o] += sumsOfRows ? exact(i, q, k) / sumsOfRows[row] : exact(i, q, k);
      if (level === 0) return;
      const x = shade(level * scales.intensity[row], log);
      const yo = y(fromQuery ? kPos[k] : qPos[q]);
      if (yo + ROW_HEIGHT < top || yo - ROW_HEIGHT > bottom) {
        // Off screen: only a line that crosses the band is drawn.
        const yf = y(fromQuery ? qPos[q] : kPos[k]);
        if ((yo < top && yf < top) || (yo > bottom && yf > bottom)) return;
      } else {
        ctx.globalAlpha = x;
        ctx.fillRect(boxLeft + slot * boxWidth, yo - ROW_HEIGHT / 2, boxWidth, ROW_HEIGHT);
        ctx.globalAlpha = 1;
      }
      if (x / n < minimum) return;
      // Long inputs: a line with both ends over a tile away from the band is left out.
      if (thin) {
        const ya = y(qPos[q]), yb = y(kPos[k]);
        if ((ya < top - TILE_HEIGHT || ya > bottom + TILE_HEIGHT) && (yb < top - TILE_HEIGHT || yb > bottom + TILE_HEIGHT)) return;
      }
      const b = Math.min(buckets - 1, Math.round((x / n) * buckets));
      const path = paths[b] || (paths[b] = new Path2D());
      path.moveTo(x1, y(qPos[q]));
      path.lineTo(x2, y(kPos[k]));
      lines++;
    });
    ctx.strokeStyle = color;
    paths.forEach((path, b) => {
      ctx.globalAlpha = Math.max(0.5, b) / buckets;
      ctx.stroke(path);
    });
    ctx.globalAlpha = 1;
  });
  if (exact) {
    const numbers = new Map(), approximate = n > 1 || controls.hideSpecial;
    others.forEach((other, o) => numbers.set(other, approximate ? formatAggregate(sums[o] / n) : formatWeight(sums[o])));
    pane.setNumbers(fromQuery ? "k" : "q", numbers, { top, bottom });
  } else {
    pane.setNumbers(fromQuery ? "k" : "q", null);
  }
  pane.setNumbers(fromQuery ? "q" : "k", null);
  return lines;
}
