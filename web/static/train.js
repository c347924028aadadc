// Train page (/train?job=ID): the training form, live curves from the job's
// websocket, and the job list.

import {api, h, fill, errorBox, note, panel, enc, fmt, setQuery, watchJob, jobEnded, pct} from './util.js';
import {drawLineChart} from './chart.js';
import {renderPager} from './datasets.js';

// The jobs table lists these kinds a page at a time; steering requests
// keep their own short history (GET /api/jobs?kind=steer).
const TABLE_KINDS = 'train,atlas,sweep';
const JOB_PAGE = 20;

const ARCHS = ['standard', 'topk', 'batchtopk', 'jumprelu'];
const QUANTITIES = [
  {key: 'loss', title: 'loss', colour: '#222'},
  {key: 'mse', title: 'MSE', colour: '#0072b2'},
  {key: 'l0', title: 'L0', colour: '#d55e00'},
  {key: 'dead', title: 'dead fraction', colour: '#cc79a7', fmt: pct},
  {key: 'samples_per_s', title: 'samples/s', colour: '#009e73'},
];

export async function render(main, ctx) {
  const [datasets, jobs, saes] = await Promise.all([
    api('/api/datasets', {signal: ctx.abort.signal}),
    api(`/api/jobs?kind=${TABLE_KINDS}&limit=${JOB_PAGE}`, {signal: ctx.abort.signal}),
    api('/api/saes', {signal: ctx.abort.signal}),
  ]);
  let jobList = null;
  let saeList = null;
  const refresh = () => { if (jobList) jobList.refresh(); if (saeList) saeList.refresh(); };
  const watcher = jobWatcher(ctx, refresh);
  jobList = jobTable(ctx, (id) => watcher.attach(id));
  saeList = saeTable(ctx, (id) => { watcher.attach(id); refresh(); });
  const form = trainForm(datasets || [], ctx, (id) => { watcher.attach(id); refresh(); });

  fill(main,
    h('h1', {}, 'Train a sparse autoencoder'),
    h('div', {class: 'train-layout'},
      panel('New training job', form),
      panel('Live training', watcher.el)),
    panel('SAEs', saeList.el),
    panel('Jobs', jobList.el));

  jobList.show(jobs);
  saeList.show(saes || []);
  const poll = setInterval(refresh, 3000);
  ctx.onCleanup(() => clearInterval(poll));
  ctx.onCleanup(() => watcher.stop());

  const want = ctx.query.get('job');
  if (want) {
    watcher.attach(want);
  } else {
    const train = ((jobs && jobs.jobs) || []).filter((j) => j.kind === 'train');
    const running = train.find((j) => j.state === 'running') || train.filter((j) => j.state === 'queued').pop();
    if (running) watcher.attach(running.id);
  }
}

// ---------- form ----------

function field(label, input, extra) {
  return h('label', {class: 'field'}, h('span', {class: 'field-label'}, label), input, extra || null);
}

