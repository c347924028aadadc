// Explanations without an LLM: a feature's phrases and detection score,
// phrase search over an SAE's features, and the candidate behaviours
// nobody named (clusters of features that fire coherently on steps no
// known label covers), each with a button that steers along its vector.

import {api, h, fill, errorBox, note, panel, enc, fmt, chip} from './util.js';

// sortable returns a table whose columns sort on a click of their header.
// cols: [{name, value: (row) => sortable value, cell: (row) => node}].
export function sortable(rows, cols, attrs = {}) {
  const body = h('tbody', {});
  let by = -1, dir = -1;
  const draw = () => {
    const rs = rows.slice();
    if (by >= 0) {
      const v = cols[by].value;
      rs.sort((a, b) => {
        const x = v(a), y = v(b);
        return (x < y ? -1 : x > y ? 1 : 0) * dir;
      });
    }
    fill(body, rs.map((r) => h('tr', {}, cols.map((c) => h('td', {class: c.num ? 'num' : ''}, c.cell(r))))));
  };
  const head = h('tr', {}, cols.map((c, i) => h('th', {
    class: c.value ? 'sortable' : '', title: c.value ? 'sort' : null, 'data-col': c.name,
    onclick: c.value ? () => { dir = by === i ? -dir : -1; by = i; draw(); } : null,
  }, c.name)));
  draw();
  return h('table', {class: 'table', ...attrs}, h('thead', {}, head), body);
}

function phraseList(phrases) {
  if (!phrases || !phrases.length) return h('span', {class: 'muted'}, '–');
  return h('span', {class: 'phrases'}, phrases.map((p, i) => [i ? ', ' : '', h('q', {title: `z ${fmt(p.z, 2)}`}, p.text)]));
}

// scores formats a detection's precision, recall, F1 and AUC; balanced
// formats its scores on as many firing steps as not.
const scores = (d) => `precision ${fmt(d.precision, 2)}, recall ${fmt(d.recall, 2)}, F1 ${fmt(d.f1, 2)}, AUC ${fmt(d.auc, 2)}`;
const balanced = (d) => `on as many firing steps as not: precision ${fmt(d.balanced_precision, 2)}, F1 ${fmt(d.balanced_f1, 2)}`;

// explanationPanel is the feature page's explanation and its score.
export function explanationPanel(f) {
  const d = f.detection;
  return panel('Explanation (phrases, scored on held-out steps)',
    f.explanation && f.explanation.length
      ? h('table', {class: 'table', testid: 'feature-explanation'},
        h('thead', {}, h('tr', {}, h('th', {}, 'phrase'), h('th', {}, 'z'))),
        h('tbody', {}, f.explanation.map((p) => h('tr', {}, h('td', {}, h('q', {}, p.text)), h('td', {class: 'num'}, fmt(p.z, 2))))))
      : note('No phrase is over-represented in this feature\'s steps.'),
    d ? h('p', {class: 'small', testid: 'feature-detection'},
      `Detection: ${scores(d)} `,
      h('span', {class: 'muted'}, `(fires on ${d.positives} of ${d.steps} held-out steps)`),
      h('span', {testid: 'feature-detection-balanced', title: 'the expected scores on as many firing steps as non-firing ones, the set Delphi scores on'},
        `; ${balanced(d)}`)) : null,
    f.next && f.next.length ? h('div', {testid: 'feature-next-explanation'},
      h('div', {class: 'field-label'}, 'the step after: phrases over-represented in the steps that follow its examples'),
      h('p', {}, f.next.map((p) => h('span', {class: 'phrase-chip', title: `z ${fmt(p.z, 2)}`}, h('q', {}, p.text), ' '))),
      f.next_detection ? h('p', {class: 'small'},
        `Detection from the next step: ${scores(f.next_detection)}; ${balanced(f.next_detection)}`) : null) : null);
}

