// Shared helpers: DOM building, API calls, websocket job watching, colours
// and number formatting. Every page module imports from here.

// ---------- DOM ----------

// h builds an element: h('div', {class: 'x', onclick: fn}, child, 'text', [more]).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k === 'testid') el.dataset.testid = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// clear empties an element and fills it with the given children.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// link is an in-app link; the router intercepts clicks on it.
export function link(href, ...children) {
  return h('a', {href}, ...children);
}

export function errorBox(err) {
  const msg = err && err.message ? err.message : String(err);
  return h('div', {class: 'error', role: 'alert'}, msg);
}

export function note(text) {
  return h('div', {class: 'note'}, text);
}

export function panel(title, ...children) {
  return h('section', {class: 'panel'}, title ? h('h2', {}, title) : null, ...children);
}

// ---------- URLs and navigation ----------

export function query() {
  return new URLSearchParams(location.search);
}

// setQuery changes the query string without reloading the page.
export function setQuery(params, push = false) {
  const q = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined || v === '') q.delete(k);
    else q.set(k, v);
  }
  const s = q.toString();
  const url = location.pathname + (s ? '?' + s : '');
  if (push) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

// navigate moves to another page of the app (set up by app.js).
export function navigate(url, replace = false) {
  window.dispatchEvent(new CustomEvent('rise:navigate', {detail: {url, replace}}));
}

export const enc = encodeURIComponent;

// ---------- API ----------

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

// api fetches a JSON endpoint; a non-2xx answer throws ApiError with the
// server's `error` string. Every request that changes something (any
// method but GET and HEAD) says it is JSON, body or not: the server
// refuses others, as a page of another site could send them.
export async function api(path, opts = {}) {
  const init = {method: opts.method || 'GET', headers: {}, signal: opts.signal};
  if (init.method !== 'GET' && init.method !== 'HEAD') init.headers['Content-Type'] = 'application/json';
  if (opts.body !== undefined) init.body = JSON.stringify(opts.body);
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, `cannot reach the server (${path}): ${e.message}`, null);
  }
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = null; }
  if (!res.ok) {
    const msg = body && body.error ? body.error : `${res.status} ${res.statusText} (${path})${text && !body ? ': ' + text.slice(0, 200) : ''}`;
    throw new ApiError(res.status, msg, body);
  }
  return body;
}

// jobEnded reports whether a job in the state has ended: it is neither
// waiting in its queue nor running.
export function jobEnded(state) {
  return !!state && state !== 'queued' && state !== 'running';
}

// watchJob follows a job's websocket event stream. onEvent gets each event
// once (by seq); the stream is reopened from the last seen seq if it drops
// before the final state event. Returns a function that stops watching.
export function watchJob(id, onEvent, onStatus = () => {}) {
  let ws = null;
  let lastSeq = -1;
  let finished = false;
  let stopped = false;
  let retry = null;
  let failures = 0;

  function open() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const from = lastSeq >= 0 ? `?from=${lastSeq + 1}` : '';
    ws = new WebSocket(`${proto}//${location.host}/api/jobs/${enc(id)}/events${from}`);
    ws.onopen = () => { failures = 0; onStatus('open'); };
    ws.onmessage = (m) => {
      let ev;
      try { ev = JSON.parse(m.data); } catch { return; }
      if (typeof ev.seq === 'number') {
        if (ev.seq <= lastSeq) return;
        lastSeq = ev.seq;
      }
      if (ev.type === 'state' && jobEnded(ev.state)) finished = true;
      onEvent(ev);
    };
    ws.onclose = () => {
      if (stopped) return;
      if (finished) { onStatus('closed'); return; }
      failures++;
      onStatus('reconnecting');
      retry = setTimeout(open, Math.min(10000, 500 * 2 ** Math.min(failures, 5)));
    };
    ws.onerror = () => {};
  }
  open();
  return () => {
    stopped = true;
    clearTimeout(retry);
    if (ws) ws.close();
  };
}

// ---------- colours ----------

export const BEHAVIOUR_COLOURS = {
  reflection: '#d55e00',
  backtracking: '#0072b2',
  other: '#999999',
  long: '#009e73',
  short: '#cc79a7',
};

