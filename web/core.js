// attnviz page core: DOM helpers, payload decoding, the per-view store, colours,
// the shared controls (theme, scale, scaling, special tokens) and boot.
// Every web/*.js file is concatenated, in name order, into one function scope
// per root element (src/viz/html.cpp), so nothing here becomes a global and
// several roots on one page never share state. Files hold declarations only.

// ---- DOM helpers -------------------------------------------------------------

function h(tag, className, parent, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;  // text is never parsed as HTML
  if (parent) parent.appendChild(node);
  return node;
}

function labeled(parent, label, control) {
  const wrap = h("label", "av-control", parent);
  h("span", null, wrap, label);
  wrap.appendChild(control);
  return control;
}

function selectOf(values, labels) {
  const select = h("select");
  values.forEach((value, i) => {
    const option = h("option", null, select, labels ? labels[i] : String(value));
    option.value = String(value);
  });
  return select;
}

// The block picker of the model and matrix views; none when the trace has one block.
function blockPicker(bar, blocks) {
  if (blocks.length < 2) return null;
  const select = labeled(bar, "Block", selectOf(blocks.map((b) => b.index), blocks.map((b) => b.name)));
  select.classList.add("av-block");
  return select;
}

// Refills a view's layer and head pickers for `block`, keeping the state's
// layer and head inside it.
function fillLayerHeadSelects(block, state, layerSelect, headSelect) {
  layerSelect.textContent = headSelect.textContent = "";
  block.layers.forEach((layer, i) => { h("option", null, layerSelect, String(layer)).value = String(i); });
  block.heads.forEach((head, i) => { h("option", null, headSelect, String(head)).value = String(i); });
  state.layer = Math.min(state.layer, block.layers.length - 1);
  state.head = Math.min(state.head, block.heads.length - 1);
  layerSelect.value = String(state.layer);
  headSelect.value = String(state.head);
}

// ---- payload -----------------------------------------------------------------

