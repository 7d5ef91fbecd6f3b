// The ficus dashboard: plain JavaScript, no build step, no library, nothing fetched from
// elsewhere. It reads the admin API (/api/v1) every two seconds and draws the views; the
// changes it makes go through the same API with the operator's bearer token.
// Everything is built with DOM calls (never innerHTML): route names, messages and config
// text come from people and are shown as text.
'use strict';

(function () {
  const POLL_MS = 2000;
  const CHART_SECONDS = 900;
  /** Canary weight steps the Promote button walks through; after 100%, stage modern. */
  const STEPS = [1, 5, 25, 50, 100];
  const STAGES = ['legacy', 'shadow', 'canary', 'modern', 'retired'];
  const TOKEN_KEY = 'ficus.admin.token';
  const ACTOR_KEY = 'ficus.admin.actor';
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const SIDE_COLORS = { legacy: '#8a6d3b', modern: '#1f6feb' };

  const $ = (id) => document.getElementById(id);
  const main = $('main');

  // ---------------------------------------------------------------- DOM helpers

  function build(el, attrs, children) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.setAttribute('class', v);
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'style') Object.assign(el.style, v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }
  const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
  const svg = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children);

  // ---------------------------------------------------------------- formatting

  function num(x, digits) {
    return Number(x).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  }
  const fmtRate = (x) => (x >= 100 ? num(x, 0) : x >= 10 ? num(x, 1) : num(x, 2));
  const fmtPct = (ratio) => (ratio * 100).toFixed(2) + '%';
  const fmtWeight = (w) => num(w, 2) + '%';
  function fmtMs(ms) {
    if (ms === null || ms === undefined) return '—';
    if (ms < 1) return ms.toFixed(2) + ' ms';
    if (ms < 10) return ms.toFixed(1) + ' ms';
    if (ms < 10000) return ms.toFixed(0) + ' ms';
    return (ms / 1000).toFixed(1) + ' s';
  }
  const pad = (n) => String(n).padStart(2, '0');
  function fmtTime(ms) {
    const d = new Date(ms);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function fmtDateTime(ms) {
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtTime(ms)}`;
  }
  function ago(ms) {
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 60) return `${s}s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} d ago`;
  }

  const stageBadge = (stage) => h('span', { class: `stage stage-${stage}` }, stage);
  const kindBadge = (kind) => h('span', { class: `kind kind-${kind.replace(/\./g, '-')}` }, kind);
  const routeLink = (name) => h('a', { href: `#/routes/${encodeURIComponent(name)}` }, name);

  /** One line for a route-level change (as `ficus plan` prints it). */
  function describeChange(c) {
    if (typeof c === 'string') return c;
    switch (c.change) {
      case 'added': return `+ route ${c.route}: added (${c.stage}, weight ${c.weight})`;
      case 'removed': return `- route ${c.route}: removed`;
      case 'stage': return `~ route ${c.route}: stage ${c.from} -> ${c.to}`;
      case 'weight': return `~ route ${c.route}: weight ${c.from} -> ${c.to}`;
      case 'settings': return `~ route ${c.route}: ${(c.what || []).join(', ')} changed`;
      case 'order': return `~ route order: ${(c.from || []).join(', ')} -> ${(c.to || []).join(', ')}`;
      case 'global': return `~ ${(c.what || []).join(', ')} changed`;
      default: return JSON.stringify(c);
    }
  }

  /** What an event did, in one line, from its data. */
  function eventSummary(e) {
    const d = e.data || {};
    if (d.stage && d.weight && typeof d.stage === 'object') {
      const part = (name, x, f) => (x.from === x.to ? `${name} ${f(x.to)}` : `${name} ${f(x.from)} → ${f(x.to)}`);
      const w = (v) => (v === null || v === undefined ? '?' : fmtWeight(v));
      const s = (v) => v || '?';
      return `${part('stage', d.stage, s)}, ${part('weight', d.weight, w)}`;
    }
    if (Array.isArray(d.changes)) {
      const lines = d.changes.map(describeChange);
      if (d.reverted_to) lines.unshift(`reverted to version ${d.reverted_to}`);
      if (!lines.length) return e.config_version === 1 ? 'the first version' : 'no route-level changes';
      return lines.join('; ');
    }
    return '';
  }

  // ---------------------------------------------------------------- API

  /** An error answer of the admin API (application/problem+json), or a network failure. */
  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
      this.status = status;
      this.problem = problem || {};
    }
  }

  async function readBody(resp) {
    const text = await resp.text();
    try { return JSON.parse(text); } catch (_) { return { detail: text }; }
  }

  async function api(path) {
    const resp = await fetch(path, { headers: { accept: 'application/json' }, cache: 'no-store' });
    const body = await readBody(resp);
    if (!resp.ok) throw new ApiError(resp.status, body);
    return body;
  }

  const session = {
    get token() { try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (_) { return ''; } },
    set token(t) { try { if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY); } catch (_) { /* private mode */ } updateTokenButton(); },
    get actor() { try { return sessionStorage.getItem(ACTOR_KEY) || ''; } catch (_) { return ''; } },
    set actor(a) { try { if (a) sessionStorage.setItem(ACTOR_KEY, a); else sessionStorage.removeItem(ACTOR_KEY); } catch (_) { /* private mode */ } },
  };

  /** A POST with the bearer token; resolves to {ok, status, body}. */
  async function mutate(path, payload) {
    const headers = { 'content-type': 'application/json', accept: 'application/json' };
    if (session.token) headers.authorization = `Bearer ${session.token}`;
    // The API records `api:NAME` for an x-ficus-actor of visible ASCII (at most 64 bytes).
    const name = session.actor.replace(/[^\x21-\x7e]/g, '').slice(0, 48);
    headers['x-ficus-actor'] = name ? `dashboard:${name}` : 'dashboard';
    const resp = await fetch(path, { method: 'POST', headers, body: JSON.stringify(payload), cache: 'no-store' });
    return { ok: resp.ok, status: resp.status, body: await readBody(resp) };
  }

  // ---------------------------------------------------------------- header: connection, version, token

  function setConn(ok, err) {
    const el = $('conn');
    if (ok) {
      el.className = 'conn conn-ok';
      el.textContent = `live · ${fmtTime(Date.now())}`;
      el.title = `refreshed every ${POLL_MS / 1000} s`;
    } else {
      el.className = 'conn conn-down';
      el.textContent = err && err.status ? `API error ${err.status}` : 'admin API unreachable';
      el.title = (err && err.message) || '';
    }
  }

  function setVersion(v) {
    $('running-version').textContent = v === null || v === undefined ? '' : `running config v${v}`;
  }

  function updateTokenButton() {
    const b = $('token-button');
    const set = Boolean(session.token);
    b.textContent = set ? 'Admin token: set' : 'Admin token: not set';
    b.classList.toggle('token-set', set);
  }

  function openTokenDialog() {
    $('token-input').value = '';
    $('token-input').placeholder = session.token ? '(a token is set for this tab)' : '';
    $('actor-input').value = session.actor;
    $('token-dialog').showModal();
    $('token-input').focus();
  }

  $('token-button').addEventListener('click', openTokenDialog);
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('token-input').value.trim();
    if (t) session.token = t;
    session.actor = $('actor-input').value.trim();
    $('token-dialog').close();
  });
  $('token-forget').addEventListener('click', () => {
    session.token = '';
    $('token-dialog').close();
  });
  $('token-cancel').addEventListener('click', () => $('token-dialog').close());

  // ---------------------------------------------------------------- actions and their results

  let pendingAction = null;

  /**
   * Asks for a reason (and the token when none is set), then sends the change and shows
   * what the API recorded, or the problem it answered.
   */
  function confirmAction(action) {
    pendingAction = action;
    $('confirm-title').textContent = action.title;
    $('confirm-what').textContent = action.what;
    $('confirm-message').value = action.message;
    $('confirm-ok').textContent = action.button;
    $('confirm-ok').className = action.danger ? 'danger' : 'primary';
    $('confirm-token').value = '';
    $('confirm-token-row').hidden = Boolean(session.token);
    $('confirm-dialog').showModal();
    $('confirm-message').focus();
    $('confirm-message').select();
  }

  $('confirm-cancel').addEventListener('click', () => {
    pendingAction = null;
    $('confirm-dialog').close();
  });
  $('confirm-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const action = pendingAction;
    const message = $('confirm-message').value.trim();
    if (!action || !message) return;
    const typed = $('confirm-token').value.trim();
    if (typed) session.token = typed;
    pendingAction = null;
    $('confirm-dialog').close();
    showPending(action);
    let outcome;
    try {
      outcome = await mutate(action.path, action.payload(message));
    } catch (e) {
      outcome = { ok: false, status: 0, body: { title: 'Network error', detail: `the admin API could not be reached (${e.message}); nothing is known to have changed: check the map` } };
    }
    if (outcome.status === 401) session.token = '';
    showOutcome(action, outcome);
    if (outcome.ok && view && view.changed) view.changed();
    refreshNow();
  });

  function resultBox(cls, ...children) {
    const box = $('result');
    box.className = `result ${cls}`;
    box.replaceChildren(...children, h('button', { type: 'button', class: 'result-close', onclick: () => { box.hidden = true; } }, 'Dismiss'));
    box.hidden = false;
  }

  function showPending(action) {
    resultBox('result-pending', h('strong', {}, `${action.title}: sending…`));
  }

  function showOutcome(action, { ok, status, body }) {
    if (ok) {
      const events = body.events || [];
      const changes = body.changes || [];
      resultBox('result-ok',
        h('strong', { class: 'result-head' }, events.length ? `✓ ${action.title}: done` : `✓ ${action.title}: nothing to change`),
        events.length ? h('ul', { class: 'result-events' }, events.map((e) => h('li', {},
          kindBadge(e.kind), ' ',
          e.route ? h('span', { class: 'result-route' }, e.route) : null, ' ',
          h('span', {}, `event #${e.id} by ${e.actor} at ${fmtTime(e.at)}: “${e.message}”`),
          eventSummary(e) ? h('span', { class: 'muted' }, ` · ${eventSummary(e)}`) : null))) : null,
        changes.length ? h('ul', { class: 'result-changes' }, changes.map((c) => h('li', {}, h('code', {}, describeChange(c))))) : null,
        body.version !== undefined && body.version !== null ? h('p', { class: 'muted' }, `running config v${body.version} with the overrides; live for the next request`) : null);
      return;
    }
    const p = body || {};
    const head = status === 401
      ? '401 Unauthorized: wrong or missing admin token. Nothing was changed.'
      : status === 0
        ? `${p.title}. `
        : `${status} ${p.title || 'Error'}: ${action.title} was refused. Nothing was changed.`;
    resultBox('result-problem',
      h('strong', { class: 'result-head' }, `✗ ${head}`),
      p.detail ? h('p', { class: 'problem-detail' }, p.detail) : null,
      p.fix ? h('p', { class: 'problem-fix' }, h('b', {}, 'Fix: '), p.fix) : null,
      status === 401 ? h('button', { type: 'button', class: 'primary', onclick: openTokenDialog }, 'Enter the admin token') : null);
  }

  function rollbackAction(r) {
    return {
      title: `Roll back ${r.name}`,
      what: `Route ${r.name} goes to stage legacy, weight 0%, for the very next request (now: ${r.stage}${r.stage === 'canary' ? ' ' + fmtWeight(r.weight) : ''}). It stays there, across restarts, until someone promotes it or the config file changes this route.`,
      message: 'rolled back from the dashboard',
      button: `Roll back ${r.name}`,
      danger: true,
      path: `/api/v1/routes/${encodeURIComponent(r.name)}/rollback`,
      payload: (message) => ({ message }),
    };
  }

  function rollbackAllAction(routes) {
    const using = routes.filter((r) => r.stage !== 'legacy' || r.weight !== 0).map((r) => r.name);
    return {
      title: 'Roll back all routes',
      what: using.length
        ? `Every route that uses modern goes to stage legacy, weight 0%, for the very next request: ${using.join(', ')}.`
        : 'No route uses modern right now: nothing would change.',
      message: 'rolled back all routes from the dashboard',
      button: 'Roll back all',
      danger: true,
      path: '/api/v1/rollback',
      payload: (message) => ({ message }),
    };
  }

  /** The next step of the walk legacy/shadow → canary 1 → 5 → 25 → 50 → 100 → stage modern. */
  function nextStep(r) {
    if (!r.modern.upstream) return null;
    if (r.stage === 'legacy' || r.stage === 'shadow') return { payload: { stage: 'canary', weight: STEPS[0] }, label: `canary ${fmtWeight(STEPS[0])}` };
    if (r.stage === 'canary') {
      const next = STEPS.find((s) => s > r.weight);
      if (next !== undefined) return { payload: { weight: next }, label: `canary ${fmtWeight(next)}` };
      return { payload: { stage: 'modern' }, label: 'stage modern' };
    }
    return null;
  }

  function promoteAction(r, step) {
    return {
      title: `Promote ${r.name}`,
      what: `Route ${r.name}: ${r.stage}${r.stage === 'canary' ? ' ' + fmtWeight(r.weight) : ''} → ${step.label}. Users already on modern stay there; the change is an override of the file, recorded with your reason.`,
      message: `promote to ${step.label}`,
      button: `Promote to ${step.label}`,
      danger: false,
      path: `/api/v1/routes/${encodeURIComponent(r.name)}/set`,
      payload: (message) => Object.assign({}, step.payload, { message }),
    };
  }

  function setAction(r, stage, weight) {
    const payload = {};
    const parts = [];
    if (stage && stage !== r.stage) { payload.stage = stage; parts.push(`stage ${r.stage} → ${stage}`); }
    if (weight !== null && weight !== r.weight) { payload.weight = weight; parts.push(`weight ${fmtWeight(r.weight)} → ${fmtWeight(weight)}`); }
    const effective = payload.stage || r.stage;
    const note = payload.weight !== undefined && effective !== 'canary' ? ' (the weight takes effect in stage canary)' : '';
    return {
      title: `Set ${r.name}`,
      what: parts.length ? `Route ${r.name}: ${parts.join(', ')}${note}.` : `Route ${r.name} already runs like that.`,
      message: parts.length ? `set ${parts.join(', ')}` : '',
      button: `Set ${r.name}`,
      danger: false,
      path: `/api/v1/routes/${encodeURIComponent(r.name)}/set`,
      payload: (message) => Object.assign({}, payload, { message }),
      empty: parts.length === 0,
    };
  }

  // ---------------------------------------------------------------- polling and views

  let view = null;
  let loop = 0;
  let timer = null;

  /** Refreshes the current view now and then every POLL_MS; a newer call supersedes. */
  async function refreshNow() {
    const id = ++loop;
    clearTimeout(timer);
    const v = view;
    try {
      await v.refresh();
      if (v === view) setConn(true);
    } catch (e) {
      if (v === view) {
        setConn(false, e);
        if (v.failed) v.failed(e);
      }
    }
    if (id === loop) timer = setTimeout(refreshNow, POLL_MS);
  }

  function show(v, navName) {
    view = v;
    for (const a of document.querySelectorAll('[data-nav]')) {
      if (a.dataset.nav === navName) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    main.replaceChildren();
    v.mount(main);
    refreshNow();
  }

  function router() {
    const hash = location.hash || '#/';
    let m;
    if ((m = hash.match(/^#\/routes\/(.+)$/))) show(routeView(decodeURIComponent(m[1])), 'map');
    else if (hash === '#/events') show(eventsView(), 'events');
    else if ((m = hash.match(/^#\/versions(?:\/(\d+))?$/))) show(versionsView(m[1] ? Number(m[1]) : null), 'versions');
    else show(mapView(), 'map');
  }

  function problemNote(e) {
    const p = (e && e.problem) || {};
    return h('div', { class: 'note note-bad', role: 'alert' },
      h('strong', {}, e && e.status ? `${e.status}: ${p.detail || e.message}` : `Cannot reach the admin API: ${e && e.message}`),
      p.fix ? h('p', {}, p.fix) : null);
  }

  function sideCells(side, r, isModern) {
    if (isModern && !side.upstream) {
      return [h('td', { class: 'num muted side-start', colspan: 5, title: 'this route has no modern upstream' }, 'no modern upstream')];
    }
    const l = side.live;
    const errCls = l.error_ratio >= 0.05 ? 'bad' : l.error_ratio > 0 ? 'warn' : '';
    const cells = [
      h('td', { class: 'num side-start', title: `${l.requests} requests in ${l.seconds} s` }, fmtRate(l.rate_per_s)),
      h('td', { class: `num ${errCls}`, title: `${l.errors} responses 5xx or no answer` }, l.requests ? fmtPct(l.error_ratio) : '—'),
    ];
    if (isModern) cells.push(h('td', { class: `num ${l.fallbacks ? 'warn' : ''}`, title: 'modern failures that legacy answered' }, String(l.fallbacks)));
    cells.push(h('td', { class: 'num' }, fmtMs(l.p50_ms)), h('td', { class: 'num' }, fmtMs(l.p99_ms)));
    return cells;
  }

  function shareBar(r) {
    const live = r.legacy.live.requests + r.modern.live.requests;
    const share = Math.max(0, Math.min(100, r.modern_share));
    const fill = h('span', { class: 'bar-fill' });
    fill.style.width = `${share}%`;
    return h('div', { class: 'share' },
      h('div', { class: 'bar', role: 'progressbar', 'aria-label': `share of ${r.name} requests answered by modern`, 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': share.toFixed(1) }, fill),
      h('span', { class: 'share-label' }, live ? `${share.toFixed(1)}%` : 'no traffic'));
  }

  function overrideTag(r) {
    if (!r.overridden) return null;
    const file = `${r.file.stage}${r.file.stage === 'canary' ? ' ' + fmtWeight(r.file.weight) : ''}`;
    return h('span', { class: 'override', title: 'a runtime override (API, CLI or dashboard) is in force; the file says otherwise' }, `override · file: ${file}`);
  }

  // ---- data integrity ([[verify]] jobs)

  const verifyBadge = (outcome) => h('span', { class: `verify verify-${outcome || 'none'}` }, outcome || 'not run yet');

  function verifyLine(j) {
    const when = j.finished_at ? ago(j.finished_at) : 'waiting for its first run';
    const counts = j.outcome === 'different' || j.outcome === 'lagging'
      ? ` · ${j.missing} missing, ${j.extra} extra, ${j.changed} changed` : '';
    return h('div', { class: 'verify-line', dataset: { job: j.job, outcome: j.outcome || 'none' }, title: j.error ? `${j.job}: ${j.error}` : `job ${j.job}${j.finished_at ? ' · last run ' + fmtDateTime(j.finished_at) : ''}` },
      verifyBadge(j.outcome),
      h('span', { class: 'verify-tables' }, `${j.source_table} → ${j.target_table}`),
      h('span', { class: 'verify-when muted' }, `${when}${counts}`));
  }

  function integrityCell(jobs, route) {
    const mine = jobs.filter((j) => j.route === route);
    if (!mine.length) return h('td', { class: 'integrity muted', title: 'no [[verify]] job names this route' }, '—');
    return h('td', { class: 'integrity' }, mine.map(verifyLine));
  }

  function stageCell(r) {
    return [stageBadge(r.stage), r.stage === 'canary' ? h('span', { class: 'weight' }, fmtWeight(r.weight)) : null];
  }

  // ---- the migration map

  function mapView() {
    let routes = [];
    let tbody, drift, summary, error;
    return {
      mount(root) {
        const rollAll = h('button', { type: 'button', class: 'danger', onclick: () => confirmAction(rollbackAllAction(routes)) }, 'Roll back all routes…');
        drift = h('div', { class: 'note note-warn', role: 'status', hidden: true });
        error = h('div');
        summary = h('p', { class: 'sub' }, 'Routes in match order (first match wins).');
        tbody = h('tbody');
        root.append(
          h('div', { class: 'page-head' },
            h('div', {}, h('h1', {}, 'Migration map'), summary),
            h('div', { class: 'page-actions' }, rollAll)),
          drift,
          error,
          h('table', { class: 'map', id: 'map' },
            h('caption', { class: 'visually-hidden' }, 'Routes with their stage, traffic share on modern and live numbers per side'),
            h('colgroup', {}, h('col', { class: 'c-order' }), h('col', { class: 'c-route' }), h('col', { class: 'c-stage' }), h('col', { class: 'c-share' }),
              h('col', { span: 4 }), h('col', { span: 5 }), h('col', { class: 'c-integrity' }), h('col', { class: 'c-actions' })),
            h('thead', {},
              h('tr', {},
                h('th', { rowspan: 2, scope: 'col' }, '#'),
                h('th', { rowspan: 2, scope: 'col' }, 'Route'),
                h('th', { rowspan: 2, scope: 'col' }, 'Stage'),
                h('th', { rowspan: 2, scope: 'col' }, 'On modern'),
                h('th', { colspan: 4, scope: 'colgroup', class: 'side-head side-start legacy' }, 'Legacy'),
                h('th', { colspan: 5, scope: 'colgroup', class: 'side-head side-start modern' }, 'Modern'),
                h('th', { rowspan: 2, scope: 'col', class: 'side-start', title: 'the latest run of each [[verify]] job that names the route: its tables compared row by row' }, 'Data integrity'),
                h('th', { rowspan: 2, scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions'))),
              h('tr', {},
                ['req/s', 'errors', 'p50', 'p99'].map((t, i) => h('th', { scope: 'col', class: `num ${i === 0 ? 'side-start' : ''}` }, t)),
                ['req/s', 'errors', 'fallb.', 'p50', 'p99'].map((t, i) => h('th', { scope: 'col', class: `num ${i === 0 ? 'side-start' : ''}`, title: t === 'fallb.' ? 'fallbacks: modern failed, legacy answered' : null }, t)))),
            tbody));
      },
      async refresh() {
        const [data, jobs] = await Promise.all([
          api('/api/v1/routes'),
          api('/api/v1/verify').catch(() => []),
        ]);
        routes = data.routes;
        error.replaceChildren();
        setVersion(data.version);
        summary.textContent = `Routes in match order (first match wins) · live numbers over the last ${data.window_seconds} s · running config v${data.version ?? '?'}`;
        drift.hidden = !data.file_drift;
        drift.textContent = data.file_drift ? `The config file changed: ${data.file_drift}` : '';
        tbody.replaceChildren(...routes.map((r) => {
          const usesModern = r.stage !== 'legacy' || r.weight !== 0;
          return h('tr', { dataset: { route: r.name, stage: r.stage }, class: r.overridden ? 'is-overridden' : null },
            h('td', { class: 'num muted' }, String(r.order)),
            h('td', {}, h('div', { class: 'route-name' }, routeLink(r.name)), h('div', { class: 'match' }, r.match)),
            h('td', {}, h('div', {}, stageCell(r)), overrideTag(r)),
            h('td', {}, shareBar(r)),
            sideCells(r.legacy, r, false),
            sideCells(r.modern, r, true),
            integrityCell(jobs, r.name),
            h('td', { class: 'actions' }, usesModern
              ? h('button', { type: 'button', class: 'danger small', 'aria-label': `Roll back ${r.name}`, onclick: () => confirmAction(rollbackAction(r)) }, 'Roll back…')
              : null));
        }));
      },
      failed(e) {
        error.replaceChildren(problemNote(e));
      },
    };
  }

  // ---- a route: numbers, actions, charts, events

  function routeView(name) {
    let current = null;
    let els = {};
    let formReady = false;
    return {
      mount(root) {
        els.title = h('h1', {}, name);
        els.badges = h('div', { class: 'badges' });
        els.meta = h('dl', { class: 'meta' });
        els.error = h('div');
        els.rollback = h('button', { type: 'button', class: 'danger', id: 'rollback-route', onclick: () => current && confirmAction(rollbackAction(current)) }, 'Roll back to legacy…');
        els.promote = h('button', { type: 'button', class: 'primary', id: 'promote-route', onclick: () => { const s = current && nextStep(current); if (s) confirmAction(promoteAction(current, s)); } }, 'Promote…');
        els.stage = h('select', { id: 'set-stage' }, STAGES.map((s) => h('option', { value: s }, s)));
        els.weight = h('input', { id: 'set-weight', type: 'number', min: 0, max: 100, step: 0.01, inputmode: 'decimal', required: true });
        const setForm = h('form', { class: 'set-form', onsubmit: (ev) => {
          ev.preventDefault();
          if (!current) return;
          const w = els.weight.value === '' ? null : Number(els.weight.value);
          if (w !== null && !(w >= 0 && w <= 100)) { els.weight.setCustomValidity('a percentage from 0 to 100'); els.weight.reportValidity(); return; }
          els.weight.setCustomValidity('');
          const a = setAction(current, els.stage.value, w);
          if (a.empty) { showOutcome(a, { ok: true, status: 200, body: { events: [], changes: [] } }); return; }
          confirmAction(a);
        } },
        h('label', { for: 'set-stage' }, 'Stage'), els.stage,
        h('label', { for: 'set-weight' }, 'Weight %'), els.weight,
        h('button', { type: 'submit', id: 'set-route' }, 'Set…'));
        els.cards = h('div', { class: 'cards' });
        els.charts = h('div', { class: 'charts' });
        els.chartNote = h('p', { class: 'sub' });
        els.events = h('tbody');
        els.integrity = h('div', { id: 'route-integrity' });
        root.append(
          h('p', { class: 'crumb' }, h('a', { href: '#/' }, '← Migration map')),
          h('div', { class: 'page-head' }, h('div', {}, h('div', { class: 'title-row' }, els.title, els.badges), els.meta)),
          els.error,
          h('section', { class: 'panel actions-panel', 'aria-label': 'Change this route' },
            h('div', { class: 'action-buttons' }, els.rollback, els.promote),
            setForm),
          els.cards,
          h('section', { 'aria-labelledby': 'charts-title' },
            h('div', { class: 'section-head' }, els.chartTitle = h('h2', { id: 'charts-title' }, 'Last 15 minutes'), els.chartNote),
            els.charts),
          h('section', { 'aria-labelledby': 'route-integrity-title' },
            h('h2', { id: 'route-integrity-title' }, 'Data integrity'),
            els.integrity),
          h('section', { 'aria-labelledby': 'route-events-title' },
            h('h2', { id: 'route-events-title' }, 'Events of this route'),
            h('table', { class: 'events', id: 'route-events' },
              h('thead', {}, h('tr', {}, ['Time', 'Kind', 'Actor', 'Message', 'What changed'].map((t) => h('th', { scope: 'col' }, t)))),
              els.events)));
      },
      async refresh() {
        const enc = encodeURIComponent(name);
        const [r, applied, reverted, jobs] = await Promise.all([
          api(`/api/v1/routes/${enc}?seconds=${CHART_SECONDS}`),
          api('/api/v1/events?kind=config.applied&limit=50').catch(() => []),
          api('/api/v1/events?kind=config.reverted&limit=50').catch(() => []),
          api('/api/v1/verify').catch(() => []),
        ]);
        const mine = jobs.filter((j) => j.route === name);
        const histories = await Promise.all(mine.map((j) => api(`/api/v1/verify/${encodeURIComponent(j.job)}?limit=10`).catch(() => ({ ...j, runs: [] }))));
        current = r;
        els.error.replaceChildren();
        document.title = `${r.name} · ficus`;
        els.badges.replaceChildren(...[...stageCell(r), overrideTag(r)].filter(Boolean));
        els.meta.replaceChildren(
          h('dt', {}, 'match'), h('dd', {}, h('code', {}, r.match)),
          h('dt', {}, 'sticky'), h('dd', {}, h('code', {}, r.sticky)),
          h('dt', {}, 'legacy upstream'), h('dd', {}, r.legacy.upstream || '—'),
          h('dt', {}, 'modern upstream'), h('dd', {}, r.modern.upstream || '—'),
          h('dt', {}, 'file says'), h('dd', {}, `${r.file.stage}${r.file.stage === 'canary' ? ' ' + fmtWeight(r.file.weight) : ''}`),
          h('dt', {}, 'match order'), h('dd', {}, `#${r.order}`));
        const usesModern = r.stage !== 'legacy' || r.weight !== 0;
        els.rollback.disabled = !usesModern;
        els.rollback.title = usesModern ? '' : 'already on legacy';
        const step = nextStep(r);
        els.promote.disabled = !step;
        els.promote.textContent = step ? `Promote to ${step.label}…` : 'Promote…';
        els.promote.title = step ? '' : r.modern.upstream ? 'fully on modern; retiring legacy is a change to the file' : 'this route has no modern upstream';
        if (!formReady) {
          els.stage.value = r.stage;
          els.weight.value = String(r.weight);
          formReady = true;
        }
        els.cards.replaceChildren(statCard('legacy', r.legacy, r), statCard('modern', r.modern, r),
          h('div', { class: 'card share-card' }, h('h3', {}, 'Answered by modern'), shareBar(r), h('p', { class: 'muted' }, `configured: ${r.stage}${r.stage === 'canary' ? ' ' + fmtWeight(r.weight) + ' of users' : ''}`)));
        const markers = markersFor(r.events, applied.concat(reverted));
        drawCharts(els.charts, els.chartTitle, els.chartNote, r, markers);
        els.integrity.replaceChildren(...(histories.length ? histories.map(verifyHistory)
          : [h('p', { class: 'muted' }, 'No [[verify]] job names this route: add one to ficus.toml to compare its tables on a schedule.')]));
        els.events.replaceChildren(...(r.events.length ? r.events.map(eventRow(false)) : [h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No events for this route yet.'))]));
      },
      failed(e) {
        els.error.replaceChildren(problemNote(e));
      },
      changed() {
        formReady = false;
      },
    };
  }

  function verifyHistory(j) {
    const rows = j.runs.map((run) => h('tr', { dataset: { outcome: run.outcome } },
      h('td', { class: 'nowrap' }, fmtDateTime(run.finished_at)),
      h('td', {}, verifyBadge(run.outcome)),
      h('td', { class: 'num' }, num(run.rows_compared, 0)),
      h('td', { class: 'num' }, String(run.missing)),
      h('td', { class: 'num' }, String(run.extra)),
      h('td', { class: 'num' }, String(run.changed)),
      h('td', { class: 'num muted' }, fmtMs(run.finished_at - run.started_at)),
      h('td', { class: 'verify-error' }, run.error || '')));
    return h('div', { class: 'verify-job', dataset: { job: j.job } },
      h('h3', {}, h('code', {}, j.job), ' ', h('span', { class: 'muted' }, `${j.source_table} → ${j.target_table}${j.every_ms ? ' · every ' + fmtMs(j.every_ms) : ''}`)),
      h('table', { class: 'events verify-runs' },
        h('thead', {}, h('tr', {}, ['Finished', 'Outcome', 'Rows', 'Missing', 'Extra', 'Changed', 'Took', 'Error'].map((t, i) => h('th', { scope: 'col', class: i >= 2 && i <= 6 ? 'num' : null }, t)))),
        h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No runs yet.')))));
  }

  function statCard(sideName, side, r) {
    const title = h('h3', {}, h('span', { class: `swatch swatch-${sideName}` }), sideName === 'legacy' ? 'Legacy' : 'Modern', side.upstream ? h('span', { class: 'muted' }, ` · ${side.upstream}`) : null);
    if (!side.upstream) return h('div', { class: 'card' }, title, h('p', { class: 'muted' }, 'no modern upstream'));
    const l = side.live;
    const row = (k, v, cls) => [h('dt', {}, k), h('dd', { class: cls || null }, v)];
    return h('div', { class: 'card', dataset: { side: sideName } }, title,
      h('dl', { class: 'stats' },
        row('req/s', fmtRate(l.rate_per_s)),
        row('errors', l.requests ? `${fmtPct(l.error_ratio)} (${l.errors})` : '—', l.error_ratio >= 0.05 ? 'bad' : l.error_ratio > 0 ? 'warn' : ''),
        sideName === 'modern' ? row('fallbacks', String(l.fallbacks), l.fallbacks ? 'warn' : '') : null,
        row('p50', fmtMs(l.p50_ms)),
        row('p99', fmtMs(l.p99_ms))),
      h('p', { class: 'muted small' }, `last ${l.seconds} s · ${l.requests} requests`));
  }

  function markersFor(routeEvents, configEvents) {
    const seen = new Set();
    const out = [];
    for (const e of routeEvents.concat(configEvents)) {
      if (seen.has(e.id)) continue;
      seen.add(e.id);
      let label;
      if (e.kind === 'route.rollback') label = 'rollback';
      else if (e.kind === 'route.set') label = 'set';
      else if (e.kind === 'config.applied') label = `v${e.config_version ?? '?'}`;
      else if (e.kind === 'config.reverted') label = `revert v${e.config_version ?? '?'}`;
      else label = e.kind;
      const what = eventSummary(e);
      out.push({
        t: e.at / 1000,
        label,
        kind: e.kind.replace(/\./g, '-'),
        title: `${fmtTime(e.at)} ${e.kind}${e.route ? ' ' + e.route : ''} by ${e.actor}: ${e.message}${what ? ' (' + what + ')' : ''}`,
      });
    }
    return out.sort((a, b) => a.t - b.t);
  }

  // ---------------------------------------------------------------- charts (inline SVG)

  /** Seconds between time-axis labels, for about six labels over `span` seconds. */
  function tickStep(span) {
    for (const s of [5, 10, 15, 30, 60, 120, 180, 300]) if (span / s <= 7) return s;
    return 600;
  }

  function drawCharts(container, title, note, r, markers) {
    const legacy = r.series.legacy || [];
    const modern = r.series.modern || [];
    const all = legacy.concat(modern);
    const lastT = all.reduce((m, s) => Math.max(m, s.t), 0);
    const firstT = all.reduce((m, s) => Math.min(m, s.t), Infinity);
    const t1 = lastT || Math.floor(Date.now() / 1000);
    // The last 15 minutes; while the gateway has run for less, the time it has run (and the
    // changes just before), so a fresh start is not a sliver at the right edge.
    let t0 = t1 - CHART_SECONDS;
    if (Number.isFinite(firstT)) {
      const recent = markers.filter((m) => m.t >= t0 && m.t <= t1).map((m) => m.t);
      const start = Math.floor(Math.min(firstT - 1, ...recent)) - 2;
      t0 = Math.max(t0, Math.min(start, t1 - 60));
    }
    const hasModern = Boolean(r.modern.upstream);
    const pts = (series, f) => series.map((s) => [s.t, f(s)]);
    const sides = (f, extra) => {
      const out = [{ label: 'legacy', color: SIDE_COLORS.legacy, points: pts(legacy, f) }];
      if (hasModern) out.push({ label: 'modern', color: SIDE_COLORS.modern, points: pts(modern, f) });
      return out.concat(extra || []);
    };
    const recorded = Math.max(legacy.length, modern.length);
    title.textContent = 'Last 15 minutes';
    note.textContent = !recorded
      ? 'No data yet: the telemetry closes a one-second slot every second.'
      : `Per second${recorded < CHART_SECONDS ? `, the ${recorded} s recorded since the gateway started` : ''}. Dashed lines mark config changes and rollbacks (hover or focus them for who and why).`;
    const width = Math.max(320, container.clientWidth || 900);
    const charts = [
      { id: 'chart-requests', title: 'Requests per second', unit: '/s', series: sides((s) => s.requests) },
      { id: 'chart-errors', title: 'Errors per second', unit: '/s', series: sides((s) => s.errors, hasModern ? [{ label: 'modern fallbacks', color: SIDE_COLORS.modern, dash: '4 3', points: pts(modern, (s) => s.fallbacks) }] : []) },
      { id: 'chart-p99', title: 'p99 latency', unit: 'ms', series: sides((s) => s.p99_ms) },
    ];
    container.replaceChildren(...charts.map((c) => chart(Object.assign(c, { t0, t1, width, markers }))));
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  function chart(c) {
    const W = c.width;
    const H = 190;
    const m = { l: 52, r: 16, t: 34, b: 22 };
    const iw = W - m.l - m.r;
    const ih = H - m.t - m.b;
    let max = 0;
    for (const s of c.series) for (const [t, v] of s.points) if (v !== null && t >= c.t0 && v > max) max = v;
    const ymax = niceMax(max);
    const X = (t) => m.l + ((t - c.t0) / (c.t1 - c.t0)) * iw;
    const Y = (v) => m.t + ih - (v / ymax) * ih;
    const root = svg('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${c.title}, per side, from ${fmtTime(c.t0 * 1000)} to ${fmtTime(c.t1 * 1000)}`, class: 'chart-svg' });

    for (let i = 0; i <= 4; i++) {
      const v = (ymax * i) / 4;
      const y = Y(v);
      root.append(svg('line', { x1: m.l, x2: W - m.r, y1: y, y2: y, class: i === 0 ? 'axis' : 'grid' }));
      root.append(svg('text', { x: m.l - 6, y: y + 4, class: 'tick', 'text-anchor': 'end' }, num(v, 2)));
    }
    const step = tickStep(c.t1 - c.t0);
    for (let t = Math.ceil(c.t0 / step) * step; t <= c.t1; t += step) {
      const x = X(t);
      const d = new Date(t * 1000);
      root.append(svg('line', { x1: x, x2: x, y1: m.t, y2: m.t + ih, class: 'grid grid-v' }));
      const label = step < 60 ? fmtTime(t * 1000) : `${pad(d.getHours())}:${pad(d.getMinutes())}`;
      root.append(svg('text', { x, y: H - 6, class: 'tick', 'text-anchor': 'middle' }, label));
    }

    // Markers: a dashed line per change; labels take the first of two lanes above the plot
    // where they do not overlap the previous one.
    const laneEnd = [-Infinity, -Infinity];
    for (const mk of c.markers) {
      if (mk.t < c.t0 || mk.t > c.t1 + 1) continue;
      const x = X(Math.min(mk.t, c.t1));
      const w = 7 * mk.label.length + 6;
      const right = x + 3 + w > W;
      const [from, to] = right ? [x - 3 - w, x] : [x, x + 3 + w];
      let lane = laneEnd.findIndex((end) => end < from);
      if (lane < 0) lane = laneEnd[0] <= laneEnd[1] ? 0 : 1;
      laneEnd[lane] = to;
      root.append(svg('g', { class: `marker marker-${mk.kind}`, tabindex: 0, 'aria-label': mk.title },
        svg('title', {}, mk.title),
        svg('line', { x1: x, x2: x, y1: m.t - 18 + lane * 14, y2: m.t + ih }),
        svg('rect', { x: x - 5, y: m.t - 30, width: 10, height: ih + 30, class: 'marker-hit' }),
        svg('text', { x: right ? x - 3 : x + 3, y: m.t - 20 + lane * 14, 'text-anchor': right ? 'end' : 'start', class: 'marker-label' }, mk.label)));
    }

    let drawn = 0;
    for (const s of c.series) {
      let d = '';
      let pen = false;
      let prevT = null;
      let n = 0;
      for (const [t, v] of s.points) {
        if (t < c.t0) continue;
        if (v === null || v === undefined) { pen = false; prevT = t; continue; }
        const gap = prevT !== null && t - prevT > 1;
        d += `${pen && !gap ? 'L' : 'M'}${X(t).toFixed(1)},${Y(v).toFixed(1)}`;
        pen = true;
        prevT = t;
        n++;
      }
      drawn += n;
      if (n) root.append(svg('path', { d, class: 'series', stroke: s.color, 'stroke-dasharray': s.dash || null, dataset: { side: s.label, points: n } }));
    }
    if (!drawn) root.append(svg('text', { x: m.l + iw / 2, y: m.t + ih / 2, class: 'empty', 'text-anchor': 'middle' }, 'no data in the last 15 minutes'));

    // Hover: a cursor line and the values of that second.
    const cursor = svg('line', { y1: m.t, y2: m.t + ih, class: 'cursor', visibility: 'hidden' });
    root.append(cursor);
    const readout = h('div', { class: 'readout', hidden: true });
    root.addEventListener('mousemove', (ev) => {
      const box = root.getBoundingClientRect();
      const x = ev.clientX - box.left;
      if (x < m.l || x > W - m.r) { cursor.setAttribute('visibility', 'hidden'); readout.hidden = true; return; }
      const t = Math.round(c.t0 + ((x - m.l) / iw) * (c.t1 - c.t0));
      cursor.setAttribute('x1', X(t));
      cursor.setAttribute('x2', X(t));
      cursor.setAttribute('visibility', 'visible');
      readout.replaceChildren(h('b', {}, fmtTime(t * 1000)), ...c.series.map((s) => {
        const p = s.points.find((q) => q[0] === t);
        const v = p ? p[1] : null;
        return h('span', {}, h('span', { class: 'swatch', style: { background: s.color } }), ` ${s.label} ${v === null || v === undefined ? '—' : c.unit === 'ms' ? fmtMs(v) : num(v, 2) + c.unit}`);
      }));
      readout.hidden = false;
      readout.style.left = `${Math.min(x + 12, W - 220)}px`;
    });
    root.addEventListener('mouseleave', () => { cursor.setAttribute('visibility', 'hidden'); readout.hidden = true; });

    const legend = h('div', { class: 'legend' }, c.series.map((s) => {
      const sw = h('span', { class: `swatch${s.dash ? ' swatch-dashed' : ''}` });
      sw.style.borderColor = s.color;
      if (!s.dash) sw.style.background = s.color;
      return h('span', { class: 'legend-item' }, sw, s.label);
    }));
    return h('figure', { class: 'chart', id: c.id },
      h('figcaption', {}, h('span', { class: 'chart-title' }, `${c.title}${c.unit === 'ms' ? ' (ms)' : ''}`), legend),
      h('div', { class: 'chart-body' }, root, readout));
  }

  // ---- the events timeline

  function eventRow(withRoute) {
    return (e) => h('tr', { dataset: { event: e.id, kind: e.kind } },
      h('td', { class: 'nowrap', title: new Date(e.at).toISOString() }, fmtDateTime(e.at), h('div', { class: 'muted small' }, ago(e.at))),
      h('td', {}, kindBadge(e.kind)),
      withRoute ? h('td', {}, e.route ? routeLink(e.route) : h('span', { class: 'muted' }, 'all')) : null,
      h('td', {}, e.actor),
      h('td', { class: 'message' }, e.message),
      h('td', {}, h('span', { class: 'summary' }, eventSummary(e)),
        e.config_version !== null && e.config_version !== undefined ? h('div', {}, h('a', { href: `#/versions/${e.config_version}`, class: 'small' }, `config v${e.config_version}`)) : null,
        h('details', {}, h('summary', {}, 'data'), h('pre', {}, JSON.stringify(e.data, null, 2)))));
  }

  function eventsView() {
    let tbody, routeFilter, kindFilter, sig = '';
    return {
      mount(root) {
        routeFilter = h('input', { id: 'events-route', type: 'search', placeholder: 'any route', spellcheck: 'false', onchange: () => { sig = ''; refreshNow(); } });
        kindFilter = h('select', { id: 'events-kind', onchange: () => { sig = ''; refreshNow(); } },
          h('option', { value: '' }, 'any kind'),
          ['config.applied', 'config.reverted', 'route.set', 'route.rollback'].map((k) => h('option', { value: k }, k)));
        tbody = h('tbody');
        root.append(
          h('div', { class: 'page-head' },
            h('div', {}, h('h1', {}, 'Events'), h('p', { class: 'sub' }, 'The audit log, newest first: every change with who made it and why. Append-only.')),
            h('div', { class: 'filters' }, h('label', { for: 'events-route' }, 'Route'), routeFilter, h('label', { for: 'events-kind' }, 'Kind'), kindFilter)),
          h('table', { class: 'events', id: 'events' },
            h('thead', {}, h('tr', {}, ['Time', 'Kind', 'Route', 'Actor', 'Message', 'What changed'].map((t) => h('th', { scope: 'col' }, t)))),
            tbody));
      },
      async refresh() {
        const q = new URLSearchParams({ limit: '200' });
        if (routeFilter.value.trim()) q.set('route', routeFilter.value.trim());
        if (kindFilter.value) q.set('kind', kindFilter.value);
        const events = await api(`/api/v1/events?${q}`);
        // Redraw only when something new arrived, so an opened "data" stays open.
        const s = events.map((e) => e.id).join(',');
        if (s === sig) return;
        sig = s;
        tbody.replaceChildren(...(events.length ? events.map(eventRow(true)) : [h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No events match.'))]));
      },
    };
  }

  // ---- config versions and their diffs

  function versionsView(selected) {
    let list, diffBox, sig = '', shown = null;
    const diffs = new Map();
    return {
      mount(root) {
        list = h('ol', { class: 'versions', id: 'versions' });
        diffBox = h('section', { class: 'panel diff-panel', id: 'version-diff', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading…'));
        root.append(
          h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Config versions'),
            h('p', { class: 'sub' }, 'Every applied config file, newest first. Runtime overrides are not versions: they are events (see Events).'))),
          h('div', { class: 'versions-layout' }, h('nav', { 'aria-label': 'Config versions' }, list), diffBox));
      },
      async refresh() {
        const versions = await api('/api/v1/config/versions?limit=100');
        const latest = versions.length ? versions[0].number : null;
        setVersion(latest);
        const want = selected ?? latest;
        const s = versions.map((v) => v.number).join(',') + `|${want}`;
        if (s !== sig) {
          sig = s;
          list.replaceChildren(...versions.map((v) => h('li', {},
            h('a', { href: `#/versions/${v.number}`, class: 'version-link', 'aria-current': v.number === want ? 'true' : null },
              h('span', { class: 'version-number' }, `v${v.number}`),
              v.number === latest ? h('span', { class: 'running' }, 'running') : null,
              h('span', { class: 'version-message' }, v.message),
              h('span', { class: 'muted small' }, `${fmtDateTime(v.created_at)} · ${v.author} · ${v.sha256.slice(0, 12)}`)))));
        }
        if (want === null) { diffBox.replaceChildren(h('p', { class: 'muted' }, 'No config version stored yet.')); return; }
        if (shown === want) return;
        let d = diffs.get(want);
        if (!d) {
          d = await api(`/api/v1/config/versions/${want}/diff`);
          diffs.set(want, d);
        }
        shown = want;
        diffBox.replaceChildren(
          h('h2', {}, d.from ? `v${d.to}: changes from v${d.from}` : `v${d.to}: the first version`),
          d.changes.length
            ? h('ul', { class: 'changes' }, d.changes.map((c) => h('li', { class: `change change-${c[0] === '+' ? 'add' : c[0] === '-' ? 'del' : 'mod'}` }, h('code', {}, c))))
            : h('p', { class: 'muted' }, d.from ? 'No route-level changes (comments, formatting or unparsed text only).' : 'Every route is new.'),
          h('h3', {}, 'File diff'),
          h('pre', { class: 'diff', tabindex: 0, 'aria-label': 'line diff: lines starting with + were added, - removed' },
            d.lines.map((l) => h('span', { class: l.startsWith('+ ') ? 'add' : l.startsWith('- ') ? 'del' : 'ctx' }, l + '\n'))));
      },
      failed(e) {
        diffBox.replaceChildren(problemNote(e));
      },
    };
  }

  // ---------------------------------------------------------------- start

  updateTokenButton();
  window.addEventListener('hashchange', router);
  router();
})();
