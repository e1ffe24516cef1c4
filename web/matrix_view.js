// Matrix view: one head as a heatmap, queries down, keys across. It fits the
// window; zoom (wheel, buttons, + − 0 keys) and pan (drag, arrow keys) redraw
// only the cells in view, scaled from an image of one pixel per cell, with the
// visible tokens' labels as DOM text (every token when cells are tall enough,
// every n-th otherwise, so labels never overlap). A colour bar gives the
// scale. Hover a cell for both tokens and the exact stored weight.

const MATRIX_FIT_MAX_CELL = 40;  // short inputs fit the window up to this cell size
const MATRIX_ZOOM_MAX_CELL = 64;
const MATRIX_MIN_HEIGHT = 320;
const MATRIX_LABEL_FONT = 12;  // labels of every token from cells of this size + 2
const MATRIX_SPARSE_FONT = 11;
const MATRIX_COLOUR_BAR = 96;  // width of the colour bar with its ticks

function createMatrixView(context, panel) {
  const { trace, controls } = context;
  const blocks = trace.blocks;
  const bar = h("div", "av-toolbar", panel);
  const blockSelect = blockPicker(bar, blocks);
  const layerSelect = labeled(bar, "Layer", h("select", "av-layer"));
  const headSelect = labeled(bar, "Head", h("select", "av-head"));
  const zoomBar = h("span", "av-zoom", bar);
  const zoomOut = h("button", "av-zoom-out", zoomBar, "−");
  const zoomIn = h("button", "av-zoom-in", zoomBar, "+");
  const zoomFit = h("button", "av-zoom-fit", zoomBar, "Fit");
  for (const [button, title] of [[zoomOut, "zoom out (−)"], [zoomIn, "zoom in (+)"], [zoomFit, "fit the window (0)"]]) {
    button.type = "button";
    button.title = title;
  }
  h("span", "av-hint", bar, "wheel: zoom · drag or arrow keys: pan · shift+wheel: pan sideways");
  const readout = h("div", "av-readout av-matrix-readout", panel, "Hover a cell.");
  const box = h("div", "av-matrix", panel);
  const stage = h("div", "av-matrix-stage", box);
  stage.tabIndex = 0;
  stage.setAttribute("role", "img");
  const canvas = h("canvas", "av-matrix-canvas", stage);
  const queryLabels = h("div", "av-mlabels av-mlabels-q", stage);
  const keyLabels = h("div", "av-mlabels av-mlabels-k", stage);
  const colourBar = makeColourBar(box);
  let image = null, imageKey = null, geometry = null, exactKey = null, exactAt = null;

  // Opens on the page's initial layer and first initial head (--open-layer, --open-heads).
  // view: null (fit the window) or { cell, x0, y0 }: cell size in CSS pixels
  // and the column and row at the top-left corner (fractional).
  const firstBlock = trace.meta.firstBlock || 0;
  const open = context.open ? context.open(blocks[firstBlock]) : { layer: 0, heads: null };
  const store = makeStore({ block: firstBlock, layer: open.layer, head: open.heads ? open.heads[0] : 0, cell: null, view: null }, draw, panel);
  const state = store.state;
  function fillSelects() {
    fillLayerHeadSelects(blocks[state.block], state, layerSelect, headSelect);
    headSelect.parentNode.style.display = blocks[state.block].measure ? "none" : "";  // rollout / flow: one map a layer
  }
  if (blockSelect) {
    blockSelect.value = String(state.block);
    blockSelect.onchange = () => { store.setState({ block: +blockSelect.value, cell: null, view: null }); fillSelects(); };
  }
  layerSelect.onchange = () => store.setState({ layer: +layerSelect.value });
  headSelect.onchange = () => store.setState({ head: +headSelect.value });
  fillSelects();

  // ---- zoom and pan --------------------------------------------------------------

  // The view kept inside the matrix: cell between the fitted size and the
  // largest zoom, the corner so that no empty space shows past the last cell.
  function clampView(view) {
    const g = geometry;
    const cell = Math.min(Math.max(view.cell, g.fit), Math.max(g.fit, MATRIX_ZOOM_MAX_CELL));
    const cols = Math.min(g.ks.length, g.maxWidth / cell), rows = Math.min(g.qs.length, g.maxHeight / cell);
    const x0 = Math.min(Math.max(0, view.x0), g.ks.length - cols);
    const y0 = Math.min(Math.max(0, view.y0), g.qs.length - rows);
    return cell === g.fit && x0 === 0 && y0 === 0 ? null : { cell, x0, y0 };
  }
  const currentView = () => state.view || { cell: geometry.fit, x0: 0, y0: 0 };
  // Zooms by `factor` keeping the cell under (px, py) (matrix pixels) in place.
  function zoomAt(factor, px, py) {
    if (!geometry) return;
    const view = currentView(), cell = view.cell * factor;
    const limited = Math.min(Math.max(cell, geometry.fit), Math.max(geometry.fit, MATRIX_ZOOM_MAX_CELL));
    store.setState({
      view: clampView({ cell: limited, x0: view.x0 + px / view.cell - px / limited, y0: view.y0 + py / view.cell - py / limited }),
    });
  }
  function panBy(dx, dy) {  // in cells
    if (!geometry) return;
    const view = currentView();
    store.setState({ view: clampView({ cell: view.cell, x0: view.x0 + dx, y0: view.y0 + dy }) });
  }
  const zoomCentre = (factor) => geometry && zoomAt(factor, geometry.width / 2, geometry.height / 2);
  zoomIn.onclick = () => zoomCentre(2);
  zoomOut.onclick = () => zoomCentre(0.5);
  zoomFit.onclick = () => store.setState({ view: null });

  // Pointer position in matrix pixels (0, 0 = the top-left visible cell's corner).
  const matrixPoint = (event) => {
    const rect = canvas.getBoundingClientRect();
    return [event.clientX - rect.left - geometry.left, event.clientY - rect.top - geometry.top];
  };
  stage.addEventListener("wheel", (event) => {
    if (!geometry) return;
    event.preventDefault();
    const pixels = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? geometry.height : 1;
    const cell = currentView().cell;
    if (event.shiftKey) {
      panBy(((event.deltaX || event.deltaY) * pixels) / cell, 0);
    } else if (Math.abs(event.deltaX) > Math.abs(event.deltaY)) {  // a touchpad's sideways swipe
      panBy((event.deltaX * pixels) / cell, (event.deltaY * pixels) / cell);
    } else {
      const [px, py] = matrixPoint(event);
      zoomAt(Math.exp((-event.deltaY * pixels) / 400), px, py);
    }
    hoverAt(event);
  }, { passive: false });
  let drag = null;
  stage.addEventListener("pointerdown", (event) => {
    if (!geometry || event.button !== 0) return;
    drag = { x: event.clientX, y: event.clientY, view: currentView() };
    if (event.isTrusted) stage.setPointerCapture(event.pointerId);
  });
  stage.addEventListener("pointerup", () => { drag = null; });
  stage.addEventListener("pointercancel", () => { drag = null; });
  stage.addEventListener("pointermove", (event) => {
    if (!geometry) return;
    if (drag && event.buttons & 1) {
      const { view } = drag;
      stage.classList.add("av-dragging");
      store.setState({ view: clampView({ cell: view.cell, x0: view.x0 - (event.clientX - drag.x) / view.cell, y0: view.y0 - (event.clientY - drag.y) / view.cell }) });
      return;
    }
    stage.classList.remove("av-dragging");
    hoverAt(event);
  });
  // The cell under the pointer, in the current view.
  function hoverAt(event) {
    const [px, py] = matrixPoint(event);
    const { cell, x0, y0 } = currentView();
    const g = geometry, width = Math.min(g.maxWidth, g.ks.length * cell), height = Math.min(g.maxHeight, g.qs.length * cell);
    const inside = px >= 0 && py >= 0 && px < width && py < height;
    const at = inside ? { row: Math.floor(y0 + py / cell), col: Math.floor(x0 + px / cell) } : null;
    const valid = at && at.row < g.qs.length && at.col < g.ks.length ? at : null;
    if (!sameCell(valid, state.cell)) store.setState({ cell: valid });
  }
  stage.addEventListener("mouseleave", () => store.setState({ cell: null }));
  stage.addEventListener("keydown", (event) => {
    if (!geometry) return;
    const { cell } = currentView(), step = Math.max(1, Math.round(geometry.width / cell / 10));
    const actions = {
      "+": () => zoomCentre(1.5), "=": () => zoomCentre(1.5), "-": () => zoomCentre(1 / 1.5), "0": () => store.setState({ view: null }),
      ArrowLeft: () => panBy(-step, 0), ArrowRight: () => panBy(step, 0), ArrowUp: () => panBy(0, -step), ArrowDown: () => panBy(0, step),
    };
    if (!actions[event.key]) return;
    event.preventDefault();
    actions[event.key]();
  });
  // Shown after being hidden, or resized: fit the new size (a hidden panel is not drawn).
  new ResizeObserver(() => store.setState({})).observe(box);

  // ---- drawing ---------------------------------------------------------------------

  // Where everything goes for this block and the window's size.
  function layout(block, qs, ks) {
    const available = box.clientWidth - MATRIX_COLOUR_BAR;
    const widest = Math.max(tokenTextWidth(block.queryTokens, qs), tokenTextWidth(block.keyTokens, ks));
    const margin = Math.ceil(Math.min(140, widest + 10));
    const offset = Math.max(0, box.getBoundingClientRect().top + window.scrollY);
    const height = Math.max(MATRIX_MIN_HEIGHT, window.innerHeight - Math.min(offset, window.innerHeight * 0.35) - 16);
    const maxWidth = Math.max(40, available - margin - 4), maxHeight = Math.max(40, height - margin - 4);
    let fit = Math.min(maxWidth / ks.length, maxHeight / qs.length, MATRIX_FIT_MAX_CELL);
    if (fit >= 2) fit = Math.floor(fit);
    return { left: margin, top: margin, maxWidth, maxHeight, fit, qs, ks };
  }

  function draw() {
    const block = blocks[state.block], started = performance.now();
    if (box.clientWidth === 0) return;  // hidden: the ResizeObserver draws it when shown
    const layer = block.loaded[state.layer];
    if (!layer) {
      readout.textContent = "Decoding layer " + block.layers[state.layer] + "…";
      block.layer(state.layer).then(() => store.setState({}), context.fail);
      return;
    }
    const qs = visibleIndices(block.querySequence, "all", controls.hideSpecial);
    const ks = visibleIndices(block.keySequence, "all", controls.hideSpecial);
    const g = (geometry = layout(block, qs, ks));
    if (state.view) state.view = clampView(state.view);
    const { cell, x0, y0 } = currentView();
    g.cell = cell;
    g.width = Math.min(g.maxWidth, ks.length * cell);
    g.height = Math.min(g.maxHeight, qs.length * cell);
    const scales = rowScales(block, layer, controls);
    const key = [state.block, state.layer, state.head, controls.scale, controls.scaling, controls.hideSpecial, controls.dark].join("/");
    if (key !== imageKey) {
      image = heatmapImage(block, layer, state.head, qs, ks, scales, controls);
      imageKey = key;
    }
    const width = g.left + g.width + 2, height = g.top + g.height + 2;
    stage.style.width = width + "px";
    stage.style.height = height + "px";
    const ctx = fitCanvas(canvas, width, height);
    ctx.clearRect(0, 0, width, height);
    ctx.save();
    ctx.beginPath();
    ctx.rect(g.left, g.top, g.width, g.height);
    ctx.clip();
    // The visible cells: whole cells from the one under the corner.
    const c0 = Math.floor(x0), r0 = Math.floor(y0);
    const cols = Math.min(ks.length - c0, Math.ceil(g.width / cell) + 1), rows = Math.min(qs.length - r0, Math.ceil(g.height / cell) + 1);
    ctx.imageSmoothingEnabled = cell < 1;  // below a pixel a cell, average rather than drop cells
    ctx.drawImage(image, c0, r0, cols, rows, g.left + (c0 - x0) * cell, g.top + (r0 - y0) * cell, cols * cell, rows * cell);
    const style = getComputedStyle(box);
    if (cell >= 8) drawGrid(ctx, g, c0, r0, cols, rows, x0, y0, cell, controls.dark);
    drawPairBoundary(ctx, g, block, qs, ks, x0, y0, cell, style.color);
    ctx.restore();
    placeLabels(queryLabels, "q", block.queryTokens, qs, r0, rows, y0, cell, g);
    placeLabels(keyLabels, "k", block.keyTokens, ks, c0, cols, x0, cell, g);
    colourBar.draw(controls, Math.min(g.height, 260));

    if (state.cell && (state.cell.row >= qs.length || state.cell.col >= ks.length)) state.cell = null;
    if (state.cell) {
      const { row, col } = state.cell;
      ctx.strokeStyle = style.color;
      ctx.lineWidth = 1.5;
      ctx.strokeRect(g.left + (col - x0) * cell - 0.75, g.top + (row - y0) * cell - 0.75, cell + 1.5, cell + 1.5);
      describeCell(block, qs[row], ks[col]);
    } else {
      readout.textContent = "Hover a cell: rows are queries, columns are keys.";
      readout.title = "";
      delete readout.dataset.query;
    }
    canvas.dataset.cell = cell;
    canvas.dataset.left = g.left;
    canvas.dataset.top = g.top;
    canvas.dataset.x0 = x0;
    canvas.dataset.y0 = y0;
    canvas.dataset.fit = g.fit;
    stage.setAttribute("aria-label", "attention of layer " + block.layers[state.layer] + ", head " + block.heads[state.head] +
      ": " + qs.length + " queries × " + ks.length + " keys");
    panel.dataset.layer = block.layers[state.layer];
    panel.dataset.head = block.heads[state.head];
    if (!panel.dataset.firstDrawnAt) panel.dataset.firstDrawnAt = performance.now().toFixed(1);
    panel.dataset.drawMs = (performance.now() - started).toFixed(1);
    panel.dataset.drawn = (+panel.dataset.drawn || 0) + 1;
  }

  // The readout of one cell: the exact stored weight (the row renormalized
  // over the shown keys when special tokens are hidden) first, then both
  // tokens. One line (the full text in its tooltip): a readout that wrapped
  // would move the matrix under the pointer.
  function describeCell(block, q, k) {
    const wanted = state.block + "/" + state.layer;
    if (exactKey !== wanted) {
      exactKey = wanted;
      exactAt = null;
      block.exact(state.layer).then((at) => { if (exactKey === wanted) { exactAt = at; store.setState({}); } }, context.fail);
    }
    const qt = block.queryTokens[q], kt = block.keyTokens[k], hi = state.head;
    let value = "…";
    if (exactAt && !controls.hideSpecial) value = formatWeight(exactAt(hi, q, k));
    else if (exactAt) {
      let sum = 0;
      block.keyTokens.forEach((token, j) => { if (!token.special) sum += exactAt(hi, q, j); });
      value = formatAggregate(sum > 0 ? exactAt(hi, q, k) / sum : 0, "renormalized without special tokens");
    }
    readout.textContent = "";
    h("span", "av-value", readout, value);
    readout.append(' · query "' + qt.shown + '" (' + qt.raw + ", #" + q + ') → key "' + kt.shown + '" (' + kt.raw + ", #" + k +
      ") · layer " + block.layers[state.layer] + (block.measure ? " · " + block.measure : ", head " + block.heads[hi]));
    readout.title = readout.textContent;
    readout.dataset.query = q;
    readout.dataset.key = k;
  }

  store.setState({});
  return { refresh: () => { imageKey = null; store.setState({}); } };
}

