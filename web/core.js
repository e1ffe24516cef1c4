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

// How a token is shown. Default: prettified, "##ing" -> "ing", "Ġthe" -> "the",
// "▁the" -> "the" (or the tokenizer's display text); with markers, the raw
// token ("##ing", "Ġthe"), so that "D as H aus" reads as "▁D as ▁H aus".
// Pieces of a character (byte-level BPE pieces of an emoji or CJK, whose
// display is "�") show their bytes, "<F0 9F>", and the valid UTF-8 in them.
// The raw token stays in the tooltip.
function tokenText(raw, display, markers) {
  if (markers) {
    if ((display || "").includes("\uFFFD") || isBytePieceRaw(raw)) return bytePieceText(raw, true);
    // Byte-level BPE spells "Ġ日" as "ĠæĹ¥": show the characters when that is what the decoder read.
    if (display && display !== raw) {
      const decoded = bytePieceText(raw, true);
      if (decoded.replace(/Ġ/g, " ") === display) return decoded;
    }
    return visibleBlank(raw);
  }
  let text = display != null && display !== "" ? display : raw;
  if (text === raw) text = raw.replace(/^##/, "").replace(/[Ġ▁]/g, " ").replace(/Ċ/g, "\n");
  if (text.includes("\uFFFD")) text = bytePieceText(raw, false);
  const trimmed = text.trim();
  if (trimmed !== "") return trimmed;
  return text.includes("\n") ? "↵" : "␣";
}
function visibleBlank(text) {
  return text.trim() === "" ? (text.includes("\n") ? "↵" : "␣") : text;
}

// GPT-2's byte-level alphabet: bytes 33..126, 161..172, 174..255 are
// themselves; the other 68 bytes are U+0100 onwards, in byte order.
let byteOfChar = null;
function byteLevelMap() {
  if (byteOfChar) return byteOfChar;
  byteOfChar = new Map();
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const self = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    byteOfChar.set(String.fromCodePoint(self ? b : 256 + shifted++), b);
  }
  return byteOfChar;
}
function isBytePieceRaw(raw) {
  return /^<0x[0-9A-Fa-f]{2}>$/.test(raw);
}
// The bytes of a byte-level or byte-fallback token, as text where they are
// valid UTF-8 and as "<E6 97>" where they are pieces of a character.
function bytePieceText(raw, markers) {
  const fallback = raw.match(/^<0x([0-9A-Fa-f]{2})>$/);
  let bytes;
  if (fallback) bytes = [parseInt(fallback[1], 16)];
  else {
    const map = byteLevelMap();
    bytes = [];
    for (const c of raw) {
      if (!map.has(c)) return raw;  // not a byte-level token: show it as it is
      bytes.push(map.get(c));
    }
  }
  let out = "", pending = [];
  const flush = () => {
    if (pending.length) out += "<" + pending.map((b) => b.toString(16).toUpperCase().padStart(2, "0")).join(" ") + ">";
    pending = [];
  };
  for (let i = 0; i < bytes.length;) {
    const lead = bytes[i];
    const length = lead < 0x80 ? 1 : (lead >> 5) === 6 ? 2 : (lead >> 4) === 14 ? 3 : (lead >> 3) === 30 ? 4 : 0;
    let valid = length > 0 && i + length <= bytes.length;
    for (let j = 1; valid && j < length; j++) valid = (bytes[i + j] & 0xc0) === 0x80;
    if (!valid) { pending.push(lead); i++; continue; }
    flush();
    const text = new TextDecoder().decode(new Uint8Array(bytes.slice(i, i + length)));
    // The byte-level space: "Ġ" with markers, dropped at the start without.
    out += text === " " ? (markers ? "Ġ" : out === "" ? "" : " ") : text;
    i += length;
  }
  flush();
  return out === "" ? "␣" : out;
}

// Tokens given as plain strings (Python's head_view, an npz without ids) have id -1: no id to show.
function hasTokenId(token) {
  return token.id >= 0;
}

