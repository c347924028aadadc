// Feature page (/feature/{sae}/{id}): one decoder column's statistics, its
// top-activating steps with context, histogram, behaviour enrichment and
// nearest neighbours.

import {
  api, h, fill, errorBox, note, panel, enc, fmt, pct, chip, behaviourColour,
  mainLabel, swatch, tint,
} from './util.js';
import {explanationPanel} from './candidates.js';

export async function render(main, ctx) {
  const sae = ctx.params.sae;
  const id = parseInt(ctx.params.id, 10);
  const head = h('div', {class: 'page-head'}, h('h1', {}, `Feature ${ctx.params.id}`), h('span', {class: 'muted'}, `of ${sae}`));
  if (!Number.isInteger(id) || id < 0 || String(id) !== ctx.params.id) {
    fill(main, head, errorBox(new Error(`feature id must be a non-negative integer, got "${ctx.params.id}"`)));
    return;
  }
  const [f, saes] = await Promise.all([
    api(`/api/saes/${enc(sae)}/features/${id}?top=20&nearest=10`, {signal: ctx.abort.signal}).catch((e) => e),
    api('/api/saes', {signal: ctx.abort.signal}).catch(() => []),
  ]);
  const info = (saes || []).find((s) => s.name === sae);
  const nav = featureNav(sae, id, info);
  if (f instanceof Error) {
    if (f.name === 'AbortError') throw f;
    head.append(nav);
    fill(main, head, errorBox(f),
      h('p', {}, h('a', {href: `/atlas?sae=${enc(sae)}`}, '← atlas')));
    return;
  }

  const colour = behaviourColour(f.behaviour);
  fill(main,
    h('div', {class: 'page-head'},
      h('h1', {}, `Feature ${f.id}`),
      h('a', {href: `/atlas?sae=${enc(sae)}`, class: 'muted'}, sae),
      nav),
    h('div', {class: 'feature-summary', style: {borderLeftColor: colour}},
      stat('behaviour', h('span', {}, swatch(colour), f.behaviour || 'not specific')),
      stat('specificity', fmt(f.specificity)),
      stat('frequency', pct(f.frequency)),
      stat('fires', fmt(f.fires)),
      stat('mean when active', fmt(f.mean_active)),
      stat('max', fmt(f.max)),
      stat('cluster', f.cluster ?? '–'),
      h('div', {class: 'feature-actions'},
        h('a', {class: 'button primary', href: `/steer?sae=${enc(sae)}&feature=${f.id}`, testid: 'steer-with-feature'}, 'Steer with this feature'),
        h('a', {class: 'button', href: `/api/saes/${enc(sae)}/features/${f.id}/vector.npy`, download: `${sae}-feature-${f.id}.npy`}, 'vector.npy'))),
    tokenVerdict(f.token),
    h('div', {class: 'feature-layout'},
      h('div', {class: 'col'},
        panel(`Top-activating steps (${(f.top_steps || []).length})`, topSteps(f.top_steps || [], info && info.dataset)),
        f.token_view ? panel('Token by token (the model reads each example\'s trace; the SAE encodes every token)', tokenView(sae, f.id, ctx)) : null),
      h('div', {class: 'col'},
        explanationPanel(f),
        panel('Activation histogram', histogram(f.histogram || [])),
        panel('Behaviour enrichment', enrichment(f.behaviours || []),
          h('p', {class: 'small muted'}, 'Tied to a behaviour only with at least 10 firings on its steps and 1.5 times their rate at large (the attribution rule; see the README).')),
        f.logit_lens ? panel('Logit lens (the decoder direction through the model\'s final norm and head)', logitLens(f.logit_lens)) : null,
        f.token_view ? panel('Steering effect (next-token log-probability at step states)', steeringEffect(sae, f.id)) : null,
        panel('Nearest features (decoder cosine)', nearest(sae, f.nearest || [])))));
}

// tokenVerdict says what the token probe (rise probe-tokens) found: how
// much of the feature's activation its behaviour's trigger words alone
// explain, and whether that flags it.
function tokenVerdict(t) {
  if (!t) return null;
  const how = t.mode === 'injected' ? 'written into steps that are not' : 'in steps that are not';
  const text = t.flagged
    ? `Token feature: the trigger words alone, ${how} ${t.behaviour}, bring ${fmt(t.ratio)}× its mean activation on ${t.behaviour} steps (flagged at ${fmt(t.threshold)} or more)` +
      (t.left_out ? `; left out of the ${t.behaviour} vector.` : '; kept in the vector on request.')
    : `Token probe: the trigger words alone, ${how} ${t.behaviour}, bring ${fmt(t.ratio)}× its mean activation on ${t.behaviour} steps (under ${fmt(t.threshold)}: not a token feature).`;
  return h('div', {class: t.flagged ? 'warning' : 'note', testid: 'feature-token', 'data-flagged': String(t.flagged)}, text);
}

function stat(label, value) {
  return h('div', {class: 'stat'}, h('div', {class: 'stat-label'}, label), h('div', {class: 'stat-value num'}, value));
}