function sameCell(a, b) {
  return a === b || (a != null && b != null && a.row === b.row && a.col === b.col);
}

// Thin lines between visible cells, in the background colour.
function drawGrid(ctx, g, c0, r0, cols, rows, x0, y0, cell, dark) {
  ctx.strokeStyle = dark ? "rgba(22, 23, 27, 0.6)" : "rgba(255, 255, 255, 0.6)";
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let c = c0; c <= c0 + cols; c++) {
    const x = Math.round(g.left + (c - x0) * cell) + 0.5;
    ctx.moveTo(x, g.top);
    ctx.lineTo(x, g.top + g.height);
  }
  for (let r = r0; r <= r0 + rows; r++) {
    const y = Math.round(g.top + (r - y0) * cell) + 0.5;
    ctx.moveTo(g.left, y);
    ctx.lineTo(g.left + g.width, y);
  }
  ctx.stroke();
}

// Where sentence B starts (a sentence pair), on either axis.
function drawPairBoundary(ctx, g, block, qs, ks, x0, y0, cell, color) {
  ctx.strokeStyle = color;
  ctx.lineWidth = 1;
  ctx.setLineDash([4, 3]);
  ctx.beginPath();
  const col = ks.findIndex((k) => block.keySequence.bStart > 0 && k >= block.keySequence.bStart);
  if (col > 0) {
    const x = Math.round(g.left + (col - x0) * cell) + 0.5;
    ctx.moveTo(x, g.top);
    ctx.lineTo(x, g.top + g.height);
  }
  const row = qs.findIndex((q) => block.querySequence.bStart > 0 && q >= block.querySequence.bStart);
  if (row > 0) {
    const y = Math.round(g.top + (row - y0) * cell) + 0.5;
    ctx.moveTo(g.left, y);
    ctx.lineTo(g.left + g.width, y);
  }
  ctx.stroke();
  ctx.setLineDash([]);
}

