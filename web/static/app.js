// The rise workbench: a client-side router over the pages. The server
// answers every page route with index.html; this module picks the page from
// location.pathname, renders it into <main>, and marks <body data-ready>.

import {api, h, fill, errorBox, fmt, ApiError} from './util.js';

const ROUTES = [
  {re: /^\/$/, page: 'datasets', load: () => import('./datasets.js')},
  {re: /^\/train\/?$/, page: 'train', load: () => import('./train.js')},
  {re: /^\/atlas\/?$/, page: 'atlas', load: () => import('./atlas.js')},
  {re: /^\/feature\/([^/]+)\/([^/]+)\/?$/, page: 'atlas', keys: ['sae', 'id'], load: () => import('./feature.js')},
  {re: /^\/behaviours\/?$/, page: 'behaviours', load: () => import('./behaviours.js')},
  {re: /^\/steer\/?$/, page: 'steer', load: () => import('./steer.js')},
];

let current = null; // {cleanups: [], abort: AbortController, id}
let navCounter = 0;

function match(path) {
  for (const r of ROUTES) {
    const m = r.re.exec(path);
    if (!m) continue;
    const params = {};
    (r.keys || []).forEach((k, i) => { params[k] = decodeURIComponent(m[i + 1]); });
    return {route: r, params};
  }
  return null;
}

function teardown() {
  if (!current) return;
  current.abort.abort();
  for (const fn of current.cleanups.splice(0)) {
    try { fn(); } catch (e) { console.error(e); }
  }
}

async function route() {
  const id = ++navCounter;
  document.body.dataset.ready = '0';
  teardown();
  const main = document.getElementById('main');
  const m = match(location.pathname);
  for (const a of document.querySelectorAll('.topbar nav a')) {
    a.classList.toggle('active', !!m && a.dataset.page === m.route.page);
  }
  const ctx = {
    params: m ? m.params : {},
    query: new URLSearchParams(location.search),
    abort: new AbortController(),
    cleanups: [],
    onCleanup(fn) { this.cleanups.push(fn); },
    get live() { return id === navCounter; },
  };
  current = ctx;
  fill(main, h('div', {class: 'loading'}, 'Loading…'));
  try {
    if (!m) {
      notFound(main);
      if (id === navCounter) document.body.dataset.ready = '1';
      return;
    }
    const mod = await m.route.load();
    if (id !== navCounter) return;
    await mod.render(main, ctx);
  } catch (e) {
    if (e && e.name === 'AbortError') return;
    if (id !== navCounter) return;
    if (!(e instanceof ApiError)) console.error(e);
    fill(main, errorBox(e), h('p', {}, h('a', {href: '/'}, 'Back to datasets')));
  }
  if (id === navCounter) document.body.dataset.ready = '1';
}

// notFound draws the page for a path the workbench does not have.
function notFound(main) {
  fill(main, h('section', {class: 'not-found', testid: 'not-found'},
    h('h1', {}, 'Page not found'),
    h('p', {}, 'The workbench has no page at ', h('code', {}, location.pathname), '.'),
    h('ul', {class: 'links'},
      [['/', 'Datasets'], ['/train', 'Train'], ['/atlas', 'Atlas'], ['/behaviours', 'Behaviours'], ['/steer', 'Steer']]
        .map(([href, label]) => h('li', {}, h('a', {href}, label))))));
}

function navigate(url, replace) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  window.scrollTo(0, 0);
  route();
}

// Intercept clicks on in-app links.
document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  if (url.pathname.startsWith('/api/') || url.pathname.startsWith('/static/')) return;
  if (!match(url.pathname)) return;
  e.preventDefault();
  navigate(url.pathname + url.search + url.hash, false);
});

window.addEventListener('popstate', () => route());
window.addEventListener('rise:navigate', (e) => navigate(e.detail.url, e.detail.replace));

async function loadFooter() {
  const el = document.getElementById('footer-version');
  const top = document.getElementById('topbar-status');
  try {
    const s = await api('/api/status');
    const model = s.model ? `model ${s.model.name} (${s.model.layers} layers, d_model ${s.model.d_model})` : 'no model attached';
    fill(el, /^rise\b/.test(s.version || '') ? s.version : `rise ${s.version || ''}`, s.demo ? ' · demo data' : '',
      ` · ${fmt(s.datasets)} dataset${s.datasets === 1 ? '' : 's'} · ${fmt(s.saes)} SAE${s.saes === 1 ? '' : 's'} · ${model}`);
    const jobs = [s.jobs_running ? `${s.jobs_running} job${s.jobs_running === 1 ? '' : 's'} running` : '',
      s.jobs_queued ? `${s.jobs_queued} queued` : ''].filter(Boolean).join(', ');
    fill(top, jobs ? h('a', {href: '/train'}, jobs) : '');
  } catch (e) {
    fill(el, 'rise · status unavailable: ', e.message);
  }
}

loadFooter();
setInterval(loadFooter, 15000);
route();