// The shared "show subword markers" setting; views rebuild token text when
// tokenTextVersion changes (makeTokenPane compares it).
let tokenTextVersion = 0;
function setTokenMarkers(trace, markers) {
  for (const sequence of trace.sequences)
    for (const token of sequence.tokens) {
      token.shown = tokenText(token.raw, token.display, markers);
      token.width = null;
    }
  tokenTextVersion++;
}

// The page's data as the views read it: tokens, or with wordLevel the
// word-level copy (meta.words, computed by src/analysis; present when some
// word has several pieces). analysis: rollout and flow as blocks of one head
// (block.measure), the head statistics and notes (meta.analysis).
function makeTrace(payload, wordLevel) {
  const meta = payload.meta;
  const world = wordLevel && meta.words ? meta.words : meta;
  const sequences = world.sequences.map((sequence) => {
    const tokens = sequence.tokens.map((t) => ({
      raw: t[0], display: t[1], id: t[2], segment: t[3], special: t[4] === 1,
      shown: tokenText(t[0], t[1], false),
    }));
    const bStart = tokens.findIndex((t) => t.segment === 1);
    return { name: sequence.name, texts: sequence.texts, tokens, bStart };
  });
  const blocks = world.blocks.map((b, index) => makeBlock(b, index, payload.streams, sequences));
  const found = world.analysis;
  const analysis = found ? {
    blocks: found.blocks.map((b, index) => makeBlock(b, index, payload.streams, sequences)),
    stats: found.stats, notes: found.notes,
  } : null;
  return { meta, sequences, blocks, analysis, wordLevel: world !== meta };
}

// One attention block; layer data is inflated on first use and then kept.
function makeBlock(b, index, streams, sequences) {
  const nq = b.queries, nk = b.keys, nh = b.heads.length;
  const block = {
    index, name: b.name, causal: b.causal, layers: b.layers, heads: b.heads, nq, nk,
    measure: b.measure || null, of: b.of,  // rollout / flow of block `of`; null: attention
    queryTokens: sequences[b.querySequence].tokens, keyTokens: sequences[b.keySequence].tokens,
    querySequence: sequences[b.querySequence], keySequence: sequences[b.keySequence],
    hasQK: Array.isArray(b.queriesKeys), headDim: b.headDim || 0, scoreScale: b.scoreScale || 1,
    // false when the model's score is not scale × q·k + a bias (the neuron view says so)
    decomposable: b.scoreForm !== "not_decomposable", hasBias: Array.isArray(b.scoreBias),
    scoreScales: b.scoreScales || null,  // per shown layer, when the scale differs by layer (GPT-2)
    loaded: [], loadedQK: [], loadedBias: [], loadedExact: [],
  };
  const pending = [], pendingQK = [], pendingBias = [], pendingExact = [];
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
  // The numbers to print. Resolves to a function (head, q, k) => the stored
  // exact weight of layer li (head: index into block.heads, as in levels):
  // for weights of 0.001 or more the float32 weight correctly rounded to 3
  // significant digits, so that formatWeight prints the trace's own digits;
  // for smaller non-zero weights a value below 0.001 (formatWeight prints
  // "<0.001"): the middle of what both streams allow, off by less than 0.0005.
  // Decoded on first need (after the layer's levels), then also kept in
  // block.loadedExact[li] for synchronous use.
  block.exact = (li) => {
    if (!pendingExact[li]) {
      const cells = nh * nq * nk;
      pendingExact[li] = Promise.all([block.layer(li), inflate(base64Bytes(streams[b.exact[li]]))]).then(([layer, bytes]) => {
        const table = decimalValues(), codes = new Uint16Array(cells);
        for (let i = 0; i < cells; i++) codes[i] = (bytes[i] << 8) | bytes[cells + i];
        const below = (i) => {
          const step = layer.rowMax[Math.floor(i / nk)] / 255, level = layer.levels[i];
          const low = Math.max(0, (level - 0.5) * step), high = Math.min(0.001, (level + 0.5) * step);
          return high > low && high > 0 ? (low + high) / 2 : 0.0005;
        };
        const at = (head, q, k) => {
          const i = (head * nq + q) * nk + k, code = codes[i];
          return code === 1 ? below(i) : table[code];
        };
        block.loadedExact[li] = at;
        return at;
      });
    }
    return pendingExact[li];
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

// Hues a golden angle apart with three lightness steps: distinct for 16+
// heads. Lighter on a dark background (dark: controls.dark), where the light
// theme's darkest step would vanish.
function headColor(head, dark) {
  const hue = (head * 137.508) % 360;
  const step = head % 3;
  const lightness = dark ? [62, 74, 54][step] : [45, 58, 36][step];
  return "hsl(" + hue.toFixed(1) + ", " + (dark ? 80 : 72) + "%, " + lightness + "%)";
}

// The heat scale (heatTable, textColorOn, statColour) is web/heat_scale.js, which
// the report of `attnviz heads` embeds too.

// ---- store ---------------------------------------------------------------------

// One state object per view; setState merges a patch and queues one redraw
// per animation frame however many patches arrive. With panel, a view whose
// panel is not rendered (a hidden tab, a closed detail) is never drawn: the
// redraw waits, and wakeHiddenStores() runs it once the panel shows. A hidden
// canvas has no size to bound its work, so drawing it could take seconds.
const sleepingStores = new Set();
function makeStore(initial, draw, panel) {
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
        if (panel && !isRendered(panel)) {
          sleepingStores.add(store);
          return;
        }
        draw(state);
      });
    },
    panel,
  };
  return store;
}
function isRendered(node) {
  return node.isConnected && node.getClientRects().length > 0;
}
// Redraws the waiting views that are rendered now (after a tab or panel opens).
function wakeHiddenStores() {
  for (const store of [...sleepingStores]) {
    if (!isRendered(store.panel)) continue;
    sleepingStores.delete(store);
    store.setState({});
  }
}