function base64Bytes(text) {
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

// "##ing" -> "ing", "Ġthe" -> "the", "▁the" -> "the"; the raw token stays in the tooltip.
function prettyToken(raw, display) {
  let text = display != null && display !== "" ? display : raw;
  if (text === raw) text = raw.replace(/^##/, "").replace(/[Ġ▁]/g, " ").replace(/Ċ/g, "\n");
  const trimmed = text.trim();
  if (trimmed !== "") return trimmed;
  return text.includes("\n") ? "↵" : "␣";
}

function makeTrace(payload) {
  const meta = payload.meta;
  const sequences = meta.sequences.map((sequence) => {
    const tokens = sequence.tokens.map((t) => ({
      raw: t[0], display: t[1], id: t[2], segment: t[3], special: t[4] === 1,
      shown: prettyToken(t[0], t[1]),
    }));
    const bStart = tokens.findIndex((t) => t.segment === 1);
    return { name: sequence.name, texts: sequence.texts, tokens, bStart };
  });
  const blocks = meta.blocks.map((b, index) => makeBlock(b, index, payload.streams, sequences));
  return { meta, sequences, blocks };
}

// One attention block; layer data is inflated on first use and then kept.
function makeBlock(b, index, streams, sequences) {
  const nq = b.queries, nk = b.keys, nh = b.heads.length;
  const block = {
    index, name: b.name, causal: b.causal, layers: b.layers, heads: b.heads, nq, nk,
    queryTokens: sequences[b.querySequence].tokens, keyTokens: sequences[b.keySequence].tokens,
    querySequence: sequences[b.querySequence], keySequence: sequences[b.keySequence],
    hasQK: Array.isArray(b.queriesKeys), headDim: b.headDim || 0, scoreScale: b.scoreScale || 1,
    // false when the model's score is not scale × q·k + a bias (the neuron view says so)
    decomposable: b.scoreForm !== "not_decomposable", hasBias: Array.isArray(b.scoreBias),
    scoreScales: b.scoreScales || null,  // per shown layer, when the scale differs by layer (GPT-2)
    loaded: [], loadedQK: [], loadedBias: [],
  };
  const pending = [], pendingQK = [], pendingBias = [];
  // Resolves to { rowMax: Float32Array [nh][nq], levels: Uint8Array [nh][nq][nk] }.
  block.layer = (li) => {
    if (!pending[li]) {
      pending[li] = inflate(base64Bytes(streams[b.probs[li]])).then((bytes) => {
        const layer = {
          rowMax: new Float32Array(bytes.buffer, 0, nh * nq),
          levels: new Uint8Array(bytes.buffer, nh * nq * 4, nh * nq * nk),
          norms: {},
        };
        block.loaded[li] = layer;
        return layer;
      });
    }
    return pending[li];
  };
  // Resolves to { qScale, kScale: Float32Array, q, k: Int8Array [nh][n][headDim] }.
  block.queriesKeys = (li) => {
    if (!pendingQK[li]) {
      const d = block.headDim;
      pendingQK[li] = inflate(base64Bytes(streams[b.queriesKeys[li]])).then((bytes) => {
        let at = 0;
        const take = (Type, n) => { const a = new Type(bytes.buffer, at, n); at += n * Type.BYTES_PER_ELEMENT; return a; };
        const qk = { qScale: take(Float32Array, nh * nq), kScale: take(Float32Array, nh * nk) };
        qk.q = take(Int8Array, nh * nq * d);
        qk.k = take(Int8Array, nh * nk * d);
        block.loadedQK[li] = qk;
        return qk;
      });
    }
    return pendingQK[li];
  };
  // Resolves to the additive score bias, Float32Array [nh][nq][nk] (-Infinity: masked key);
  // one stream serves every layer when the layers share it.
  block.scoreBias = (li) => {
    const stream = b.scoreBias[b.scoreBias.length === 1 ? 0 : li];
    if (!pendingBias[stream]) {
      pendingBias[stream] = inflate(base64Bytes(streams[stream])).then((bytes) => new Float32Array(bytes.buffer, 0, nh * nq * nk));
    }
    return pendingBias[stream].then((bias) => (block.loadedBias[li] = bias));
  };
  if (!block.exact) block.exact = provisionalExact(block);  // PROVISIONAL (wt-viewsB), see the end of this file
  return block;
}

// Per-row multipliers from 8-bit level to weight and to colour intensity,
// under the shared controls. Hiding special tokens renormalizes each row over
// the other keys: w = level / (sum of the row's non-special levels).
function rowScales(block, layer, controls) {
  const key = (controls.hideSpecial ? "h" : "a") + controls.scaling;
  if (layer.norms[key]) return layer.norms[key];
  const { nq, nk } = block, rows = block.heads.length * nq;
  const weight = new Float32Array(rows), intensity = new Float32Array(rows);
  const keep = block.keyTokens.map((t) => !(controls.hideSpecial && t.special));
  for (let row = 0; row < rows; row++) {
    let sum = 0, top = 0;
    const base = row * nk;
    if (controls.hideSpecial) {
      for (let k = 0; k < nk; k++) {
        if (!keep[k]) continue;
        const level = layer.levels[base + k];
        sum += level;
        if (level > top) top = level;
      }
      weight[row] = sum > 0 ? 1 / sum : 0;
    } else {
      top = layer.rowMax[row] > 0 ? 255 : 0;
      weight[row] = layer.rowMax[row] / 255;
    }
    intensity[row] = controls.scaling === "row" ? (top > 0 ? 1 / top : 0) : weight[row];
  }
  return (layer.norms[key] = { weight, intensity });
}

// Colour intensity in [0, 1]: linear, or log over three decades (1e-3 .. 1).
function shade(x, log) {
  if (!log) return x > 1 ? 1 : x;
  return x > 0.001 ? Math.min(1, 1 + Math.log10(x) / 3) : 0;
}

// Which query/key token indices a view shows: the filter's part of a sentence
// pair ("all", "A", "B") minus special tokens when they are hidden.
function visibleIndices(sequence, part, hideSpecial) {
  const out = [];
  sequence.tokens.forEach((token, i) => {
    if (hideSpecial && token.special) return;
    if (part === "A" && sequence.bStart >= 0 && i >= sequence.bStart) return;
    if (part === "B" && (sequence.bStart < 0 || i < sequence.bStart)) return;
    out.push(i);
  });
  return out;
}

// The head view's filter: blocks (Encoder, Decoder, Cross) and, for a
// sentence pair, All, A→A, B→B, A→B, B→A.
function filtersOf(trace) {
  const filters = [];
  const title = (name) => name.charAt(0).toUpperCase() + name.slice(1);
  for (const block of trace.blocks) {
    const prefix = trace.blocks.length > 1 ? title(block.name) : "";
    const pair = block.querySequence === block.keySequence && block.querySequence.bStart > 0;
    filters.push({ label: prefix || "All", block: block.index, q: "all", k: "all" });
    if (pair) {
      for (const [q, k] of [["A", "A"], ["B", "B"], ["A", "B"], ["B", "A"]])
        filters.push({ label: (prefix ? prefix + ": " : "") + q + "→" + k, block: block.index, q, k });
    }
  }
  return filters;
}

// ---- colours -------------------------------------------------------------------

// Hues a golden angle apart with three lightness steps: distinct for 16+ heads.
function headColor(head) {
  const hue = (head * 137.508) % 360;
  const lightness = head % 3 === 0 ? 45 : head % 3 === 1 ? 58 : 36;
  return "hsl(" + hue.toFixed(1) + ", 72%, " + lightness + "%)";
}

// Heatmap colour tables (256 entries of r, g, b): white to dark blue in the
// light theme (as src/viz/static_view.cpp), black to yellow in the dark one.
function heatTable(dark) {
  const stops = dark
    ? [[20, 20, 24], [60, 30, 110], [180, 50, 100], [245, 130, 40], [250, 240, 120]]
    : [[255, 255, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];
  const table = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const x = (i / 255) * 4, s = Math.min(3, Math.floor(x)), t = x - s;
    for (let c = 0; c < 3; c++) table[i * 3 + c] = Math.round(stops[s][c] + t * (stops[s + 1][c] - stops[s][c]));
  }
  return table;
}

// ---- store ---------------------------------------------------------------------

// One state object per view; setState merges a patch and queues one redraw
// per animation frame however many patches arrive.
function makeStore(initial, draw) {
  const state = Object.assign({}, initial);
  let queued = false;
  const store = {
    state,
    setState(patch) {
      Object.assign(state, patch);
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => {
        queued = false;
        draw(state);
      });
    },
  };
  return store;
}

// A canvas sized to its CSS box at the device pixel ratio; returns the context.
function fitCanvas(canvas, width, height) {
  const ratio = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(width * ratio)), hgt = Math.max(1, Math.round(height * ratio));
  if (canvas.width !== w || canvas.height !== hgt) {
    canvas.width = w;
    canvas.height = hgt;
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return ctx;
}

function formatWeight(w) {
  return w >= 0.0995 ? w.toFixed(3) : w.toPrecision(3);
}

// ---- boot ----------------------------------------------------------------------

function attnvizBoot(root) {
  const app = h("div", "av-app", root);
  app.dataset.theme = "light";
  try {
    const payload = JSON.parse(root.querySelector("script.attnviz-data").textContent);
    startApp(root, app, makeTrace(payload));
  } catch (error) {
    h("div", "av-error", app, "attnviz could not read this page's data: " + error.message);
  }
}

function startApp(root, app, trace) {
  const controls = { scale: "linear", scaling: "global", hideSpecial: false, dark: false };
  const views = [];
  const context = {
    trace, controls, filters: filtersOf(trace),
    refreshAll() { views.forEach((view) => view.refresh()); },
    fail(error) { h("div", "av-error", app, String(error && error.message ? error.message : error)); },
  };

  const header = h("div", "av-header", app);
  const title = h("div", "av-title", header);
  title.textContent = (trace.meta.model || "attention") + (trace.meta.architecture ? " · " + trace.meta.architecture : "");
  const tabs = h("div", "av-tabs", header);
  const bar = h("div", "av-toolbar", header);
  const scale = labeled(bar, "Colour", selectOf(["linear", "log"]));
  scale.classList.add("av-scale");
  const scaling = labeled(bar, "Scaling", selectOf(["global", "row"], ["global", "per row"]));
  scaling.classList.add("av-scaling");
  const hide = labeled(bar, "Hide special tokens", h("input", "av-hide-special"));
  hide.type = "checkbox";
  const theme = h("button", "av-theme", bar, "Dark");
  theme.type = "button";
  scale.onchange = () => { controls.scale = scale.value; context.refreshAll(); };
  scaling.onchange = () => { controls.scaling = scaling.value; context.refreshAll(); };
  hide.onchange = () => { controls.hideSpecial = hide.checked; context.refreshAll(); };
  theme.onclick = () => {
    controls.dark = !controls.dark;
    app.dataset.theme = controls.dark ? "dark" : "light";
    theme.textContent = controls.dark ? "Light" : "Dark";
    context.refreshAll();
  };

  const makers = { head: createHeadView, model: createModelView, neuron: createNeuronView, matrix: createMatrixView };
  const panels = {};
  const names = trace.meta.views.filter((name) => makers[name]);
  const show = (name) => {
    for (const other of names) {
      panels[other].hidden = other !== name;
      tabs.querySelector('[data-view="' + other + '"]').classList.toggle("av-active", other === name);
    }
    if (!panels[name].dataset.created) {
      panels[name].dataset.created = "1";
      views.push(makers[name](context, panels[name], {}));
    }
  };
  for (const name of names) {
    const tab = h("button", "av-tab", tabs, name.charAt(0).toUpperCase() + name.slice(1) + " view");
    tab.type = "button";
    tab.dataset.view = name;
    tab.onclick = () => show(name);
    panels[name] = h("section", "av-panel av-panel-" + name, app);
  }
  if (names.length < 2) tabs.hidden = true;
  if (names.length) show(names[0]);
  root.dataset.ready = "1";
}

// ==== PROVISIONAL (wt-viewsB): the exact-weight contract, until wt-viewsA's core.js lands ====
// block.exact(li) resolves to (head, q, k) => the stored probability of layer li
// (head: index among the block's included heads). Built on the 8-bit levels
// here, so it is NOT exact; wt-viewsA's version reads exact values. Replace this
// block and the one call in makeBlock with theirs when merging.
function provisionalExact(block) {
  return (li) => block.layer(li).then((layer) => (head, q, k) => {
    const row = head * block.nq + q;
    return (layer.levels[row * block.nk + k] * layer.rowMax[row]) / 255;
  });
}
// A number computed from several weights (a renormalized row), marked "≈";
// label says what it is. wt-viewsA's core.js defines the same.
function formatAggregate(w, label) {
  const text = "≈" + formatWeight(w);
  return label ? text + " (" + label + ")" : text;
}
// ==== end PROVISIONAL ====
