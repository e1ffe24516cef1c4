// Token pane: a scrolling box with query tokens on the left and key tokens on
// the right (DOM, so text stays text), over a canvas that stays in view
// (position: sticky) and is drawn only for the visible band of rows. Used by
// the head view (and its copy in the model view) and by the neuron view.
// Keyboard: each column is one tab stop; arrow keys move along its tokens
// (focus acts as hover), Enter or Space click (pin) the focused token. The
// first token of sentence B has a rule above it (av-b-start), hidden specials or not.

const ROW_HEIGHT = 20;
const TOKEN_FONT = "13px sans-serif";

function makeTokenPane(parent, onHover, onClick) {
  const scroll = h("div", "av-scroll", parent);
  const canvas = h("canvas", "av-canvas", scroll);
  const rows = h("div", "av-rows", scroll);
  const left = h("div", "av-col av-col-q", rows);
  const right = h("div", "av-col av-col-k", rows);
  const pane = {
    scroll, canvas, rows, left, right, key: null, qPos: null, kPos: null,
    qNodes: new Map(), kNodes: new Map(), tokenWidth: 0, height: 0,
  };

  const tokenAt = (event) => {
    const node = event.target.closest(".av-tok");
    return node && rows.contains(node) ? { side: node.dataset.side, index: +node.dataset.index } : null;
  };
  rows.addEventListener("mouseover", (event) => onHover(tokenAt(event)));
  rows.addEventListener("mouseleave", () => onHover(null));
  rows.addEventListener("click", (event) => { const at = tokenAt(event); if (at) onClick(at); });
  const keyboard = [left, right].map((column) =>
    rovingFocus(column, ".av-tok", (node) => onHover({ side: node.dataset.side, index: +node.dataset.index })));

  // Rebuilds the token columns when the shown tokens change (filter, hidden specials).
  pane.setTokens = (key, queryTokens, qs, keyTokens, ks, tokenWidth, middleWidth) => {
    key += "/" + tokenTextVersion;  // the subword-marker setting rewrites token text
    if (pane.key === key && pane.tokenWidth === tokenWidth && pane.middle === middleWidth) return;
    pane.key = key;
    pane.tokenWidth = tokenWidth;
    pane.middle = middleWidth;
    pane.qPos = positions(queryTokens.length, qs);
    pane.kPos = positions(keyTokens.length, ks);
    pane.height = Math.max(qs.length, ks.length) * ROW_HEIGHT;
    rows.style.height = pane.height + "px";
    rows.style.width = 2 * tokenWidth + middleWidth + "px";
    left.style.width = right.style.width = tokenWidth + "px";
    right.style.left = tokenWidth + middleWidth + "px";
    fill(left, "q", queryTokens, qs, pane.qNodes);
    fill(right, "k", keyTokens, ks, pane.kNodes);
    keyboard.forEach((settle) => settle());
  };

  // The canvas covers the visible band; returns its context translated so
  // that y is in row coordinates, with the band's top and bottom.
  pane.begin = () => {
    const width = 2 * pane.tokenWidth + pane.middle;
    // A pane that is not rendered has no height: draw a bounded band, never the whole column.
    const bandHeight = Math.max(1, Math.min(pane.height, scroll.clientHeight || 600));
    const ctx = fitCanvas(canvas, width, bandHeight);
    rows.style.marginTop = -bandHeight + "px";
    ctx.clearRect(0, 0, width, bandHeight);
    const top = scroll.scrollTop;
    ctx.translate(0, -top);
    return { ctx, top, bottom: top + bandHeight };
  };

  // Clears the numbers shown beside tokens, then sets those given. With band
  // ({ top, bottom } in pixels, as pane.begin returns), only the tokens within
  // a screen of it change now and the rest once the pane has been still for a
  // moment: while scrolling with a hovered token, hundreds of off-screen
  // numbers would otherwise change (and be laid out) every frame.
  // scroll.dataset.numbers says "all" once every number is set.
  const deferred = { q: 0, k: 0 }, waiting = { q: false, k: false };
  const settled = (side, done) => {
    waiting[side] = !done;
    scroll.dataset.numbers = waiting.q || waiting.k ? "band" : "all";
  };
  pane.setNumbers = (side, values, band) => {
    const nodes = side === "q" ? pane.qNodes : pane.kNodes;
    clearTimeout(deferred[side]);
    const set = (near) => {
      for (const [index, node] of nodes) {
        if (near) {
          const y = parseFloat(node.style.top);
          if (y < band.top - 800 || y > band.bottom + 800) continue;
        }
        const text = values && values.has(index) ? values.get(index) : "";
        if (node.number.textContent !== text) node.number.textContent = text;
      }
    };
    if (!band || nodes.size <= 100) {
      set(false);
      settled(side, true);
      return;
    }
    set(true);
    settled(side, false);
    deferred[side] = setTimeout(() => { set(false); settled(side, true); }, 150);
  };
  pane.highlight = (focus) => {
    for (const node of rows.querySelectorAll(".av-focus")) node.classList.remove("av-focus");
    if (!focus) return;
    const node = (focus.side === "q" ? pane.qNodes : pane.kNodes).get(focus.index);
    if (node) node.classList.add("av-focus");
  };
  return pane;
}

function positions(n, shown) {
  const pos = new Int32Array(n).fill(-1);
  shown.forEach((index, row) => { pos[index] = row; });
  return pos;
}

function fill(column, side, tokens, shown, nodes) {
  column.textContent = "";
  nodes.clear();
  const fragment = document.createDocumentFragment();
  shown.forEach((index, row) => {
    const token = tokens[index];
    const bStart = token.segment === 1 && (index === 0 || tokens[index - 1].segment !== 1);
    const node = h("div", "av-tok" + (token.special ? " av-special" : "") + (bStart ? " av-b-start" : ""), fragment);
    node.tabIndex = -1;
    node.style.top = row * ROW_HEIGHT + "px";
    node.dataset.side = side;
    node.dataset.index = index;
    node.title = token.raw + "  (" + (hasTokenId(token) ? "id " + token.id + ", " : "") + "position " + index +
      (bStart ? ", sentence B starts here" : "") + ")";
    node.number = h("span", "av-w", null);
    const text = h("span", "av-text", null, token.shown);
    if (side === "q") node.append(node.number, text);
    else node.append(text, node.number);
    nodes.set(index, node);
  });
  column.appendChild(fragment);
}

// Width of the widest shown token, measured once per token.
function tokenTextWidth(tokens, shown) {
  const ctx = tokenTextWidth.ctx || (tokenTextWidth.ctx = document.createElement("canvas").getContext("2d"));
  ctx.font = TOKEN_FONT;
  let widest = 0;
  for (const index of shown) {
    const token = tokens[index];
    if (token.width == null) token.width = ctx.measureText(token.shown).width;
    if (token.width > widest) widest = token.width;
  }
  return widest;
}
