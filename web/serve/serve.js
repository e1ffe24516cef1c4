// The live explorer of `attnviz serve` (docs/serve.md): a model picker, the
// input fields, and the views of web/ remounted (attnvizMount) with each new
// trace from the server. The API is the server's (app/cmd_serve.cpp); every
// request carries the page's token (from its own URL, ?token=T). All state
// lives in the URL fragment, so each state has a link. This file runs in the
// same function scope as web/*.js (src/viz/serve_page.cpp) and uses its helpers.
//
// Inputs up to the server's "long" threshold get the full views from
// /api/payload. Longer ones get views that ask only for what they show: a
// head view of the top-k keys of the queries in view (/api/topk) and a
// matrix of one tile (/api/tile), so the page never holds [L,H,S,S].

const SERVE_DEBOUNCE_MS = 50;  // from the last keystroke to the request: short, as a stale request is cancelled
const SERVE_POLL_MS = 200;  // model loading progress
const LONG_TOP_K = 8;
const LONG_ROW_HEIGHT = 18;
const LONG_MIDDLE = 220;
const TILE_VIEWPORT = 512;  // CSS pixels of the long matrix; the server sends at most 512 x 512 cells
const SERVE_VIEWS = ["head", "model", "neuron", "matrix"];

// ---- API ---------------------------------------------------------------------

function makeApi(token) {
  const call = async (method, path, body) => {
    const headers = { "X-Attnviz-Token": token };
    if (body) headers["Content-Type"] = "application/json";
    const response = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined, cache: "no-store" });
    let data = null;
    try { data = await response.json(); } catch (error) { data = null; }
    if (!response.ok) {
      const failure = new Error((data && data.error) || response.status + " " + response.statusText);
      failure.status = response.status;
      throw failure;
    }
    return data;
  };
  return {
    get: (path) => call("GET", path),
    post: (path, body) => call("POST", path, body),
    // A link (downloads): the token goes in the query, as in the page's own URL.
    link: (path) => path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token),
  };
}

function query(params) {
  return Object.entries(params).map(([k, v]) => k + "=" + encodeURIComponent(v)).join("&");
}

// ---- URL fragment ----------------------------------------------------------------

const FRAGMENT_KEYS = ["model", "a", "b", "target", "compare", "a2", "model2", "view", "layer", "head", "long"];

function readFragment() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const state = {};
  for (const key of FRAGMENT_KEYS) if (params.has(key)) state[key] = params.get(key);
  return state;
}

function writeFragment(state) {
  const params = new URLSearchParams();
  for (const key of FRAGMENT_KEYS) if (state[key] != null && state[key] !== "") params.set(key, state[key]);
  const hash = "#" + params.toString();
  if (hash !== location.hash) history.replaceState(null, "", hash);
}

// ---- boot ------------------------------------------------------------------------

