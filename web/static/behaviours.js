// Behaviours page (/behaviours?sae=): each behaviour's specific columns and
// vector, the cosine heat map between behaviour vectors, and the cosine
// with the Venhoff et al. vectors.

import {
  api, h, fill, errorBox, note, panel, enc, fmt, chip, diverging,
} from './util.js';
import {pickSAE} from './atlas.js';
import {candidatesPanel, searchPanel} from './candidates.js';

const MAX_COLUMNS = 60;

export async function render(main, ctx) {
  const picked = await pickSAE(main, ctx, 'Behaviours', '/behaviours');
  if (!picked) return;
  const {sae, picker} = picked;
  const head = h('div', {class: 'page-head'}, h('h1', {}, 'Behaviours'), picker);
  head.append(h('a', {href: `/atlas?sae=${enc(sae.name)}`}, 'atlas →'));
  let b;
  try {
    b = await api(`/api/saes/${enc(sae.name)}/behaviours`, {signal: ctx.abort.signal});
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    fill(main, head, errorBox(e),
      e.status === 409 && e.body && e.body.job ? h('p', {}, 'Waiting on job ', h('a', {href: `/train?job=${enc(e.body.job)}`}, e.body.job), '; reload when it is done.') : null);
    return;
  }
  fill(main, head,
    panel('Behaviour vectors', behaviourTable(sae.name, b)),
    h('div', {class: 'two-col'},
      panel('Cosine between behaviour vectors', cosineTable(b.cosine)),
      panel('Cosine with the Venhoff et al. vectors', venhoffTable(b.venhoff_cosine || {}))),
    await candidatesPanel(sae.name, ctx.abort.signal),
    searchPanel(sae.name, ctx.abort.signal));
}

function behaviourTable(sae, b) {
  const rows = b.behaviours || [];
  if (!rows.length) return note('This SAE has no behaviour vectors.');
  const venhoff = b.venhoff_cosine || {};
  return h('table', {class: 'table behaviours-table'},
    h('thead', {}, h('tr', {}, ['behaviour', 'steps', 'specific columns', 'Venhoff cos', 'vector'].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows.map((r) => {
      const cols = r.columns || [];
      return h('tr', {'data-behaviour': r.name},
        h('td', {}, chip(r.name)),
        h('td', {class: 'num'}, fmt(r.steps)),
        h('td', {class: 'cols'},
          h('div', {class: 'small muted'}, `${cols.length} column${cols.length === 1 ? '' : 's'}`),
          h('div', {class: 'id-list'}, cols.slice(0, MAX_COLUMNS).map((c) => h('a', {href: `/feature/${enc(sae)}/${c}`, class: 'num'}, c))),
          cols.length > MAX_COLUMNS ? h('div', {class: 'small muted'}, `… and ${cols.length - MAX_COLUMNS} more`) : null,
          r.error ? h('div', {class: 'error-text small'}, r.error) : null),
        h('td', {class: 'num'}, fmt(venhoff[r.name])),
        h('td', {},
          r.error ? h('span', {class: 'muted'}, '–') : h('a', {href: `/api/saes/${enc(sae)}/behaviours/${enc(r.name)}/vector.npy`, download: `${sae}-${r.name}.npy`}, 'vector.npy'),
          ' · ', h('a', {href: `/steer?sae=${enc(sae)}&behaviour=${enc(r.name)}`}, 'steer')));
    })));
}

function cosineTable(cos) {
  if (!cos || !cos.names || !cos.names.length) return note('No cosine table.');
  const {names, matrix} = cos;
  return h('table', {class: 'heatmap', testid: 'cosine-table'},
    h('thead', {}, h('tr', {}, h('th', {}), names.map((n) => h('th', {}, chip(n))))),
    h('tbody', {}, names.map((n, i) => h('tr', {},
      h('th', {}, chip(n)),
      names.map((_, j) => {
        const v = matrix[i] ? matrix[i][j] : null;
        return h('td', {class: 'num', style: {background: diverging(v), color: Math.abs(v) > 0.6 ? '#fff' : '#222'}, title: `${n} · ${names[j]}: ${v}`}, fmt(v, 2));
      })))),
    h('caption', {class: 'small muted'}, 'blue −1 … white 0 … orange +1'));
}

function venhoffTable(v) {
  const entries = Object.entries(v);
  if (!entries.length) return note('No Venhoff vectors for these labels.');
  return h('div', {},
    h('table', {class: 'table'},
      h('thead', {}, h('tr', {}, h('th', {}, 'behaviour'), h('th', {}, 'cosine'), h('th', {}))),
      h('tbody', {}, entries.map(([k, c]) => h('tr', {},
        h('td', {}, chip(k)), h('td', {class: 'num'}, fmt(c)),
        h('td', {class: 'bar-cell'}, h('span', {class: 'enrich-bar', style: {width: `${Math.max(0, Math.min(1, Math.abs(c))) * 100}%`, background: diverging(c)}})))))),
    h('p', {class: 'small muted'}, 'Venhoff et al. vector: mean activation of the behaviour\'s steps minus the mean of all steps.'));
}
