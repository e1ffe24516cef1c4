// Head stats view: the per-head statistics of this input (Clark et al. 2019;
// src/analysis/head_stats computes them, the payload carries them as
// `attnviz export --head-stats` writes them) as a layers x heads heatmap, one
// statistic at a time. Each cell prints its value; click one to open that
// head alone in the head view.

const HEAD_STAT_LABELS = {
  entropy: "entropy (nats)", distance: "mean attention distance (tokens)", cls: "attention to [CLS]/BOS",
  sep: "attention to [SEP]/EOS", punct: "attention to punctuation", self: "attention to the token itself",
  prev: "attention to the previous token", next: "attention to the next token", top1: "top-1 share",
};

// A statistic as printed: 3 significant digits of the float32 value (exact to
// the digits printed), "0" for zero, "n/a" where it is not defined.
function formatStat(v) {
  if (v == null) return "n/a";
  return v === 0 ? "0" : v.toPrecision(3);
}

function createStatsView(context, panel) {
  const { trace, controls } = context;
  const stats = trace.analysis.stats;
  const bar = h("div", "av-toolbar", panel);
  const blockSelect = stats.length > 1
    ? labeled(bar, "Block", selectOf(stats.map((_, i) => i), stats.map((s) => trace.blocks[s.block].name))) : null;
  const names = Object.keys(stats[0].values);
  const statSelect = labeled(bar, "Statistic", selectOf(names, names.map((n) => HEAD_STAT_LABELS[n] || n)));
  statSelect.classList.add("av-stat");
  h("span", "av-hint", bar, "click a head to open it in the head view");
  const readout = h("div", "av-readout av-stats-readout", panel, "Hover a head.");
  const grid = h("div", "av-stats-grid", panel);
  const store = makeStore({ entry: 0, stat: names[0] }, draw, panel);
  const state = store.state;
  if (blockSelect) blockSelect.onchange = () => store.setState({ entry: +blockSelect.value });
  statSelect.onchange = () => store.setState({ stat: statSelect.value });
  grid.addEventListener("click", (event) => {
    const cell = event.target.closest(".av-stat-cell");
    if (!cell || !context.openHead) return;
    context.openHead(stats[state.entry].block, +cell.dataset.layer, +cell.dataset.head);
  });
  grid.addEventListener("mouseover", (event) => {
    const cell = event.target.closest(".av-stat-cell");
    if (cell) readout.textContent = cell.title;
  });

  function draw() {
    const entry = stats[state.entry], values = entry.values[state.stat];
    const finite = values.flat().filter((v) => v != null);
    const low = finite.length ? Math.min(...finite) : 0, high = finite.length ? Math.max(...finite) : 1;
    const label = HEAD_STAT_LABELS[state.stat] || state.stat;
    grid.textContent = "";
    grid.style.gridTemplateColumns = "auto repeat(" + entry.heads.length + ", minmax(3.6em, 5.5em))";
    h("span", "av-stats-corner", grid, "layer \\ head");
    for (const head of entry.heads) h("span", "av-stats-head", grid, String(head));
    values.forEach((row, li) => {
      h("span", "av-stats-layer", grid, String(entry.layers[li]));
      row.forEach((v, hi) => {
        const cell = h("button", "av-stat-cell", grid, formatStat(v));
        cell.type = "button";
        cell.dataset.layer = li;
        cell.dataset.head = hi;
        const colour = statColour(v, low, high, controls.dark);  // web/heat_scale.js, as the heads report
        cell.style.background = colour ? colour.fill : "transparent";
        cell.style.color = colour ? colour.text : "";
        cell.title = "layer " + entry.layers[li] + ", head " + entry.heads[hi] + ": " + label + " " + formatStat(v) +
          (v == null ? " (not defined for this block)" : "") + " · click: open in the head view";
      });
    });
    readout.textContent = label + " of this input" + (trace.wordLevel ? " (word level)" : "") + ": from " + formatStat(low) + " (lightest) to " + formatStat(high) + " (darkest).";
    panel.dataset.drawn = (+panel.dataset.drawn || 0) + 1;
  }
  store.setState({});
  return { refresh: () => store.setState({}) };
}
