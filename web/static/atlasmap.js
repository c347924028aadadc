// AtlasMap: an interactive canvas scatter of an SAE's decoder columns.
// Points are drawn with fillRect batched per colour and redrawn on
// requestAnimationFrame only when the view changes; hover hit-testing uses
// a uniform grid index. Drag pans, the wheel zooms around the cursor,
// shift+drag box-selects, shift+click adds or removes a point, alt+drag (or
// lasso mode) lasso-selects, a click on a point opens it. Behaviour regions
// (the convex hull of each behaviour's columns) are drawn under the points.

import {h, fill, fmt, pct, behaviourColour, clusterColour, gradient, NONE_COLOUR, swatch} from './util.js';

// DEAD_COLOUR draws the latents that never fire, apart from the others.
const DEAD_COLOUR = '#ececec';

const GRID = 128;
const HIT_PX = 7;
const FREQ_BINS = 24;

export class AtlasMap {
  constructor(features, {onOpen, onSelect, onView, describe, testid = 'atlas-map'} = {}) {
    this.features = features;
    this.onOpen = onOpen || (() => {});
    this.onSelect = onSelect || (() => {});
    // describe(feature) gives a promise of a line about it for the tooltip
    // (an example step), or null.
    this.describe = describe || null;
    // onView(view) hears of each change of the view (see view()).
    this.onView = onView || (() => {});
    this.lastView = undefined;
    this.regions = [];
    this.showRegions = true;
    const n = features.length;
    this.n = n;
    this.xs = new Float32Array(n);
    this.ys = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      this.xs[i] = +features[i].x || 0;
      this.ys[i] = +features[i].y || 0;
    }
    this.indexOf = new Map();
    for (let i = 0; i < n; i++) this.indexOf.set(features[i].id, i);
    this.selected = new Uint8Array(n);
    this.selCount = 0;
    this.hover = -1;
    this.lasso = false;
    this.drag = null;
    this.frame = 0;
    this.dpr = window.devicePixelRatio || 1;
    this.width = 0;
    this.height = 0;

    this.canvas = h('canvas', {class: 'atlas-canvas', testid, tabindex: 0, 'aria-label': `map of ${n} features`});
    this.tooltip = h('div', {class: 'tooltip', hidden: true});
    this.el = h('div', {class: 'atlas-wrap'}, this.canvas, this.tooltip);
    this.legendEl = h('div', {class: 'legend atlas-legend'});