// The labels of the visible rows (side "q") or columns ("k"): every one when
// a cell is tall enough for the text, else every n-th (n from 2, 5, 10, 20,
// 50, ..., fixed positions, so labels stay put while panning) with a tick.
function placeLabels(container, side, tokens, shown, first, count, origin, cell, g) {
  const full = cell >= MATRIX_LABEL_FONT + 2;
  const font = full ? MATRIX_LABEL_FONT : MATRIX_SPARSE_FONT;
  let step = 1;
  if (!full) {
    const need = (font + 4) / cell;
    for (let decade = 1; step < need; decade *= 10) for (const m of [1, 2, 5]) if (step < need) step = m * decade;
  }
  const queries = side === "q";
  container.style.left = (queries ? 0 : g.left) + "px";
  container.style.top = (queries ? g.top : 0) + "px";
  container.style.width = (queries ? g.left - 2 : g.width) + "px";
  container.style.height = (queries ? g.height : g.top - 2) + "px";
  container.dataset.step = step;
  let used = 0;
  for (let i = Math.ceil(first / step) * step; i < first + count; i += step) {
    const centre = (i + 0.5 - origin) * cell;
    if (centre < 0 || centre > (queries ? g.height : g.width)) continue;
    const node = container.children[used] || h("span", "av-mlabel", container);
    used++;
    const token = tokens[shown[i]];
    if (node.textContent !== token.shown) node.textContent = token.shown;
    node.title = token.raw + "  (id " + token.id + ", position " + shown[i] + ")";
    node.dataset.index = shown[i];
    node.classList.toggle("av-special", token.special);
    node.classList.toggle("av-tick", !full);
    node.style.fontSize = font + "px";
    node.style.lineHeight = font + 2 + "px";
    node.style.display = "";
    if (queries) node.style.top = centre - (font + 2) / 2 + "px";
    else node.style.left = centre - (font + 2) / 2 + "px";
  }
  for (let i = used; i < container.children.length; i++) container.children[i].style.display = "none";
  container.dataset.count = used;
}

