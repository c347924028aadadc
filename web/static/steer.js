// Steer page (/steer?sae=&feature=&behaviour=): build a steering vector
// from features, behaviour vectors or uploaded .npy files, and compare the
// default and steered generations step by step. On the model demo it opens
// on the best layer's reflection vector at the step boundaries, sampled,
// with a held-out problem of the demo's own kind.

import {
  api, h, fill, errorBox, note, panel, enc, fmt, chip, legend, behaviourColour,
  mainLabel, tint, setQuery, watchJob, jobEnded,
} from './util.js';
import {drawLineChart} from './chart.js';

const FALLBACK_BEHAVIOURS = ['reflection', 'backtracking', 'other'];

export async function render(main, ctx) {
  const [status, saes, held] = await Promise.all([
    api('/api/status', {signal: ctx.abort.signal}).catch((e) => e),
    api('/api/saes', {signal: ctx.abort.signal}).catch(() => []),
    api('/api/steer/prompts', {signal: ctx.abort.signal}).catch(() => ({prompts: []})),
  ]);
  const problems = (held && held.prompts) || [];
  // The page opens on the problem the server names: one with the most
  // steps, where a vector added at step boundaries has room to act.
  let problemAt = problems.length ? Math.min(Math.max(held.opening | 0, 0), problems.length - 1) : 0;
  let answer = problems.length ? problems[problemAt].answer : '';
  const banner = status instanceof Error ? errorBox(status)
    : !status.model ? h('div', {class: 'warning', testid: 'no-model'}, 'No model is attached: steering needs a model backend (rise serve --model ...)')
      : h('div', {class: 'note'}, `Model: ${status.model.name} · ${status.model.layers} layers · d_model ${status.model.d_model}`);

  const vectors = vectorList();
  const adder = vectorAdder(saes || [], vectors, ctx);

  const prompt = h('textarea', {rows: 5, class: 'prompt-input', placeholder: 'A problem for the model to reason about…', 'aria-label': 'prompt', testid: 'steer-prompt'},
    problems.length ? problems[problemAt].prompt : 'What is the sum of the first 20 odd numbers? Think step by step.');
  // An answer goes with the problem it came with: editing the prompt drops it.
  prompt.addEventListener('input', () => { answer = ''; });
  const another = h('button', {testid: 'steer-another', title: 'the next held-out problem of the demo'}, 'Another problem');
  another.hidden = !problems.length;
  another.addEventListener('click', () => {
    problemAt = (problemAt + 1) % problems.length;
    prompt.value = problems[problemAt].prompt;
    answer = problems[problemAt].answer;
  });
  const operator = h('select', {'aria-label': 'operator'}, ['add', 'scale', 'clamp', 'ablate'].map((o) => h('option', {value: o}, o)));
  const demo = problems.length > 0;
  // The demo steers block 3 of the tiny model, whose residual stream has a
  // norm of about 100 at the step boundaries: a unit vector moves it from a
  // strength of 8 or so, and clearly at 16 to 32 (make steer-demo: 0.40
  // reflection steps per problem unsteered, 1.11 at 16, 1.65 at 32).
  const span = demo ? 40 : 20;
  const strength = h('input', {type: 'range', min: -span, max: span, step: 0.5, value: demo ? 32 : 4, 'aria-label': 'strength'});
  const strengthBox = h('input', {type: 'number', min: -1e6, max: 1e6, step: 0.5, value: strength.value, class: 'narrow', 'aria-label': 'strength value', testid: 'steer-strength'});
  const strengthWarn = h('div', {class: 'small warning-text', testid: 'steer-strength-warning'});
  const showWarning = () => {
    fill(strengthWarn, Math.abs(Number(strengthBox.value)) > 10
      ? 'Strong steering often moves other behaviours too: compare every count below, not only the one you aim at.' : '');
  };
  strength.addEventListener('input', () => { strengthBox.value = strength.value; showWarning(); });
  strengthBox.addEventListener('input', () => {
    const v = Number(strengthBox.value);
    if (Number.isFinite(v)) strength.value = Math.max(-span, Math.min(span, v));
    showWarning();
  });
  const positions = h('select', {'aria-label': 'positions'},
    ['all', 'step_boundary', 'prompt', 'generated'].map((p) => h('option', {value: p, selected: p === (demo ? 'step_boundary' : 'all')}, p)));
  // A five-operation problem of the demo runs to 150-300 tokens, more when
  // steered to reflect: at 200, 13 of 24 samples of the opening problem hit
  // the limit, at 400 none.
  const maxTokens = h('input', {type: 'number', min: 1, max: 4096, value: demo ? 400 : 256, class: 'narrow', 'aria-label': 'max tokens'});
  const temperature = h('input', {type: 'number', min: 0, max: 5, step: 0.1, value: demo ? 1 : 0, class: 'narrow', 'aria-label': 'temperature', testid: 'steer-temperature'});
  const topP = h('input', {type: 'number', min: 0, max: 1, step: 0.05, value: 1, class: 'narrow', 'aria-label': 'top-p'});
  const seed = h('input', {type: 'number', value: 1, class: 'narrow', 'aria-label': 'seed'});
  const run = h('button', {class: 'primary', testid: 'steer-run'}, 'Run');
  const runMsg = h('span', {class: 'small muted'});

  const defPane = h('div', {class: 'pane-body', testid: 'steer-default'}, note('Run to generate.'));
  const steerPane = h('div', {class: 'pane-body', testid: 'steer-steered'}, note('Run to generate.'));

  run.addEventListener('click', async () => {
    const body = {
      prompt: prompt.value,
      vectors: vectors.items.map((v) => v.spec),
      operator: operator.value,
      strength: Number(strengthBox.value),
      positions: positions.value,
      max_tokens: parseInt(maxTokens.value, 10) || 0,
      temperature: Number(temperature.value) || 0,
      top_p: Number(topP.value) || 0,
      seed: parseInt(seed.value, 10) || 0,
      answer,
    };
    run.disabled = true;
    fill(runMsg, 'Generating…');
    fill(defPane, h('div', {class: 'loading'}, 'Generating…'));
    fill(steerPane, h('div', {class: 'loading'}, 'Generating…'));
    try {
      const r = await api('/api/steer', {method: 'POST', body});
      showGeneration(defPane, r.default);
      showGeneration(steerPane, r.steered, r.default);
      fill(runMsg, r.job ? h('span', {}, 'job ', h('a', {href: `/train?job=${enc(r.job)}`, class: 'mono'}, r.job)) : '');
    } catch (e) {
      fill(defPane, errorBox(e));
      fill(steerPane, errorBox(e));
      fill(runMsg, '');
    } finally {
      run.disabled = false;
    }
  });

  fill(main,
    h('h1', {}, 'Steer'),
    banner,
    h('div', {class: 'steer-layout'},
      panel('Prompt', prompt, h('div', {class: 'row'}, another)),
      panel('Steering vector', vectors.el, adder,
        h('div', {class: 'form-grid steer-controls'},
          h('label', {class: 'field'}, h('span', {class: 'field-label'}, 'operator'), operator),
          h('label', {class: 'field wide'}, h('span', {class: 'field-label'}, 'strength'), h('div', {class: 'row'}, strength, strengthBox), strengthWarn),
          h('label', {class: 'field'}, h('span', {class: 'field-label'}, 'positions'), positions),
          h('label', {class: 'field'}, h('span', {class: 'field-label'}, 'max tokens'), maxTokens),
          h('label', {class: 'field'}, h('span', {class: 'field-label'}, 'temperature'), temperature),
          h('label', {class: 'field'}, h('span', {class: 'field-label'}, 'top-p'), topP),
          h('label', {class: 'field'}, h('span', {class: 'field-label'}, 'seed'), seed)),
        h('div', {class: 'row'}, run, runMsg))),
    h('div', {class: 'panes'},
      h('section', {class: 'panel pane'}, h('h2', {}, 'DEFAULT'), defPane),
      h('section', {class: 'panel pane steered'}, h('h2', {}, 'STEERED'), steerPane)),
    sweepPanel({vectors, operator, positions, maxTokens, temperature, topP, seed, demo, ctx}));

  // prefill from the query
  const qs = ctx.query.get('sae');
  const qf = ctx.query.get('feature');
  const qb = ctx.query.get('behaviour');
  if (qs && qf !== null && qf !== '') vectors.add({sae: qs, feature: parseInt(qf, 10)}, `${qs} · feature ${qf}`);
  if (qs && qb) vectors.add({sae: qs, behaviour: qb}, `${qs} · behaviour ${qb}`);
  const qfs = (ctx.query.get('features') || '').split(',').filter((x) => x !== '').map((x) => parseInt(x, 10));
  if (qs && qfs.length) {
    const shown = qfs.length > 12 ? `${qfs.slice(0, 12).join(', ')}, … (${qfs.length} features)` : qfs.join(', ');
    vectors.add({sae: qs, features: qfs}, `${qs} · mean of features ${shown}`);
  }
  if (demo && !vectors.items.length) addDemoVector(vectors, adder, ctx).catch(() => vectors.waiting(null));
}