    this.buildIndex();
    this.setColour('behaviour');
    this.bind();
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(this.el);
  }

  destroy() {
    this.ro.disconnect();
    cancelAnimationFrame(this.frame);
  }

  // ---------- geometry ----------

  buildIndex() {
    const {xs, ys, n} = this;
    let minx = Infinity, maxx = -Infinity, miny = Infinity, maxy = -Infinity;
    for (let i = 0; i < n; i++) {
      if (xs[i] < minx) minx = xs[i]; if (xs[i] > maxx) maxx = xs[i];
      if (ys[i] < miny) miny = ys[i]; if (ys[i] > maxy) maxy = ys[i];
    }
    if (!n) { minx = miny = 0; maxx = maxy = 1; }
    if (maxx === minx) { maxx += 0.5; minx -= 0.5; }
    if (maxy === miny) { maxy += 0.5; miny -= 0.5; }
    this.bounds = {minx, maxx, miny, maxy};
    this.cw = (maxx - minx) / GRID;
    this.ch = (maxy - miny) / GRID;
    const cellOf = new Int32Array(n);
    const start = new Int32Array(GRID * GRID + 1);
    for (let i = 0; i < n; i++) {
      const c = this.cell(xs[i], ys[i]);
      cellOf[i] = c;
      start[c + 1]++;
    }
    for (let c = 0; c < GRID * GRID; c++) start[c + 1] += start[c];
    const items = new Int32Array(n);
    const pos = start.slice(0, GRID * GRID);
    for (let i = 0; i < n; i++) items[pos[cellOf[i]]++] = i;
    this.cellStart = start;
    this.cellItems = items;
  }

  cellXY(x, y) {
    const b = this.bounds;
    const cx = Math.min(GRID - 1, Math.max(0, Math.floor((x - b.minx) / this.cw)));
    const cy = Math.min(GRID - 1, Math.max(0, Math.floor((y - b.miny) / this.ch)));
    return [cx, cy];
  }

  cell(x, y) {
    const [cx, cy] = this.cellXY(x, y);
    return cy * GRID + cx;
  }

  // fit sets the view so every point shows with a margin.
  fit() {
    const b = this.bounds;
    const m = 16;
    const W = Math.max(1, this.width - 2 * m), H = Math.max(1, this.height - 2 * m);
    const s = Math.min(W / (b.maxx - b.minx), H / (b.maxy - b.miny));
    this.scale = s;
    this.baseScale = s;
    this.tx = this.width / 2 - ((b.minx + b.maxx) / 2) * s;
    this.ty = this.height / 2 + ((b.miny + b.maxy) / 2) * s;
    this.schedule();
  }

  // screenPosition gives a feature's position in CSS pixels from the
  // canvas's top-left corner (for tests and scripts), or null.
  screenPosition(id) {
    const i = this.indexOf.get(id);
    if (i === undefined) return null;
    return {x: this.xs[i] * this.scale + this.tx, y: -this.ys[i] * this.scale + this.ty};
  }

  // view says where the view is: "x,y,zoom" (the data point at the centre
  // and the zoom over the fitted view), or null for the fitted view.
  view() {
    if (!this.width) return null;
    const [cx, cy] = this.toData(this.width / 2, this.height / 2);
    const z = this.scale / this.baseScale;
    const b = this.bounds;
    const span = Math.max(b.maxx - b.minx, b.maxy - b.miny);
    const fitted = Math.abs(z - 1) < 1e-3 && Math.hypot(cx - (b.minx + b.maxx) / 2, cy - (b.miny + b.maxy) / 2) < 1e-3 * span;
    return fitted ? null : `${+cx.toPrecision(6)},${+cy.toPrecision(6)},${+z.toPrecision(4)}`;
  }

  // setView shows the view that view() gave; a malformed one is ignored.
  setView(v) {
    const p = String(v || '').split(',').map(Number);
    if (p.length !== 3 || !p.every(Number.isFinite) || !(p[2] > 0) || !this.width) return false;
    const s = Math.min(this.baseScale * 2000, Math.max(this.baseScale * 0.2, this.baseScale * p[2]));
    this.scale = s;
    this.tx = this.width / 2 - p[0] * s;
    this.ty = this.height / 2 + p[1] * s;
    this.schedule();
    return true;
  }

  toData(sx, sy) {
    return [(sx - this.tx) / this.scale, -(sy - this.ty) / this.scale];
  }

  resize() {
    const w = Math.max(200, Math.floor(this.el.clientWidth));
    const hgt = Math.max(300, Math.floor(this.el.clientHeight));
    const dpr = window.devicePixelRatio || 1;
    if (w === this.width && hgt === this.height && dpr === this.dpr && this.canvas.width) return;
    const first = !this.width;
    const oldW = this.width, oldH = this.height;
    this.width = w; this.height = hgt; this.dpr = dpr;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(hgt * dpr);
    this.canvas.style.width = w + 'px';
    this.canvas.style.height = hgt + 'px';
    if (first) { this.fit(); this.draw(); } else {
      // keep the centre of the view where it was
      this.tx += (w - oldW) / 2;
      this.ty += (hgt - oldH) / 2;
      this.draw();
    }
  }

  // ---------- colours ----------

  setColour(mode) {
    this.mode = mode;
    const groups = new Map(); // colour -> [indices]
    const order = [];
    const add = (colour, i) => {
      let g = groups.get(colour);
      if (!g) { g = []; groups.set(colour, g); order.push(colour); }
      g.push(i);
    };
    const f = this.features;
    let legend;
    if (mode === 'cluster') {
      const sizes = new Map();
      for (let i = 0; i < this.n; i++) {
        const c = f[i].cluster ?? -1;
        add(clusterColour(c), i);
        sizes.set(c, (sizes.get(c) || 0) + 1);
      }
      const sorted = [...sizes.entries()].sort((a, b) => b[1] - a[1]);
      const shown = sorted.slice(0, 16);
      legend = [h('span', {class: 'small muted'}, `${sizes.size} clusters:`),
        shown.map(([c, k]) => h('span', {class: 'legend-item'}, swatch(clusterColour(c)), c < 0 ? 'none' : `c${c}`, h('span', {class: 'muted num'}, ` ${k}`))),
        sorted.length > shown.length ? h('span', {class: 'small muted'}, `… ${sorted.length - shown.length} more (colours cycle)`) : null];
    } else if (mode === 'frequency') {
      let lo = Infinity, hi = -Infinity;
      for (let i = 0; i < this.n; i++) {
        const v = f[i].frequency;
        if (v > 0) { const l = Math.log10(v); if (l < lo) lo = l; if (l > hi) hi = l; }
      }
      if (!(hi > lo)) { hi = (Number.isFinite(lo) ? lo : -3) + 1; if (!Number.isFinite(lo)) lo = -3; }
      this.freqRange = [lo, hi];
      let dead = 0;
      for (let i = 0; i < this.n; i++) {
        const v = f[i].frequency;
        if (!(v > 0)) { add(NONE_COLOUR, i); dead++; continue; }
        const b = Math.min(FREQ_BINS - 1, Math.floor(((Math.log10(v) - lo) / (hi - lo)) * FREQ_BINS));
        add(gradient((b + 0.5) / FREQ_BINS), i);
      }
      const stops = Array.from({length: 11}, (_, i) => gradient(i / 10)).join(',');
      legend = [h('span', {class: 'small muted'}, 'firing frequency (log):'),
        h('span', {class: 'num small'}, pct(10 ** lo)),
        h('span', {class: 'gradient-bar', style: {background: `linear-gradient(to right, ${stops})`}}),
        h('span', {class: 'num small'}, pct(10 ** hi)),
        dead ? h('span', {class: 'legend-item'}, swatch(NONE_COLOUR), 'never fires', h('span', {class: 'muted num'}, ` ${dead}`)) : null];
    } else {
      // A latent that never fires has no behaviour to show: it is drawn
      // apart (faint, and hidden with hideDead) and counted as such.
      const counts = new Map();
      let dead = 0;
      for (let i = 0; i < this.n; i++) {
        if (!(f[i].frequency > 0)) { add(DEAD_COLOUR, i); dead++; continue; }
        const b = f[i].behaviour || '';
        add(behaviourColour(b), i);
        counts.set(b, (counts.get(b) || 0) + 1);
      }
      legend = [...counts.entries()].sort((a, b) => b[1] - a[1]).map(([b, k]) =>
        h('span', {class: 'legend-item'}, swatch(behaviourColour(b)), b || 'no behaviour', h('span', {class: 'muted num'}, ` ${k}`)));
      if (dead) legend.push(h('span', {class: 'legend-item', testid: 'never-fires'}, swatch(DEAD_COLOUR), 'never fires', h('span', {class: 'muted num'}, ` ${dead}`)));
    }
    // draw the grey (unspecific / other) points first, so coloured ones sit on top
    const greyFirst = (c) => (c === DEAD_COLOUR ? -1 : c === NONE_COLOUR || c === behaviourColour('other') ? 0 : 1);
    order.sort((a, b) => greyFirst(a) - greyFirst(b));
    this.groups = order.map((c) => ({colour: c, idx: Int32Array.from(groups.get(c))}));
    fill(this.legendEl, legend);
    this.hideTip(); // its colour and cluster may be stale: the next move draws it again
    this.schedule();
  }

  // setPointScale multiplies the points' size (1: the default for the
  // number of points).
  setPointScale(v) { this.pointScale = v; this.schedule(); }

  // setHideDead hides, or shows again, the latents that never fire.
  setHideDead(on) { this.hideDead = on; this.schedule(); }

  // setRegions sets the behaviour regions: for each {name, colour, ids},
  // the convex hull of those features' points.
  setRegions(list) {
    this.regions = [];
    for (const r of list) {
      const pts = [];
      for (const id of r.ids) {
        const i = this.indexOf.get(id);
        if (i !== undefined) pts.push([this.xs[i], this.ys[i]]);
      }
      if (pts.length) this.regions.push({name: r.name, colour: r.colour, hull: convexHull(pts), size: pts.length});
    }
    this.schedule();
  }

  // setShowRegions shows or hides the behaviour regions.
  setShowRegions(on) { this.showRegions = on; this.schedule(); }

  // ---------- drawing ----------

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.draw(); });
  }

  draw() {
    if (!this.width) return;
    if ((window.devicePixelRatio || 1) !== this.dpr) { this.resize(); }
    const ctx = this.canvas.getContext('2d', {alpha: false});
    const {xs, ys, scale, tx, ty, width: W, height: H} = this;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, W, H);
    const zoom = scale / this.baseScale;
    const base = this.n > 20000 ? 2.2 : this.n > 4000 ? 3.2 : 4.6;
    const r = Math.min(14, (base + Math.log2(Math.max(1, zoom)) * 0.9) * (this.pointScale || 1));
    const half = r / 2;
    const sel = this.selCount > 0;
    this.drawRegions(ctx);
    let drawn = 0;
    ctx.globalAlpha = sel ? 0.18 : 0.85;
    for (const g of this.groups) {
      if (g.colour === DEAD_COLOUR && this.hideDead) continue;
      ctx.fillStyle = g.colour;
      const idx = g.idx;
      for (let j = 0; j < idx.length; j++) {
        const i = idx[j];
        const sx = xs[i] * scale + tx, sy = -ys[i] * scale + ty;
        if (sx < -r || sy < -r || sx > W + r || sy > H + r) continue;
        ctx.fillRect(sx - half, sy - half, r, r);
        drawn++;
      }
    }
    this.canvas.dataset.points = String(drawn);
    ctx.globalAlpha = 1;
    if (sel) {
      const R = r + 1.5;
      ctx.fillStyle = '#222';
      for (let i = 0; i < this.n; i++) {
        if (!this.selected[i]) continue;
        const sx = xs[i] * scale + tx, sy = -ys[i] * scale + ty;
        if (sx < -R || sy < -R || sx > W + R || sy > H + R) continue;
        ctx.fillRect(sx - R / 2 - 1, sy - R / 2 - 1, R + 2, R + 2);
      }
      for (const g of this.groups) {
        ctx.fillStyle = g.colour;
        const idx = g.idx;
        for (let j = 0; j < idx.length; j++) {
          const i = idx[j];
          if (!this.selected[i]) continue;
          const sx = xs[i] * scale + tx, sy = -ys[i] * scale + ty;
          if (sx < -R || sy < -R || sx > W + R || sy > H + R) continue;
          ctx.fillRect(sx - R / 2, sy - R / 2, R, R);
        }
      }
    }
    if (this.hover >= 0) {
      const i = this.hover;
      ctx.strokeStyle = '#111';
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.arc(xs[i] * scale + tx, -ys[i] * scale + ty, r + 4, 0, 2 * Math.PI);
      ctx.stroke();
    }
    this.drawGesture(ctx);
    const v = this.view();
    if (v !== this.lastView) {
      this.lastView = v;
      this.onView(v);
    }
  }

  drawRegions(ctx) {
    const {scale, tx, ty} = this;
    const shown = [];
    if (this.showRegions) {
      for (const g of this.regions) {
        const pts = g.hull.map(([x, y]) => [x * scale + tx, -y * scale + ty]);
        ctx.strokeStyle = g.colour;
        ctx.fillStyle = g.colour;
        ctx.lineJoin = 'round';
        ctx.lineCap = 'round';
        ctx.beginPath();
        ctx.moveTo(pts[0][0], pts[0][1]);
        for (const [x, y] of pts.slice(1)) ctx.lineTo(x, y);
        if (pts.length > 2) {
          ctx.closePath();
          ctx.globalAlpha = 0.1;
          ctx.fill();
          ctx.globalAlpha = 0.7;
          ctx.lineWidth = 1.5;
        } else {
          // one or two points: a rounded stroke marks them
          if (pts.length === 1) ctx.lineTo(pts[0][0] + 0.01, pts[0][1]);
          ctx.globalAlpha = 0.2;
          ctx.lineWidth = 18;
        }
        ctx.stroke();
        shown.push(`${g.name}:${g.hull.length}`);
      }
      ctx.globalAlpha = 1;
    }
    // what is drawn, for tests and scripts: behaviour:hull vertices
    this.canvas.dataset.regions = shown.join(',');
  }

  drawGesture(ctx) {
    const d = this.drag;
    if (!d || !d.moved) return;
    ctx.strokeStyle = '#333';
    ctx.fillStyle = 'rgba(40,90,200,0.08)';
    ctx.lineWidth = 1;
    ctx.setLineDash([4, 3]);
    if (d.mode === 'box') {
      const x = Math.min(d.x0, d.x), y = Math.min(d.y0, d.y);
      ctx.fillRect(x, y, Math.abs(d.x - d.x0), Math.abs(d.y - d.y0));
      ctx.strokeRect(x + 0.5, y + 0.5, Math.abs(d.x - d.x0), Math.abs(d.y - d.y0));
    } else if (d.mode === 'lasso' && d.path.length > 1) {
      ctx.beginPath();
      ctx.moveTo(d.path[0][0], d.path[0][1]);
      for (const [x, y] of d.path) ctx.lineTo(x, y);
      ctx.closePath();
      ctx.fill();
      ctx.stroke();
    }
    ctx.setLineDash([]);
  }

  // ---------- hit testing ----------

  pick(sx, sy) {
    const [x, y] = this.toData(sx, sy);
    const rd = HIT_PX / this.scale;
    const [c0x, c0y] = this.cellXY(x - rd, y - rd);
    const [c1x, c1y] = this.cellXY(x + rd, y + rd);
    let best = -1, bestD = rd * rd;
    for (let cy = c0y; cy <= c1y; cy++) {
      for (let cx = c0x; cx <= c1x; cx++) {
        const c = cy * GRID + cx;
        for (let k = this.cellStart[c]; k < this.cellStart[c + 1]; k++) {
          const i = this.cellItems[k];
          const dx = this.xs[i] - x, dy = this.ys[i] - y;
          const d2 = dx * dx + dy * dy;
          if (d2 < bestD || (best < 0 && d2 <= bestD)) { bestD = d2; best = i; }
        }
      }
    }
    return best;
  }

  // ---------- selection ----------

  selectWhere(test) {
    this.selected.fill(0);
    let n = 0;
    for (let i = 0; i < this.n; i++) {
      if (test(this.xs[i], this.ys[i])) { this.selected[i] = 1; n++; }
    }
    this.selCount = n;
    this.schedule();
    this.onSelect(this.selection());
  }

  selectBox(x0, y0, x1, y1) {
    const [ax, ay] = this.toData(Math.min(x0, x1), Math.max(y0, y1));
    const [bx, by] = this.toData(Math.max(x0, x1), Math.min(y0, y1));
    this.selectWhere((x, y) => x >= ax && x <= bx && y >= ay && y <= by);
  }

  selectLasso(path) {
    const poly = path.map(([sx, sy]) => this.toData(sx, sy));
    let minx = Infinity, maxx = -Infinity, miny = Infinity, maxy = -Infinity;
    for (const [x, y] of poly) {
      if (x < minx) minx = x; if (x > maxx) maxx = x;
      if (y < miny) miny = y; if (y > maxy) maxy = y;
    }
    this.selectWhere((x, y) => x >= minx && x <= maxx && y >= miny && y <= maxy && inPolygon(x, y, poly));
  }

  // toggle adds the feature at index i to the selection, or removes it.
  toggle(i) {
    this.selected[i] ^= 1;
    this.selCount += this.selected[i] ? 1 : -1;
    this.schedule();
    this.onSelect(this.selection());
  }

  // selectIds selects the features with these ids (unknown ones are left
  // out).
  selectIds(ids) {
    const want = new Set(ids);
    const byId = (i) => want.has(this.features[i].id);
    this.selected.fill(0);
    let n = 0;
    for (let i = 0; i < this.n; i++) if (byId(i)) { this.selected[i] = 1; n++; }
    this.selCount = n;
    this.schedule();
    this.onSelect(this.selection());
  }

  clearSelection() {
    this.selected.fill(0);
    this.selCount = 0;
    this.schedule();
    this.onSelect(this.selection());
  }

  selection() {
    const out = [];
    for (let i = 0; i < this.n; i++) if (this.selected[i]) out.push(this.features[i]);
    return out;
  }

  // ---------- events ----------

  bind() {
    const c = this.canvas;
    const pos = (e) => {
      const r = c.getBoundingClientRect();
      return [e.clientX - r.left, e.clientY - r.top];
    };
    c.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      const [x, y] = pos(e);
      const mode = e.shiftKey ? 'box' : (e.altKey || this.lasso) ? 'lasso' : 'pan';
      this.drag = {mode, x0: x, y0: y, x, y, lx: x, ly: y, moved: false, path: [[x, y]]};
      c.setPointerCapture(e.pointerId);
      c.focus({preventScroll: true});
      c.classList.toggle('panning', mode === 'pan');
      e.preventDefault();
    });
    c.addEventListener('pointermove', (e) => {
      const [x, y] = pos(e);
      const d = this.drag;
      if (d) {
        if (Math.abs(x - d.x0) + Math.abs(y - d.y0) > 3) d.moved = true;
        if (d.mode === 'pan') {
          this.tx += x - d.lx; this.ty += y - d.ly;
          this.hideTip();
        } else if (d.mode === 'lasso') {
          const last = d.path[d.path.length - 1];
          if (Math.abs(x - last[0]) + Math.abs(y - last[1]) > 2) d.path.push([x, y]);
        }
        d.lx = x; d.ly = y; d.x = x; d.y = y;
        this.schedule();
        return;
      }
      this.setHover(this.pick(x, y), x, y);
    });
    const end = (e) => {
      const d = this.drag;
      if (!d) return;
      this.drag = null;
      c.classList.remove('panning');
      if (e.type === 'pointercancel') { this.schedule(); return; }
      if (!d.moved) {
        const i = this.pick(d.x0, d.y0);
        if (d.mode === 'pan') {
          if (i >= 0) this.onOpen(this.features[i]);
        } else if (d.mode === 'box' && i >= 0) this.toggle(i);
        else this.clearSelection();
      } else if (d.mode === 'box') this.selectBox(d.x0, d.y0, d.x, d.y);
      else if (d.mode === 'lasso' && d.path.length > 2) this.selectLasso(d.path);
      this.schedule();
    };
    c.addEventListener('pointerup', end);
    c.addEventListener('pointercancel', end);
    c.addEventListener('pointerleave', () => { if (!this.drag) this.setHover(-1); });
    c.addEventListener('wheel', (e) => {
      e.preventDefault();
      const [x, y] = pos(e);
      const dy = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaMode === 2 ? e.deltaY * 400 : e.deltaY;
      this.zoomAt(x, y, Math.exp(-dy * 0.0015));
      this.setHover(this.pick(x, y), x, y);
    }, {passive: false});
    c.addEventListener('keydown', (e) => {
      const step = 40;
      if (e.key === '+' || e.key === '=') this.zoomAt(this.width / 2, this.height / 2, 1.25);
      else if (e.key === '-') this.zoomAt(this.width / 2, this.height / 2, 0.8);
      else if (e.key === 'ArrowLeft') this.tx += step;
      else if (e.key === 'ArrowRight') this.tx -= step;
      else if (e.key === 'ArrowUp') this.ty += step;
      else if (e.key === 'ArrowDown') this.ty -= step;
      else if (e.key === 'Escape') this.clearSelection();
      else if (e.key === '0') this.fit();
      else return;
      e.preventDefault();
      this.schedule();
    });
  }

  zoomAt(x, y, f) {
    const s = Math.min(this.baseScale * 2000, Math.max(this.baseScale * 0.2, this.scale * f));
    f = s / this.scale;
    this.tx = x - (x - this.tx) * f;
    this.ty = y - (y - this.ty) * f;
    this.scale = s;
    this.schedule();
  }

  setHover(i, x, y) {
    const changed = i !== this.hover || this.tooltip.hidden;
    if (i !== this.hover) {
      this.hover = i;
      this.schedule();
    }
    if (i < 0) { this.hideTip(); this.canvas.style.cursor = ''; return; }
    this.canvas.style.cursor = 'pointer';
    if (changed) {
      const f = this.features[i];
      const ask = this.describe && f.frequency > 0;
      fill(this.tooltip,
        h('div', {}, h('strong', {}, `feature ${f.id}`)),
        h('div', {}, swatch(behaviourColour(f.behaviour)), f.behaviour || (f.frequency > 0 ? 'no behaviour' : 'never fires')),
        h('table', {class: 'kv'},
          h('tr', {}, h('th', {}, 'cluster'), h('td', {class: 'num'}, f.cluster ?? '–')),
          h('tr', {}, h('th', {}, 'frequency'), h('td', {class: 'num'}, pct(f.frequency))),
          h('tr', {}, h('th', {}, 'specificity'), h('td', {class: 'num'}, fmt(f.specificity)))),
        ask ? h('div', {class: 'tip-step small', testid: 'tip-step'}, h('span', {class: 'muted'}, 'top step…')) : null);
      this.tooltip.hidden = false;
      if (ask) this.describeLater(i);
    }
    this.placeTip(x, y);
  }

  placeTip(x, y) {
    const tw = this.tooltip.offsetWidth, th = this.tooltip.offsetHeight;
    const left = x + 14 + tw > this.width ? x - 14 - tw : x + 14;
    const top = Math.min(Math.max(0, y - th / 2), this.height - th);
    this.tooltip.style.transform = `translate(${Math.round(left)}px, ${Math.round(top)}px)`;
    this.tipAt = [x, y];
  }

  // describeLater asks for the hovered feature's line and shows it if the
  // pointer is still on that feature.
  describeLater(i) {
    const f = this.features[i];
    Promise.resolve(this.describe(f)).then((text) => {
      if (this.hover !== i || this.tooltip.hidden) return;
      const el = this.tooltip.querySelector('[data-testid="tip-step"]');
      if (el) fill(el, text ? h('span', {class: 'tip-quote'}, text) : h('span', {class: 'muted'}, 'no example step'));
      if (this.tipAt) this.placeTip(...this.tipAt);
    }, (e) => {
      if (this.hover !== i) return;
      const el = this.tooltip.querySelector('[data-testid="tip-step"]');
      if (el) fill(el, h('span', {class: 'muted'}, `top step: ${e.message}`));
    });
  }

  hideTip() {
    this.tooltip.hidden = true;
  }
}

function inPolygon(x, y, poly) {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const [xi, yi] = poly[i], [xj, yj] = poly[j];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

// convexHull is Andrew's monotone chain: the hull of points [x, y] in
// counter-clockwise order without repeated or collinear points.
export function convexHull(points) {
  const p = points.slice().sort((a, b) => a[0] - b[0] || a[1] - b[1])
    .filter((q, i, a) => i === 0 || q[0] !== a[i - 1][0] || q[1] !== a[i - 1][1]);
  if (p.length < 3) return p;
  const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower = [];
  for (const q of p) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], q) <= 0) lower.pop();
    lower.push(q);
  }
  const upper = [];
  for (let i = p.length - 1; i >= 0; i--) {
    const q = p[i];
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], q) <= 0) upper.pop();
    upper.push(q);
  }
  upper.pop();
  lower.pop();
  return lower.concat(upper);
}
