// Atlas page (/atlas?sae=NAME): the map of an SAE's decoder columns, its
// silhouette figures, the layer sweep of its dataset, and export links.

import {
  api, h, fill, errorBox, note, panel, enc, fmt, navigate, watchJob, jobEnded, hbars,
  behaviourColour, PALETTE, legend,
} from './util.js';
import {AtlasMap} from './atlasmap.js';
import {drawLineChart} from './chart.js';
import {stateBadge} from './train.js';

export async function render(main, ctx) {
  const saes = await api('/api/saes', {signal: ctx.abort.signal}) || [];
  if (!saes.length) {
    fill(main, h('h1', {}, 'Atlas'), note('No SAE yet. '), h('p', {}, h('a', {href: '/train'}, 'Train one →')));
    return;
  }
  const want = ctx.query.get('sae');
  const sae = want ? saes.find((s) => s.name === want) : (saes.find((s) => s.state === 'ready') || saes[0]);
  const picker = saePicker(saes, sae ? sae.name : want, (name) => navigate(`/atlas?sae=${enc(name)}`));
  if (!sae) {
    fill(main, h('div', {class: 'page-head'}, h('h1', {}, 'Atlas'), picker), errorBox(new Error(`unknown SAE "${want}"`)));
    return;
  }

  const mapArea = h('div', {class: 'map-area'});
  const selection = h('div', {}, note('Shift+drag for a box, Alt+drag (or lasso mode) for a lasso.'));
  const silhouette = h('div', {});
  const sweep = h('div', {});
  fill(main,
    h('div', {class: 'page-head'},
      h('h1', {}, 'Atlas'), picker,
      h('span', {class: 'muted'}, saeSummary(sae)),
      stateBadge(sae.state)),
    sae.state === 'failed' && sae.error ? errorBox(new Error(sae.error)) : null,
    h('div', {class: 'atlas-layout'},
      h('div', {class: 'atlas-main'}, mapArea),
      h('aside', {class: 'atlas-side'},
        panel('Selection', selection),
        panel('Silhouette', silhouette),
        panel('Separation by layer', sweep),
        panel('Exports', exportLinks(sae)))));

  await Promise.all([
    loadAtlas(sae, mapArea, selection, silhouette, ctx),
    loadSweep(sae.dataset, sweep, ctx),
  ]);
}

export function saeSummary(s) {
  return [
    s.arch, s.d_sae ? `${fmt(s.d_sae)} latents` : '', s.d_in ? `d_in ${s.d_in}` : '', s.k ? `k ${s.k}` : '',
    s.layer !== undefined && s.layer !== null ? `layer ${s.layer}` + (s.dataset ? ` of ${s.dataset}` : '') : '',
  ].filter(Boolean).join(' · ');
}

// saePicker offers the SAEs that have weights (an interrupted training has
// none yet: the train page resumes it).
export function saePicker(saes, current, go) {
  const sel = h('select', {class: 'sae-picker', 'aria-label': 'SAE'},
    saes.filter((s) => s.state !== 'interrupted' || s.name === current).map((s) => h('option', {value: s.name, selected: s.name === current},
      `${s.name}${s.state !== 'ready' ? ` (${s.state})` : ''}`)));
  sel.addEventListener('change', () => go(sel.value));
  return sel;
}

function exportLinks(sae) {
  const base = `/api/saes/${enc(sae.name)}`;
  return h('ul', {class: 'links'},
    h('li', {}, h('a', {href: `${base}/map.svg`, target: '_blank'}, 'map.svg'), ' · ',
      h('a', {href: `${base}/map.svg?color=cluster`, target: '_blank'}, 'by cluster')),
    h('li', {}, h('a', {href: `${base}/map.png`, target: '_blank'}, 'map.png'), ' · ',
      h('a', {href: `${base}/map.png?color=cluster`, target: '_blank'}, 'by cluster')),
    h('li', {}, h('a', {href: `${base}/atlas.json`, download: `${sae.name}-atlas.json`}, 'atlas.json')),
    h('li', {}, h('a', {href: `${base}/export.zip`, download: `${sae.name}.zip`}, 'SAE (SAELens zip)')),
    h('li', {}, h('a', {href: `/behaviours?sae=${enc(sae.name)}`}, 'behaviour vectors →')));
}

// ---------- the map ----------

