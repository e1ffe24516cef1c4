// Model view: every included layer (rows) x head (columns) as a thumbnail.
// Short inputs draw bertviz-style line thumbnails; longer ones (where lines
// blur) draw max-pooled heatmaps. Click a thumbnail to open that head in a
// head view below, where tokens can be hovered.

const THUMB_SIZE = 80;
const THUMB_LINES_MAX_TOKENS = 64;

function createModelView(context, panel) {
  const { trace, controls } = context;
  const blocks = trace.blocks;
  const bar = h("div", "av-toolbar", panel);
  const blockSelect = blockPicker(bar, blocks);
  h("span", "av-hint", bar, "Rows: layers · columns: heads · click a thumbnail for its head view");
  const grid = h("div", "av-grid", panel);
  const detail = h("div", "av-detail", panel);
  detail.hidden = true;
  let detailView = null;
  const drawnKey = [];  // per layer: the settings its thumbnails were drawn with

  const store = makeStore({ block: trace.meta.firstBlock || 0 }, draw);
  const state = store.state;
  if (blockSelect) {
    blockSelect.value = String(state.block);
    blockSelect.onchange = () => { store.setState({ block: +blockSelect.value }); build(); };
  }

  function build() {
    const block = blocks[state.block];
    grid.textContent = "";
    drawnKey.length = 0;
    grid.style.gridTemplateColumns = "3em repeat(" + block.heads.length + ", " + THUMB_SIZE + "px)";
    h("span", "av-grid-label", grid, "");
    for (const head of block.heads) h("span", "av-grid-label", grid, "H" + head);
    block.layers.forEach((layerId, li) => {
      h("span", "av-grid-label", grid, "L" + layerId);
      block.heads.forEach((head, hi) => {
        const thumb = h("canvas", "av-thumb", grid);
        thumb.dataset.layer = li;
        thumb.dataset.head = hi;
        thumb.title = "layer " + layerId + ", head " + head;
      });
    });
  }

  grid.addEventListener("click", (event) => {
    const thumb = event.target.closest(".av-thumb");
    if (!thumb) return;
    const block = blocks[state.block], li = +thumb.dataset.layer, hi = +thumb.dataset.head;
    for (const node of grid.querySelectorAll(".av-selected")) node.classList.remove("av-selected");
    thumb.classList.add("av-selected");
    detail.hidden = false;
    detail.textContent = "";
    const head = h("div", "av-detail-title", detail, (blocks.length > 1 ? block.name + " · " : "") +
      "Layer " + block.layers[li] + " · head " + block.heads[hi]);
    const close = h("button", "av-close", head, "Close");
    close.type = "button";
    close.onclick = () => { detail.hidden = true; detail.textContent = ""; detailView = null; };
    const body = h("div", "av-detail-body", detail);
    detailView = createHeadView(context, body, { block: block.index, layer: li, heads: [hi], fixed: true });
    detail.dataset.layer = block.layers[li];
    detail.dataset.head = block.heads[hi];
    detailView.refresh();
  });

  // Draws the thumbnails of layers already decoded, a few per frame, and asks
  // for the rest; each layer is redrawn only when a setting changed.
  function draw() {
    const block = blocks[state.block];
    const key = state.block + "/" + controls.scale + controls.scaling + controls.hideSpecial + controls.dark;
    const started = performance.now();
    let waiting = 0;
    for (let li = 0; li < block.layers.length; li++) {
      if (drawnKey[li] === key) continue;
      const layer = block.loaded[li];
      if (!layer) {
        waiting++;
        block.layer(li).then(() => store.setState({}), context.fail);
        continue;
      }
      if (performance.now() - started > 40) { waiting++; continue; }  // the rest next frame
      drawLayerThumbs(grid, block, li, layer, controls);
      drawnKey[li] = key;
    }
    if (waiting) {
      const decoded = block.loaded.filter(Boolean).length;
      if (decoded === block.layers.length) store.setState({});
    } else {
      if (!panel.dataset.firstDrawnAt) panel.dataset.firstDrawnAt = performance.now().toFixed(1);
    panel.dataset.drawn = (+panel.dataset.drawn || 0) + 1;
    }
  }

  build();
  store.setState({});
  return {
    refresh() {
      drawnKey.length = 0;
      store.setState({});
      if (detailView) detailView.refresh();
    },
  };
}