function serveBoot(root) {
  const token = new URLSearchParams(location.search).get("token") || "";
  const api = makeApi(token);
  const tab = Math.random().toString(36).slice(2, 10);
  const state = Object.assign({ compare: "off", view: "head", layer: "", head: "", long: "head" }, readFragment());
  const controls = {};  // the views' shared settings, kept across inputs

  const header = h("div", "sv-header", root);
  h("div", "sv-title", header, "attnviz serve");
  const modelBox = h("div", "sv-model-box", header);
  const modelSelect = labeled(modelBox, "Model", h("select", "sv-model"));
  const progress = h("progress", "sv-progress", modelBox);
  progress.max = 1;
  progress.hidden = true;
  const modelStatus = h("span", "sv-model-status", modelBox);
  const compareSelect = labeled(header, "Compare", selectOf(["off", "texts", "models"], ["off", "two inputs", "two models"]));
  compareSelect.classList.add("sv-compare");
  const model2Box = h("div", "sv-model-box sv-model2-box", header);
  const model2Select = labeled(model2Box, "Model 2", h("select", "sv-model2"));
  const progress2 = h("progress", "sv-progress", model2Box);
  progress2.max = 1;
  progress2.hidden = true;
  const model2Status = h("span", "sv-model-status", model2Box);

  const inputs = h("div", "sv-inputs", root);
  const field = (label, className, multiline) => {
    const wrap = h("label", "sv-field " + className, inputs);
    h("span", null, wrap, label);
    const input = h(multiline ? "textarea" : "input", null, wrap);
    if (!multiline) input.type = "text";
    input.spellcheck = false;
    input.rows = 2;
    return { wrap, input };
  };
  const textA = field("Text A", "sv-text-a", true);
  const textB = field("Text B (optional)", "sv-text-b", false);
  const target = field("Target (encoder-decoder)", "sv-target", false);
  const textA2 = field("Text A, right side", "sv-text-a2", true);

  const statusBar = h("div", "sv-status-bar", root);
  const exportBox = h("div", "sv-exports", statusBar);
  h("span", null, exportBox, "Save: ");
  const exportLinks = {};
  for (const [format, label] of [["html", "HTML"], ["svg", "SVG"], ["png", "PNG"], ["npz", "npz"]]) {
    const link = h("a", "sv-export sv-export-" + format, exportBox, label);
    link.setAttribute("download", "");
    exportLinks[format] = link;
  }
  const status = h("span", "sv-status", statusBar);

  const sidesBox = h("div", "sv-sides", root);
  const diffBox = h("section", "sv-diff", root);

  let models = [];
  const modelById = (id) => models.find((m) => m.id === id);
  const sides = ["a", "b"].map((name) => {
    const box = h("div", "sv-side sv-side-" + name, sidesBox);
    const caption = h("div", "sv-caption", box);
    const message = h("div", "sv-message", box);
    const views = h("div", "attnviz sv-views", box);
    return { name, box, caption, message, views, seq: 0, info: null, payload: null, long: null, pending: false };
  });
  let updates = 0, lastInputAt = 0;

  // Which model and which texts each side shows, by the compare mode.
  const sideInput = (side) => {
    const second = side.name === "b";
    return {
      model: second && state.compare === "models" ? state.model2 : state.model,
      text: second && state.compare === "texts" ? state.a2 || "" : state.a || "",
      text_pair: state.b || "",
      target: state.target || "",
    };
  };
  const activeSides = () => (state.compare === "off" ? [sides[0]] : sides);

  const showFields = () => {
    const model = modelById(state.model), model2 = modelById(state.model2);
    const encoderDecoder = (model && model.encoder_decoder) || (state.compare === "models" && model2 && model2.encoder_decoder);
    target.wrap.hidden = !encoderDecoder;
    textA2.wrap.hidden = state.compare !== "texts";
    model2Box.hidden = state.compare !== "models";
    sides[1].box.hidden = state.compare === "off";
    sidesBox.classList.toggle("sv-two", state.compare !== "off");
    diffBox.hidden = state.compare === "off";
  };

  const save = () => writeFragment(state);

  // ---- models ----
  const describeModel = (m) => m.id + (m.architecture ? " · " + m.architecture : "") + (m.state === "ready" ? "" : " (" + m.state + ")");
  const fillModels = () => {
    for (const [select, key] of [[modelSelect, "model"], [model2Select, "model2"]]) {
      const wanted = state[key];
      select.textContent = "";
      for (const m of models) h("option", null, select, describeModel(m)).value = m.id;
      if (wanted && modelById(wanted)) select.value = wanted;
      else if (models.length) state[key] = select.value = (models.find((m) => m.state === "ready") || models[0]).id;
    }
  };
  const showModelState = (key, bar, line) => {
    const m = modelById(state[key]);
    bar.hidden = !m || m.state !== "loading";
    if (m) bar.value = m.progress || 0;
    line.className = "sv-model-status" + (m && m.state === "failed" ? " sv-failed" : "");
    line.textContent = !m ? "" : m.state === "failed" ? "failed: " + m.error :
      m.state === "loading" ? "loading " + Math.round((m.progress || 0) * 100) + "%" :
      m.state === "ready" ? m.n_layers + " layers · " + m.n_heads + " heads · up to " + m.max_tokens + " tokens" : "";
  };
  const refreshModels = async () => {
    models = (await api.get("/api/models")).models;
    for (const [select] of [[modelSelect], [model2Select]])
      for (const option of select.options) { const m = modelById(option.value); if (m) option.textContent = describeModel(m); }
    showModelState("model", progress, modelStatus);
    showModelState("model2", progress2, model2Status);
    showFields();
  };
  let polling = null;
  // Loads what the sides need; false while one is loading (then polls through updateAll).
  const ensureModels = async () => {
    const needed = new Set(activeSides().map((side) => sideInput(side).model).filter(Boolean));
    for (const id of needed) {
      const m = modelById(id);
      if (m && m.state === "unloaded") {
        try { await api.post("/api/load", { model: id }); } catch (error) { status.textContent = error.message; }
      }
    }
    await refreshModels();
    const loading = [...needed].some((id) => { const m = modelById(id); return m && m.state === "loading"; });
    if (loading) {
      clearTimeout(polling);
      polling = setTimeout(() => updateAll(), SERVE_POLL_MS);  // updates the views once loaded
      return false;
    }
    return true;
  };
  const showFailure = (error) => { status.textContent = String(error && error.message ? error.message : error); };

  // ---- traces ----
  const hooksFor = (side, payload) => {
    // Open on the layer (and, in the matrix view, the head) of the fragment.
    const block = payload.meta.blocks[payload.meta.firstBlock || 0];
    const layer = state.layer !== "" ? +state.layer : null;
    if (block && layer != null && block.layers.includes(layer)) {
      const head = state.head !== "" && state.head !== "mean" ? +state.head : null;
      payload.meta.open = { layer, heads: state.view === "matrix" && head != null && block.heads.includes(head) ? [head] : [] };
    }
    payload.meta.views = payload.meta.views.filter((name) => SERVE_VIEWS.includes(name));
    return {
      controls, view: state.view,
      onShow: (name) => { if (side === sides[0] && state.view !== name) { state.view = name; save(); showExports(); } },
    };
  };
  const update = async (side) => {
    const seq = ++side.seq;
    const input = sideInput(side);
    const m = modelById(input.model);
    side.caption.textContent = input.model ? input.model + (state.compare === "texts" ? " · " + (side.name === "a" ? "left" : "right") : "") : "";
    if (!m || m.state !== "ready") {
      side.message.textContent = !m ? "Pick a model." : m.state === "failed" ? "The model failed to load: " + m.error : "Loading the model…";
      return;
    }
    if (input.text.trim() === "") {
      side.message.textContent = "Type a text.";
      return;
    }
    const body = { model: input.model, text: input.text, tab: tab + "-" + side.name, seq };
    if (input.text_pair.trim() !== "") body.text_pair = input.text_pair;
    if (m.encoder_decoder && input.target.trim() !== "") body.target = input.target;
    side.pending = true;
    side.box.classList.add("sv-busy");
    try {
      const sent = performance.now();
      const info = await api.post("/api/trace", body);
      if (seq !== side.seq) return;  // a newer input is on its way
      const traced = performance.now();
      let payload = null;
      if (!info.long) {
        // The analysis tabs and the Word level toggle: the server applies `attnviz view`'s
        // default for this trace (default_view_analysis), as the static page has them.
        payload = await api.get("/api/payload?" + query({ trace: info.trace_id, view: SERVE_VIEWS.join(",") }));
        if (seq !== side.seq) return;
      }
      const fetched = performance.now();
      side.info = info;
      side.message.textContent = "";
      if (payload) {
        destroyLong(side);
        side.payload = payload;
        attnvizMount(side.views, payload, hooksFor(side, payload));
      } else {
        side.payload = null;
        side.views.textContent = "";
        mountLong(side);
      }
      side.views.dataset.seq = String(seq);
      const mounted = performance.now();
      const tokens = info.tokens_total;
      status.textContent = tokens + " tokens · forward " + Number(info.forward_ms).toFixed(1) + " ms" + (info.long ? " · long input: views fetch only what they show" : "");
      showExports();
      if (state.compare !== "off") updateDiff();
      // Marked once the open view has drawn its new data (the layer is decoded
      // asynchronously; the panel counts its draws in data-drawn; the neuron
      // view does not count: two frames) and that frame has been shown.
      const panel = side.views.querySelector(".av-app > .av-panel:not([hidden])") || side.views.querySelector(".sv-long-head-panel");
      const drawn = (frames) => !panel || +(panel.dataset.drawn || 0) > 0 || (panel.classList.contains("av-panel-neuron") && frames > 1);
      let frames = 0;
      const settle = () => {
        if (seq !== side.seq) return;
        if (!drawn(frames++) && frames < 600) { requestAnimationFrame(settle); return; }
        requestAnimationFrame(() => mark());
      };
      requestAnimationFrame(settle);
      const mark = () => {
        if (seq !== side.seq) return;
        updates++;
        document.body.dataset.updates = String(updates);
        if (lastInputAt) document.body.dataset.latencyMs = (performance.now() - lastInputAt).toFixed(1);
        // Where the time went (the browser test reports it): waiting, request, payload + views, drawing.
        document.body.dataset.timing = [sent - lastInputAt, traced - sent, fetched - traced, mounted - fetched, performance.now() - mounted].map((t) => t.toFixed(1)).join(" ");
      };
    } catch (error) {
      if (error.status === 409 || seq !== side.seq) return;  // cancelled by a newer input of this tab
      side.message.textContent = error.message;
      document.body.dataset.errors = String(+(document.body.dataset.errors || 0) + 1);
    } finally {
      if (seq === side.seq) { side.pending = false; side.box.classList.remove("sv-busy"); }
    }
  };
  const updateAll = async () => {
    save();
    showFields();
    // Known ready: no round trip for the model list before the forward pass (typing).
    const ready = activeSides().every((side) => { const m = modelById(sideInput(side).model); return m && m.state === "ready"; });
    if (!ready && !(await ensureModels().catch((error) => { showFailure(error); return false; }))) {
      for (const side of activeSides()) update(side);  // shows "Loading the model…"
      return;
    }
    for (const side of activeSides()) update(side);
  };
  let debounce = 0;
  const onType = () => {
    lastInputAt = performance.now();
    state.a = textA.input.value;
    state.b = textB.input.value;
    state.target = target.input.value;
    state.a2 = textA2.input.value;
    clearTimeout(debounce);
    debounce = setTimeout(updateAll, SERVE_DEBOUNCE_MS);
  };
  for (const f of [textA, textB, target, textA2]) f.input.addEventListener("input", onType);
  modelSelect.onchange = () => { state.model = modelSelect.value; lastInputAt = 0; updateAll(); };
  model2Select.onchange = () => { state.model2 = model2Select.value; lastInputAt = 0; updateAll(); };
  compareSelect.onchange = () => { state.compare = compareSelect.value; lastInputAt = 0; updateAll(); };
  // Layer and head choices of the views go into the fragment.
  sides[0].views.addEventListener("change", (event) => {
    const select = event.target;
    if (!side0Block()) return;
    if (select.classList.contains("av-layer")) state.layer = String(side0Block().layers[+select.value]);
    else if (select.classList.contains("av-head")) state.head = String(side0Block().heads[+select.value]);
    else return;
    save();
    showExports();
  });
  const side0Block = () => sides[0].payload && sides[0].payload.meta.blocks[sides[0].payload.meta.firstBlock || 0];

  // ---- exports ----
  const showExports = () => {
    const info = sides[0].info;
    for (const [format, link] of Object.entries(exportLinks)) {
      // A long input has no page (it would carry every probability): no HTML link then.
      if (!info || (info.long && format === "html")) { link.removeAttribute("href"); continue; }
      const view = info.long ? (state.long === "matrix" ? "matrix" : "head") : state.view;
      const params = { trace: info.trace_id, format };
      if (format === "html") {
        // The page as `attnviz view --views <view> --open-layer L` writes it.
        params.view = view;
        if (state.layer !== "") params.open_layer = state.layer;
      } else if (format !== "npz") {
        // SVG and PNG as `attnviz view --format svg`: the head view of one layer (the neuron
        // view has no static form), the matrix of one head.
        params.view = view === "neuron" ? "head" : view;
        if (state.layer !== "" && params.view !== "model") params.layers = state.layer;
        if (params.view === "matrix" && state.head !== "" && state.head !== "mean") params.heads = state.head;
      }
      link.href = api.link("/api/export?" + query(params));
    }
  };

  // ---- long inputs ----
  const destroyLong = (side) => {
    if (side.long) side.long.destroy();
    side.long = null;
  };
  const mountLong = (side) => {
    destroyLong(side);
    side.long = createLongViews(side.views, side.info, api, state, () => { save(); showExports(); });
  };

  // ---- compare: the difference where tokens align ----
  const diff = createDiffView(diffBox, api);
  const updateDiff = () => {
    const [a, b] = sides;
    if (!a.info || !b.info || a.info.long || b.info.long) { diff.clear(a.info && b.info ? "The difference view needs inputs up to the long threshold." : ""); return; }
    diff.show(a.info, b.info);
  };

  // ---- start ----
  textA.input.value = state.a || "";
  textB.input.value = state.b || "";
  target.input.value = state.target || "";
  textA2.input.value = state.a2 || "";
  compareSelect.value = state.compare;
  showFields();
  api.get("/api/models").then((answer) => {
    models = answer.models;
    fillModels();
    updateAll();
  }, showFailure);
  root.dataset.ready = "1";
}