function trainForm(datasets, ctx, started) {
  const dsSel = h('select', {id: 'train-dataset', name: 'dataset'}, datasets.map((d) => h('option', {value: d.name}, d.name)));
  const layerSel = h('select', {id: 'train-layer', name: 'layer'});
  const name = h('input', {id: 'train-name', name: 'name', type: 'text', required: true, spellcheck: false});
  const arch = h('select', {id: 'train-arch', name: 'arch'}, ARCHS.map((a) => h('option', {value: a, selected: a === 'topk'}, a)));
  const width = h('input', {id: 'train-width', name: 'width', type: 'number', min: 1, step: 1, value: 1024});
  const k = h('input', {id: 'train-k', name: 'k', type: 'number', min: 1, step: 1, value: 16});
  const sparsity = h('input', {id: 'train-sparsity', name: 'sparsity', type: 'number', min: 0, step: 'any', value: 0, title: '0 takes the default'});
  const preset = h('select', {id: 'train-preset', name: 'preset'}, h('option', {value: ''}, 'none'), h('option', {value: 'rise'}, 'rise'));
  const steps = h('input', {id: 'train-steps', name: 'steps', type: 'number', min: 1, step: 1, value: 2000});
  const batch = h('input', {id: 'train-batch', name: 'batch', type: 'number', min: 1, step: 1, value: 1024});
  const seed = h('input', {id: 'train-seed', name: 'seed', type: 'number', step: 1, value: 1});
  const resample = h('input', {id: 'train-resample', name: 'resample_every', type: 'number', min: 0, step: 1, value: 0,
    title: 'Re-initialise dead latents every N steps in the first half of the run (0: never; not for batchtopk)'});
  const resampleField = field('resample dead every', resample);
  const precision = h('select', {id: 'train-precision', name: 'precision',
    title: 'bf16: the dense products in bfloat16 with float32 sums, faster on CPUs with AVX512_BF16 (refused on others)'},
  h('option', {value: 'f32'}, 'f32'), h('option', {value: 'bf16'}, 'bf16'));
  const kField = field('k (active latents)', k);
  const lamField = field('sparsity λ', sparsity);
  const msg = h('div', {class: 'form-msg'});
  const start = h('button', {type: 'submit', class: 'primary', testid: 'train-start'}, 'Start training');

  function fillLayers() {
    const d = datasets.find((x) => x.name === dsSel.value);
    fill(layerSel, (d ? d.layers || [] : []).map((l) => h('option', {value: l.number}, `${l.number} (${fmt(l.rows)} rows)`)));
    suggestName();
  }
  function suggestName() {
    if (name.dataset.touched) return;
    name.value = `${dsSel.value || 'sae'}-L${layerSel.value || 0}-${arch.value}-${Date.now().toString(36).slice(-4)}`;
  }
  function archFields() {
    const a = arch.value;
    kField.hidden = !(a === 'topk' || a === 'batchtopk');
    lamField.hidden = !(a === 'standard' || a === 'jumprelu');
    resampleField.hidden = a === 'batchtopk';
    suggestName();
  }
  dsSel.addEventListener('change', () => { fillLayers(); setQuery({dataset: dsSel.value, layer: layerSel.value}); });
  layerSel.addEventListener('change', () => { suggestName(); setQuery({dataset: dsSel.value, layer: layerSel.value}); });
  arch.addEventListener('change', archFields);
  name.addEventListener('input', () => { name.dataset.touched = '1'; });
  const pre = ctx.query.get('dataset');
  if (pre) dsSel.value = pre;
  fillLayers();
  const preLayer = ctx.query.get('layer');
  if (preLayer !== null && [...layerSel.options].some((o) => o.value === preLayer)) { layerSel.value = preLayer; suggestName(); }
  archFields();

  const form = h('form', {class: 'form-grid', novalidate: true},
    field('dataset', dsSel), field('layer', layerSel), h('div', {class: 'span2'}, field('name', name)),
    field('architecture', arch), field('width (latents)', width), kField, lamField,
    field('preset', preset), field('steps', steps), field('batch', batch), field('seed', seed), resampleField,
    field('precision', precision),
    h('div', {class: 'form-actions'}, start, msg));
  if (!datasets.length) fill(msg, errorBox(new Error('No dataset to train on.')));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const a = arch.value;
    const body = {
      kind: 'train', dataset: dsSel.value, layer: Number(layerSel.value), name: name.value.trim(),
      arch: a, width: int(width.value), k: (a === 'topk' || a === 'batchtopk') ? int(k.value) : 0,
      sparsity: (a === 'standard' || a === 'jumprelu') ? Number(sparsity.value) || 0 : 0,
      preset: preset.value, steps: int(steps.value), batch: int(batch.value), lr: 0, seed: int(seed.value),
      resample_every: a === 'batchtopk' ? 0 : int(resample.value), precision: precision.value,
    };
    start.disabled = true;
    fill(msg, 'Starting…');
    try {
      const job = await api('/api/jobs', {method: 'POST', body});
      fill(msg, h('span', {class: 'ok'}, `Started job ${job.id}.`));
      delete name.dataset.touched;
      suggestName();
      started(job.id);
    } catch (err) {
      fill(msg, errorBox(err));
    } finally {
      start.disabled = false;
    }
  });
  return form;
}

function int(v) {
  const n = parseInt(v, 10);
  return Number.isFinite(n) ? n : 0;
}

// ---------- live curves ----------

