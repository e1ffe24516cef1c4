// Model view: every included layer (rows) x head (columns) as a thumbnail.
// Short inputs draw bertviz-style line thumbnails; longer ones (where lines
// blur) draw max-pooled heatmaps. Click a thumbnail (or press Enter on it) to
// open that head's head view in place, under the thumbnail's row; click it
// again to close. A sentence pair can be filtered (All, A→A, B→B, A→B, B→A,
// as bertviz's "Attention" menu); the detail opens on the same filter.

const THUMB_SIZE = 80;
const THUMB_LINES_MAX_TOKENS = 64;

function createModelView(context, panel) {
  const { trace, controls } = context;
  const blocks = trace.blocks;
  const bar = h("div", "av-toolbar", panel);
  const blockSelect = blockPicker(bar, blocks);
  const filterSelect = labeled(bar, "Filter", h("select", "av-filter"));
  const filterControl = filterSelect.parentNode;
  h("span", "av-hint", bar, "Rows: layers · columns: heads · click a thumbnail for its head view, again to close it");
  const grid = h("div", "av-grid", panel);
  let detail = null, detailView = null, detailAt = null, detailWatch = null;
  const drawnKey = [];  // per layer: the settings its thumbnails were drawn with

  const store = makeStore({ block: trace.meta.firstBlock || 0, filter: 0 }, draw, panel);
  const state = store.state;
  const blockFilters = () => context.filters.filter((f) => f.block === state.block);
  if (blockSelect) {
    blockSelect.value = String(state.block);
    blockSelect.onchange = () => { store.setState({ block: +blockSelect.value, filter: 0 }); build(); };
  }
  filterSelect.onchange = () => {
    store.setState({ filter: +filterSelect.value });
    drawnKey.length = 0;
    closeDetail();
  };

  function build() {
    const block = blocks[state.block];
    closeDetail();
    grid.textContent = "";
    drawnKey.length = 0;
    const filters = blockFilters();
    filterSelect.textContent = "";
    filters.forEach((f, i) => { h("option", null, filterSelect, f.label).value = String(i); });
    filterSelect.value = String(state.filter);
    filterControl.hidden = filters.length < 2;
    grid.style.gridTemplateColumns = "3em repeat(" + block.heads.length + ", " + THUMB_SIZE + "px)";
    h("span", "av-grid-label", grid, "");
    for (const head of block.heads) h("span", "av-grid-label", grid, "H" + head);
    block.layers.forEach((layerId, li) => {
      h("span", "av-grid-label", grid, "L" + layerId);
      block.heads.forEach((head, hi) => {
        const thumb = h("canvas", "av-thumb", grid);
        thumb.dataset.layer = li;
        thumb.dataset.head = hi;
        thumb.tabIndex = 0;
        thumb.setAttribute("role", "button");
        thumb.title = "layer " + layerId + ", head " + head;
        thumb.setAttribute("aria-label", "open the head view of layer " + layerId + ", head " + head);
      });
    });
  }

  function closeDetail() {
    if (detailWatch) detailWatch.disconnect();
    if (detail) detail.remove();
    for (const node of grid.querySelectorAll(".av-selected")) node.classList.remove("av-selected");
    detail = detailView = detailAt = detailWatch = null;
    panel.dataset.detail = "";
  }

  // Opens the head view of (li, hi) under the thumbnail's row, or closes it
  // when it is already open.
  function toggleDetail(thumb) {
    const block = blocks[state.block], li = +thumb.dataset.layer, hi = +thumb.dataset.head;
    const same = detailAt && detailAt.li === li && detailAt.hi === hi;
    closeDetail();
    if (same) return;
    detailAt = { li, hi };
    thumb.classList.add("av-selected");
    const rowEnd = grid.querySelector('.av-thumb[data-layer="' + li + '"][data-head="' + (block.heads.length - 1) + '"]');
    detail = h("div", "av-detail");
    rowEnd.after(detail);
    const heading = h("div", "av-detail-title", detail);
    const title = h("span", "av-detail-name", heading);
    const close = h("button", "av-close", heading, "Close");
    close.type = "button";
    close.onclick = () => { closeDetail(); thumb.focus(); };
    const body = h("div", "av-detail-body", detail);
    detailView = createHeadView(context, body, { block: block.index, layer: li, heads: [hi], fixed: true });
    const filter = body.querySelector(".av-filter");
    if (filter && state.filter) {  // open on the model view's filter
      filter.value = String(state.filter);
      filter.dispatchEvent(new Event("change"));
    }
    detail.dataset.layer = block.layers[li];
    detail.dataset.head = block.heads[hi];
    panel.dataset.detail = block.layers[li] + "/" + block.heads[hi];
    // The title follows the heads and the filter chosen in the detail.
    const prefix = blocks.length > 1 ? block.name + " · " : "";
    const retitle = () => setDetailTitle(title, detail, prefix, blockFilters(), block, li, body.dataset.active || String(block.heads[hi]), body.dataset.filter);
    retitle();
    detailWatch = new MutationObserver(retitle);
    detailWatch.observe(body, { attributes: true, attributeFilter: ["data-active", "data-filter"] });
    detailView.refresh();
    // Scrolled into view once the head view has its height.
    requestAnimationFrame(() => requestAnimationFrame(() => { if (detail) detail.scrollIntoView({ block: "nearest" }); }));
  }
  grid.addEventListener("click", (event) => {
    const thumb = event.target.closest(".av-thumb");
    if (thumb) toggleDetail(thumb);
  });
  grid.addEventListener("keydown", (event) => {
    const thumb = event.target.closest(".av-thumb");
    if (!thumb || (event.key !== "Enter" && event.key !== " ")) return;
    event.preventDefault();
    toggleDetail(thumb);
  });

  // Draws the thumbnails of layers already decoded, a few per frame, and asks
  // for the rest; each layer is redrawn only when a setting changed.
  function draw() {
    const block = blocks[state.block];
    const filter = blockFilters()[state.filter];
    const key = state.block + "/" + state.filter + "/" + controls.scale + controls.scaling + controls.hideSpecial + controls.dark;
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
      drawLayerThumbs(grid, block, li, layer, filter, controls);
      drawnKey[li] = key;
    }
    panel.dataset.filter = filter.label;
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

// "Layer 3 · head 5", or "Layer 3 · heads 0, 2 · A→B · numbers: mean of 2
// heads": the heads and the filter shown in the detail, after the block's
// name when the trace has several blocks.
function setDetailTitle(title, detail, prefix, filters, block, li, active, filterLabel) {
  const heads = active.split(",").filter((s) => s !== "");
  let text = prefix + "Layer " + block.layers[li] + " · " +
    (heads.length === 1 ? "head " : "heads ") + heads.join(", ");
  const filter = filters.find((f) => f.label === filterLabel);
  if (filter && (filter.q !== "all" || filter.k !== "all")) text += " · " + filter.q + "→" + filter.k;
  if (heads.length > 1) text += " · numbers: mean of " + heads.length + " heads";
  title.textContent = text;
  detail.dataset.heads = heads.join(",");
}

function drawLayerThumbs(grid, block, li, layer, filter, controls) {
  const qs = visibleIndices(block.querySequence, filter.q, controls.hideSpecial);
  const ks = visibleIndices(block.keySequence, filter.k, controls.hideSpecial);
  const scales = rowScales(block, layer, controls);
  const lines = qs.length <= THUMB_LINES_MAX_TOKENS && ks.length <= THUMB_LINES_MAX_TOKENS;
  const table = heatTable(controls.dark);
  for (let hi = 0; hi < block.heads.length; hi++) {
    const canvas = grid.querySelector('.av-thumb[data-layer="' + li + '"][data-head="' + hi + '"]');
    if (!canvas) continue;
    if (!qs.length || !ks.length) fitCanvas(canvas, THUMB_SIZE, THUMB_SIZE).clearRect(0, 0, THUMB_SIZE, THUMB_SIZE);
    else if (lines) thumbLines(canvas, block, layer, hi, qs, ks, scales, controls);
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
  ctx.strokeStyle = headColor(block.heads[hi], controls.dark);
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