function drawLayerThumbs(grid, block, li, layer, controls) {
  const qs = visibleIndices(block.querySequence, "all", controls.hideSpecial);
  const ks = visibleIndices(block.keySequence, "all", controls.hideSpecial);
  const scales = rowScales(block, layer, controls);
  const lines = qs.length <= THUMB_LINES_MAX_TOKENS && ks.length <= THUMB_LINES_MAX_TOKENS;
  const table = heatTable(controls.dark);
  for (let hi = 0; hi < block.heads.length; hi++) {
    const canvas = grid.querySelector('.av-thumb[data-layer="' + li + '"][data-head="' + hi + '"]');
    if (!canvas) continue;
    if (lines) thumbLines(canvas, block, layer, hi, qs, ks, scales, controls);
    else thumbHeatmap(canvas, block, layer, hi, qs, ks, scales, controls, table);
  }
}

function thumbLines(canvas, block, layer, hi, qs, ks, scales, controls) {
  const ctx = fitCanvas(canvas, THUMB_SIZE, THUMB_SIZE);
  ctx.clearRect(0, 0, THUMB_SIZE, THUMB_SIZE);
  const log = controls.scale === "log", rows = Math.max(qs.length, ks.length), buckets = 32;
  const step = (THUMB_SIZE - 8) / rows, x1 = 14, x2 = THUMB_SIZE - 14;
  const paths = [];
  qs.forEach((q, qi) => {
    const row = hi * block.nq + q, base = row * block.nk, mul = scales.intensity[row];
    ks.forEach((k, ki) => {
      const alpha = shade(layer.levels[base + k] * mul, log);
      if (alpha < 1 / 255) return;
      const b = Math.min(buckets - 1, Math.round(alpha * buckets));
      const path = paths[b] || (paths[b] = new Path2D());
      path.moveTo(x1, 4 + (qi + 0.5) * step);
      path.lineTo(x2, 4 + (ki + 0.5) * step);
    });
  });
  ctx.strokeStyle = headColor(block.heads[hi]);
  ctx.lineWidth = 1;
  paths.forEach((path, b) => {
    ctx.globalAlpha = Math.max(0.5, b) / buckets;
    ctx.stroke(path);
  });
  ctx.globalAlpha = 1;
}

function thumbHeatmap(canvas, block, layer, hi, qs, ks, scales, controls, table) {
  const width = Math.min(ks.length, THUMB_SIZE), height = Math.min(qs.length, THUMB_SIZE);
  canvas.width = width;
  canvas.height = height;
  canvas.style.width = canvas.style.height = THUMB_SIZE + "px";
  // Max-pooling: each pixel shows the largest intensity of its cells. Within
  // a row the multiplier is constant, so pool integer levels first.
  const pooled = new Float32Array(width * height);
  const firstKey = new Int32Array(width + 1);  // pixel column -> first position in ks
  for (let px = 0; px <= width; px++) firstKey[px] = Math.ceil((px * ks.length) / width);
  const log = controls.scale === "log", levels = layer.levels;
  qs.forEach((q, qi) => {
    const row = hi * block.nq + q, base = row * block.nk, mul = scales.intensity[row];
    const py = Math.floor((qi * height) / qs.length) * width;
    for (let px = 0; px < width; px++) {
      let top = 0;
      for (let ki = firstKey[px], end = firstKey[px + 1]; ki < end; ki++) {
        const level = levels[base + ks[ki]];
        if (level > top) top = level;
      }
      const x = top * mul;
      if (x > pooled[py + px]) pooled[py + px] = x;
    }
  });
  const image = new ImageData(width, height);
  for (let i = 0; i < pooled.length; i++) {
    const c = Math.round(shade(pooled[i], log) * 255) * 3;
    image.data[i * 4] = table[c];
    image.data[i * 4 + 1] = table[c + 1];
    image.data[i * 4 + 2] = table[c + 2];
    image.data[i * 4 + 3] = 255;
  }
  canvas.getContext("2d").putImageData(image, 0, 0);
}