function jobWatcher(ctx, changed) {
  const header = h('div', {class: 'job-head'}, note('No job attached. Start one, or pick a job below.'));
  const progress = h('progress', {max: 1, value: 0, hidden: true});
  const cancel = h('button', {class: 'danger', hidden: true}, 'Cancel');
  const conn = h('span', {class: 'muted small'});
  const curves = h('div', {class: 'curves', testid: 'train-curve', 'data-points': '0'});
  const charts = QUANTITIES.map((q) => {
    const value = h('span', {class: 'num chart-value'}, '–');
    const canvas = h('canvas', {class: 'chart-canvas', 'aria-label': q.title});
    const box = h('div', {class: 'chart', 'data-key': q.key}, h('div', {class: 'chart-title'}, q.title, value), canvas);
    curves.append(box);
    return {q, value, canvas, box};
  });
  const result = h('div', {});
  const el = h('div', {}, header, h('div', {class: 'row'}, progress, cancel, conn), curves, result);

  let stopWatch = null;
  let jobId = null;
  let data = [];
  let state = '';
  let frame = 0;

  function draw() {
    frame = 0;
    curves.dataset.points = String(data.length);
    for (const c of charts) {
      const pts = data.map((e) => [e.step, e[c.q.key]]);
      const last = data.length ? data[data.length - 1][c.q.key] : null;
      c.value.textContent = last === null || last === undefined ? '–' : (c.q.fmt || fmt)(last);
      const w = Math.max(160, c.box.clientWidth - 2);
      drawLineChart(c.canvas, w, 140, [{name: c.q.title, colour: c.q.colour, points: pts}], {xLabel: 'step', yMin: c.q.key === 'dead' ? 0 : undefined});
    }
  }
  function schedule() {
    if (!frame) frame = requestAnimationFrame(draw);
  }
  const ro = new ResizeObserver(schedule);
  ro.observe(curves);

  function setState(s) {
    state = s;
    cancel.hidden = jobEnded(s);
    header.querySelector('.state')?.replaceWith(stateBadge(s));
  }

  async function attach(id) {
    stop();
    jobId = id;
    data = [];
    schedule();
    fill(result);
    setQuery({job: id});
    fill(header, h('strong', {}, `job ${id}`), ' ', stateBadge('…'));
    progress.hidden = true;
    try {
      const job = await api(`/api/jobs/${enc(id)}`, {signal: ctx.abort.signal});
      if (jobId !== id) return;
      const p = job.params || {};
      fill(header, h('strong', {}, `job ${job.id}`), ' · ', job.kind, ' ',
        p.name ? h('span', {class: 'mono'}, p.name) : null, p.sae ? h('span', {class: 'mono'}, p.sae) : null,
        p.arch ? h('span', {class: 'muted'}, ` · ${p.arch}`) : null,
        p.dataset ? h('span', {class: 'muted'}, ` · ${p.dataset} L${p.layer}`) : null,
        ' ', stateBadge(job.state));
      setState(job.state);
      if (job.progress && job.progress.total) { progress.hidden = false; progress.max = job.progress.total; progress.value = job.progress.done; }
      if (job.error) result.append(errorBox(new Error(job.error)));
      if (job.kind !== 'train') result.append(note('This job is not a training job: it has no loss curves, only progress.'));
    } catch (e) {
      if (e.name === 'AbortError') return;
      fill(header, errorBox(e));
      return;
    }
    stopWatch = watchJob(id, (ev) => onEvent(id, ev), (s) => { conn.textContent = s === 'reconnecting' ? 'connection lost, reconnecting…' : ''; });
  }

  function onEvent(id, ev) {
    if (id !== jobId) return;
    if (ev.type === 'train') {
      data.push(ev);
      if (ev.steps) { progress.hidden = false; progress.max = ev.steps; progress.value = ev.step; }
      schedule();
    } else if (ev.type === 'progress') {
      if (ev.total) { progress.hidden = false; progress.max = ev.total; progress.value = ev.done; }
      conn.textContent = ev.stage ? `${ev.stage} ${ev.done}/${ev.total}` : '';
    } else if (ev.type === 'state') {
      setState(ev.state);
      if (jobEnded(ev.state)) { finished(id, ev); changed(); }
    }
  }

  async function finished(id, ev) {
    try {
      const job = await api(`/api/jobs/${enc(id)}`);
      if (id !== jobId) return;
      if (job.error || ev.error) result.append(errorBox(new Error(job.error || ev.error)));
      const name = job.params && job.params.name;
      if (job.state === 'done' && job.kind === 'train' && name) {
        result.append(h('p', {class: 'ok'}, `SAE ${name} is trained; its atlas is being built. `,
          h('a', {href: `/atlas?sae=${enc(name)}`}, 'Open its atlas →')));
      }
    } catch { /* the list shows it */ }
  }

  cancel.addEventListener('click', async () => {
    if (!jobId) return;
    cancel.disabled = true;
    try { await api(`/api/jobs/${enc(jobId)}`, {method: 'DELETE'}); } catch (e) { result.append(errorBox(e)); }
    cancel.disabled = false;
    changed();
  });

  function stop() {
    if (stopWatch) stopWatch();
    stopWatch = null;
  }
  ctx.onCleanup(() => { ro.disconnect(); cancelAnimationFrame(frame); });
  return {el, attach, stop, get state() { return state; }};
}

export function stateBadge(state) {
  return h('span', {class: `state badge state-${state}`}, state);
}

// ---------- job list ----------