async function loadAtlas(sae, area, selEl, silEl, ctx) {
  fill(area, h('div', {class: 'loading'}, 'Loading atlas…'));
  let atlas;
  try {
    atlas = await api(`/api/saes/${enc(sae.name)}/atlas`, {signal: ctx.abort.signal});
  } catch (e) {
    if (e.name === 'AbortError') return;
    if (e.status === 409 && e.body && e.body.job) {
      waitForJob(e.body.job, e.message, area, () => { if (ctx.live) navigate(location.pathname + location.search, true); }, ctx);
      fill(silEl, note('Available once the atlas is built.'));
      return;
    }
    fill(area, errorBox(e));
    fill(silEl, note('–'));
    return;
  }
  showSilhouette(atlas.silhouette, silEl);
  const map = new AtlasMap(atlas.features || [], {
    onOpen: (f) => navigate(`/feature/${enc(sae.name)}/${f.id}`),
    onSelect: (sel) => showSelection(sae, sel, selEl, () => map.clearSelection()),
  });
  window.riseAtlas = map;
  ctx.onCleanup(() => {
    map.destroy();
    if (window.riseAtlas === map) window.riseAtlas = null;
  });

  const colour = h('select', {'aria-label': 'colour by'},
    ['behaviour', 'cluster', 'frequency'].map((m) => h('option', {value: m}, m)));
  colour.addEventListener('change', () => map.setColour(colour.value));
  const lassoBtn = h('button', {'aria-pressed': 'false', title: 'lasso mode (or hold Alt while dragging)'}, 'Lasso');
  lassoBtn.addEventListener('click', () => {
    map.lasso = !map.lasso;
    lassoBtn.setAttribute('aria-pressed', String(map.lasso));
    lassoBtn.classList.toggle('on', map.lasso);
  });
  const size = h('input', {type: 'range', min: 0.5, max: 3, step: 0.25, value: 1, 'aria-label': 'point size', testid: 'point-size'});
  size.addEventListener('input', () => map.setPointScale(Number(size.value)));
  const hideDead = h('input', {type: 'checkbox', 'aria-label': 'hide latents that never fire', testid: 'hide-dead'});
  hideDead.addEventListener('change', () => map.setHideDead(hideDead.checked));
  fill(area,
    h('div', {class: 'toolbar'},
      h('label', {}, 'colour by ', colour), lassoBtn,
      h('label', {class: 'small'}, 'size ', size),
      h('label', {class: 'small'}, hideDead, ' hide never-firing'),
      h('button', {onclick: () => map.fit()}, 'Reset view'),
      h('button', {onclick: () => map.clearSelection()}, 'Clear selection'),
      h('span', {class: 'muted small grow right'}, `${fmt(map.n)} features · ${atlas.layout || ''} layout`)),
    map.el,
    map.legendEl,
    h('div', {class: 'small muted'}, 'Drag to pan, wheel to zoom, hover for details, click a point to open its feature page; shift+drag selects a box, alt+drag (or Lasso) a free shape; 0 resets, Esc clears.'));
  map.resize();
}

function waitForJob(jobId, message, area, done, ctx) {
  const bar = h('progress', {max: 1, value: 0});
  const stage = h('span', {class: 'num small'});
  fill(area, h('div', {class: 'waiting'},
    h('p', {}, message || 'The atlas is being built.'),
    h('p', {}, 'Waiting for job ', h('a', {href: `/train?job=${enc(jobId)}`, class: 'mono'}, jobId), '…'),
    bar, ' ', stage));
  const stop = watchJob(jobId, (ev) => {
    if (ev.type === 'progress' && ev.total) {
      bar.max = ev.total; bar.value = ev.done;
      stage.textContent = `${ev.stage || ''} ${ev.done}/${ev.total}`;
    } else if (ev.type === 'train' && ev.steps) {
      bar.max = ev.steps; bar.value = ev.step;
      stage.textContent = `training ${ev.step}/${ev.steps}`;
    } else if (ev.type === 'state' && jobEnded(ev.state)) {
      stop();
      if (ev.state === 'done') setTimeout(done, 300);
      else api(`/api/jobs/${enc(jobId)}`).then(
        (j) => area.append(errorBox(new Error(`job ${jobId} ${j.state}${j.error ? ': ' + j.error : ''}`))),
        (e) => area.append(errorBox(e)));
    }
  });
  ctx.onCleanup(stop);
}

function showSelection(sae, sel, el, clear) {
  if (!sel.length) {
    fill(el, note('Nothing selected. Shift+drag for a box, Alt+drag (or lasso mode) for a lasso.'));
    return;
  }
  const counts = new Map();
  for (const f of sel) counts.set(f.behaviour || '', (counts.get(f.behaviour || '') || 0) + 1);
  const rows = [...counts.entries()].sort((a, b) => b[1] - a[1])
    .map(([b, n]) => [b || 'not specific', n, behaviourColour(b)]);
  const max = 400;
  fill(el,
    h('div', {class: 'sel-head'}, h('strong', {class: 'num', testid: 'selection-size'}, fmt(sel.length)), ' features selected ',
      h('button', {class: 'small-btn', onclick: clear}, 'clear')),
    hbars(rows),
    h('div', {class: 'id-list'}, sel.slice(0, max).map((f) =>
      h('a', {href: `/feature/${enc(sae.name)}/${f.id}`, class: 'num', style: {color: behaviourColour(f.behaviour)}}, f.id))),
    sel.length > max ? note(`… and ${sel.length - max} more`) : null);
}