// addDemoVector puts the reflection vector of the demo's best layer (the
// layer whose behaviour columns separate best, by the dataset's sweep) on
// the list. Opened while the demo's SAEs still train or analyse, or while
// the sweep is computed (its first request starts it), it waits for them
// and says so: the list is never left empty for Run to fail on.
async function addDemoVector(vectors, adder, ctx) {
  const signal = ctx.abort.signal;
  const pause = (ms) => new Promise((done) => setTimeout(done, ms));
  let ready = [];
  let best = null;
  for (let waited = 0; !signal.aborted && waited < 300000; waited += 500) {
    const saes = await api('/api/saes', {signal}).catch(() => []);
    ready = saes.filter((s) => s.state === 'ready');
    const busy = saes.some((s) => s.state === 'training' || s.state === 'analysing');
    if (!busy && ready.length) {
      try {
        const sw = await api(`/api/datasets/${enc(ready[0].dataset)}/sweep`, {signal});
        best = sw.best && sw.best['columns: behaviours'];
        break;
      } catch (e) {
        if (e.name === 'AbortError') return;
        if (!(e.status === 409 && e.body && e.body.job)) break; // no sweep to wait for
      }
    } else if (!busy) {
      break; // nothing ready and nothing on its way
    }
    vectors.waiting(busy ? "Waiting for the demo's SAEs to finish training…" : "Finding the best layer (the demo's layer sweep)…");
    await pause(500);
  }
  if (signal.aborted) return;
  // The best layer first, then the others: the first with a reflection vector.
  const order = [...ready].sort((x, y) => (y.layer === best) - (x.layer === best));
  for (const pick of order) {
    try {
      const b = await api(`/api/saes/${enc(pick.name)}/behaviours`, {signal});
      if ((b.cosine && b.cosine.names || []).includes('reflection')) {
        vectors.add({sae: pick.name, behaviour: 'reflection'}, `${pick.name} · behaviour reflection`);
        await adder.pick(pick.name, 'reflection');
        return;
      }
    } catch (e) { if (e.name === 'AbortError') return; }
  }
  vectors.waiting(null);
}