function jobTable(ctx, watch) {
  const el = h('div', {});
  const pager = h('div', {class: 'pager'});
  let offset = 0;
  function show(page) {
    const jobs = (page && page.jobs) || [];
    if (!jobs.length && !offset) { fill(el, note('No jobs yet.')); return; }
    renderPager(pager, page.total, page.offset, page.limit || JOB_PAGE, (o) => { offset = o; refresh(); });
    fill(el, pager, h('table', {class: 'table'},
      h('thead', {}, h('tr', {}, ['id', 'kind', 'what', 'state', 'progress', 'created', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, jobs.map((j) => {
        const p = j.params || {};
        const pr = j.progress || {};
        return h('tr', {'data-job': j.id},
          h('td', {class: 'mono'}, j.id),
          h('td', {}, j.kind),
          h('td', {class: 'mono'}, p.name || p.sae || p.dataset || ''),
          h('td', {}, stateBadge(j.state), j.error ? h('div', {class: 'small error-text'}, j.error) : null),
          h('td', {class: 'num'}, progressText(j)),
          h('td', {class: 'small muted'}, j.created ? new Date(j.created).toLocaleString() : ''),
          h('td', {class: 'actions'},
            h('button', {onclick: () => watch(j.id)}, 'watch'),
            !jobEnded(j.state) ? h('button', {class: 'danger', onclick: () => cancelJob(j.id)}, 'cancel') : null));
      }))));
  }
  async function refresh() {
    try {
      show(await api(`/api/jobs?kind=${TABLE_KINDS}&offset=${offset}&limit=${JOB_PAGE}`, {signal: ctx.abort.signal}));
    } catch (e) { if (e.name !== 'AbortError') fill(el, errorBox(e)); }
  }
  async function cancelJob(id) {
    try { await api(`/api/jobs/${enc(id)}`, {method: 'DELETE'}); } catch (e) { el.prepend(errorBox(e)); }
    refresh();
  }
  return {el, show, refresh};
}

// ---------- SAEs ----------

// saeTable lists the workspace's SAEs: Resume for an interrupted training,
// Delete (asked twice) for an SAE trained here. SAEs given with --sae have
// no Delete.
function saeTable(ctx, started) {
  const el = h('div', {testid: 'sae-table'});
  const msg = h('div', {});
  const armed = new Set(); // SAEs whose Delete was clicked once; kept across redraws
  function show(saes) {
    if (!saes.length) { fill(el, note('No SAE yet.')); return; }
    fill(el, msg, h('table', {class: 'table'},
      h('thead', {}, h('tr', {}, ['name', 'dataset', 'layer', 'state', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, saes.map((s) => h('tr', {'data-sae': s.name},
        h('td', {class: 'mono'}, s.name),
        h('td', {}, s.dataset),
        h('td', {class: 'num'}, String(s.layer)),
        h('td', {}, stateBadge(s.state), s.error ? h('div', {class: 'small error-text'}, s.error) : null),
        h('td', {class: 'actions'},
          s.resumable ? h('button', {class: 'primary', testid: `sae-resume-${s.name}`, onclick: () => resume(s.name)}, 'Resume') : null,
          s.deletable ? deleteButton(s.name) : null))))));
  }
  function deleteButton(name) {
    const ask = `Delete ${name} and its files?`;
    const b = h('button', {class: 'danger', testid: `sae-delete-${name}`}, armed.has(name) ? ask : 'Delete');
    b.addEventListener('click', async () => {
      if (!armed.has(name)) {
        armed.add(name);
        b.textContent = ask;
        return;
      }
      armed.delete(name);
      b.disabled = true;
      try { await api(`/api/saes/${enc(name)}`, {method: 'DELETE'}); fill(msg); } catch (e) { fill(msg, errorBox(e)); }
      refresh();
    });
    return b;
  }
  async function resume(name) {
    try {
      const job = await api(`/api/saes/${enc(name)}/resume`, {method: 'POST'});
      fill(msg);
      started(job.id);
    } catch (e) {
      fill(msg, errorBox(e));
    }
  }
  async function refresh() {
    try { show(await api('/api/saes', {signal: ctx.abort.signal}) || []); } catch (e) { if (e.name !== 'AbortError') fill(el, errorBox(e)); }
  }
  return {el, show, refresh};
}

// progressText is a job's progress for the table: where a running job is,
// the whole of a finished one.
function progressText(j) {
  const pr = j.progress || {};
  if (!pr.total) return '';
  if (j.state === 'done') return `${fmt(pr.total)}/${fmt(pr.total)}`;
  return `${pr.stage ? pr.stage + ' ' : ''}${fmt(pr.done)}/${fmt(pr.total)}`;
}