// ---- long inputs: views that fetch what they show -----------------------------------

// A weight of a long input's trace: exact to its 3 digits from a float32 trace; from a binary16
// one (the server's default for long inputs) "≈", within one unit of the last digit.
function longWeight(w, block) {
  if (!block.fp16 || w === 0 || !Number.isFinite(w) || Math.abs(w) < 0.001) return formatWeight(w);
  return "≈" + w.toPrecision(3);
}

function tokensOfSequence(info, which) {
  const sequence = typeof which === "number" ? info.sequences[which] : info.sequences.find((s) => s.name === which) || info.sequences[0];
  return sequence.tokens.map((t) => ({ raw: t.text, display: t.display, special: !!t.special, segment: t.segment, shown: tokenText(t.text, t.display, false) }));
}

function createLongViews(parent, info, api, state, changed) {
  const box = h("div", "sv-long", parent);
  box.dataset.trace = info.trace_id;  // for links and tests
  const bar = h("div", "av-toolbar", box);
  const viewSelect = labeled(bar, "View", selectOf(["head", "matrix"], ["Head view (top-" + LONG_TOP_K + " keys)", "Matrix view (tiles)"]));
  viewSelect.classList.add("sv-long-view");
  const blockSelect = info.blocks.length > 1 ? labeled(bar, "Block", selectOf(info.blocks.map((b) => b.name))) : null;
  const layerSelect = labeled(bar, "Layer", h("select", "sv-long-layer"));
  const headSelect = labeled(bar, "Head", h("select", "sv-long-head"));
  const readout = h("div", "av-readout sv-long-readout", box, "Hover a token or a cell.");
  const headPanel = h("div", "sv-long-head-panel", box);
  const matrixPanel = h("div", "sv-long-matrix-panel", box);
  let block = info.blocks[0], queries = [], keys = [];
  const fillBlock = () => {
    layerSelect.textContent = headSelect.textContent = "";
    for (let l = 0; l < block.n_layers; l++) h("option", null, layerSelect, String(l)).value = String(l);
    h("option", null, headSelect, "mean").value = "mean";
    for (let hh = 0; hh < block.n_heads; hh++) h("option", null, headSelect, String(hh)).value = String(hh);
    const layer = Math.min(+state.layer || 0, block.n_layers - 1);
    layerSelect.value = String(layer);
    headSelect.value = state.head === "mean" || (state.head !== "" && +state.head < block.n_heads) ? state.head : "0";
    queries = tokensOfSequence(info, block.query_sequence);
    keys = tokensOfSequence(info, block.key_sequence);
  };
  fillBlock();
  viewSelect.value = state.long === "matrix" ? "matrix" : "head";
  const where = () => ({ trace: info.trace_id, block: block.name, layer: layerSelect.value, head: headSelect.value });
  box.dataset.block = block.name;
  const head = createLongHeadView(headPanel, api, readout, () => ({ where: where(), queries, keys, block }));
  const matrix = createLongMatrixView(matrixPanel, api, readout, () => ({ where: where(), queries, keys, block }));
  const show = () => {
    headPanel.hidden = viewSelect.value !== "head";
    matrixPanel.hidden = viewSelect.value !== "matrix";
    (viewSelect.value === "head" ? head : matrix).refresh();
  };
  viewSelect.onchange = () => { state.long = viewSelect.value; changed(); show(); };
  layerSelect.onchange = headSelect.onchange = () => { state.layer = layerSelect.value; state.head = headSelect.value; changed(); show(); };
  if (blockSelect) blockSelect.onchange = () => { block = info.blocks[+blockSelect.selectedIndex]; fillBlock(); head.reset(); matrix.reset(); show(); };
  show();
  return { destroy() { head.destroy(); matrix.destroy(); box.remove(); } };
}

