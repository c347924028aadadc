// Atlas page (/atlas?sae=NAME&colour=&regions=0&k=&sel=1,2,3&view=x,y,zoom
// &size=&dead=hide): the map of an SAE's decoder columns with its behaviour
// regions, a selection to steer with, download or read, its clusters and
// silhouette figures, the layer sweep of its dataset, and export links. The
// colour, the regions toggle, k, the selection, the view, the point size and
// whether never-firing latents are hidden live in the URL.

import {
  api, h, fill, errorBox, note, panel, enc, fmt, navigate, watchJob, jobEnded, hbars,
  behaviourColour, clusterColour, PALETTE, legend, setQuery, swatch, debounce,
} from './util.js';
import {AtlasMap} from './atlasmap.js';
import {drawLineChart} from './chart.js';
import {stateBadge} from './train.js';

export async function render(main, ctx) {
  const picked = await pickSAE(main, ctx, 'Atlas', '/atlas');
  if (!picked) return;
  const {sae, picker} = picked;

  const mapArea = h('div', {class: 'map-area'});
  const selection = h('div', {}, note('Shift+drag for a box, Alt+drag (or lasso mode) for a lasso.'));
  const silhouette = h('div', {});
  const clusters = h('div', {testid: 'atlas-clusters'});
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
        panel('Clusters', clusters),
        panel('Silhouette', silhouette),
        panel('Separation by layer', sweep),
        panel('Exports', exportLinks(sae)))));

  await Promise.all([
    loadAtlas(sae, mapArea, selection, silhouette, clusters, ctx),
    loadSweep(sae.dataset, sweep, ctx),
  ]);
}

export function saeSummary(s) {
  return [
    s.arch, s.d_sae ? `${fmt(s.d_sae)} latents` : '', s.d_in ? `d_in ${s.d_in}` : '', s.k ? `k ${s.k}` : '',
    s.layer !== undefined && s.layer !== null ? `layer ${s.layer}` + (s.dataset ? ` of ${s.dataset}` : '') : '',
  ].filter(Boolean).join(' · ');
}