// ---------- vectors ----------

function vectorList() {
  const items = [];
  const el = h('ul', {class: 'vector-list', testid: 'steer-vectors'});
  let pending = null; // what the empty list is waiting for, if anything
  function draw() {
    if (!items.length) { fill(el, h('li', {class: 'muted'}, pending || 'No vector yet: add a feature, a behaviour vector or a .npy file.')); return; }
    fill(el, items.map((v, i) => h('li', {},
      h('span', {}, v.label),
      h('button', {class: 'small-btn', title: 'remove', onclick: () => { items.splice(i, 1); draw(); }}, '×'))));
  }
  draw();
  return {
    el, items,
    add(spec, label) { pending = null; items.push({spec, label}); draw(); },
    waiting(msg) { pending = msg; draw(); },
  };
}

function vectorAdder(saes, vectors, ctx) {
  const saeSel = h('select', {'aria-label': 'SAE'}, saes.filter((s) => s.state === 'ready').map((s) => h('option', {value: s.name}, s.name)));
  const q = ctx.query.get('sae');
  if (q && saes.some((s) => s.name === q)) saeSel.value = q;
  const featureId = h('input', {type: 'number', min: 0, placeholder: 'feature id', class: 'narrow', 'aria-label': 'feature id'});
  const addFeature = h('button', {}, '+ feature');
  const behSel = h('select', {'aria-label': 'behaviour'});
  const addBeh = h('button', {}, '+ behaviour');
  const file = h('input', {type: 'file', accept: '.npy', 'aria-label': 'npy file'});
  const npyLayer = h('input', {type: 'number', min: 0, value: 0, class: 'narrow', 'aria-label': 'npy layer', title: 'the block whose output the vector changes (from 0)'});
  const msg = h('div', {});

  async function loadBehaviours() {
    let names = FALLBACK_BEHAVIOURS;
    if (saeSel.value) {
      try {
        const b = await api(`/api/saes/${enc(saeSel.value)}/behaviours`, {signal: ctx.abort.signal});
        if (b.behaviours && b.behaviours.length) names = b.behaviours.filter((x) => !x.error).map((x) => x.name);
      } catch { /* keep the fallback */ }
    }
    const want = behSel.value || ctx.query.get('behaviour');
    fill(behSel, names.map((n) => h('option', {value: n}, n)));
    if (want && names.includes(want)) behSel.value = want;
  }
  saeSel.addEventListener('change', () => { setQuery({sae: saeSel.value}); loadBehaviours(); });
  behSel.addEventListener('change', () => setQuery({behaviour: behSel.value}));
  loadBehaviours();

  addFeature.addEventListener('click', () => {
    const id = parseInt(featureId.value, 10);
    if (!saeSel.value) { fill(msg, errorBox(new Error('No SAE to take a feature from.'))); return; }
    if (!Number.isInteger(id) || id < 0) { fill(msg, errorBox(new Error('feature id must be a non-negative integer'))); return; }
    fill(msg);
    vectors.add({sae: saeSel.value, feature: id}, `${saeSel.value} · feature ${id}`);
    featureId.value = '';
  });
  addBeh.addEventListener('click', () => {
    if (!saeSel.value || !behSel.value) return;
    vectors.add({sae: saeSel.value, behaviour: behSel.value}, `${saeSel.value} · behaviour ${behSel.value}`);
  });
  file.addEventListener('change', async () => {
    const f = file.files && file.files[0];
    if (!f) return;
    try {
      const b64 = toBase64(await f.arrayBuffer());
      const layer = parseInt(npyLayer.value, 10) || 0;
      vectors.add({npy: b64, layer}, `${f.name} (${fmt(f.size)} bytes) · layer ${layer}`);
      fill(msg);
    } catch (e) {
      fill(msg, errorBox(e));
    }
    file.value = '';
  });

  const root = h('div', {class: 'vector-adder'},
    h('div', {class: 'row'}, saeSel, featureId, addFeature, behSel, addBeh),
    h('div', {class: 'row'}, h('span', {class: 'small muted'}, 'or a .npy vector at layer'), npyLayer, file),
    msg);
  // pick shows an SAE and behaviour in the pickers (the demo's opening
  // vector), adding the SAE when it became ready after the page opened.
  root.pick = async (name, behaviour) => {
    if (![...saeSel.options].some((o) => o.value === name)) saeSel.append(h('option', {value: name}, name));
    saeSel.value = name;
    behSel.value = '';
    await loadBehaviours();
    if ([...behSel.options].some((o) => o.value === behaviour)) behSel.value = behaviour;
  };
  return root;
}

