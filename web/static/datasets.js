// Datasets page (/?dataset=&q=&label=&offset=&step=&trace=): the dataset
// list, a step browser (its search, label filter, page and selected step
// are in the URL), a trace list and a trace view coloured by behaviour.

import {
  api, h, fill, errorBox, note, panel, enc, fmt, chip, legend, hbars,
  behaviourColour, mainLabel, setQuery, debounce, tint,
} from './util.js';

const PAGE = 50;
const TRACE_PAGE = 50;

export async function render(main, ctx) {
  const datasets = await api('/api/datasets', {signal: ctx.abort.signal});
  if (!datasets || !datasets.length) {
    fill(main, h('h1', {}, 'Datasets'), note('No datasets are loaded. Start the server with a dump (rise serve --dump DIR) or with --demo.'));
    return;
  }
  const name = ctx.query.get('dataset') || datasets[0].name;
  const ds = datasets.find((d) => d.name === name);
  const cards = h('div', {class: 'cards'}, datasets.map((d) => datasetCard(d, d === ds)));
  if (!ds) {
    fill(main, h('h1', {}, 'Datasets'), cards, errorBox(new Error(`unknown dataset "${name}"`)));
    return;
  }

  const traceView = h('div', {class: 'trace-view'});
  const showTrace = (trace, push = true, row = null) => {
    setQuery({trace, step: row}, push);
    loadTrace(traceView, ds.name, trace, ctx);
  };
  const steps = stepBrowser(ds, showTrace, ctx);
  const traces = traceList(ds, showTrace, ctx);

  fill(main,
    h('h1', {}, 'Datasets'),
    cards,
    reportBar(ds),
    h('div', {class: 'two-col'},
      h('div', {class: 'col'}, steps.el, traces.el),
      h('div', {class: 'col sticky'}, panel('Trace', traceView))));

  const trace = ctx.query.get('trace');
  const waits = [steps.load(), traces.load()];
  if (trace) waits.push(loadTrace(traceView, ds.name, trace, ctx));
  else fill(traceView, note('Click a trace (in the step list or the trace list) to read it here.'));
  await Promise.all(waits);
}

// reportBar makes the dataset's report (as rise report writes it) on the
// server and offers it as report.html and report.md to save.
function reportBar(ds) {
  const out = h('span', {class: 'report-links', testid: 'report-links'});
  const button = h('button', {type: 'button', testid: 'make-report'}, 'Make report');
  button.addEventListener('click', async () => {
    button.disabled = true;
    fill(out, h('span', {class: 'muted'}, 'measuring the SAEs and drawing the figures…'));
    try {
      const r = await api(`/api/datasets/${enc(ds.name)}/report`, {method: 'POST'});
      const file = (text, type, name) => h('a', {href: URL.createObjectURL(new Blob([text], {type})), download: name}, name);
      fill(out, file(r.html, 'text/html', r.name + '.html'), ' ', file(r.markdown, 'text/markdown', r.name + '.md'),
        h('span', {class: 'muted'}, ` (${r.figures} figures)`));
    } catch (e) {
      fill(out, errorBox(e));
    } finally {
      button.disabled = false;
    }
  });
  return h('div', {class: 'toolbar'}, button, out);
}

function datasetCard(d, selected) {
  const labels = Object.entries(d.labels || {}).sort((a, b) => b[1] - a[1]);
  const lengths = Object.entries(d.lengths || {}).sort((a, b) => b[1] - a[1]);
  return h('a', {class: 'card dataset-card' + (selected ? ' selected' : ''), href: `/?dataset=${enc(d.name)}`, 'data-dataset': d.name},
    h('div', {class: 'card-title'}, d.name),
    h('div', {class: 'muted'}, d.model || ''),
    h('table', {class: 'kv'},
      h('tr', {}, h('th', {}, 'rows'), h('td', {class: 'num'}, fmt(d.rows))),
      h('tr', {}, h('th', {}, 'd_model'), h('td', {class: 'num'}, fmt(d.d_model))),
      h('tr', {}, h('th', {}, 'traces'), h('td', {class: 'num'}, fmt(d.traces))),
      h('tr', {}, h('th', {}, 'layers'), h('td', {class: 'num'},
        (d.layers || []).map((l) => l.number).join(', ') || '–'))),
    labels.length ? hbars(labels.map(([k, v]) => [k, v, behaviourColour(k)])) : null,
    lengths.length ? hbars(lengths.map(([k, v]) => [k, v, behaviourColour(k)])) : null);
}

// ---------- step browser ----------

function stepBrowser(ds, showTrace, ctx) {
  const q = ctx.query;
  const state = {q: (q.get('q') || '').trim(), label: q.get('label') || '', offset: Math.max(0, parseInt(q.get('offset'), 10) || 0)};
  const search = h('input', {type: 'search', placeholder: 'Search step text…', class: 'grow', 'aria-label': 'search steps', value: state.q});
  const labelSel = h('select', {'aria-label': 'label filter'},
    h('option', {value: ''}, 'all labels'),
    Object.keys(ds.labels || {}).sort().map((l) => h('option', {value: l, selected: l === state.label}, l)),
    h('option', {value: 'unlabelled', selected: state.label === 'unlabelled'}, 'unlabelled'));
  const selected = () => new URLSearchParams(location.search).get('step');
  const remember = () => setQuery({q: state.q, label: state.label, offset: state.offset || null});
  const list = h('div', {class: 'step-list', testid: 'step-list'});
  const pager = h('div', {class: 'pager'});
  const el = panel('Steps', h('div', {class: 'toolbar'}, search, labelSel), pager, list);

  let seq = 0;
  async function load() {
    const my = ++seq;
    const p = new URLSearchParams({offset: state.offset, limit: PAGE});
    if (state.q) p.set('q', state.q);
    if (state.label) p.set('label', state.label);
    list.classList.add('stale');
    try {
      const r = await api(`/api/datasets/${enc(ds.name)}/steps?${p}`, {signal: ctx.abort.signal});
      if (my !== seq) return;
      list.classList.remove('stale');
      fill(list, r.steps.length ? r.steps.map((s) => stepRow(s, showTrace, String(s.row) === selected())) : note('No steps match.'));
      renderPager(pager, r.total, r.offset, r.limit || PAGE, (o) => { state.offset = o; remember(); load(); });
    } catch (e) {
      if (e.name === 'AbortError') return;
      list.classList.remove('stale');
      fill(list, errorBox(e));
    }
  }
  search.addEventListener('input', debounce(() => { state.q = search.value.trim(); state.offset = 0; remember(); load(); }, 250));
  labelSel.addEventListener('change', () => { state.label = labelSel.value; state.offset = 0; remember(); load(); });
  return {el, load};
}