// pickSAE loads the SAEs for the page titled title at path and picks the
// one the URL's sae names, else the first ready one, with a picker that
// opens the page of another. With no SAE, or an unknown name, it says so in
// main and returns null.
export async function pickSAE(main, ctx, title, path) {
  const saes = await api('/api/saes', {signal: ctx.abort.signal}) || [];
  if (!saes.length) {
    fill(main, h('h1', {}, title), note('No SAE yet. '), h('p', {}, h('a', {href: '/train'}, 'Train one →')));
    return null;
  }
  const want = ctx.query.get('sae');
  const sae = want ? saes.find((s) => s.name === want) : (saes.find((s) => s.state === 'ready') || saes[0]);
  const picker = saePicker(saes, sae ? sae.name : want, (name) => navigate(`${path}?sae=${enc(name)}`));
  if (!sae) {
    fill(main, h('div', {class: 'page-head'}, h('h1', {}, title), picker), errorBox(new Error(`unknown SAE "${want}"`)));
    return null;
  }
  return {sae, picker};
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

async function loadAtlas(sae, area, selEl, silEl, clEl, ctx) {
  fill(area, h('div', {class: 'loading'}, 'Loading atlas…'));
  let atlas;
  try {
    atlas = await api(`/api/saes/${enc(sae.name)}/atlas`, {signal: ctx.abort.signal});
  } catch (e) {
    if (e.name === 'AbortError') return;
    if (e.status === 409 && e.body && e.body.job) {
      waitForJob(e.body.job, e.message, area, () => { if (ctx.live) navigate(location.pathname + location.search, true); }, ctx);
      fill(silEl, note('Available once the atlas is built.'));
      fill(clEl, note('Available once the atlas is built.'));
      return;
    }
    fill(area, errorBox(e));
    fill(silEl, note('–'));
    fill(clEl, note('–'));
    return;
  }
  showSilhouette(atlas.silhouette, silEl);
  const describe = stepDescriber(sae, () => map);
  const map = new AtlasMap(atlas.features || [], {
    onOpen: (f) => navigate(`/feature/${enc(sae.name)}/${f.id}`),
    onSelect: (sel) => {
      setQuery({sel: sel.length && sel.length <= MAX_URL_SELECTION ? sel.map((f) => f.id).join(',') : null});
      showSelection(sae, sel, selEl, () => map.clearSelection(), ctx);
    },
    describe,
    onView: debounce((v) => { if (ctx.live) setQuery({view: v}); }, 250),
  });
  const regions = behaviourRegions(atlas);
  map.setRegions(regions);
  window.riseAtlas = map;
  ctx.onCleanup(() => {
    map.destroy();
    if (window.riseAtlas === map) window.riseAtlas = null;
  });

  const modes = ['behaviour', 'cluster', 'frequency'];
  const wantColour = modes.includes(ctx.query.get('colour')) ? ctx.query.get('colour') : 'behaviour';
  const colour = h('select', {'aria-label': 'colour by'},
    modes.map((m) => h('option', {value: m, selected: m === wantColour}, m)));
  colour.addEventListener('change', () => {
    map.setColour(colour.value);
    setQuery({colour: colour.value === 'behaviour' ? null : colour.value});
  });
  if (wantColour !== 'behaviour') map.setColour(wantColour);
  const showRegions = h('input', {type: 'checkbox', 'aria-label': 'behaviour regions', testid: 'show-regions', checked: ctx.query.get('regions') !== '0'});
  showRegions.addEventListener('change', () => {
    map.setShowRegions(showRegions.checked);
    setQuery({regions: showRegions.checked ? null : '0'});
  });
  map.setShowRegions(showRegions.checked);
  const lassoBtn = h('button', {'aria-pressed': 'false', title: 'lasso mode (or hold Alt while dragging)'}, 'Lasso');
  lassoBtn.addEventListener('click', () => {
    map.lasso = !map.lasso;
    lassoBtn.setAttribute('aria-pressed', String(map.lasso));
    lassoBtn.classList.toggle('on', map.lasso);
  });
  const wantSize = Number(ctx.query.get('size'));
  const size = h('input', {type: 'range', min: 0.5, max: 3, step: 0.25, value: wantSize >= 0.5 && wantSize <= 3 ? wantSize : 1, 'aria-label': 'point size', testid: 'point-size'});
  size.addEventListener('input', () => {
    map.setPointScale(Number(size.value));
    setQuery({size: Number(size.value) === 1 ? null : size.value});
  });
  map.setPointScale(Number(size.value));
  const hideDead = h('input', {type: 'checkbox', 'aria-label': 'hide latents that never fire', testid: 'hide-dead', checked: ctx.query.get('dead') === 'hide'});
  hideDead.addEventListener('change', () => {
    map.setHideDead(hideDead.checked);
    setQuery({dead: hideDead.checked ? 'hide' : null});
  });
  map.setHideDead(hideDead.checked);
  fill(area,
    h('div', {class: 'toolbar'},
      h('label', {}, 'colour by ', colour), lassoBtn,
      h('label', {class: 'small'}, 'size ', size),
      h('label', {class: 'small'}, hideDead, ' hide never-firing'),
      h('label', {class: 'small', title: 'the convex hull of the columns attributed to each behaviour'}, showRegions, ' regions'),
      h('button', {onclick: () => map.fit()}, 'Reset view'),
      h('button', {onclick: () => map.clearSelection()}, 'Clear selection'),
      h('span', {class: 'muted small grow right'}, `${fmt(map.n)} features · ${atlas.layout || ''} layout`)),
    map.el,
    map.legendEl,
    regionLegend(regions, (r) => map.selectIds(r.ids)),
    h('div', {class: 'small muted'}, 'Drag to pan, wheel to zoom, hover for details and a top step, click a point to open its feature page; shift+drag selects a box, shift+click adds or removes a point, alt+drag (or Lasso) a free shape; 0 resets, Esc clears.'));
  map.resize();
  map.setView(ctx.query.get('view'));
  showClusters(sae, atlas, clEl, map, colour, ctx);
  const sel = (ctx.query.get('sel') || '').split(',').filter((x) => /^\d+$/.test(x)).map(Number);
  if (sel.length) map.selectIds(sel);
  else showSelection(sae, [], selEl, () => map.clearSelection(), ctx);
}

// MAX_URL_SELECTION is the largest selection the URL keeps (the server
// takes at most 4096 ids in one request).
const MAX_URL_SELECTION = 4096;

// behaviourRegions lists, for each behaviour with attributed columns but
// the catch-all "other", its columns and colour.
function behaviourRegions(atlas) {
  return Object.entries(atlas.behaviours || {})
    .filter(([name, b]) => name !== 'other' && b.columns && b.columns.length)
    .sort((a, b) => a[0].localeCompare(b[0]))
    .map(([name, b]) => ({name, colour: behaviourColour(name), ids: b.columns}));
}

// regionLegend names the regions; a click on one selects its columns.
function regionLegend(regions, select) {
  if (!regions.length) return h('div', {class: 'small muted', testid: 'region-legend'}, 'No behaviour has attributed columns: no regions to draw.');
  return h('div', {class: 'legend small', testid: 'region-legend'},
    h('span', {class: 'muted'}, 'regions (convex hull of the attributed columns; click to select them):'),
    regions.map((r) => h('button', {class: 'legend-item region-pick', testid: `region-${r.name}`, title: `select the ${r.ids.length} columns attributed to ${r.name}`,
      onclick: () => select(r)}, swatch(r.colour), r.name, h('span', {class: 'muted num'}, ` ${r.ids.length}`))));
}

// TIP_CHARS is the most of a step the tooltip quotes.
const TIP_CHARS = 300;

function clip(text, n) {
  return text.length > n ? text.slice(0, n - 1) + '…' : text;
}

// stepDescriber gives the map the text of a feature's top-activating step,
// asked for once the pointer rests on it and kept.
function stepDescriber(sae, mapOf) {
  const cache = new Map();
  return (f) => {
    if (cache.has(f.id)) return cache.get(f.id);
    return new Promise((resolve) => setTimeout(resolve, 120)).then(() => {
      const m = mapOf();
      if (!m || m.hover < 0 || m.features[m.hover].id !== f.id) return null;
      if (!cache.has(f.id)) {
        const p = api(`/api/saes/${enc(sae.name)}/features/${f.id}?top=1&nearest=0&lens=0`)
          .then((r) => (r.top_steps && r.top_steps.length ? clip(r.top_steps[0].text, TIP_CHARS) : null));
        p.catch(() => cache.delete(f.id));
        cache.set(f.id, p);
      }
      return cache.get(f.id);
    });
  };
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

function showSelection(sae, sel, el, clear, ctx) {
  if (!sel.length) {
    fill(el, note('Nothing selected. Shift+drag for a box, shift+click for a point, Alt+drag (or lasso mode) for a lasso.'));
    return;
  }
  const counts = new Map();
  for (const f of sel) counts.set(f.behaviour || '', (counts.get(f.behaviour || '') || 0) + 1);
  const rows = [...counts.entries()].sort((a, b) => b[1] - a[1])
    .map(([b, n]) => [b || 'not specific', n, behaviourColour(b)]);
  const max = 400;
  const ids = sel.map((f) => f.id);
  const list = ids.join(',');
  const base = `/api/saes/${enc(sae.name)}/selection`;
  const tooMany = ids.length > MAX_URL_SELECTION;
  const steps = h('div', {class: 'sel-steps', testid: 'selection-steps'});
  const read = h('button', {class: 'small-btn', testid: 'selection-read', disabled: tooMany}, 'Top steps');
  read.addEventListener('click', () => readSelection(sae, ids, steps, ctx));
  const steer = h('button', {class: 'small-btn', testid: 'selection-steer', disabled: tooMany,
    title: 'steer with the mean of the selected unit decoder columns'}, 'Steer →');
  steer.addEventListener('click', () => navigate(`/steer?sae=${enc(sae.name)}&features=${list}`));
  const stem = `${sae.name}-selection-${ids.length}`;
  fill(el,
    h('div', {class: 'sel-head'}, h('strong', {class: 'num', testid: 'selection-size'}, fmt(sel.length)), ' features selected ',
      h('button', {class: 'small-btn', onclick: clear}, 'clear')),
    hbars(rows),
    h('div', {class: 'sel-actions'},
      steer, read,
      tooMany ? h('span', {class: 'small muted'}, `.npy for at most ${MAX_URL_SELECTION} features`)
        : h('a', {href: `${base}/vector.npy?features=${list}`, download: `${stem}.npy`, testid: 'selection-npy',
          title: 'the renormalised mean of the selected unit decoder columns, float32 [1, d_in]'}, 'mean .npy'),
      h('button', {class: 'small-btn', testid: 'selection-json', onclick: () => saveBlob(`${stem}.json`, 'application/json',
        JSON.stringify({sae: sae.name, features: sel.map((f) => ({id: f.id, x: f.x, y: f.y, cluster: f.cluster, behaviour: f.behaviour || null}))}, null, 1))}, 'ids .json'),
      h('button', {class: 'small-btn', testid: 'selection-csv', onclick: () => saveBlob(`${stem}.csv`, 'text/csv',
        'id,x,y,cluster,behaviour\n' + sel.map((f) => [f.id, f.x, f.y, f.cluster, f.behaviour || ''].join(',')).join('\n') + '\n')}, 'ids .csv')),
    steps,
    h('div', {class: 'id-list'}, sel.slice(0, max).map((f) =>
      h('a', {href: `/feature/${enc(sae.name)}/${f.id}`, class: 'num', style: {color: behaviourColour(f.behaviour)}}, f.id))),
    sel.length > max ? note(`… and ${sel.length - max} more`) : null);
}

// saveBlob downloads text made on the page as a file.
function saveBlob(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], {type}));
  const a = h('a', {href: url, download: name});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// readSelection shows the steps on which the selection fires most (the sum