function toBase64(buf) {
  const bytes = new Uint8Array(buf);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

// ---------- output ----------

// showGeneration draws one pane; with base (the DEFAULT generation) the
// steps from the first one that differs are marked.
function showGeneration(el, g, base) {
  if (!g) { fill(el, note('No output.')); return; }
  const steps = g.steps && g.steps.length ? g.steps
    : (g.text || '').split('\n\n').filter((t) => t.trim()).map((text) => ({text, labels: []}));
  const counts = g.counts || {};
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  let diverge = -1;
  if (base) {
    const bs = (base.steps || []).map((s) => s.text);
    diverge = steps.findIndex((s, i) => s.text !== bs[i]);
    if (diverge < 0 && bs.length > steps.length) diverge = steps.length;
  }
  const stop = {eos: 'ended by itself', length: 'hit the token limit', context: 'filled the context'}[g.stop] || g.stop || '';
  const verdict = g.correct === undefined || g.correct === null ? null
    : h('span', {class: g.correct ? 'ok' : 'bad', testid: 'steer-correct'}, g.correct ? '✓ right answer' : '✗ wrong answer');
  fill(el,
    h('div', {class: 'small muted', testid: 'steer-stop'}, `${steps.length} steps · ${g.tokens} tokens · ${stop}`, verdict ? ' · ' : '', verdict),
    entries.length ? h('div', {class: 'counts'}, entries.map(([k, v]) => h('span', {class: 'count'}, chip(k), h('span', {class: 'num'}, ` ${v}`))))
      : null,
    base ? h('div', {class: 'small muted', testid: 'steer-diff'}, diverge < 0 ? 'the same steps as DEFAULT'
      : `differs from DEFAULT from step ${diverge} on (marked)`) : null,
    h('div', {class: 'gen-steps'}, steps.map((s, i) => {
      const lab = mainLabel(s.labels);
      const c = lab ? behaviourColour(lab) : '#e3e3e3';
      return h('p', {class: 'trace-step' + (diverge >= 0 && i >= diverge ? ' diverged' : ''), style: {borderLeftColor: c, background: lab ? tint(c) : 'transparent'}, title: (s.labels || []).join(', ')},
        h('span', {class: 'step-no num'}, i), s.text);
    })),
    entries.length ? legend(entries.map(([k]) => [k, behaviourColour(k)])) : null);
}

// ---------- sweep ----------

// sweepPanel runs the vectors over strengths on many problems as a job
// (POST /api/steer/sweep, the numbers rise steer gives) and draws the
// dose-response of reflection, backtracking and accuracy with their 95%
// intervals and the band of the random-direction controls.
function sweepPanel({vectors, operator, positions, maxTokens, temperature, topP, seed, demo, ctx}) {
  const strengths = h('input', {type: 'text', value: demo ? '-32,-16,0,16,32' : '-8,-4,0,4,8', class: 'mono', 'aria-label': 'sweep strengths', testid: 'sweep-strengths'});
  const problems = h('input', {type: 'number', min: 1, max: 500, value: 50, class: 'narrow', 'aria-label': 'sweep problems', testid: 'sweep-problems'});
  const controls = h('input', {type: 'number', min: 0, max: 10, value: 3, class: 'narrow', 'aria-label': 'sweep controls'});
  const go = h('button', {testid: 'sweep-run'}, 'Run sweep');
  const cancel = h('button', {hidden: true}, 'Cancel');
  const status = h('span', {class: 'small muted', testid: 'sweep-status'});
  const canvas = h('canvas', {testid: 'sweep-chart'});
  const table = h('div', {testid: 'sweep-table'});
  const legendEl = h('div', {class: 'row small', testid: 'sweep-legend'});
  let stop = () => {};
  let job = null;
  ctx.abort.signal.addEventListener('abort', () => stop());

  cancel.addEventListener('click', () => { if (job) api(`/api/jobs/${enc(job)}`, {method: 'DELETE'}).catch(() => {}); });
  go.addEventListener('click', async () => {
    const ss = strengths.value.split(',').map((x) => Number(x.trim())).filter((x) => Number.isFinite(x));
    if (!vectors.items.length) { fill(status, errorBox(new Error('Add a vector to sweep.'))); return; }
    const body = {
      vectors: vectors.items.map((v) => v.spec), operator: operator.value, positions: positions.value, strengths: ss,
      problems: parseInt(problems.value, 10) || 0, controls: parseInt(controls.value, 10) || 0,
      max_tokens: parseInt(maxTokens.value, 10) || 0, temperature: Number(temperature.value) || 0,
      top_p: Number(topP.value) || 0, seed: parseInt(seed.value, 10) || 0,
    };
    go.disabled = true;
    fill(status, 'Starting…');
    try {
      const j = await api('/api/steer/sweep', {method: 'POST', body});
      job = j.id;
      cancel.hidden = false;
      stop();
      stop = watchJob(job, async (ev) => {
        if (ev.type === 'progress' && ev.data && ev.data.total) {
          fill(status, `job ${job}: ${Math.round(100 * ev.data.done / ev.data.total)}%`);
        }
        if (ev.type === 'state' && jobEnded(ev.state)) {
          go.disabled = false;
          cancel.hidden = true;
          if (ev.state !== 'done') { fill(status, `job ${job} ${ev.state}${ev.data && ev.data.error ? ': ' + ev.data.error : ''}`); return; }
          const v = await api(`/api/jobs/${enc(job)}`);
          fill(status, `job ${job}: ${v.result.prompts} problems × ${v.result.strengths.length} strengths, ${v.result.controls.length} controls`);
          drawSweep(canvas, legendEl, table, v.result);
        }
      });
    } catch (e) {
      go.disabled = false;
      fill(status, errorBox(e));
    }
  });
  return panel('Sweep',
    h('p', {class: 'small muted'}, demo
      ? 'The vectors above over several strengths on held-out problems of the demo, sampled with the seed above, beside random directions of the same norm (the controls).'
      : 'The vectors above over several strengths, beside random directions of the same norm (the controls). Held-out problems are offered on the model demo; elsewhere use rise steer with --prompts.'),
    h('div', {class: 'row'},
      h('label', {class: 'field'}, h('span', {class: 'field-label'}, 'strengths'), strengths),
      h('label', {class: 'field'}, h('span', {class: 'field-label'}, 'problems'), problems),
      h('label', {class: 'field'}, h('span', {class: 'field-label'}, 'controls'), controls),
      go, cancel, status),
    canvas, legendEl, table);
}

const SWEEP_SERIES = [
  ['reflection', (r) => r.behaviours && r.behaviours.reflection],
  ['backtracking', (r) => r.behaviours && r.behaviours.backtracking],
  ['accuracy', (r) => r.accuracy_interval],
];

function drawSweep(canvas, legendEl, table, res) {
  const series = [];
  for (const [name, get] of SWEEP_SERIES) {
    const colour = name === 'accuracy' ? '#444' : behaviourColour(name);
    const pts = res.runs.map((r) => [r.strength, get(r) ? get(r).mean : NaN]);
    if (!pts.some(([, y]) => Number.isFinite(y))) continue;
    series.push({name, colour, points: pts});
    series.push({name: `${name} 95%`, colour, dash: [2, 3], points: res.runs.map((r) => [r.strength, get(r) ? get(r).lo : NaN])});
    series.push({name: '', colour, dash: [2, 3], points: res.runs.map((r) => [r.strength, get(r) ? get(r).hi : NaN])});
    const band = res.control_band && res.control_band[name];
    if (band) {
      series.push({name: `${name} controls`, colour: '#999', dash: [6, 3], points: res.strengths.map((x, i) => [x, band.lo[i]])});
      series.push({name: '', colour: '#999', dash: [6, 3], points: res.strengths.map((x, i) => [x, band.hi[i]])});
    }
  }
  requestAnimationFrame(() => drawLineChart(canvas, Math.max(320, canvas.parentElement.clientWidth - 32), 260, series,
    {xLabel: 'strength', xTicks: res.strengths}));
  // The legend draws each line as the chart does, dashes included.
  const swatch = (x) => h('span', {style: {display: 'inline-block', width: '24px', verticalAlign: 'middle',
    borderTop: `2px ${x.dash ? 'dashed' : 'solid'} ${x.colour}`}});
  fill(legendEl, series.filter((x) => x.name).map((x) => h('span', {class: 'count'}, swatch(x), ` ${x.name}`)));
  const cell = (iv, p, band) => {
    if (!iv) return '–';
    let s = `${fmt(iv.mean)} [${fmt(iv.lo)}, ${fmt(iv.hi)}]`;
    if (p !== undefined) s += ` p=${fmt(p, 2)}`;
    if (band) s += iv.mean < band[0] || iv.mean > band[1] ? ' · outside controls' : ' · inside controls';
    return s;
  };
  fill(table, h('table', {class: 'data'},
    h('thead', {}, h('tr', {}, h('th', {}, 'strength'), h('th', {}, 'reflection'), h('th', {}, 'backtracking'), h('th', {}, 'accuracy'), h('th', {}, 'tokens'))),
    h('tbody', {}, res.runs.map((r, i) => {
      const band = (name) => res.control_band && res.control_band[name] ? [res.control_band[name].lo[i], res.control_band[name].hi[i]] : null;
      const p = (name) => r.strength !== 0 && r.p_values ? r.p_values[name] : undefined;
      return h('tr', {},
        h('td', {class: 'num'}, r.strength),
        h('td', {}, cell(r.behaviours && r.behaviours.reflection, p('reflection'), band('reflection'))),
        h('td', {}, cell(r.behaviours && r.behaviours.backtracking, p('backtracking'), band('backtracking'))),
        h('td', {}, cell(r.accuracy_interval, p('accuracy'))),
        h('td', {class: 'num'}, fmt(r.tokens)));
    }))));
}