function stepRow(s, showTrace, isSelected) {
  const lab = mainLabel(s.labels);
  const row = h('div', {class: 'step-row' + (isSelected ? ' selected' : ''), style: {borderLeftColor: behaviourColour(lab)}, testid: 'step', 'data-row': s.row},
    h('div', {class: 'step-meta'},
      h('span', {class: 'num muted'}, `#${s.row}`),
      h('button', {class: 'linkish', onclick: () => {
        for (const r of document.querySelectorAll('.step-row.selected')) r.classList.remove('selected');
        row.classList.add('selected');
        showTrace(s.trace, true, s.row);
      }, title: 'open this trace'}, `${s.trace} · step ${s.step}`),
      (s.labels || []).map(chip),
      s.length ? h('span', {class: 'muted small'}, s.length) : null),
    h('div', {class: 'step-text'}, s.text));
  return row;
}

export function renderPager(el, total, offset, limit, go) {
  const from = total ? offset + 1 : 0;
  const to = Math.min(total, offset + limit);
  fill(el,
    h('button', {disabled: offset <= 0, onclick: () => go(Math.max(0, offset - limit))}, '‹ prev'),
    h('span', {class: 'num'}, `${fmt(from)}–${fmt(to)} of ${fmt(total)}`),
    h('button', {disabled: to >= total, onclick: () => go(offset + limit)}, 'next ›'));
}

// ---------- trace list ----------

function traceList(ds, showTrace, ctx) {
  let offset = 0;
  const body = h('div', {});
  const pager = h('div', {class: 'pager'});
  const el = panel('Traces', pager, body);
  async function load() {
    try {
      const r = await api(`/api/datasets/${enc(ds.name)}/traces?offset=${offset}&limit=${TRACE_PAGE}`, {signal: ctx.abort.signal});
      fill(body, h('table', {class: 'table'},
        h('thead', {}, h('tr', {}, h('th', {}, 'trace'), h('th', {}, 'steps'), h('th', {}, 'length'), h('th', {}, 'labels'))),
        h('tbody', {}, r.traces.map((t) => h('tr', {class: 'clickable', onclick: () => showTrace(t.trace), testid: 'trace-row'},
          h('td', {}, h('button', {class: 'linkish'}, t.trace)),
          h('td', {class: 'num'}, fmt(t.steps)),
          h('td', {}, t.length || ''),
          h('td', {}, labelStrip(t.labels, t.steps)))))));
      renderPager(pager, r.total, r.offset, r.limit || TRACE_PAGE, (o) => { offset = o; load(); });
    } catch (e) {
      if (e.name !== 'AbortError') fill(body, errorBox(e));
    }
  }
  return {el, load};
}

// labelStrip is a thin stacked bar of a trace's label counts.
function labelStrip(labels, total) {
  const entries = Object.entries(labels || {});
  const sum = total || entries.reduce((a, [, v]) => a + v, 0) || 1;
  return h('span', {class: 'strip', title: entries.map(([k, v]) => `${k}: ${v}`).join(', ')},
    entries.map(([k, v]) => h('span', {style: {width: `${(100 * v) / sum}%`, background: behaviourColour(k)}})));
}

// ---------- trace view ----------

async function loadTrace(el, dataset, trace, ctx) {
  fill(el, h('div', {class: 'loading'}, `Loading ${trace}…`));
  try {
    const t = await api(`/api/datasets/${enc(dataset)}/traces/${enc(trace)}`, {signal: ctx.abort.signal});
    const seen = new Set(['reflection', 'backtracking', 'other']);
    for (const s of t.steps) for (const l of s.labels || []) seen.add(l);
    fill(el,
      h('div', {class: 'trace-head'},
        h('strong', {}, t.trace), t.length ? h('span', {class: 'muted'}, ` · ${t.length}`) : null,
        h('span', {class: 'muted'}, ` · ${t.steps.length} steps`)),
      legend([...seen].map((l) => [l, behaviourColour(l)])),
      t.prompt ? h('div', {class: 'prompt'}, h('div', {class: 'small muted'}, 'prompt'), t.prompt) : null,
      h('div', {class: 'trace-steps', testid: 'trace-steps'}, t.steps.map((s) => {
        const lab = mainLabel(s.labels);
        const c = behaviourColour(lab);
        return h('p', {class: 'trace-step', style: {borderLeftColor: c, background: tint(c)}, title: (s.labels || []).join(', ') || 'unlabelled', 'data-row': s.row},
          h('span', {class: 'step-no num'}, s.step), s.text);
      })));
  } catch (e) {
    if (e.name !== 'AbortError') fill(el, errorBox(e));
  }
}