// The colour scale beside the matrix: the heat colours from 0 (bottom) to 1
// (top), ticks for the current scale, and what the colour measures.
function makeColourBar(parent) {
  const wrap = h("div", "av-colourbar", parent);
  const title = h("div", "av-colourbar-title", wrap);
  const body = h("div", "av-colourbar-body", wrap);
  const canvas = h("canvas", "av-colourbar-canvas", body);
  const ticks = h("div", "av-colourbar-ticks", body);
  let drawnKey = null;
  return {
    element: wrap,
    draw(controls, height) {
      const key = [controls.scale, controls.scaling, controls.dark, height].join("/");
      if (key === drawnKey) return;
      drawnKey = key;
      const log = controls.scale === "log", perRow = controls.scaling === "row";
      wrap.dataset.scale = controls.scale;
      wrap.dataset.scaling = controls.scaling;
      title.textContent = (perRow ? "weight ÷ row max" : "weight") + (log ? ", log" : "");
      ticks.style.height = body.style.height = height + "px";
      const table = heatTable(controls.dark);
      const ctx = fitCanvas(canvas, 14, height);
      for (let y = 0; y < height; y++) {
        const t = Math.round((1 - y / Math.max(1, height - 1)) * 255) * 3;
        ctx.fillStyle = "rgb(" + table[t] + "," + table[t + 1] + "," + table[t + 2] + ")";
        ctx.fillRect(0, y, 14, 1);
      }
      ticks.textContent = "";
      const values = log ? [0.001, 0.01, 0.1, 1] : [0, 0.25, 0.5, 0.75, 1];
      for (const value of values) {
        const label = (log && value === 0.001 ? "≤ " : "") + String(value) + (perRow && value === 1 ? " = row max" : "");
        const tick = h("span", "av-colourbar-tick", ticks, label);
        tick.style.top = (1 - shade(value, log)) * (height - 1) - 7 + "px";
        tick.dataset.value = value;
      }
    },
  };
}

// The head's shown [queries][keys] as an offscreen canvas, one pixel per weight.
function heatmapImage(block, layer, hi, qs, ks, scales, controls) {
  const image = new ImageData(ks.length, qs.length), table = heatTable(controls.dark);
  const log = controls.scale === "log";
  qs.forEach((q, r) => {
    const row = hi * block.nq + q, base = row * block.nk, mul = scales.intensity[row];
    for (let c = 0; c < ks.length; c++) {
      const t = Math.round(shade(layer.levels[base + ks[c]] * mul, log) * 255) * 3, at = (r * ks.length + c) * 4;
      image.data[at] = table[t];
      image.data[at + 1] = table[t + 1];
      image.data[at + 2] = table[t + 2];
      image.data[at + 3] = 255;
    }
  });
  const canvas = document.createElement("canvas");
  canvas.width = ks.length;
  canvas.height = qs.length;
  canvas.getContext("2d").putImageData(image, 0, 0);
  return canvas;
}
