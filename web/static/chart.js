// A small canvas line chart with axes, tick labels and an optional legend.

import {setupCanvas} from './util.js';

function niceTicks(lo, hi, n = 4) {
  if (!(hi > lo)) { hi = lo + 1; }
  const span = hi - lo;
  const step0 = span / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const err = step0 / mag;
  const step = (err >= 5 ? 10 : err >= 2 ? 5 : err >= 1.5 ? 2 : 1) * mag;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function tickLabel(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(0);
  if (a >= 1000) return (v / 1000).toFixed(a >= 10000 ? 0 : 1) + 'k';
  return String(Number(v.toPrecision(3)));
}

// drawLineChart draws series = [{name, colour, points: [[x, y], ...], dash}]
// onto canvas at the given CSS size. opts: xLabel, yLabel, yMin, yMax,
// points (draw markers), legend (bool).
export function drawLineChart(canvas, width, height, series, opts = {}) {
  const ctx = setupCanvas(canvas, width, height);
  const pad = {l: 44, r: 10, t: 8, b: opts.xLabel ? 32 : 20};
  const W = width - pad.l - pad.r;
  const H = height - pad.t - pad.b;
  let xmin = Infinity, xmax = -Infinity, ymin = Infinity, ymax = -Infinity;
  for (const s of series) {
    for (const [x, y] of s.points) {
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      if (x < xmin) xmin = x; if (x > xmax) xmax = x;
      if (y < ymin) ymin = y; if (y > ymax) ymax = y;
    }
  }
  ctx.clearRect(0, 0, width, height);
  ctx.font = '10px system-ui, sans-serif';
  ctx.fillStyle = '#666';
  if (!Number.isFinite(xmin)) {
    ctx.fillText('no data yet', pad.l + 8, pad.t + H / 2);
    return;
  }
  if (opts.yMin !== undefined) ymin = Math.min(ymin, opts.yMin);
  if (opts.yMax !== undefined) ymax = Math.max(ymax, opts.yMax);
  if (ymax === ymin) { ymax += Math.abs(ymax) * 0.1 || 1; ymin -= Math.abs(ymin) * 0.1 || 0; }
  if (xmax === xmin) xmax = xmin + 1;
  const ypad = (ymax - ymin) * 0.05;
  ymin -= ypad; ymax += ypad;
  const X = (x) => pad.l + ((x - xmin) / (xmax - xmin)) * W;
  const Y = (y) => pad.t + H - ((y - ymin) / (ymax - ymin)) * H;

  // grid and ticks
  ctx.strokeStyle = '#eee';
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const t of niceTicks(ymin, ymax)) {
    const y = Math.round(Y(t)) + 0.5;
    ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(pad.l + W, y); ctx.stroke();
    ctx.fillText(tickLabel(t), pad.l - 4, y);
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  const xt = opts.xTicks || niceTicks(xmin, xmax, Math.max(2, Math.floor(W / 55)));
  for (const t of xt) {
    if (t < xmin || t > xmax) continue;
    ctx.fillText(tickLabel(t), X(t), pad.t + H + 4);
  }
  ctx.strokeStyle = '#999';
  ctx.beginPath();
  ctx.moveTo(pad.l + 0.5, pad.t); ctx.lineTo(pad.l + 0.5, pad.t + H + 0.5); ctx.lineTo(pad.l + W, pad.t + H + 0.5);
  ctx.stroke();
  if (opts.xLabel) {
    ctx.fillText(opts.xLabel, pad.l + W / 2, pad.t + H + 18);
  }
  if (opts.zeroLine && ymin < 0 && ymax > 0) {
    ctx.strokeStyle = '#bbb';
    ctx.setLineDash([2, 3]);
    ctx.beginPath(); ctx.moveTo(pad.l, Y(0)); ctx.lineTo(pad.l + W, Y(0)); ctx.stroke();
    ctx.setLineDash([]);
  }

  // series
  ctx.save();
  ctx.beginPath();
  ctx.rect(pad.l, pad.t - 2, W + 2, H + 4);
  ctx.clip();
  for (const s of series) {
    ctx.strokeStyle = s.colour;
    ctx.fillStyle = s.colour;
    ctx.lineWidth = 1.5;
    ctx.setLineDash(s.dash || []);
    ctx.beginPath();
    let started = false;
    for (const [x, y] of s.points) {
      if (!Number.isFinite(y)) { started = false; continue; }
      if (!started) { ctx.moveTo(X(x), Y(y)); started = true; } else ctx.lineTo(X(x), Y(y));
    }
    ctx.stroke();
    if (opts.points) {
      for (const [x, y] of s.points) {
        if (Number.isFinite(y)) { ctx.beginPath(); ctx.arc(X(x), Y(y), 2.5, 0, 2 * Math.PI); ctx.fill(); }
      }
    }
  }
  ctx.restore();
  ctx.setLineDash([]);
}