// Okabe-Ito-like categorical palette (plus a few extensions) for clusters
// and unknown labels.
export const PALETTE = [
  '#e69f00', '#56b4e9', '#009e73', '#f0e442', '#0072b2', '#d55e00', '#cc79a7',
  '#000000', '#8c6d31', '#6b6ecf', '#b5cf6b', '#e7969c', '#17becf', '#7f7f7f',
];

export const NONE_COLOUR = '#cfcfcf';

// Fallback colours for unknown behaviour labels: none of the fixed ones.
const LABEL_PALETTE = ['#e69f00', '#56b4e9', '#8c6d31', '#6b6ecf', '#17becf', '#b5cf6b', '#e7969c', '#393b79', '#bcbd22'];

function hashString(s) {
  let x = 0;
  for (let i = 0; i < s.length; i++) x = (x * 31 + s.charCodeAt(i)) | 0;
  return Math.abs(x);
}

export function behaviourColour(name) {
  if (!name) return NONE_COLOUR;
  if (BEHAVIOUR_COLOURS[name]) return BEHAVIOUR_COLOURS[name];
  return LABEL_PALETTE[hashString(name) % LABEL_PALETTE.length];
}

export function clusterColour(id) {
  if (id === null || id === undefined || id < 0) return NONE_COLOUR;
  return PALETTE[id % PALETTE.length];
}

// mainLabel picks the label a step is coloured by: the first one that is
// not "other", else "other", else none.
export function mainLabel(labels) {
  if (!labels || !labels.length) return '';
  return labels.find((l) => l !== 'other') || labels[0];
}

// chip is a small coloured label badge.
export function chip(label) {
  const c = behaviourColour(label);
  return h('span', {class: 'chip', style: {borderColor: c, color: c}}, label || 'unlabelled');
}

export function swatch(colour) {
  return h('span', {class: 'swatch', style: {background: colour}});
}

export function legend(entries) {
  return h('div', {class: 'legend'},
    entries.map(([label, colour, extra]) => h('span', {class: 'legend-item'},
      swatch(colour), label, extra !== undefined ? h('span', {class: 'muted num'}, ` ${extra}`) : null)));
}

// viridis-like gradient, t in [0,1].
const GRAD = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
export function gradient(t) {
  t = Math.max(0, Math.min(1, t)) * (GRAD.length - 1);
  const i = Math.min(GRAD.length - 2, Math.floor(t));
  const f = t - i;
  const c = GRAD[i].map((a, j) => Math.round(a + (GRAD[i + 1][j] - a) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

// diverging blue-white-red for values in [-1, 1].
export function diverging(v) {
  v = Math.max(-1, Math.min(1, v || 0));
  const a = Math.abs(v);
  const target = v >= 0 ? [213, 94, 0] : [0, 114, 178];
  const c = target.map((t) => Math.round(255 + (t - 255) * a));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

// ---------- numbers ----------

export function fmt(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e9) return v.toLocaleString('en-US');
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  return Number(v.toPrecision(digits)).toString();
}

export function pct(v) {
  if (v === null || v === undefined) return '–';
  return (v * 100).toFixed(v < 0.01 ? 2 : 1) + '%';
}

export function num(v, digits) {
  return h('span', {class: 'num'}, fmt(v, digits));
}

export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

// hbar is a small horizontal bar chart: rows of [label, count, colour].
export function hbars(rows) {
  const max = Math.max(1, ...rows.map((r) => r[1]));
  return h('div', {class: 'hbars'}, rows.map(([label, count, colour]) =>
    h('div', {class: 'hbar-row'},
      h('span', {class: 'hbar-label'}, label),
      h('span', {class: 'hbar-track'},
        h('span', {class: 'hbar', style: {width: `${(100 * count) / max}%`, background: colour}})),
      h('span', {class: 'num hbar-count'}, fmt(count)))));
}

// setupCanvas sizes a canvas for the device pixel ratio and returns its 2D
// context scaled to CSS pixels.
export function setupCanvas(canvas, width, height) {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(width * dpr));
  canvas.height = Math.max(1, Math.round(height * dpr));
  canvas.style.width = width + 'px';
  canvas.style.height = height + 'px';
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

// tint turns #rrggbb into a light translucent background.
export function tint(hex, alpha = 0.1) {
  const m = /^#([0-9a-f]{6})$/i.exec(hex);
  if (!m) return 'transparent';
  const n = parseInt(m[1], 16);
  return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${alpha})`;
}