function featureNav(sae, id, info) {
  const last = info ? info.d_sae - 1 : Infinity;
  const prev = id > 0 ? h('a', {class: 'button', href: `/feature/${enc(sae)}/${id - 1}`, testid: 'feature-prev'}, '‹ prev')
    : h('button', {disabled: true}, '‹ prev');
  const next = id < last ? h('a', {class: 'button', href: `/feature/${enc(sae)}/${id + 1}`, testid: 'feature-next'}, 'next ›')
    : h('button', {disabled: true}, 'next ›');
  const go = h('input', {type: 'number', min: 0, max: Number.isFinite(last) ? last : null, placeholder: 'go to id', class: 'narrow', 'aria-label': 'go to feature'});
  go.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && go.value !== '') {
      window.dispatchEvent(new CustomEvent('rise:navigate', {detail: {url: `/feature/${enc(sae)}/${parseInt(go.value, 10)}`}}));
    }
  });
  return h('span', {class: 'feature-nav'}, prev, next, go);
}

function topSteps(steps, dataset) {
  const list = h('div', {class: 'top-steps', testid: 'feature-top-steps'});
  if (!steps.length) list.append(note('This feature never fires on the dataset.'));
  const max = Math.max(1e-9, ...steps.map((s) => s.value));
  for (const s of steps) {
    const lab = mainLabel(s.labels);
    const c = behaviourColour(lab);
    list.append(h('div', {class: 'top-step', testid: 'top-step', 'data-row': s.row},
      h('div', {class: 'step-meta'},
        h('span', {class: 'act-bar'}, h('span', {style: {width: `${(100 * s.value) / max}%`}})),
        h('span', {class: 'num act-value'}, fmt(s.value)),
        h('a', {href: `/?${dataset ? `dataset=${enc(dataset)}&` : ''}trace=${enc(s.trace)}`, class: 'mono small'}, `${s.trace} · step ${s.step}`),
        (s.labels || []).map(chip),
        (s.next_labels || []).length ? h('span', {class: 'small muted', testid: 'next-labels'}, ' next step: ', s.next_labels.map(chip)) : null),
      (s.before || []).map((t) => h('div', {class: 'context'}, t)),
      h('div', {class: 'step-text hit', style: {borderLeftColor: c, background: tint(c, 0.08)}}, s.text),
      (s.after || []).map((t) => h('div', {class: 'context'}, t))));
  }
  return list;
}

// histogram draws the log-spaced bins as SVG bars of equal width.
function histogram(bins) {
  if (!bins.length) return note('No activations.');
  const W = 460, H = 150, pad = {l: 40, r: 6, t: 6, b: 34};
  const max = Math.max(1, ...bins.map((b) => b.count));
  const bw = (W - pad.l - pad.r) / bins.length;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('class', 'histogram');
  svg.dataset.testid = 'feature-histogram';
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  const ih = H - pad.t - pad.b;
  bins.forEach((b, i) => {
    const bh = (b.count / max) * ih;
    const r = add('rect', {x: pad.l + i * bw + 0.5, y: pad.t + ih - bh, width: Math.max(1, bw - 1), height: bh, class: 'bar'});
    const t = document.createElementNS(ns, 'title');
    t.textContent = `${fmt(b.lo)} – ${fmt(b.hi)}: ${b.count}`;
    r.append(t);
  });
  add('line', {x1: pad.l, y1: pad.t + ih, x2: W - pad.r, y2: pad.t + ih, class: 'axis'});
  add('line', {x1: pad.l, y1: pad.t, x2: pad.l, y2: pad.t + ih, class: 'axis'});
  add('text', {x: pad.l - 4, y: pad.t + 8, 'text-anchor': 'end', class: 'tick'}, fmt(max));
  add('text', {x: pad.l - 4, y: pad.t + ih, 'text-anchor': 'end', class: 'tick'}, '0');
  const every = Math.max(1, Math.ceil(bins.length / 6));
  bins.forEach((b, i) => {
    if (i % every === 0 && bins.length - i > every / 2) add('text', {x: pad.l + i * bw, y: H - pad.b + 13, 'text-anchor': 'middle', class: 'tick'}, fmt(b.lo, 2));
  });
  add('text', {x: W - pad.r, y: H - pad.b + 13, 'text-anchor': 'end', class: 'tick'}, fmt(bins[bins.length - 1].hi, 2));
  add('text', {x: pad.l + (W - pad.l - pad.r) / 2, y: H - 4, 'text-anchor': 'middle', class: 'tick'}, 'activation (log-spaced bins)');
  return svg;
}

