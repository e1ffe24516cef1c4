// Matrix view: one head as a heatmap, queries down, keys across; hover a
// cell for its tokens and weight. The readable view for long inputs. The
// heatmap is drawn once into an image and reused while the pointer moves.

const MATRIX_SIZE = 720;

function createMatrixView(context, panel) {
  const { trace, controls } = context;
  const blocks = trace.blocks;
  const bar = h("div", "av-toolbar", panel);
  const blockSelect = blockPicker(bar, blocks);
  const layerSelect = labeled(bar, "Layer", h("select", "av-layer"));
  const headSelect = labeled(bar, "Head", h("select", "av-head"));
  const readout = h("div", "av-readout", panel, "Hover a cell.");
  const box = h("div", "av-matrix", panel);
  const canvas = h("canvas", "av-matrix-canvas", box);
  let image = null, imageKey = null, geometry = null;

  const store = makeStore({ block: trace.meta.firstBlock || 0, layer: 0, head: 0, cell: null }, draw);
  const state = store.state;
  function fillSelects() {
    fillLayerHeadSelects(blocks[state.block], state, layerSelect, headSelect);
  }
  if (blockSelect) {
    blockSelect.value = String(state.block);
    blockSelect.onchange = () => { store.setState({ block: +blockSelect.value, cell: null }); fillSelects(); };
  }
  layerSelect.onchange = () => store.setState({ layer: +layerSelect.value });
  headSelect.onchange = () => store.setState({ head: +headSelect.value });
  fillSelects();

  canvas.addEventListener("mousemove", (event) => {
    if (!geometry) return;
    const rect = canvas.getBoundingClientRect();
    const col = Math.floor((event.clientX - rect.left - geometry.left) / geometry.cell);
    const row = Math.floor((event.clientY - rect.top - geometry.top) / geometry.cell);
    const inside = row >= 0 && col >= 0 && row < geometry.qs.length && col < geometry.ks.length;
    const cell = inside ? { row, col } : null;
    if (!sameCell(cell, state.cell)) store.setState({ cell });
  });
  canvas.addEventListener("mouseleave", () => store.setState({ cell: null }));

  function draw() {
    const block = blocks[state.block];
    const layer = block.loaded[state.layer];
    if (!layer) {
      readout.textContent = "Decoding layer " + block.layers[state.layer] + "…";
      block.layer(state.layer).then(() => store.setState({}), context.fail);
      return;
    }
    const qs = visibleIndices(block.querySequence, "all", controls.hideSpecial);
    const ks = visibleIndices(block.keySequence, "all", controls.hideSpecial);
    const scales = rowScales(block, layer, controls);
    const cell = Math.max(1, Math.min(18, Math.floor(MATRIX_SIZE / Math.max(qs.length, ks.length))));
    const labels = cell >= 8;
    const widest = labels ? Math.min(140, Math.max(tokenTextWidth(block.queryTokens, qs), tokenTextWidth(block.keyTokens, ks)) + 8) : 0;
    const left = widest + 4, top = widest + 4;
    geometry = { cell, left, top, qs, ks };
    const width = left + ks.length * cell + 4, height = top + qs.length * cell + 4;
    const key = [state.block, state.layer, state.head, controls.scale, controls.scaling, controls.hideSpecial, controls.dark].join("/");
    if (key !== imageKey) {
      image = heatmapImage(block, layer, state.head, qs, ks, scales, controls);
      imageKey = key;
    }
    const ctx = fitCanvas(canvas, width, height);
    ctx.clearRect(0, 0, width, height);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(image, left, top, ks.length * cell, qs.length * cell);
    const color = getComputedStyle(box).color;
    if (labels) {
      ctx.fillStyle = color;
      ctx.font = Math.min(12, cell - 1) + "px sans-serif";
      ctx.textBaseline = "middle";
      ctx.textAlign = "right";
      qs.forEach((q, r) => ctx.fillText(block.queryTokens[q].shown, left - 4, top + (r + 0.5) * cell, widest));
      ctx.save();
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "left";
      ks.forEach((k, c) => ctx.fillText(block.keyTokens[k].shown, -top + 4, left + (c + 0.5) * cell, widest));
      ctx.restore();
    }
    if (state.cell) {
      const { row, col } = state.cell, q = qs[row], k = ks[col];
      ctx.strokeStyle = color;
      ctx.lineWidth = 1;
      ctx.strokeRect(left + col * cell - 0.5, top + row * cell - 0.5, cell + 1, cell + 1);
      const index = state.head * block.nq + q;
      const w = layer.levels[index * block.nk + k] * scales.weight[index];
      const qt = block.queryTokens[q], kt = block.keyTokens[k];
      readout.textContent = 'Layer ' + block.layers[state.layer] + ", head " + block.heads[state.head] + ': "' + qt.shown +
        '" (' + qt.raw + ", #" + q + ') → "' + kt.shown + '" (' + kt.raw + ", #" + k + "): " + formatWeight(w);
      readout.dataset.weight = w;
      readout.dataset.query = q;
      readout.dataset.key = k;
    } else {
      readout.textContent = "Hover a cell: rows are queries, columns are keys.";
      delete readout.dataset.weight;
    }
    canvas.dataset.cell = cell;
    canvas.dataset.left = left;
    canvas.dataset.top = top;
    panel.dataset.layer = block.layers[state.layer];
    panel.dataset.head = block.heads[state.head];
    if (!panel.dataset.firstDrawnAt) panel.dataset.firstDrawnAt = performance.now().toFixed(1);
    panel.dataset.drawn = (+panel.dataset.drawn || 0) + 1;
  }

  store.setState({});
  return { refresh: () => { imageKey = null; store.setState({}); } };
}

function sameCell(a, b) {
  return a === b || (a != null && b != null && a.row === b.row && a.col === b.col);
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