// of its latents), read by the server over every step of the dataset.
async function readSelection(sae, ids, el, ctx) {
  fill(el, h('div', {class: 'loading'}, `Encoding the steps for ${fmt(ids.length)} features…`));
  let r;
  try {
    r = await api(`/api/saes/${enc(sae.name)}/selection/steps?top=20&features=${ids.join(',')}`, {signal: ctx.abort.signal});
  } catch (e) {
    if (e.name !== 'AbortError') fill(el, errorBox(e));
    return;
  }
  if (!r.steps.length) { fill(el, note(`None of the ${ids.length} features fires on any of the ${fmt(r.rows)} steps.`)); return; }
  fill(el,
    h('div', {class: 'small muted'}, `Top ${r.steps.length} of ${fmt(r.rows)} steps by the sum of the selected latents:`),
    r.steps.map((st) => h('div', {class: 'sel-step', testid: 'selection-step', 'data-row': st.row},
      h('div', {class: 'small muted'},
        h('a', {href: `/?dataset=${enc(sae.dataset)}&trace=${enc(st.trace)}&step=${st.row}`}, `${st.trace} #${st.step}`),
        ` · sum ${fmt(st.value)} · ${st.firing} firing`,
        st.labels.length ? ' · ' + st.labels.join(', ') : ''),
      h('div', {class: 'step-text'}, st.text))));
}