// Queries down the left, keys down the right (the same rows), lines from each
// query in view to its top-k keys. Only the rows in view are in the DOM and
// asked of the server; answers are kept per band of 64 rows for the current layer/head.
function createLongHeadView(panel, api, readout, current) {
  const scroll = h("div", "sv-long-scroll", panel);
  const canvas = h("canvas", "sv-long-canvas", scroll);
  const rows = h("div", "sv-long-rows", scroll);
  const BAND = 64;
  let cache = new Map(), cacheKey = "", hover = -1, destroyed = false, timer = 0, tokenWidth = 120;
  const bandKey = (where, band) => [where.layer, where.head, where.block, band].join("/");
  const fetchBand = (where, band, nq) => {
    const key = bandKey(where, band);
    if (cache.has(key)) return;
    cache.set(key, null);
    const q0 = band * BAND, q1 = Math.min(nq, q0 + BAND);
    api.get("/api/topk?" + query(Object.assign({}, where, { q0, q1, k: LONG_TOP_K }))).then((answer) => {
      if (destroyed) return;
      cache.set(key, answer.rows);
      draw();
    }, (error) => { cache.delete(key); readout.textContent = error.message; });
  };
  const rowsOf = (where, q) => {
    const band = cache.get(bandKey(where, Math.floor(q / BAND)));
    return band ? band.find((r) => r.query === q) || band[q - Math.floor(q / BAND) * BAND] : null;
  };
  const draw = () => {
    if (destroyed) return;
    const { where, queries, keys } = current();
    const key = JSON.stringify(where);
    if (key !== cacheKey) { cacheKey = key; cache = new Map(); }
    const n = Math.max(queries.length, keys.length);
    rows.style.height = n * LONG_ROW_HEIGHT + "px";
    const ctx0 = tokenTextWidth.ctx || (tokenTextWidth.ctx = document.createElement("canvas").getContext("2d"));
    ctx0.font = TOKEN_FONT;
    const width = Math.max(320, scroll.clientWidth || 700);
    tokenWidth = Math.min(180, Math.floor((width - LONG_MIDDLE) / 2));
    const top = scroll.scrollTop, height = Math.max(1, Math.min(scroll.clientHeight || 600, n * LONG_ROW_HEIGHT));
    const first = Math.max(0, Math.floor(top / LONG_ROW_HEIGHT) - 2), last = Math.min(n, Math.ceil((top + height) / LONG_ROW_HEIGHT) + 2);
    for (let band = Math.floor(first / BAND); band * BAND < Math.min(last, queries.length); band++) fetchBand(where, band, queries.length);
    // Token labels of the rows in view only.
    rows.textContent = "";
    const fragment = document.createDocumentFragment();
    for (let i = first; i < last; i++) {
      for (const [side, list, left] of [["q", queries, 0], ["k", keys, tokenWidth + LONG_MIDDLE]]) {
        if (i >= list.length) continue;
        const node = h("div", "sv-long-tok" + (list[i].special ? " av-special" : "") + (side === "q" && i === hover ? " av-focus" : ""), fragment, list[i].shown);
        node.style.top = i * LONG_ROW_HEIGHT + "px";
        node.style.left = left + "px";
        node.style.width = tokenWidth + "px";
        node.dataset.side = side;
        node.dataset.index = String(i);
        node.title = list[i].raw + " (position " + i + ")";
      }
    }
    rows.appendChild(fragment);
    const ctx = fitCanvas(canvas, 2 * tokenWidth + LONG_MIDDLE, height);
    rows.style.marginTop = -height + "px";
    ctx.clearRect(0, 0, 2 * tokenWidth + LONG_MIDDLE, height);
    ctx.translate(0, -top);
    const dark = !!canvas.closest('[data-theme="dark"]');
    ctx.lineWidth = 1;
    for (let q = first; q < Math.min(last, queries.length); q++) {
      const row = rowsOf(where, q);
      if (!row) continue;
      const focused = hover < 0 || hover === q;
      // Each query's strongest key at full colour: over thousands of keys most weights are tiny.
      const top = row.probs[0] > 0 ? row.probs[0] : 1;
      row.keys.forEach((k, j) => {
        const p = row.probs[j] / top;
        ctx.strokeStyle = dark ? "rgba(140,190,255," + (focused ? p : p * 0.15) + ")" : "rgba(30,90,200," + (focused ? p : p * 0.15) + ")";
        ctx.beginPath();
        ctx.moveTo(tokenWidth, q * LONG_ROW_HEIGHT + LONG_ROW_HEIGHT / 2);
        ctx.lineTo(tokenWidth + LONG_MIDDLE, k * LONG_ROW_HEIGHT + LONG_ROW_HEIGHT / 2);
        ctx.stroke();
      });
    }
    panel.dataset.drawn = String(+(panel.dataset.drawn || 0) + 1);
    if (hover >= 0) showRow(hover);
  };
  const showRow = (q) => {
    const { where, queries, keys, block } = current();
    const row = rowsOf(where, q);
    if (!row) return;
    const parts = row.keys.map((k, j) => keys[k].shown + " (" + k + ") " + longWeight(row.probs[j], block));
    readout.textContent = "query " + q + " " + queries[q].shown + " → " + parts.join(", ") + " · rest " + longWeight(row.rest, block) +
      (where.head === "mean" ? " (mean of heads)" : "");
  };
  const schedule = () => { cancelAnimationFrame(timer); timer = requestAnimationFrame(draw); };
  scroll.addEventListener("scroll", schedule, { passive: true });
  rows.addEventListener("mouseover", (event) => {
    const node = event.target.closest(".sv-long-tok");
    if (!node || node.dataset.side !== "q") return;
    hover = +node.dataset.index;
    schedule();
  });
  rows.addEventListener("mouseleave", () => { hover = -1; schedule(); });
  return {
    refresh: schedule,
    reset() { cache = new Map(); scroll.scrollTop = 0; },
    destroy() { destroyed = true; cancelAnimationFrame(timer); },
  };
}