// candidatesPanel lists the candidate behaviours of an SAE.
export async function candidatesPanel(sae, signal) {
  let c;
  try {
    c = await api(`/api/saes/${enc(sae)}/candidates`, {signal});
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    return panel('Candidate behaviours', errorBox(e));
  }
  const rows = (c.candidates || []).map((g, i) => ({...g, rank: i + 1}));
  const known = (c.known || []).filter((k) => k !== 'other');
  const maxEnr = (g) => Math.max(0, ...Object.entries(g.enrichment || {}).filter(([k]) => k !== 'other').map(([, v]) => v));
  return panel('Candidate behaviours',
    h('p', {class: 'small muted'},
      'Groups of features that fire on alike steps (alike phrases), with decoder columns that lean together, whose steps carry none of the known labels ',
      known.map((k) => [chip(k), ' ']), 'or response lengths; ranked by coherence (mean decoder cosine) × mean detection F1.'),
    rows.length ? sortable(rows, [
      {name: 'rank', num: true, value: (g) => g.rank, cell: (g) => g.rank},
      {name: 'cluster', num: true, value: (g) => g.cluster, cell: (g) => g.cluster},
      {name: 'size', num: true, value: (g) => g.size, cell: (g) => g.size},
      {name: 'phrases', cell: (g) => phraseList(g.phrases)},
      {name: 'coherence', num: true, value: (g) => g.coherence, cell: (g) => fmt(g.coherence, 2)},
      {name: 'mean F1', num: true, value: (g) => g.mean_f1, cell: (g) => fmt(g.mean_f1, 2)},
      {name: 'score', num: true, value: (g) => g.score, cell: (g) => fmt(g.score, 3)},
      {name: 'top enrichment', num: true, value: maxEnr, cell: (g) => fmt(maxEnr(g), 2)},
      {name: 'features', cell: (g) => h('span', {class: 'id-list'}, g.features.slice(0, 12).map((id) => h('a', {href: `/feature/${enc(sae)}/${id}`, class: 'num'}, id)), g.features.length > 12 ? ' …' : '')},
      {name: '', cell: (g) => h('a', {class: 'button', testid: 'candidate-steer', href: `/steer?sae=${enc(sae)}&features=${g.features.join(',')}`}, 'Steer')},
      {name: 'name it', cell: (g) => nameForm(c.dataset, g)},
    ], {testid: 'candidates-table'}) : note('No candidate: every group of features that fires together carries a known label.'));
}

// searchPanel finds features by a phrase of their explanation.
export function searchPanel(sae, signal) {
  const input = h('input', {type: 'search', placeholder: 'phrase, e.g. wait', 'aria-label': 'search phrase', testid: 'phrase-search'});
  const out = h('div', {});
  const go = async () => {
    const q = input.value.trim();
    if (!q) { fill(out); return; }
    try {
      const r = await api(`/api/saes/${enc(sae)}/search?q=${encodeURIComponent(q)}&limit=100`, {signal});
      const hits = r.hits || [];
      fill(out, hits.length ? sortable(hits, [
        {name: 'feature', num: true, value: (x) => x.id, cell: (x) => h('a', {href: `/feature/${enc(sae)}/${x.id}`}, x.id)},
        {name: 'phrase', value: (x) => x.phrase, cell: (x) => h('q', {}, x.phrase)},
        {name: 'z', num: true, value: (x) => x.z, cell: (x) => fmt(x.z, 2)},
        {name: 'F1', num: true, value: (x) => (x.detection ? x.detection.f1 : 0), cell: (x) => fmt(x.detection && x.detection.f1, 2)},
        {name: 'F1 balanced', num: true, value: (x) => (x.detection ? x.detection.balanced_f1 : 0), cell: (x) => fmt(x.detection && x.detection.balanced_f1, 2)},
        {name: 'AUC', num: true, value: (x) => (x.detection ? x.detection.auc : 0), cell: (x) => fmt(x.detection && x.detection.auc, 2)},
        {name: 'score', num: true, value: (x) => x.score, cell: (x) => fmt(x.score, 3)},
        {name: 'behaviour', value: (x) => x.behaviour || '', cell: (x) => (x.behaviour ? chip(x.behaviour) : '–')},
      ], {testid: 'search-table'}) : note(`No feature's explanation says "${q}".`));
    } catch (e) {
      if (e.name !== 'AbortError') fill(out, errorBox(e));
    }
  };
  input.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(); });
  return panel('Find features by phrase', h('div', {class: 'row'}, input, h('button', {onclick: go}, 'Search')), out);
}

// nameForm names a candidate: its phrases become a keyword rule of the
// dataset, saved in the workspace; the dataset's SAEs are analysed again
// with the new behaviour.
function nameForm(dataset, g) {
  const phrases = (g.phrases || []).map((p) => p.text).slice(0, 8);
  const input = h('input', {type: 'text', placeholder: 'name', class: 'narrow', 'aria-label': 'behaviour name', testid: 'candidate-name'});
  const go = h('button', {testid: 'candidate-name-save', disabled: !phrases.length, title: phrases.length ? `label the steps that say: ${phrases.join(', ')}` : 'no phrase to label steps with'}, 'Name');
  const out = h('div', {class: 'small'});
  go.addEventListener('click', async () => {
    go.disabled = true;
    try {
      const r = await api(`/api/datasets/${enc(dataset)}/behaviours`, {method: 'POST', body: {name: input.value.trim(), phrases}});
      fill(out, h('span', {testid: 'candidate-named'}, `${r.behaviour}: ${r.steps} steps labelled; the atlas is being recomputed.`));
    } catch (e) {
      fill(out, errorBox(e));
      go.disabled = false;
    }
  });
  return h('div', {}, h('div', {class: 'row'}, input, go), out);
}