// showClusters gives the number of clusters, how k was chosen (the
// silhouette of each k tried, when the atlas tried several) and each
// cluster's size, and offers other k: the server clusters the columns
// again (GET /api/saes/{sae}/clusters?k=) and the map takes its colours.
function showClusters(sae, atlas, el, map, colourSel, ctx) {
  const own = atlas.clusters || [];
  if (!own.length) { fill(el, note('No clusters in this atlas.')); return; }
  const chosen = own.length;
  const choice = Object.entries(atlas.cluster_choice || {}).map(([kk, v]) => [Number(kk), v]).sort((a, b) => a[0] - b[0]);
  const ks = choice.length ? choice.map(([kk]) => kk) : [];
  for (let kk = 2; kk <= Math.min(20, map.n - 1); kk++) if (!ks.includes(kk)) ks.push(kk);
  if (!ks.includes(chosen)) ks.push(chosen);
  ks.sort((a, b) => a - b);
  const pick = h('select', {'aria-label': 'clusters k', testid: 'cluster-k-select'},
    ks.map((kk) => h('option', {value: kk}, `k = ${kk}${kk === chosen ? ' (the atlas\'s)' : ''}`)));
  const body = h('div', {});
  const status = h('span', {class: 'small muted'});
  const show = (k, sizes, silhouette) => {
    fill(body,
      h('p', {class: 'small'}, h('strong', {class: 'num', testid: 'cluster-k'}, k), ' clusters',
        k === chosen ? (choice.length ? ' (k chosen by the best silhouette)' : ' (k given when the atlas was built)') : ' (spherical k-means again, the atlas\'s seed)',
        silhouette !== null && silhouette !== undefined ? `, silhouette ${fmt(silhouette)}` : '', '.'),
      hbars(sizes.map((n, c) => [`c${c}`, n, clusterColour(c)]).filter((r) => r[1] > 0).sort((a, b) => b[1] - a[1])));
  };
  const apply = async (k) => {
    pick.value = String(k);
    if (k === chosen) {
      const sizes = new Array(chosen).fill(0);
      for (const c of own) sizes[c.id] = c.size;
      for (const f of map.features) f.cluster = f.atlasCluster ?? f.cluster;
      show(k, sizes, atlas.silhouette && atlas.silhouette.clusters);
      if (map.mode === 'cluster') map.setColour('cluster');
      setQuery({k: null});
      fill(status, '');
      return;
    }
    fill(status, 'clustering…');
    pick.disabled = true;
    try {
      const r = await api(`/api/saes/${enc(sae.name)}/clusters?k=${k}`, {signal: ctx.abort.signal});
      for (const f of map.features) f.cluster = r.labels[f.id];
      show(r.k, r.sizes, r.silhouette);
      colourSel.value = 'cluster';
      map.setColour('cluster');
      setQuery({k: String(k), colour: 'cluster'});
      fill(status, '');
    } catch (e) {
      if (e.name !== 'AbortError') fill(status, errorBox(e));
    } finally {
      pick.disabled = false;
    }
  };
  for (const f of map.features) f.atlasCluster = f.cluster;
  pick.addEventListener('change', () => apply(Number(pick.value)));
  fill(el,
    h('div', {class: 'row'}, pick, status),
    body,
    choice.length ? h('table', {class: 'kv small', testid: 'cluster-choice'}, h('caption', {}, 'silhouette by k, when the atlas chose k'),
      choice.map(([kk, v]) => h('tr', {class: kk === chosen ? 'k-chosen' : ''}, h('th', {}, `k = ${kk}${kk === chosen ? ' (chosen)' : ''}`), h('td', {class: 'num'}, fmt(v))))) : null);
  const want = Number(ctx.query.get('k'));
  apply(ks.includes(want) ? want : chosen);
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
