// Rollout / flow view (Abnar & Zuidema 2020; src/analysis computes both, the
// payload carries them as blocks of one "head"): a saliency strip over the
// input text (each input token shaded by the rollout or flow from a chosen
// output token, hover for the exact value), the token-to-token lines of the
// head view and the full map of the matrix view, on the same data. Blocks
// without them (cross-attention, a selective capture) get a note.

function createRolloutView(context, panel) {
  const { trace, controls } = context;
  const analysis = trace.analysis;
  for (const note of analysis.notes) h("div", "av-hint av-note", panel, note);
  const blocks = analysis.blocks;
  if (!blocks.length) return { refresh() {} };
  const title = (name) => name.charAt(0).toUpperCase() + name.slice(1);
  const meta = Object.assign({}, trace.meta, { firstBlock: 0 });
  const sub = {
    trace: { meta, sequences: trace.sequences, blocks }, controls, fail: context.fail, refreshAll: context.refreshAll,
    open: (block) => ({ layer: block.layers.length - 1, heads: null }),  // the last layer: the model's output
  };
  sub.filters = filtersOf(sub.trace);

  // ---- saliency strip ----
  const section = h("section", "av-saliency", panel);
  h("div", "av-section-title", section, "Saliency over the input");
  const bar = h("div", "av-toolbar", section);
  const measureSelect = labeled(bar, "Measure", selectOf(blocks.map((b) => b.index), blocks.map((b) => title(b.name))));
  measureSelect.classList.add("av-sal-measure");
  const layerSelect = labeled(bar, "Layer", h("select", "av-sal-layer"));
  const fromSelect = labeled(bar, "From token", h("select", "av-sal-from"));
  const readout = h("div", "av-readout av-sal-readout", section, "Hover a token.");
  const strip = h("div", "av-strip", section);
  // Bidirectional models summarize the input in [CLS]; causal ones in the last token.
  const defaultFrom = (block) => {
    if (block.causal) return block.nq - 1;
    const first = block.queryTokens.findIndex((t) => t.special);
    return first >= 0 ? first : 0;
  };
  const store = makeStore({ block: 0, layer: blocks[0].layers.length - 1, from: defaultFrom(blocks[0]), hover: null }, draw, section);
  const state = store.state;
  let exactKey = null, exactAt = null, stripKey = null;
  function fill() {
    const block = blocks[state.block];
    layerSelect.textContent = fromSelect.textContent = "";
    block.layers.forEach((layer, i) => { h("option", null, layerSelect, String(layer)).value = String(i); });
    state.layer = Math.min(state.layer, block.layers.length - 1);
    layerSelect.value = String(state.layer);
    layerSelect.parentNode.style.display = block.layers.length < 2 ? "none" : "";  // flow: the last layer only
    block.queryTokens.forEach((token, i) => { h("option", null, fromSelect, "#" + i + " " + token.shown).value = String(i); });
    state.from = Math.min(state.from, block.nq - 1);
    fromSelect.value = String(state.from);
  }
  measureSelect.onchange = () => {
    const block = blocks[+measureSelect.value];
    store.setState({ block: +measureSelect.value, layer: block.layers.length - 1, from: defaultFrom(block), hover: null });
    fill();
  };
  layerSelect.onchange = () => store.setState({ layer: +layerSelect.value });
  fromSelect.onchange = () => store.setState({ from: +fromSelect.value });
  strip.addEventListener("mouseover", (event) => {
    const token = event.target.closest(".av-sal-tok");
    if (token) store.setState({ hover: +token.dataset.index });
  });
  strip.addEventListener("mouseleave", () => store.setState({ hover: null }));
  const settleStrip = rovingFocus(strip, ".av-sal-tok", (token) => store.setState({ hover: +token.dataset.index }));
  fill();

  function draw() {
    const block = blocks[state.block], li = state.layer, q = state.from;
    const layer = block.loaded[li];
    const key = state.block + "/" + li;
    if (exactKey !== key) {
      exactKey = key;
      exactAt = null;
      block.exact(li).then((at) => { if (exactKey === key) { exactAt = at; stripKey = null; store.setState({}); } }, context.fail);
    }
    if (!layer) {
      readout.textContent = "Decoding…";
      block.layer(li).then(() => store.setState({}), context.fail);
      return;
    }
    const what = block.measure + (block.measure === "rollout" ? " at layer " + block.layers[li] : "");
    const name = (i) => '"' + block.keyTokens[i].shown + '" (#' + i + ")";
    const from = block.queryTokens[q];
    const settings = [key, q, controls.scale, controls.dark, controls.hideSpecial, tokenTextVersion, exactAt ? 1 : 0].join("/");
    if (stripKey !== settings) {
      stripKey = settings;
      strip.textContent = "";
      const table = heatTable(controls.dark), log = controls.scale === "log";
      const { nk } = block, levels = layer.levels, row = q * nk;
      let top = 0;
      block.keyTokens.forEach((t, k) => { if (!(controls.hideSpecial && t.special)) top = Math.max(top, levels[row + k]); });
      block.keyTokens.forEach((token, k) => {
        if (controls.hideSpecial && token.special) return;
        if (k === block.keySequence.bStart) h("span", "av-sal-b", strip, "B:").title = "sentence B starts here";
        const span = h("span", "av-sal-tok", strip, token.shown);
        span.dataset.index = k;
        span.tabIndex = -1;
        const x = top > 0 ? shade(levels[row + k] / top, log) : 0, c = Math.round(x * 255) * 3;
        span.style.background = "rgb(" + table[c] + "," + table[c + 1] + "," + table[c + 2] + ")";
        span.style.color = textColorOn(table[c], table[c + 1], table[c + 2]);
        if (exactAt) {
          span.dataset.value = formatWeight(exactAt(0, q, k));
          span.title = what + " from " + '"' + from.shown + '" (#' + q + ") to " + name(k) + ": " + span.dataset.value;
        }
      });
      settleStrip();
    }
    if (state.hover != null && state.hover < block.nk) {
      const value = exactAt ? formatWeight(exactAt(0, q, state.hover)) : "…";
      readout.textContent = "";
      h("span", "av-value", readout, value);
      readout.append(" · " + what + " from " + '"' + from.shown + '" (#' + q + ") to " + name(state.hover));
    } else {
      readout.textContent = "Each input token shaded by the " + what + " from \"" + from.shown + "\" (#" + q + "), darkest = the largest; hover a token for its value.";
    }
    section.dataset.drawn = (+section.dataset.drawn || 0) + 1;
  }
  store.setState({});

  // ---- token to token, and the whole map ----
  h("div", "av-section-title", panel, "Token to token: hover or pin an output token (left) for its " + blocks.map((b) => b.measure).filter((m, i, all) => all.indexOf(m) === i).join(" and ") + " to each input token (right)");
  const headView = createHeadView(sub, h("section", "av-rollout-head", panel), {});
  h("div", "av-section-title", panel, "The whole map: output tokens down, input tokens across");
  const matrixView = createMatrixView(sub, h("section", "av-rollout-matrix", panel));
  return { refresh() { stripKey = null; store.setState({}); headView.refresh(); matrixView.refresh(); } };
}