function showSilhouette(s, el) {
  if (!s) { fill(el, note('No silhouette figures in this atlas.')); return; }
  fill(el, h('table', {class: 'kv'},
    Object.entries(s).map(([k, v]) => h('tr', {}, h('th', {}, k.replace(/_/g, ' ')), h('td', {class: 'num'}, fmt(v))))),
  h('p', {class: 'small muted'}, 'Silhouette of the decoder columns grouped by behaviour (against shuffled labels) and by cluster.'));
}

// ---------- layer sweep ----------

async function loadSweep(dataset, el, ctx) {
  if (!dataset) { fill(el, note('This SAE names no dataset.')); return; }
  fill(el, h('div', {class: 'loading'}, 'Loading sweep…'));
  let sw;
  try {
    sw = await api(`/api/datasets/${enc(dataset)}/sweep`, {signal: ctx.abort.signal});
  } catch (e) {
    if (e.name === 'AbortError') return;
    if (e.status === 409) {
      const job = e.body && e.body.job;
      fill(el, note(e.message || 'The sweep is being computed.'),
        job ? h('p', {class: 'small'}, 'Waiting for job ', h('a', {href: `/train?job=${enc(job)}`}, job), '…') : null,
        h('button', {onclick: () => loadSweep(dataset, el, ctx)}, 'Retry'));
      if (job) {
        const stop = watchJob(job, (ev) => {
          if (ev.type === 'state' && jobEnded(ev.state)) {
            stop();
            if (ctx.live) setTimeout(() => loadSweep(dataset, el, ctx), 300);
          }
        });
        ctx.onCleanup(stop);
      }
      return;
    }
    fill(el, errorBox(e));
    return;
  }
  const layers = (sw.layers || []).slice().sort((a, b) => a.layer - b.layer);
  if (!layers.length) { fill(el, note('No ready SAE of this dataset yet.')); return; }
  if (layers.length >= 2) sweepChart(dataset, sw, layers, el);
  else sweepTable(layers[0], el);
  if (sw.best && Object.keys(sw.best).length) {
    el.append(h('table', {class: 'kv small'}, h('caption', {}, 'best layer'),
      Object.entries(sw.best).map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {class: 'num'}, v)))));
  }
}

// curves collects "group: key" series from the numeric fields of columns and steps.
function curves(layers) {
  const names = [];
  for (const l of layers) {
    for (const g of ['columns', 'steps']) {
      for (const [k, v] of Object.entries(l[g] || {})) {
        const n = `${g}: ${k}`;
        if (typeof v === 'number' && !names.includes(n)) names.push(n);
      }
    }
  }
  return names;
}

function sweepChart(dataset, sw, layers, el) {
  const names = curves(layers);
  const base = names.filter((n) => !n.endsWith('_shuffled'));
  const colourOf = (n) => PALETTE[base.indexOf(n.replace(/_shuffled$/, '')) % PALETTE.length] || '#888';
  const series = names.map((n) => {
    const [g, k] = n.split(': ');
    return {
      name: n, colour: colourOf(n), dash: n.endsWith('_shuffled') ? [4, 3] : [],
      points: layers.map((l) => [l.layer, l[g] && typeof l[g][k] === 'number' ? l[g][k] : NaN]),
    };
  });
  const canvas = h('canvas', {class: 'chart-canvas', testid: 'sweep-chart'});
  fill(el, canvas, legend(series.map((s) => [s.name, s.colour])),
    h('p', {class: 'small muted'}, 'Silhouette per layer; dashed: shuffled labels. ',
      h('a', {href: `/api/datasets/${enc(dataset)}/sweep.svg`, target: '_blank'}, 'sweep.svg'), ' · ',
      h('a', {href: `/api/datasets/${enc(dataset)}/sweep.png`, target: '_blank'}, 'sweep.png')));
  requestAnimationFrame(() => drawLineChart(canvas, Math.max(220, el.clientWidth), 180, series,
    {xLabel: 'layer', points: true, zeroLine: true, xTicks: layers.map((l) => l.layer)}));
}

function sweepTable(l, el) {
  const rows = [];
  for (const g of ['columns', 'steps']) {
    for (const [k, v] of Object.entries(l[g] || {})) rows.push([`${g}: ${k}`, v]);
  }
  for (const [k, v] of Object.entries(l.specific_columns || {})) rows.push([`specific columns: ${k}`, v]);
  if (l.sampled_steps !== undefined) rows.push(['sampled steps', l.sampled_steps]);
  fill(el,
    h('p', {class: 'small muted'}, `One layer (${l.layer}, SAE ${l.sae}); train SAEs at other layers to see curves.`),
    h('table', {class: 'kv'}, rows.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {class: 'num'}, fmt(v))))),
    Object.keys(l.missing || {}).length ? h('div', {class: 'small muted'},
      Object.entries(l.missing).map(([k, v]) => h('div', {}, `${k}: ${v}`))) : null);
}