// Keyboard access to a list of items (tokens, swatches): one tab stop for the
// whole list (the last focused item, roving tabindex), arrow keys move along
// it (Home/End to its ends), Enter or Space activate it as a click does.
// onFocus(item) runs when an item gets focus, as a hover would.
function rovingFocus(container, selector, onFocus, keys) {
  const forward = (keys && keys.next) || ["ArrowDown", "ArrowRight"];
  const back = (keys && keys.previous) || ["ArrowUp", "ArrowLeft"];
  const items = () => [...container.querySelectorAll(selector)];
  const settle = () => {
    const all = items();
    if (all.length && !all.some((node) => node.tabIndex === 0)) all[0].tabIndex = 0;
  };
  container.addEventListener("focusin", (event) => {
    const item = event.target.closest(selector);
    if (!item || !container.contains(item)) return;
    for (const node of container.querySelectorAll(selector + '[tabindex="0"]')) if (node !== item) node.tabIndex = -1;
    item.tabIndex = 0;
    if (onFocus) onFocus(item);
  });
  container.addEventListener("keydown", (event) => {
    const item = event.target.closest(selector);
    if (!item) return;
    const all = items(), at = all.indexOf(item);
    let next = -1;
    if (forward.includes(event.key)) next = Math.min(all.length - 1, at + 1);
    else if (back.includes(event.key)) next = Math.max(0, at - 1);
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = all.length - 1;
    else if (event.key === "Enter" || event.key === " ") { item.click(); event.preventDefault(); return; }
    if (next < 0) return;
    event.preventDefault();
    all[next].focus({ preventScroll: false });
  });
  return settle;  // call after the items change
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

// ---- numbers ----------------------------------------------------------------------

// Code -> value of the exact streams (src/viz/codec.h decimal3_code): code
// (e << 10) | m is m × 10^(e - 50), m in 100..999; 0 is 0; 1 is "below
// 0.001" (block.exact estimates it); anything else NaN. Each value is the
// double nearest the decimal, so toPrecision(3) gives its digits back.
let decimalTable = null;
function decimalValues() {
  if (decimalTable) return decimalTable;
  decimalTable = new Float64Array(65536).fill(NaN);
  decimalTable[0] = 0;
  for (let e = 45; e < 64; e++)
    for (let m = 100; m < 1000; m++) decimalTable[(e << 10) | m] = parseFloat(m + "e" + (e - 50));
  return decimalTable;
}

// A weight from block.exact as printed: its 3 significant digits ("0.0123",
// "0.456", "1.00"), exact to the digits printed (the float32 weight rounded
// once, to nearest); "<0.001" for a non-zero weight below 0.001; "0" only for
// an exact zero.
function formatWeight(w) {
  if (w === 0) return "0";
  if (!Number.isFinite(w)) return "NaN";
  return Math.abs(w) < 0.001 ? "<0.001" : w.toPrecision(3);
}

// A number computed from several weights of block.exact (a mean of heads):
// "≈" and 3 decimals, within 0.001 (one unit of its last digit) of the same
// mean of the float32 weights, since each input is within 0.0005 and so is
// the rounding; "<0.001" below 0.0005; "0" only for exact zeros. label says
// what it is ("mean of 12 heads"); without one, only the number (for tight
// spots, where a readout or tooltip carries the label).
function formatAggregate(w, label) {
  const text = w === 0 ? "0" : !Number.isFinite(w) ? "NaN" : Math.abs(w) < 0.0005 ? "<0.001" : "≈" + w.toFixed(3);
  return label ? text + " (" + label + ")" : text;
}
function meanLabel(count, what) {
  return count === 1 ? "" : "mean of " + count + " " + (what || "heads");
}

// ---- boot ----------------------------------------------------------------------

function attnvizBoot(root) {
  try {
    attnvizMount(root, JSON.parse(root.querySelector("script.attnviz-data").textContent));
  } catch (error) {
    h("div", "av-error", root.querySelector(".av-app") || h("div", "av-app", root),
      "attnviz could not read this page's data: " + error.message);
  }
}

// Shows the views of one payload in root, replacing what an earlier call
// showed there (the live page of `attnviz serve` calls it per input). hooks,
// all optional: controls (the shared settings, kept across calls), view (the
// tab to open), onShow(name) (a tab was opened).
function attnvizMount(root, payload, hooks) {
  for (const store of [...sleepingStores]) if (!store.panel.isConnected) sleepingStores.delete(store);
  const old = root.querySelector(":scope > .av-app");
  const controls = (hooks && hooks.controls) || {};
  if (controls.wordLevel == null) controls.wordLevel = !!(payload.meta.words && payload.meta.words.open);
  const trace = makeTrace(payload, controls.wordLevel);
  // Built in place (the views measure their boxes), the old views removed in the same task: no flicker.
  const app = h("div", "av-app", root);
  app.dataset.theme = "light";
  try {
    startApp(root, app, trace, Object.assign({}, hooks || {}, { controls, payload }));
  } finally {
    if (old) old.remove();
  }
  return app;
}

function startApp(root, app, trace, hooks) {
  const long = Math.max(...trace.blocks.map((b) => Math.max(b.nq, b.nk))) > LONG_INPUT_TOKENS;
  // Long inputs start with per-row scaling: with one scale for all rows, most
  // rows of a 512-token input are too faint to see.
  // meta.theme and meta.markers: how the page opens (bertviz's display_mode and prettify_tokens).
  const controls = hooks.controls || {};
  if (controls.scale == null) {
    Object.assign(controls, {
      scale: "linear", scaling: long ? "row" : "global", hideSpecial: false,
      dark: trace.meta.theme === "dark", markers: trace.meta.markers === true,
    });
  }
  if (controls.markers) setTokenMarkers(trace, true);
  const views = [];  // { name, view, dirty }
  const panels = {};
  const context = {
    trace, controls, filters: filtersOf(trace), open: openSelection(trace),
    // Views on hidden tabs are not drawn: they are marked and drawn when shown.
    refreshAll() {
      for (const entry of views) {
        if (isRendered(panels[entry.name])) entry.view.refresh();
        else entry.dirty = true;
      }
    },
    fail(error) { h("div", "av-error", app, String(error && error.message ? error.message : error)); },
  };

  const header = h("div", "av-header", app);
  const title = h("div", "av-title", header);
  title.textContent = (trace.meta.model || "attention") + (trace.meta.architecture ? " · " + trace.meta.architecture : "");
  if (trace.meta.revision) title.title = "revision " + trace.meta.revision;
  const tabs = h("div", "av-tabs", header);
  const bar = h("div", "av-toolbar", header);
  const scale = labeled(bar, "Colour", selectOf(["linear", "log"]));
  scale.classList.add("av-scale");
  scale.value = controls.scale;
  const scaling = labeled(bar, "Scaling", selectOf(["global", "row"], ["global", "per row"]));
  scaling.classList.add("av-scaling");
  scaling.value = controls.scaling;
  scaling.title = long ? "Per row by default on long inputs: each query's largest weight is full colour" : "";
  const hide = labeled(bar, "Hide special tokens", h("input", "av-hide-special"));
  hide.type = "checkbox";
  hide.checked = controls.hideSpecial;
  // Word level: every view's data for words (src/analysis computes it); the
  // views are built again on the other data, on the same tab.
  const words = labeled(bar, "Word level", h("input", "av-word-level"));
  words.type = "checkbox";
  words.checked = trace.wordLevel;
  const wordsReason = trace.meta.words ? "" : trace.meta.wordsNote || "This page has no word-level data";
  words.disabled = !!wordsReason;
  words.parentNode.title = wordsReason || "Words instead of subword pieces (Clark et al.): attention to a word is the sum over its pieces, from a word the mean";
  let currentView = null;
  words.onchange = () => {
    controls.wordLevel = words.checked;
    attnvizMount(root, hooks.payload, Object.assign({}, hooks, { view: currentView }));
  };
  const markers = labeled(bar, "Subword markers", h("input", "av-markers"));
  markers.type = "checkbox";
  markers.parentNode.title = "Show tokens as the tokenizer spells them (##ing, Ġthe, ▁the)";
  markers.checked = controls.markers;
  const theme = h("button", "av-theme", bar, "Dark");
  theme.type = "button";
  const showTheme = () => {
    app.dataset.theme = controls.dark ? "dark" : "light";
    theme.textContent = controls.dark ? "Light" : "Dark";
    const page = app.closest("body.attnviz-page");  // a whole page, not a fragment in someone's page
    if (page) page.classList.toggle("av-dark-page", controls.dark);
  };
  showTheme();
  scale.onchange = () => { controls.scale = scale.value; context.refreshAll(); };
  scaling.onchange = () => { controls.scaling = scaling.value; context.refreshAll(); };
  hide.onchange = () => { controls.hideSpecial = hide.checked; context.refreshAll(); };
  markers.onchange = () => { controls.markers = markers.checked; setTokenMarkers(trace, controls.markers); context.refreshAll(); };
  theme.onclick = () => {
    controls.dark = !controls.dark;
    showTheme();
    context.refreshAll();
  };
  describeInput(app, trace);

  const makers = {
    head: createHeadView, model: createModelView, neuron: createNeuronView, matrix: createMatrixView,
    rollout: createRolloutView, stats: createStatsView,
  };
  const names = trace.meta.views.filter((name) => makers[name]);
  // The analysis tabs come with their data (meta.analysis).
  if (trace.analysis && (trace.analysis.blocks.length || trace.analysis.notes.length)) names.push("rollout");
  if (trace.analysis && trace.analysis.stats.length) names.push("stats");
  const tabLabels = { rollout: "Rollout / flow", stats: "Head stats" };
  // The neuron view's q and k belong to tokens: it has no word-level form.
  const neuronReason = "The neuron view's query and key vectors belong to tokens: they have no word-level form";
  const show = (name) => {
    if (name === "neuron" && trace.wordLevel) return;
    currentView = name;
    if (!wordsReason) {
      words.disabled = name === "neuron";
      words.parentNode.title = name === "neuron" ? neuronReason : "Words instead of subword pieces (Clark et al.): attention to a word is the sum over its pieces, from a word the mean";
    }
    for (const other of names) {
      panels[other].hidden = other !== name;
      tabs.querySelector('[data-view="' + other + '"]').classList.toggle("av-active", other === name);
    }
    const entry = views.find((v) => v.name === name);
    if (!entry) {
      views.push({ name, view: makers[name](context, panels[name], {}), dirty: false });
    } else if (entry.dirty) {
      entry.dirty = false;
      entry.view.refresh();
    }
    wakeHiddenStores();
    if (hooks.onShow) hooks.onShow(name);
  };
  for (const name of names) {
    const tab = h("button", "av-tab", tabs, tabLabels[name] || name.charAt(0).toUpperCase() + name.slice(1) + " view");
    tab.type = "button";
    tab.dataset.view = name;
    if (name === "neuron" && trace.wordLevel) {
      tab.disabled = true;
      tab.title = neuronReason + " (untick Word level)";
    }
    tab.onclick = () => show(name);
    panels[name] = h("section", "av-panel av-panel-" + name, app);
  }
  if (names.length < 2) tabs.hidden = true;
  const usable = names.filter((name) => !(name === "neuron" && trace.wordLevel));
  if (usable.length) show(usable.includes(hooks.view) ? hooks.view : usable[0]);
  // The head stats' click: that head alone in the head view (when the page has one).
  context.openHead = (blockIndex, layer, head) => {
    if (!names.includes("head")) return;
    show("head");
    const entry = views.find((v) => v.name === "head");
    if (entry && entry.view.showHead) entry.view.showHead(blockIndex, layer, head);
  };
  root.dataset.ready = "1";
}

// Inputs longer than this start with per-row scaling and bounded line drawing.
const LONG_INPUT_TOKENS = 64;

// What the page opens on (payload meta.open, model numbering: the CLI's
// --open-layer and --open-heads) as indices into each block's included layers
// and heads; blocks other than the first open on their first layer, all heads.
function openSelection(trace) {
  const open = trace.meta.open;
  return (block) => {
    if (!open || block.index !== (trace.meta.firstBlock || 0)) return { layer: 0, heads: null };
    const layer = Math.max(0, block.layers.indexOf(open.layer));
    const heads = open.heads.map((head) => block.heads.indexOf(head)).filter((i) => i >= 0);
    return { layer, heads: heads.length && heads.length < block.heads.length ? heads : null };
  };
}

// The input under the header: each sequence's text(s), its token count, the
// model, and where sentence B starts (also marked in the token columns, so it
// stays visible when special tokens are hidden).
function describeInput(app, trace) {
  const info = h("details", "av-input", app);
  const summary = h("summary", null, info);
  const parts = trace.sequences.map((sequence) => {
    const words = [sequence.name + ": " + sequence.tokens.length + " tokens"];
    if (sequence.bStart >= 0) {
      const first = sequence.tokens[sequence.bStart];
      words.push("sentence B from token " + sequence.bStart + " (" + first.raw + ")");
    }
    return words.join(", ");
  });
  summary.textContent = (trace.meta.model ? trace.meta.model + " · " : "") + parts.join(" · ");
  for (const sequence of trace.sequences) {
    (sequence.texts || []).forEach((text, i) => {
      const line = h("div", "av-input-text", info);
      const label = sequence.texts.length > 1 ? "Text " + "AB"[i] : trace.sequences.length > 1 ? sequence.name : "Text";
      h("span", "av-input-label", line, label + ": ");
      h("span", null, line, text);
    });
  }
  const first = trace.sequences[0];
  if (first && first.texts && first.texts.join(" ").length <= 200) info.open = true;
  return info;
}