function enrichment(rows) {
  if (!rows.length) return note('No behaviour labels.');
  const maxE = Math.max(1, ...rows.map((r) => r.enrichment || 0));
  // Eight columns in half a page: tight cells, and a scroll bar rather
  // than a table running past its panel.
  return h('div', {class: 'table-scroll'}, h('table', {class: 'table compact'},
    h('thead', {}, h('tr', {}, ['behaviour', 'steps', 'mean', 'max', 'rate', 'firings', 'enrichment', 'rule'].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows.map((r) => h('tr', {},
      h('td', {}, chip(r.name)),
      h('td', {class: 'num'}, fmt(r.steps)),
      h('td', {class: 'num'}, fmt(r.mean)),
      h('td', {class: 'num'}, fmt(r.max)),
      h('td', {class: 'num'}, pct(r.rate)),
      h('td', {class: 'num'}, fmt(r.firings)),
      h('td', {class: 'num enrich'},
        h('span', {class: 'enrich-bar', style: {width: `${Math.min(100, (100 * (r.enrichment || 0)) / maxE)}%`, background: behaviourColour(r.name)}}),
        h('span', {}, fmt(r.enrichment))),
      h('td', {testid: 'rule-evidence', class: 'nowrap'}, r.evidence ? 'meets it' : 'too weak'))))));
}

// logitLens lists the tokens a feature's direction promotes and suppresses
// most when read by the model's head.
function logitLens(l) {
  const list = (rows) => h('ol', {class: 'lens'}, rows.map((t) => h('li', {},
    h('code', {}, JSON.stringify(t.token)), h('span', {class: 'small muted'}, ` ${fmt(t.logit)}`))));
  return h('div', {class: 'row', testid: 'logit-lens'},
    h('div', {}, h('div', {class: 'field-label'}, 'promoted'), list(l.promoted || [])),
    h('div', {}, h('div', {class: 'field-label'}, 'suppressed'), list(l.suppressed || [])));
}

function nearest(sae, rows) {
  if (!rows.length) return note('None.');
  return h('table', {class: 'table'},
    h('thead', {}, h('tr', {}, h('th', {}, 'feature'), h('th', {}, 'cosine'), h('th', {}, 'behaviour'))),
    h('tbody', {}, rows.map((r) => h('tr', {},
      h('td', {}, h('a', {href: `/feature/${enc(sae)}/${r.id}`, class: 'num'}, r.id)),
      h('td', {class: 'num'}, fmt(r.cos)),
      h('td', {}, r.behaviour ? chip(r.behaviour) : h('span', {class: 'muted'}, '–'))))));
}

// tokenView shows the feature's activation on every token of its top
// examples and the steps around them, read by the attached model.
function tokenView(sae, id, ctx) {
  const box = h('div', {class: 'token-view', testid: 'token-view'}, note('Running the model on the examples…'));
  api(`/api/saes/${enc(sae)}/features/${id}/tokens?top=10`, {signal: ctx.abort.signal}).then((res) => {
    const exs = res.examples || [];
    if (!exs.length) {
      fill(box, note('No example has a trace with a response to run.'));
      return;
    }
    const max = Math.max(1e-9, ...exs.flatMap((e) => e.tokens.map((t) => t.v)));
    fill(box, exs.map((e) => h('div', {class: 'token-example', testid: 'token-example'},
      h('div', {class: 'small muted'}, `${e.trace} · step ${e.step} · at its state token ${fmt(e.state_value)} (dump ${fmt(e.dump_value)})`),
      h('div', {class: 'tokens'}, e.tokens.map((t) => h('span', {
        class: `tok${t.step !== 0 ? ' tok-context' : ''}${t.state ? ' state' : ''}`,
        title: `${fmt(t.v)}${t.state ? ' (the step\'s state)' : ''}`,
        style: t.v > 0 ? {background: `rgba(230, 120, 20, ${(0.15 + 0.85 * t.v / max).toFixed(3)})`} : {},
      }, t.t))))));
  }).catch((e) => {
    if (e.name !== 'AbortError') fill(box, errorBox(e));
  });
  return box;
}

// steeringEffect measures, on request, the tokens whose next-token
// log-probability the feature's direction raises and lowers most.
function steeringEffect(sae, id) {
  const out = h('div', {testid: 'steering-effect'});
  const run = h('button', {testid: 'measure-effect'}, 'Measure');
  run.addEventListener('click', async () => {
    run.disabled = true;
    fill(out, note('Running the model with and without the feature…'));
    try {
      const r = await api(`/api/saes/${enc(sae)}/features/${id}/effect`);
      const list = (rows) => h('ol', {class: 'lens'}, rows.map((t) => h('li', {},
        h('code', {}, JSON.stringify(t.token)), h('span', {class: 'small muted'}, ` ${t.delta >= 0 ? '+' : ''}${fmt(t.delta)}`))));
      fill(out,
        h('p', {class: 'small muted'}, `Decoder column added at strength ${fmt(r.strength)} (the feature at its largest activation) at ${r.states} step states of ${r.traces} traces; mean change in nats.`),
        h('div', {class: 'row'},
          h('div', {}, h('div', {class: 'field-label'}, 'rises'), list(r.rising || [])),
          h('div', {}, h('div', {class: 'field-label'}, 'falls'), list(r.falling || []))));
    } catch (e) {
      fill(out, errorBox(e));
    } finally {
      run.disabled = false;
    }
  });
  return h('div', {}, run, out);
}