// One tile of the matrix (at most 512 x 512 cells) at a time: cell size
// 1..32 pixels (zoom), origin moved by dragging or the arrow keys (pan).
function createLongMatrixView(panel, api, readout, current) {
  const bar = h("div", "av-toolbar", panel);
  const zoomOut = h("button", "sv-zoom-out", bar, "−");
  const zoomIn = h("button", "sv-zoom-in", bar, "+");
  const where = h("span", "av-hint sv-tile-where", bar);
  const canvas = h("canvas", "sv-tile-canvas", panel);
  canvas.tabIndex = 0;
  const view = { cell: 1, q0: 0, k0: 0 };
  let tile = null, tileKey = "", destroyed = false, loading = "";
  const span = () => Math.floor(TILE_VIEWPORT / view.cell);
  const clampOrigin = () => {
    const { block } = current();
    view.q0 = Math.max(0, Math.min(view.q0, block.n_queries - span()));
    view.k0 = Math.max(0, Math.min(view.k0, block.n_keys - span()));
  };
  const load = () => {
    const { where: w, block } = current();
    clampOrigin();
    const params = Object.assign({}, w, {
      q0: view.q0, q1: Math.min(block.n_queries, view.q0 + span()), k0: view.k0, k1: Math.min(block.n_keys, view.k0 + span()),
    });
    const key = query(params);
    if (key === tileKey || key === loading) return draw();
    loading = key;
    api.get("/api/tile?" + key).then((answer) => {
      if (destroyed || loading !== key) return;
      const bytes = base64Bytes(answer.data);
      tile = { q0: answer.q0, k0: answer.k0, rows: answer.rows, cols: answer.cols, data: new Float32Array(bytes.buffer, bytes.byteOffset, answer.rows * answer.cols) };
      tileKey = key;
      loading = "";
      draw();
    }, (error) => { loading = ""; readout.textContent = error.message; });
  };
  const draw = () => {
    if (destroyed) return;
    const ctx = fitCanvas(canvas, TILE_VIEWPORT, TILE_VIEWPORT);
    const dark = !!canvas.closest('[data-theme="dark"]');
    ctx.fillStyle = dark ? "#141418" : "#ffffff";
    ctx.fillRect(0, 0, TILE_VIEWPORT, TILE_VIEWPORT);
    const { block } = current();
    where.textContent = "queries " + view.q0 + "–" + Math.min(block.n_queries, view.q0 + span()) + ", keys " + view.k0 + "–" +
      Math.min(block.n_keys, view.k0 + span()) + " of " + block.n_queries + " × " + block.n_keys + " · drag or arrow keys: pan";
    if (!tile) return;
    // Each row scaled to its largest weight: at thousands of keys, one scale for all is too faint.
    const table = heatTable(dark), image = ctx.createImageData(tile.cols, tile.rows);
    for (let r = 0; r < tile.rows; r++) {
      let top = 0;
      for (let c = 0; c < tile.cols; c++) top = Math.max(top, tile.data[r * tile.cols + c]);
      for (let c = 0; c < tile.cols; c++) {
        const level = top > 0 ? Math.round((tile.data[r * tile.cols + c] / top) * 255) : 0, at = (r * tile.cols + c) * 4;
        image.data[at] = table[level * 3];
        image.data[at + 1] = table[level * 3 + 1];
        image.data[at + 2] = table[level * 3 + 2];
        image.data[at + 3] = 255;
      }
    }
    const scratch = document.createElement("canvas");
    scratch.width = tile.cols;
    scratch.height = tile.rows;
    scratch.getContext("2d").putImageData(image, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(scratch, (tile.k0 - view.k0) * view.cell, (tile.q0 - view.q0) * view.cell, tile.cols * view.cell, tile.rows * view.cell);
    panel.dataset.drawn = String(+(panel.dataset.drawn || 0) + 1);
  };
  const zoom = (factor) => {
    const centre = span() / 2, cq = view.q0 + centre, ck = view.k0 + centre;
    view.cell = Math.max(1, Math.min(32, view.cell * factor));
    view.q0 = Math.round(cq - span() / 2);
    view.k0 = Math.round(ck - span() / 2);
    load();
  };
  zoomIn.onclick = () => zoom(2);
  zoomOut.onclick = () => zoom(0.5);
  let drag = null;
  canvas.addEventListener("pointerdown", (event) => { drag = { x: event.clientX, y: event.clientY, q0: view.q0, k0: view.k0 }; canvas.setPointerCapture(event.pointerId); });
  canvas.addEventListener("pointerup", () => { drag = null; });
  canvas.addEventListener("pointermove", (event) => {
    if (drag) {
      view.q0 = drag.q0 - Math.round((event.clientY - drag.y) / view.cell);
      view.k0 = drag.k0 - Math.round((event.clientX - drag.x) / view.cell);
      load();
      return;
    }
    if (!tile) return;
    const rect = canvas.getBoundingClientRect();
    const q = view.q0 + Math.floor((event.clientY - rect.top) / view.cell), k = view.k0 + Math.floor((event.clientX - rect.left) / view.cell);
    const r = q - tile.q0, c = k - tile.k0;
    if (r < 0 || c < 0 || r >= tile.rows || c >= tile.cols) return;
    const { queries, keys, where: w, block } = current();
    readout.textContent = "query " + q + " " + queries[q].shown + " → key " + k + " " + keys[k].shown + ": " +
      (w.head === "mean" ? formatAggregate(tile.data[r * tile.cols + c], "mean of heads") : longWeight(tile.data[r * tile.cols + c], block)) +
      (block.top_k ? " (the trace keeps each query's " + block.top_k + " largest weights)" : "");
  });
  canvas.addEventListener("wheel", (event) => { event.preventDefault(); zoom(event.deltaY < 0 ? 2 : 0.5); }, { passive: false });
  canvas.addEventListener("keydown", (event) => {
    const step = Math.max(1, Math.floor(span() / 8));
    const moves = { ArrowUp: [-step, 0], ArrowDown: [step, 0], ArrowLeft: [0, -step], ArrowRight: [0, step] };
    if (event.key === "+" || event.key === "=") zoom(2);
    else if (event.key === "-") zoom(0.5);
    else if (moves[event.key]) { view.q0 += moves[event.key][0]; view.k0 += moves[event.key][1]; load(); }
    else return;
    event.preventDefault();
  });
  return {
    refresh: load,
    reset() { view.q0 = view.k0 = 0; tile = null; tileKey = ""; },
    // Shown for tests and links: the view's origin and zoom.
    destroy() { destroyed = true; },
  };
}

// ---- compare: the difference b − a where tokens align -------------------------------------

function createDiffView(panel, api) {
  h("h3", null, panel, "Difference (right − left) where the tokens align");
  const bar = h("div", "av-toolbar", panel);
  const layerSelect = labeled(bar, "Layer", h("select", "sv-diff-layer"));
  const headSelect = labeled(bar, "Head", h("select", "sv-diff-head"));
  const readout = h("div", "av-readout sv-diff-readout", panel, "Hover a cell.");
  const canvas = h("canvas", "sv-diff-canvas", panel);
  let current = null, answer = null, pending = 0;
  const clear = (message) => {
    current = answer = null;
    readout.textContent = message || "";
    fitCanvas(canvas, 1, 1);
    panel.dataset.drawn = String(+(panel.dataset.drawn || 0) + 1);
  };
  const load = () => {
    if (!current) return;
    const { a, b } = current;
    const block = a.blocks[0];
    const seq = ++pending;
    api.get("/api/diff?" + query({ a: a.trace_id, b: b.trace_id, block: block.name, layer: layerSelect.value, head: headSelect.value })).then((result) => {
      if (seq !== pending) return;
      const bytes = base64Bytes(result.data);
      const keyPairs = result.key_pairs || result.pairs;
      panel.dataset.pairs = JSON.stringify(result.pairs);
      panel.dataset.shown = layerSelect.value + "/" + headSelect.value;  // what the picture is of
      panel.dataset.keyPairs = JSON.stringify(keyPairs);
      answer = { pairs: result.pairs, keyPairs, data: new Float32Array(bytes.buffer, bytes.byteOffset, result.pairs.length * keyPairs.length) };
      draw();
    }, (error) => { if (seq === pending) clear(error.message); });
  };
  const draw = () => {
    const { a } = current, n = answer.pairs.length, m = answer.keyPairs.length;
    const cell = Math.max(4, Math.min(28, Math.floor(480 / Math.max(1, n, m)))), label = 90;
    const ctx = fitCanvas(canvas, label + m * cell, label + n * cell);
    const dark = !!canvas.closest('[data-theme="dark"]');
    ctx.fillStyle = dark ? "#141418" : "#ffffff";
    ctx.fillRect(0, 0, label + m * cell, label + n * cell);
    let largest = 0;
    for (const v of answer.data) if (Number.isFinite(v)) largest = Math.max(largest, Math.abs(v));
    const tokens = tokensOfSequence(a, a.blocks[0].query_sequence), keyTokens = tokensOfSequence(a, a.blocks[0].key_sequence);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < m; j++) {
        const v = answer.data[i * m + j], t = largest > 0 ? Math.min(1, Math.abs(v) / largest) : 0;
        // Red: the right side attends more; blue: the left side does.
        ctx.fillStyle = v >= 0 ? "rgba(200,40,40," + t + ")" : "rgba(40,80,200," + t + ")";
        ctx.fillRect(label + j * cell, label + i * cell, cell, cell);
      }
    }
    ctx.fillStyle = dark ? "#ddd" : "#222";
    ctx.font = Math.min(12, cell) + "px sans-serif";
    if (cell >= 8) {
      ctx.textAlign = "right";
      answer.pairs.forEach(([ia], i) => ctx.fillText(tokens[ia].shown.slice(0, 12), label - 4, label + i * cell + cell * 0.75));
      answer.keyPairs.forEach(([ka], j) => {
        ctx.save();
        ctx.translate(label + j * cell + cell * 0.75, label - 4);
        ctx.rotate(-Math.PI / 2);
        ctx.textAlign = "left";
        ctx.fillText(keyTokens[ka].shown.slice(0, 12), 0, 0);
        ctx.restore();
      });
    }
    canvas.onmousemove = (event) => {
      const rect = canvas.getBoundingClientRect();
      const i = Math.floor((event.clientY - rect.top - label) / cell), j = Math.floor((event.clientX - rect.left - label) / cell);
      if (i < 0 || j < 0 || i >= n || j >= m) return;
      const v = answer.data[i * m + j];
      readout.textContent = tokens[answer.pairs[i][0]].shown + " → " + keyTokens[answer.keyPairs[j][0]].shown + ": " +
        (v === 0 ? "0" : (v > 0 ? "+" : "−") + formatWeight(Math.abs(v))) + " (right − left)";
    };
    readout.textContent = n + " aligned tokens · largest difference " + formatWeight(largest) + ". Hover a cell.";
    panel.dataset.drawn = String(+(panel.dataset.drawn || 0) + 1);
  };
  layerSelect.onchange = headSelect.onchange = load;
  return {
    clear,
    show(a, b) {
      const block = a.blocks[0];
      const layer = layerSelect.value, head = headSelect.value;
      layerSelect.textContent = headSelect.textContent = "";
      for (let l = 0; l < block.n_layers; l++) h("option", null, layerSelect, String(l)).value = String(l);
      h("option", null, headSelect, "mean").value = "mean";
      for (let hh = 0; hh < block.n_heads; hh++) h("option", null, headSelect, String(hh)).value = String(hh);
      layerSelect.value = layer && +layer < block.n_layers ? layer : "0";
      headSelect.value = head || "mean";
      current = { a, b };
      load();
    },
  };
}

serveBoot(document.getElementById("sv-root"));
