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
  /** A difference rate (a fraction): 12.4%, 0.35%, 0.012%; exact 0 and 100 without decimals. */
  function fmtDiffRate(ratio) {
    const p = ratio * 100;
    if (p <= 0) return '0%';
    if (p >= 100) return '100%';
    return (p >= 1 ? p.toFixed(1) : String(Number(p.toPrecision(2)))) + '%';
  }
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
    if (e.kind && e.kind.startsWith('rollout.') && d.rollout) {
      // rollout.step is the step it is at after the event; step_weight the weight judged.
      const parts = [`step ${Number(d.rollout.step) + 1}, ${d.rollout.status ? d.rollout.status.replace('_', ' ') : '?'}`];
      if (d.stage && d.weight && typeof d.stage === 'object' && (d.stage.from !== d.stage.to || d.weight.from !== d.weight.to)) {
        parts.push(eventSummary(Object.assign({}, e, { kind: 'route.set' })));
      }
      if (d.verdict) parts.push(`verdict ${d.verdict.decision}${d.step_weight !== undefined ? ` at ${fmtWeight(d.step_weight)}` : ''}`);
      return parts.join(' · ');
    }
    if (d.stage && d.weight && typeof d.stage === 'object') {
      const part = (name, x, f) => (x.from === x.to ? `${name} ${f(x.to)}` : `${name} ${f(x.from)} → ${f(x.to)}`);
      const w = (v) => (v === null || v === undefined ? '?' : fmtWeight(v));
      const s = (v) => v || '?';
      return `${part('stage', d.stage, s)}, ${part('weight', d.weight, w)}`;
    }
    if ((e.kind === 'flag.set' || e.kind === 'flag.reset') && d.flag) {
      // A flag override: null is the file's own (its rules, its switch).
      const v = (x) => (x === null || x === undefined ? '(rules)' : x);
      const s = (x) => (x === null || x === undefined ? '(file)' : x ? 'enabled' : 'disabled');
      const parts = [];
      if (d.variant && d.variant.from !== d.variant.to) parts.push(`variant ${v(d.variant.from)} → ${v(d.variant.to)}`);
      if (d.enabled && d.enabled.from !== d.enabled.to) parts.push(`${s(d.enabled.from)} → ${s(d.enabled.to)}`);
      return `flag ${d.flag}: ${parts.length ? parts.join(', ') : 'no change'}`;
    }
    if (e.kind === 'shadow.reset') {
      const n = (x) => Number(x) || 0;
      return `comparisons forgotten: ${n(d.endpoints)} endpoints, ${n(d.fields)} field keys, ${n(d.samples)} samples stored`;
    }
    if (e.kind === 'record.started') {
      // The runtime recording's settings: sample in basis points, the end, the size cap.
      const parts = [`sample ${d.sample_bp === null || d.sample_bp === undefined ? '100%' : fmtWeight(Number(d.sample_bp) / 100)}`];
      parts.push(d.until_ms ? `until ${fmtDateTime(d.until_ms)}` : 'until stopped');
      if (d.max_size) parts.push(`at most ${fmtBytes(d.max_size)} per node`);
      return `recording: ${parts.join(', ')}`;
    }
    if (e.kind === 'record.stopped') return 'recording stopped on every node';
    if (e.kind === 'cache.purged') return `purged: ${d.purged || (d.path ? d.path : 'every cached response')}`;
    if (typeof e.kind === 'string' && e.kind.startsWith('migration.') && d.migration && typeof d.migration === 'object' && d.migration.status) {
      // The plan's state after the event: its step (by name; none once completed) and status.
      const m = d.migration;
      return `plan ${m.name}: ${m.status === 'completed' ? 'every step done' : `step ${Number(m.step) + 1} (${m.step_name}), ${m.status}`}${d.gate ? ` · gate ${d.gate.outcome}` : ''}`;
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
    // Reads need the token too when the admin API listens beyond loopback.
    const headers = { accept: 'application/json' };
    if (session.token) headers.authorization = `Bearer ${session.token}`;
    const resp = await fetch(path, { headers, cache: 'no-store' });
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
    $('confirm-path').value = '';
    $('confirm-path-row').hidden = !action.askPath;
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
    const extra = { path: action.askPath ? $('confirm-path').value.trim() : '' };
    const typed = $('confirm-token').value.trim();
    if (typed) session.token = typed;
    pendingAction = null;
    $('confirm-dialog').close();
    showPending(action);
    let outcome;
    try {
      outcome = await mutate(action.path, action.payload(message, extra));
    } catch (e) {
      outcome = { ok: false, status: 0, body: { title: 'Network error', detail: `the admin API could not be reached (${e.message}); nothing is known to have changed: check the map` } };
    }
    if (outcome.status === 401) session.token = '';
    showOutcome(action, outcome);
    if (outcome.ok && action.done) action.done();
    if (outcome.ok && view && view.changed) view.changed();
    refreshNow();
  });

  function resultBox(cls, ...children) {
    const box = $('result');
    box.className = `result ${cls}`;
    // replaceChildren would show a null as the text "null": leave absent parts out.
    box.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false), h('button', { type: 'button', class: 'result-close', onclick: () => { box.hidden = true; } }, 'Dismiss'));
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

  function purgeCacheAction(r) {
    const c = r.protection && r.protection.cache;
    const now = c ? ` (now ${num(c.entries, 0)} entr${c.entries === 1 ? 'y' : 'ies'}, ${fmtBytes(c.bytes)})` : '';
    return {
      title: `Purge the cache of ${r.name}`,
      what: `Forgets ${r.name}'s cached answers${now}, on both sides, or only those of one path (below); the next requests go to the upstream again. Recorded as a cache.purged event.`,
      message: 'cache purged from the dashboard',
      button: 'Purge cache',
      danger: true,
      askPath: true,
      path: `/api/v1/cache/${encodeURIComponent(r.name)}/purge`,
      payload: (message, extra) => (extra && extra.path ? { message, path: extra.path } : { message }),
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
    else if (hash === '#/fleet') show(fleetView(), 'fleet');
    else if (hash === '#/slo') show(sloView(), 'slo');
    else if ((m = hash.match(/^#\/slo\/(.+)$/))) show(sloRouteView(decodeURIComponent(m[1])), 'slo');
    else if (hash === '#/flags') show(flagsView(), 'flags');
    else if ((m = hash.match(/^#\/flags\/(.+)$/))) show(flagView(decodeURIComponent(m[1])), 'flags');
    else if (hash === '#/recordings') show(recordingsView(), 'recordings');
    else if (hash === '#/replays') show(replaysView(), 'replays');
    else if ((m = hash.match(/^#\/replays\/(\d+)$/))) show(replayView(Number(m[1])), 'replays');
    else if (hash === '#/migrations') show(migrationsView(), 'migrations');
    else if ((m = hash.match(/^#\/migrations\/(.+)$/))) show(migrationView(decodeURIComponent(m[1])), 'migrations');
    else show(mapView(), 'map');
  }

  function problemNote(e) {
    const p = (e && e.problem) || {};
    return h('div', { class: 'note note-bad', role: 'alert' },
      h('strong', {}, e && e.status ? `${e.status}: ${p.detail || e.message}` : `Cannot reach the admin API: ${e && e.message}`),
      p.fix ? h('p', {}, p.fix) : null,
      e && e.status === 401 ? h('button', { type: 'button', id: 'read-token', onclick: openTokenDialog }, 'Set the admin token') : null);
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

  // ---- shadow comparisons (GET /api/v1/diffs)

  const DROP_REASONS = [['queue_full', 'queue full'], ['too_large', 'too large'], ['incomplete', 'incomplete'], ['closed', 'closed']];
  const droppedTotal = (c) => DROP_REASONS.reduce((n, [k]) => n + (Number(c[`dropped_${k}`]) || 0), 0);
  /** "3 queue full, 1 too large", the reasons that occurred. */
  const dropReasons = (c) => DROP_REASONS.filter(([k]) => c[`dropped_${k}`] > 0).map(([k, label]) => `${num(c[`dropped_${k}`], 0)} ${label}`).join(', ');
  const noiseFieldCount = (rep) => rep.endpoints.reduce((n, ep) => n + ep.fields.filter((f) => f.verdict !== 'real').length, 0);
  const realFieldCount = (rep) => rep.endpoints.reduce((n, ep) => n + ep.fields.filter((f) => f.verdict === 'real').length, 0);
  const rateClass = (rate) => (rate >= 0.05 ? 'bad' : rate > 0 ? 'warn' : 'ok');

  /** The map's Differences cell of a route: the real-difference rate, or why there is none. */
  function diffsCell(d, route) {
    if (!d) return h('td', { class: 'diffs side-start muted', dataset: { state: 'none' }, title: 'this route does not mirror to modern (stage shadow, or [route.shadow] canary = true)' }, '—');
    const c = d.counters;
    const rep = d.report && d.report.compared > 0 ? d.report : null;
    const dropped = droppedTotal(c);
    const extra = [
      dropped ? h('div', { class: 'diffs-dropped warn small', title: `copies dropped since this ficus started: ${dropReasons(c)}` }, `${num(dropped, 0)} dropped`) : null,
      c.failed ? h('div', { class: 'diffs-failed small', title: 'mirrored calls modern did not answer (compared as the 502 or 504 a client would have seen)' }, `${num(c.failed, 0)} modern failed`) : null,
      rep && !d.mirroring ? h('div', { class: 'muted small', title: 'the comparisons are kept until reset' }, 'not mirroring now') : null,
    ];
    if (!rep) {
      if (!d.mirroring) return h('td', { class: 'diffs side-start muted', dataset: { state: 'none' } }, '—', extra);
      return h('td', { class: 'diffs side-start', dataset: { state: 'waiting', compared: 0 } },
        h('span', { class: 'muted', title: `mirroring ${route}: no comparison yet` }, 'waiting for traffic'), extra);
    }
    const noise = noiseFieldCount(rep);
    const real = realFieldCount(rep);
    return h('td', { class: 'diffs side-start', dataset: { state: 'compared', rate: rep.rate, compared: rep.compared, real, noise } },
      h('div', { class: 'nowrap' },
        h('a', { href: `#/routes/${encodeURIComponent(route)}`, class: `diffs-rate ${rateClass(rep.rate)}`, title: `the real-difference rate of ${route}: how often its worst real field differs from legacy (${real} real field${real === 1 ? '' : 's'}); details on the route's page` }, fmtDiffRate(rep.rate))),
      h('div', { class: 'muted small nowrap', title: 'comparisons since the last reset' }, `of ${num(rep.compared, 0)}`),
      noise ? h('div', { class: 'diffs-noise muted small', title: 'fields that differ no more than legacy differs from itself (timestamps, ids): listed apart on the route page' }, `${noise} noise`) : null,
      extra);
  }

  // ---- traffic protection (the route view's `protection`: settings and counters since start)

  function fmtBytes(n) {
    if (n === null || n === undefined) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let x = Number(n);
    let i = 0;
    while (x >= 1024 && i < units.length - 1) { x /= 1024; i++; }
    return `${i === 0 ? num(x, 0) : num(x, x >= 100 ? 0 : 1)} ${units[i]}`;
  }
  function fmtSeconds(s) {
    if (s === null || s === undefined) return null;
    if (s < 1) return `${num(s * 1000, 0)} ms`;
    if (s >= 7200 && s % 3600 === 0) return `${s / 3600} h`;
    if (s >= 120 && s % 60 === 0) return `${s / 60} min`;
    return `${num(s, 2)} s`;
  }
  const PRIORITY_HELP = {
    critical: 'shed last when an upstream is at its max_in_flight',
    normal: 'the default',
    low: 'shed first when an upstream is at its max_in_flight',
  };
  function rateKeyLabel(key) {
    if (key === 'client-ip') return 'per client IP';
    if (key === 'route') return 'for the whole route';
    if (key === 'sticky') return 'per sticky key';
    if (key && key.startsWith('header:')) return `per ${key.slice('header:'.length)} header`;
    return `per ${key}`;
  }
  const breakerLabel = (state) => (state === 'half_open' ? 'half-open' : state);
  const breakerBadge = (state) => h('span', { class: `breaker breaker-${state}`, dataset: { state } }, breakerLabel(state));
  /** Served from the cache (fresh, stale or waiting on another client's fetch) over all lookups; null before any. */
  function cacheHitRatio(c) {
    const served = c.hits + c.stale_hits + c.coalesced;
    return served + c.misses ? served / (served + c.misses) : null;
  }
  const shedTotal = (p) => (p ? p.upstreams.reduce((n, u) => n + (u.limit ? u.limit.shed : 0), 0) : 0);
  const protectionConfigured = (p) => Boolean(p && (p.priority !== 'normal' || p.rate_limit || p.retry || p.cache || p.upstreams.some((u) => u.limit || u.breaker)));

  /** One counter: its label, its value shown, its raw number in data-value (for scripts and tests). */
  function protStat(key, label, value, shown, cls, title) {
    return h('div', { class: 'prot-stat', title: title || null },
      h('dt', {}, label),
      h('dd', { class: cls || null, dataset: { counter: key, value: value === null || value === undefined ? '' : value } }, shown));
  }

  function protCard(id, title, settings, stats, foot) {
    return h('div', { class: 'card prot-card', id, dataset: { configured: 'true' } },
      h('h3', {}, title),
      settings ? h('p', { class: 'prot-settings' }, settings) : null,
      stats.length ? h('dl', { class: 'prot-stats' }, stats) : null,
      foot || null);
  }

  const offCard = (id, title, how) => h('div', { class: 'card prot-card prot-off', id, dataset: { configured: 'false' } },
    h('h3', {}, title), h('p', { class: 'muted small' }, how));

  function rateCard(x) {
    if (!x) return offCard('protection-rate', 'Rate limit', 'none: add [route.rate_limit] (429 over a per-key budget)');
    return protCard('protection-rate', 'Rate limit',
      `${num(x.per_second, 2)}/s ${rateKeyLabel(x.key)}, burst ${num(x.burst, 0)}${x.key === 'route' ? '' : ` · at most ${num(x.max_keys, 0)} keys tracked`}`,
      [
        protStat('allowed', 'allowed', x.allowed, num(x.allowed, 0)),
        protStat('limited', 'limited (429)', x.limited, num(x.limited, 0), x.limited > 0 ? 'warn' : '', 'requests refused with 429 rate-limited: they never reached an upstream'),
        protStat('tracked_keys', 'keys now', x.tracked_keys, num(x.tracked_keys, 0), '', 'keys with a budget in memory'),
      ]);
  }

  function retryCard(x) {
    if (!x) return offCard('protection-retry', 'Retries', 'none: add [route.retry] (safe requests retried within a budget)');
    return protCard('protection-retry', 'Retries',
      `up to ${num(x.attempts, 0)} more tr${x.attempts === 1 ? 'y' : 'ies'} · budget ${num(x.budget_percent, 2)}% of requests + ${num(x.min_per_second, 2)}/s`,
      [
        protStat('retries', 'retries made', x.retries, num(x.retries, 0)),
        protStat('exhausted', 'budget exhausted', x.exhausted, num(x.exhausted, 0), x.exhausted > 0 ? 'warn' : '', 'retries not made because the budget was spent: the upstream is failing more than the budget allows'),
      ]);
  }

  /** The cache counts its entries and bytes lazily (moka's maintenance runs on later cache operations). */
  const LAGS = 'counted lazily, as the cache is used: it can lag behind the latest answers stored or purged until the next requests to the route';

  function cacheCard(x) {
    if (!x) return offCard('protection-cache', 'Response cache', 'none: add [route.cache] (GET answers kept per side)');
    const ratio = cacheHitRatio(x);
    const ttl = fmtSeconds(x.ttl_s);
    const swr = fmtSeconds(x.stale_while_revalidate_s);
    return protCard('protection-cache', 'Response cache',
      [ttl ? `ttl ${ttl} (answers without a lifetime)` : 'lifetimes from the answers only', swr ? ` · stale-while-revalidate ${swr}` : '',
        ` · up to ${fmtBytes(x.max_bytes)}, ${fmtBytes(x.max_entry_bytes)} per answer`].join(''),
      [
        protStat('hit_ratio', 'hit ratio', ratio, ratio === null ? '—' : fmtDiffRate(ratio), '', '(hits + stale hits + coalesced) / (the same + misses), since start'),
        protStat('hits', 'hits', x.hits, num(x.hits, 0)),
        protStat('stale_hits', 'stale', x.stale_hits, num(x.stale_hits, 0), '', 'expired answers served while one request refreshed them (stale-while-revalidate)'),
        protStat('coalesced', 'coalesced', x.coalesced, num(x.coalesced, 0), '', 'misses that waited for another client\'s fetch of the same URL instead of asking the upstream'),
        protStat('misses', 'misses', x.misses, num(x.misses, 0)),
        protStat('entries', 'entries', x.entries, num(x.entries, 0), '', LAGS),
        protStat('bytes', 'size', x.bytes, fmtBytes(x.bytes), '', LAGS),
        protStat('evictions', 'evictions', x.evictions, num(x.evictions, 0), '', 'answers dropped to stay within max_bytes'),
      ]);
  }

  function upstreamCard(u) {
    const title = [h('span', { class: `swatch swatch-${u.side}` }), u.side === 'legacy' ? 'Legacy' : 'Modern', h('span', { class: 'muted' }, ` · ${u.upstream}`)];
    const id = `protection-upstream-${u.side}`;
    const l = u.limit;
    const b = u.breaker;
    const stats = [];
    if (l) {
      const full = l.max_in_flight && l.in_flight >= l.max_in_flight;
      stats.push(
        protStat('in_flight', 'in flight', l.in_flight, `${num(l.in_flight, 0)} / ${l.max_in_flight === null || l.max_in_flight === undefined ? '?' : num(l.max_in_flight, 0)}`, full ? 'warn' : '', 'requests at the upstream now / its max_in_flight'),
        protStat('queued', 'queued', l.queued, num(l.queued, 0), l.queued > 0 ? 'warn' : '', 'requests waiting for a slot now'),
        protStat('shed', 'shed', l.shed, num(l.shed, 0), l.shed > 0 ? 'bad' : '', 'requests answered 503 overloaded (or sent to legacy) because the queue was full, the wait timed out, or a more important request took the place'));
    }
    if (b) {
      stats.push(
        protStat('breaker', 'breaker', b.state, breakerBadge(b.state), '', b.state === 'open' ? 'open: no request reaches this upstream' : b.state === 'half_open' ? 'half-open: a few probe requests decide' : 'closed: requests flow'),
        protStat('trips', 'trips', b.trips, num(b.trips, 0), b.trips > 0 ? 'warn' : '', 'times the breaker opened'),
        protStat('rejected', 'rejected', b.rejected, num(b.rejected, 0), b.rejected > 0 ? 'warn' : '', 'requests kept from this upstream while the breaker was open'));
    }
    if (!l && !b) return offCard(id, title, `no concurrency limit, no circuit breaker: [upstream.${u.upstream}] max_in_flight, [upstream.${u.upstream}.breaker]`);
    const missing = [!l ? `no concurrency limit ([upstream.${u.upstream}] max_in_flight)` : null, !b ? `no circuit breaker ([upstream.${u.upstream}.breaker])` : null].filter(Boolean);
    const card = protCard(id, title, null, stats,
      h('p', { class: 'muted small' }, `${missing.length ? missing.join(', ') + ' · ' : ''}counts every route that uses ${u.upstream}`));
    card.dataset.side = u.side;
    if (b) card.dataset.breaker = b.state;
    return card;
  }

  /** The children of the route page's Protection section. */
  function protectionBody(p) {
    if (!p) return [h('p', { class: 'muted', id: 'protection-none' }, 'The running table has no entry for this route (being reloaded?): no protection to show.')];
    if (!protectionConfigured(p)) {
      return [h('p', { class: 'muted', id: 'protection-none' }, 'No protection configured: see docs/protection.md. Rate limits, retries with a budget and a response cache are set per route ([route.rate_limit], [route.retry], [route.cache]), concurrency limits and circuit breakers per upstream (max_in_flight, [upstream.NAME.breaker]).')];
    }
    return [h('div', { class: 'prot-cards' },
      rateCard(p.rate_limit), retryCard(p.retry), cacheCard(p.cache), p.upstreams.map(upstreamCard))];
  }

  // ---- the map's protection flags: a breaker not closed, or a route refusing or shedding now

  /** How long a "limiting" or "shedding" flag stays after the counter last rose. */
  const FLAG_HOLD_MS = 10000;

  /**
   * Compares a route's counters with the previous refresh (kept in `memory`) and returns its
   * flags: {flag, label, level, title}. Counters are cumulative; a fall (a reload that made a
   * new limiter) counts as no increase.
   */
  function protectionFlags(r, memory, now) {
    const p = r.protection;
    if (!p) return [];
    const limited = p.rate_limit ? p.rate_limit.limited : 0;
    const shed = shedTotal(p);
    const m = memory.get(r.name) || { limited, shed, limitedAt: 0, shedAt: 0, limitedBy: 0, shedBy: 0 };
    if (limited > m.limited) Object.assign(m, { limitedAt: now, limitedBy: limited - m.limited });
    if (shed > m.shed) Object.assign(m, { shedAt: now, shedBy: shed - m.shed });
    m.limited = limited;
    m.shed = shed;
    memory.set(r.name, m);
    const flags = [];
    for (const state of ['open', 'half_open']) {
      const sides = p.upstreams.filter((u) => u.breaker && u.breaker.state === state);
      if (!sides.length) continue;
      flags.push({
        flag: `breaker-${state.replace('_', '-')}`,
        label: `breaker ${breakerLabel(state)}`,
        level: state === 'open' ? 'bad' : 'warn',
        title: `circuit breaker ${breakerLabel(state)}: ${sides.map((u) => `${u.side} (${u.upstream})`).join(', ')}${state === 'open' ? ': no request reaches it' : ': probing'}`,
      });
    }
    if (m.limitedAt && now - m.limitedAt < FLAG_HOLD_MS) {
      flags.push({ flag: 'limiting', label: 'limiting', level: 'warn', title: `${num(m.limitedBy, 0)} requests refused with 429 (rate limit) between two refreshes, at ${fmtTime(m.limitedAt)}; ${num(limited, 0)} since start` });
    }
    if (m.shedAt && now - m.shedAt < FLAG_HOLD_MS) {
      const names = p.upstreams.filter((u) => u.limit && u.limit.shed > 0).map((u) => u.upstream).join(', ');
      flags.push({ flag: 'shedding', label: 'shedding', level: 'bad', title: `${num(m.shedBy, 0)} requests shed (503 overloaded) between two refreshes, at ${fmtTime(m.shedAt)}, by ${names}: the count is the upstream's, shared by every route that uses it` });
    }
    return flags;
  }

  const flagBadges = (flags, route) => (flags.length
    ? h('div', { class: 'prot-flags' }, flags.map((f) => h('a', { href: `#/routes/${encodeURIComponent(route)}`, class: `prot-flag prot-flag-${f.level}`, dataset: { flag: f.flag }, title: f.title, 'aria-label': `${route}: ${f.title}` }, f.label)))
    : null);

  function stageCell(r) {
    return [stageBadge(r.stage), r.stage === 'canary' ? h('span', { class: 'weight' }, fmtWeight(r.weight)) : null];
  }

  // ---- the migration map

  function mapView() {
    let routes = [];
    let tbody, drift, summary, error;
    /** Per route, the protection counters of the previous refresh (see protectionFlags). */
    const protMemory = new Map();
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
              h('col', { span: 4 }), h('col', { span: 5 }), h('col', { class: 'c-integrity' }), h('col', { class: 'c-diffs' }), h('col', { class: 'c-actions' })),
            h('thead', {},
              h('tr', {},
                h('th', { rowspan: 2, scope: 'col' }, '#'),
                h('th', { rowspan: 2, scope: 'col' }, 'Route'),
                h('th', { rowspan: 2, scope: 'col' }, 'Stage'),
                h('th', { rowspan: 2, scope: 'col' }, 'On modern'),
                h('th', { colspan: 4, scope: 'colgroup', class: 'side-head side-start legacy' }, 'Legacy'),
                h('th', { colspan: 5, scope: 'colgroup', class: 'side-head side-start modern' }, 'Modern'),
                h('th', { rowspan: 2, scope: 'col', class: 'side-start', title: 'the latest run of each [[verify]] job that names the route: its tables compared row by row' }, 'Data integrity'),
                h('th', { rowspan: 2, scope: 'col', class: 'side-start', title: 'shadow comparison: how often modern answers differently from legacy, beyond legacy\'s own noise, over the comparisons since the last reset' }, 'Differences'),
                h('th', { rowspan: 2, scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions'))),
              h('tr', {},
                ['req/s', 'errors', 'p50', 'p99'].map((t, i) => h('th', { scope: 'col', class: `num ${i === 0 ? 'side-start' : ''}` }, t)),
                ['req/s', 'errors', 'fallb.', 'p50', 'p99'].map((t, i) => h('th', { scope: 'col', class: `num ${i === 0 ? 'side-start' : ''}`, title: t === 'fallb.' ? 'fallbacks: modern failed, legacy answered' : null }, t)))),
            tbody));
      },
      async refresh() {
        const [data, jobs, diffs, rollouts] = await Promise.all([
          api('/api/v1/routes'),
          api('/api/v1/verify').catch(() => []),
          api('/api/v1/diffs').catch(() => []),
          api('/api/v1/rollouts').catch(() => []),
        ]);
        routes = data.routes;
        error.replaceChildren();
        setVersion(data.version);
        const fleet = data.fleet && data.fleet.nodes > 1 ? ` · summed over ${data.fleet.nodes_up} of ${data.fleet.nodes} nodes` : '';
        summary.textContent = `Routes in match order (first match wins) · live numbers over the last ${data.window_seconds} s${fleet} · running config v${data.version ?? '?'}`;
        drift.hidden = !data.file_drift;
        drift.textContent = data.file_drift ? `The config file differs: ${data.file_drift}` : '';
        const now = Date.now();
        tbody.replaceChildren(...routes.map((r) => {
          const usesModern = r.stage !== 'legacy' || r.weight !== 0;
          const flags = protectionFlags(r, protMemory, now);
          const ro = rollouts.find((x) => x.route === r.name) || null;
          return h('tr', { dataset: { route: r.name, stage: r.stage, protection: flags.map((f) => f.flag).join(' '), rollout: ro ? ro.status : null }, class: r.overridden ? 'is-overridden' : null },
            h('td', { class: 'num muted' }, String(r.order)),
            h('td', {}, h('div', { class: 'route-name' }, routeLink(r.name)), h('div', { class: 'match' }, r.match), flagBadges(flags, r.name)),
            h('td', {}, h('div', { class: 'nowrap' }, stageCell(r)),
              // A running rollout acts through overrides: its state says why the route differs
              // from the file (the tooltip says what the file has), in less room than both tags.
              ro && ROLLOUT_ACTIVE.includes(ro.status) ? rolloutTag(ro, r) : [overrideTag(r), rolloutTag(ro)]),
            h('td', {}, shareBar(r)),
            sideCells(r.legacy, r, false),
            sideCells(r.modern, r, true),
            integrityCell(jobs, r.name),
            diffsCell(diffs.find((d) => d.route === r.name), r.name),
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

  // ---- progressive rollouts (GET /api/v1/rollouts, the route's rollout.* events)

  const ROLLOUT_STATUS = {
    running: 'running',
    paused: 'paused',
    waiting: 'waiting for promote',
    soaking: 'soaking',
    completed: 'completed',
    rolled_back: 'rolled back',
    aborted: 'aborted',
  };
  const ROLLOUT_STATUS_HELP = {
    running: 'the controller judges the step every second and promotes, holds or rolls back on its own',
    paused: 'stopped for an operator (a command, a step held longer than max_step_time, or a change by hand): Resume continues',
    waiting: 'the step passed; the next step is a manual gate: Promote starts it',
    soaking: 'every user on modern; waiting retire_after before retiring legacy',
    completed: 'done: the route is on its `after` stage',
    rolled_back: 'a critical gate failed: the route went to on_rollback at weight 0; Start begins again from the first step',
    aborted: 'an operator sent the route to on_rollback; Start begins again from the first step',
  };
  const ROLLOUT_KINDS = ['rollout.started', 'rollout.promoted', 'rollout.hold', 'rollout.waiting', 'rollout.rolled_back', 'rollout.completed', 'rollout.paused', 'rollout.resumed', 'rollout.aborted'];
  /** Statuses in which the controller still owns the route's weight. */
  const ROLLOUT_ACTIVE = ['running', 'paused', 'waiting', 'soaking'];
  const isRolloutEvent = (e) => typeof e.kind === 'string' && e.kind.startsWith('rollout.');
  const rolloutStatusLabel = (s) => ROLLOUT_STATUS[s] || s;

  /** 12 s, 4 min 5 s, 2 h 10 min. */
  function fmtDuration(s) {
    if (s === null || s === undefined || !Number.isFinite(Number(s))) return '—';
    const t = Math.max(0, Math.floor(Number(s)));
    if (t < 60) return `${t} s`;
    if (t < 3600) return `${Math.floor(t / 60)} min${t % 60 ? ` ${t % 60} s` : ''}`;
    return `${Math.floor(t / 3600)} h${Math.floor((t % 3600) / 60) ? ` ${Math.floor((t % 3600) / 60)} min` : ''}`;
  }
  /** A rate (a fraction) as a percentage with enough digits: 1.25%, 0.031%, 0%. */
  function fmtRatio(x) {
    if (x === null || x === undefined) return '—';
    const p = Number(x) * 100;
    if (p === 0) return '0%';
    if (Math.abs(p) >= 1) return `${p.toFixed(2)}%`;
    return `${Number(p.toPrecision(2))}%`;
  }
  function fmtP(p) {
    if (p === null || p === undefined) return '—';
    if (p < 1e-4) return p.toExponential(1);
    return String(Number(p.toPrecision(2)));
  }
  const fmtX = (x) => (x === null || x === undefined ? '—' : `${num(x, 2)}×`);

  /** The map's and the route header's one-line rollout state: "rollout 25% · running". */
  function rolloutTag(ro, r) {
    if (!ro) return null;
    const w = ro.weight === null || ro.weight === undefined ? '' : ` ${fmtWeight(ro.weight)}`;
    let text;
    if (ro.status === 'rolled_back') text = `rollout rolled back at${w || ' step ' + (ro.step + 1)}`;
    else if (ro.status === 'aborted') text = `rollout aborted at${w || ' step ' + (ro.step + 1)}`;
    else if (ro.status === 'completed') text = 'rollout completed';
    else text = `rollout${w} · ${rolloutStatusLabel(ro.status)}`;
    return h('div', {
      class: `rollout-tag rollout-${ro.status}`,
      dataset: { status: ro.status, step: ro.step },
      title: `step ${ro.step + 1} of ${ro.steps.length} (${ro.steps.map(fmtWeight).join(' → ')}): ${ROLLOUT_STATUS_HELP[ro.status] || ro.status}${r && r.overridden ? `; an override of the file, which says ${r.file.stage}${r.file.stage === 'canary' ? ' ' + fmtWeight(r.file.weight) : ''}` : ''}`,
    }, text);
  }

  /**
   * The route's `[route.rollout]` as the running config file writes it (GET /api/v1/config),
   * read line by line: `manual`, `after`, `on_rollback`, `interval`, `min_requests`,
   * `max_step_time`, and whether the section is there at all. Best effort: the rollout API
   * does not say which steps are manual gates; a key written another way (an inline table)
   * is simply not shown. null when the file has no `[route.rollout]` for the route.
   */
  function scanRolloutConfig(text, route) {
    if (!text) return null;
    let inRoute = false;
    let section = null;
    let pending = null;
    const value = (raw) => {
      const v = raw.trim();
      if (v.startsWith('[')) return v.slice(1, v.lastIndexOf(']')).split(',').map((x) => x.trim()).filter((x) => x !== '').map(Number).filter((x) => !Number.isNaN(x));
      if (v.startsWith('"')) return v.slice(1, v.indexOf('"', 1));
      return Number(v);
    };
    const strip = (line) => {
      let q = false;
      for (let i = 0; i < line.length; i++) {
        if (line[i] === '"' && line[i - 1] !== '\\') q = !q;
        else if (line[i] === '#' && !q) return line.slice(0, i);
      }
      return line;
    };
    const blocks = [];
    let block = null;
    for (const rawLine of text.split('\n')) {
      let line = strip(rawLine).trim();
      if (pending) {
        pending.text += ' ' + line;
        if (!line.includes(']')) continue;
        line = pending.text;
        pending = null;
      }
      if (!line) continue;
      const header = line.match(/^\[\[?\s*([^\]]+?)\s*\]\]?$/);
      if (header) {
        if (line.startsWith('[[')) {
          inRoute = header[1] === 'route';
          block = inRoute ? { name: null, rollout: null } : null;
          if (block) blocks.push(block);
          section = null;
        } else {
          section = header[1];
          if (inRoute && section === 'route.rollout' && block) block.rollout = {};
        }
        continue;
      }
      const kv = line.match(/^([A-Za-z0-9_-]+)\s*=\s*(.*)$/);
      if (!kv || !block) continue;
      if (kv[2].startsWith('[') && !kv[2].includes(']')) { pending = { text: line }; continue; }
      if (section === null && kv[1] === 'name') block.name = value(kv[2]);
      else if (section === 'route.rollout' && block.rollout) block.rollout[kv[1]] = value(kv[2]);
    }
    const mine = blocks.find((b) => b.name === route);
    return mine && mine.rollout ? mine.rollout : null;
  }

  /** Step indices that are manual gates: from the file, from `rollout.waiting` events, from the status. */
  function manualSteps(ro, cfg, events) {
    const out = new Set();
    if (cfg && Array.isArray(cfg.manual)) {
      for (const w of cfg.manual) {
        const i = ro.steps.findIndex((s) => Math.abs(s - w) < 1e-9);
        if (i >= 0) out.add(i);
      }
    }
    for (const e of events) {
      const st = e.data && e.data.rollout;
      if (e.kind === 'rollout.waiting' && st && Number.isInteger(st.step)) out.add(st.step + 1);
    }
    if (ro.status === 'waiting') out.add(ro.step + 1);
    return out;
  }

  /** The step timeline: one chip per step, then where the route ends up (`r`: the route now). */
  function stepTimeline(ro, cfg, events, r) {
    const manual = manualSteps(ro, cfg, events);
    const ended = ['completed', 'soaking'].includes(ro.status);
    const stopped = ro.status === 'rolled_back' || ro.status === 'aborted';
    const chips = ro.steps.map((w, i) => {
      let state;
      if (ended) state = 'done';
      else if (i < ro.step) state = 'done';
      else if (i === ro.step) state = stopped ? ro.status : ro.status === 'waiting' ? 'passed' : 'current';
      else state = stopped ? 'skipped' : 'upcoming';
      const isManual = manual.has(i);
      let note;
      if (state === 'done') note = '✓ passed';
      else if (state === 'passed') note = '✓ passed · waiting';
      else if (state === 'current') note = `${rolloutStatusLabel(ro.status)} · ${fmtDuration(ro.in_step_s)}`;
      else if (state === 'rolled_back') note = '✗ rolled back here';
      else if (state === 'aborted') note = '✗ aborted here';
      else if (state === 'skipped') note = 'not reached';
      else if (isManual && i === ro.step + 1 && ro.status === 'waiting') note = 'manual gate: Promote';
      else note = i === ro.step + 1 ? 'next' : 'upcoming';
      return h('li', {
        class: `step step-${state}${isManual ? ' step-manual' : ''}`,
        dataset: { step: i, state, manual: isManual ? 'true' : null, weight: w },
        'aria-current': state === 'current' || state === 'passed' ? 'step' : null,
        title: `step ${i + 1} of ${ro.steps.length}: ${fmtWeight(w)} of users on modern${isManual ? '; a manual gate: it waits for Promote (ficus rollout promote) before it starts' : ''}`,
      },
      h('span', { class: 'step-n muted small' }, `step ${i + 1}`, isManual ? h('span', { class: 'step-manual-tag' }, 'manual') : null),
      h('span', { class: 'step-weight' }, fmtWeight(w)),
      h('span', { class: 'step-note small' }, note));
    });
    const after = cfg && typeof cfg.after === 'string' ? cfg.after : null;
    // Where a rollback or an abort sent the route: its stage now (unless changed since), else the file's on_rollback.
    const back = r && r.weight === 0 ? r.stage : cfg && typeof cfg.on_rollback === 'string' ? cfg.on_rollback : null;
    let end;
    if (stopped) end = { state: 'back', main: back ? `${back} · 0%` : 'weight 0', note: `${ro.status === 'aborted' ? 'aborted' : 'rolled back'}: on_rollback, weight 0` };
    else if (ro.status === 'soaking') end = { state: 'current', main: 'modern', note: `soaking ${fmtDuration(ro.in_step_s)}, then retired` };
    else if (ro.status === 'completed') end = { state: 'done', main: after || 'done', note: '✓ completed' };
    else end = { state: 'upcoming', main: after || 'modern', note: 'after the last step' };
    chips.push(h('li', { class: `step step-end step-${end.state}`, dataset: { step: 'end', state: end.state } },
      h('span', { class: 'step-n muted small' }, stopped ? 'now' : 'then'),
      h('span', { class: 'step-weight' }, end.main),
      h('span', { class: 'step-note small' }, end.note)));
    return h('ol', { class: `rollout-steps rollout-${ro.status}`, id: 'rollout-steps', 'aria-label': `rollout steps of ${ro.route}` }, chips);
  }

  const decisionBadge = (d) => h('span', { class: `decision decision-${d}`, dataset: { decision: d } }, d === 'rollback' ? 'roll back' : d);
  const outcomeBadge = (o) => h('span', { class: `outcome outcome-${o}` }, o);

  /** One gate's numbers in five cells: modern, legacy, limit, confidence. */
  function gateCells(g) {
    const o = g.observed || {};
    const c = (...x) => h('td', { class: 'num' }, ...x);
    const sub = (t) => h('div', { class: 'muted small' }, t);
    if (o.problem !== undefined) return [h('td', { colspan: 4, class: 'muted' }, `no numbers: ${o.problem}`)];
    switch (g.gate) {
      case 'error-rate':
        return [
          c(fmtRatio(o.modern_rate), sub(`${num(o.modern_errors, 0)} errors / ${num(o.modern_requests, 0)}`)),
          c(fmtRatio(o.legacy_rate), sub(`${num(o.legacy_errors, 0)} errors / ${num(o.legacy_requests, 0)}`)),
          c(o.limit === null || o.limit === undefined ? '—' : `≤ ${fmtRatio(o.limit)}`, sub('modern\'s rate')),
          c(`modern ≥ ${fmtRatio(o.modern_lower_bound)}`, sub(`confirms above ${fmtRatio(o.confirm_limit)} · legacy ≤ ${fmtRatio(o.legacy_upper_bound)} · α ${o.alpha}`)),
        ];
      case 'latency-p99':
        return [
          c(`p99 ${fmtMs(o.modern_p99_ms)}`, sub(`${num(o.modern_samples, 0)} samples`)),
          c(`p99 ${fmtMs(o.legacy_p99_ms)}`, sub(`${num(o.legacy_samples, 0)} samples`)),
          c(o.limit_ms === null || o.limit_ms === undefined ? `ratio ≤ ${num(o.max_ratio, 2)}` : `p99 ≤ ${fmtMs(o.limit_ms)}`,
            sub(`legacy × ${num(o.max_ratio, 2)} or + ${fmtMs(o.min_delta_ms)}, the larger · now ${fmtX(o.ratio)}${o.delta_ms === null || o.delta_ms === undefined ? '' : `, ${o.delta_ms >= 0 ? '+' : ''}${fmtMs(o.delta_ms)}`}`)),
          c(o.max_p99_ms === null || o.max_p99_ms === undefined ? h('span', { class: 'muted' }, '—') : `budget ${fmtMs(o.max_p99_ms)}`,
            o.max_p99_ms === null || o.max_p99_ms === undefined ? null : sub(o.within_budget ? 'within: passes' : 'over the budget')),
        ];
      case 'latency-rank':
        return [
          c(`median ${fmtMs(o.modern_median_ms)}`, sub(`${num(o.modern_samples, 0)} samples`)),
          c(`median ${fmtMs(o.legacy_median_ms)}`, sub(`${num(o.legacy_samples, 0)} samples`)),
          c(`slower than legacy × ${num(o.min_effect, 2)} or + ${fmtMs(o.min_delta_ms)}`, sub(`now ${fmtX(o.median_ratio)}${o.median_delta_ms === null || o.median_delta_ms === undefined ? '' : `, ${o.median_delta_ms >= 0 ? '+' : ''}${fmtMs(o.median_delta_ms)}`}${o.within_budget ? ' · within the p99 budget: passes' : ''}`)),
          c(`p = ${fmtP(o.p_value)}`, sub(`slower if p < ${o.alpha}, confirms < ${fmtP(o.confirm_alpha)} · z ${num(o.z, 2)} · U ${num(o.u, 1)} (${num(o.u_expected, 1)} expected)`)),
        ];
      case 'shadow-diff':
        return [
          c(`${fmtRatio(o.differing_rate)} differ`, sub(`${num(o.compared, 0)} compared, needs ${num(o.min_compared, 0)}`)),
          c(h('span', { class: 'muted' }, '—')),
          c(`≤ ${fmtRatio(o.max_rate)}`, sub('difference rate')),
          c(`≥ ${fmtRatio(o.lower_bound)}`, sub(`lower bound · α ${o.alpha}`)),
        ];
      default:
        return [h('td', { colspan: 4 }, h('code', {}, JSON.stringify(o)))];
    }
  }

  const MISSING = [
    ['requests', 'modern requests', (v) => num(v, 0)],
    ['legacy_requests', 'legacy requests', (v) => num(v, 0)],
    ['shadow_compared', 'shadow comparisons', (v) => num(v, 0)],
    ['time', 'time in the step', fmtDuration],
  ];

  /** A verdict: the decision and its reason, what a hold still needs, every gate's numbers. */
  function verdictBlock(v, id, caption) {
    const missing = v.missing || null;
    return h('div', { class: `verdict-block verdict-${v.decision}`, id: id || null, dataset: { decision: v.decision } },
      h('p', { class: 'verdict-head' }, decisionBadge(v.decision), ' ', caption ? h('span', { class: 'muted small' }, caption, ' · ') : null, h('span', { class: 'verdict-reason' }, v.reason)),
      missing ? h('dl', { class: 'verdict-missing', 'aria-label': 'what the step still needs' },
        h('dt', { class: 'missing-title' }, 'Still needs'),
        MISSING.filter(([k]) => Number(missing[k]) > 0).map(([k, label, f]) => h('div', { class: 'missing-item' },
          h('dd', { dataset: { missing: k, value: missing[k] } }, k === 'time' ? `${f(missing[k])} more` : `${f(missing[k])} more`),
          h('dt', {}, label)))) : null,
      v.gates && v.gates.length
        ? h('table', { class: 'gates' },
          h('thead', {}, h('tr', {}, ['Gate', 'Outcome', 'Modern', 'Legacy', 'Passes when', 'Confidence', 'Detail'].map((t, i) => h('th', { scope: 'col', class: i >= 2 && i <= 5 ? 'num' : null }, t)))),
          h('tbody', {}, v.gates.map((g) => h('tr', { class: `gate gate-${g.outcome}${g.confirmed ? ' gate-confirmed' : ''}`, dataset: { gate: g.gate, outcome: g.outcome, confirmed: String(g.confirmed) } },
            h('th', { scope: 'row' }, h('code', {}, g.gate), h('div', { class: 'muted small' }, g.critical ? 'critical: rolls back when confirmed' : 'advisory: holds, never rolls back')),
            h('td', {}, outcomeBadge(g.outcome), g.confirmed ? h('div', { class: 'bad small' }, 'confirmed') : null),
            gateCells(g),
            h('td', { class: 'gate-detail small' }, g.detail)))))
        : h('p', { class: 'muted small' }, 'No gate is enabled: only the step\'s time and request counts decide.'));
  }

  /** Events newest first, consecutive holds at the same step folded into one row. */
  function foldHolds(events) {
    const rows = [];
    for (const e of events) {
      const prev = rows[rows.length - 1];
      const step = e.data && e.data.rollout ? e.data.rollout.step : null;
      if (e.kind === 'rollout.hold' && prev && prev.event.kind === 'rollout.hold' && prev.step === step) {
        prev.count++;
        prev.oldest = e;
        continue;
      }
      rows.push({ event: e, step, count: 1, oldest: e });
    }
    return rows;
  }

  /** The evidence of one rollout event: what moved, and its verdict when it has one. */
  function eventEvidence(e, fold) {
    const d = e.data || {};
    const lines = [];
    const what = eventSummary(e);
    if (what) lines.push(what);
    if (d.command) lines.push(`operator command ${d.command} by ${e.actor}`);
    if (fold && fold.count > 1) lines.push(`${fold.count} holds from ${fmtTime(fold.oldest.at)} to ${fmtTime(e.at)} (the newest shown)`);
    return h('div', { class: 'rollout-evidence', id: 'rollout-evidence', dataset: { event: e.id } },
      h('p', { class: 'small' }, h('b', {}, `${e.kind} · event #${e.id}`), ` · ${fmtDateTime(e.at)} · by ${e.actor}`, lines.length ? ` · ${lines.join(' · ')}` : ''),
      d.verdict ? verdictBlock(d.verdict, null, d.step_weight !== undefined ? `judged at ${fmtWeight(d.step_weight)}` : null)
        : h('p', { class: 'muted small' }, 'No verdict in this event: a state change (an operator\'s command, or the controller starting, resuming or pausing) rather than a judged step.'));
  }

  function rolloutAction(route, command, ro, cfg) {
    const enc = encodeURIComponent(route);
    const at = ro ? `step ${ro.step + 1} of ${ro.steps.length} (${ro.weight === null ? '?' : fmtWeight(ro.weight)}), ${rolloutStatusLabel(ro.status)}` : 'not started';
    const next = ro && ro.steps[ro.step + 1];
    const base = { path: `/api/v1/rollouts/${enc}/${command}`, payload: (message) => ({ message }), danger: false };
    switch (command) {
      case 'pause':
        return Object.assign(base, { title: `Pause the rollout of ${route}`, button: 'Pause rollout', message: 'rollout paused from the dashboard',
          what: `The controller stops judging ${route} (now ${at}); the weight stays where it is until Resume. Recorded as rollout.paused.` });
      case 'resume':
        return Object.assign(base, { title: `Resume the rollout of ${route}`, button: 'Resume rollout', message: 'rollout resumed from the dashboard',
          what: `${route} goes on from ${at}: the step is judged again with fresh windows (the step's time starts over). Recorded as rollout.resumed.` });
      case 'promote':
        return Object.assign(base, { title: `Promote the rollout of ${route}`, button: 'Promote now', message: 'rollout promoted from the dashboard',
          what: next !== undefined
            ? `${route} moves to the next step now, without waiting for the judge: ${fmtWeight(ro.weight)} → ${fmtWeight(next)} of users on modern. Recorded as rollout.promoted.`
            : `${route} is at its last step: promoting completes the rollout (stage ${cfg && typeof cfg.after === 'string' ? cfg.after : 'modern, or the `after` of [route.rollout]'}). Recorded as rollout.completed.` });
      case 'abort':
        return Object.assign(base, { title: `Abort the rollout of ${route}`, button: 'Abort rollout', danger: true, message: 'rollout aborted from the dashboard',
          what: `${route} goes back to its on_rollback stage at weight 0, for the very next request, and the rollout stops (now ${at}). Start begins again from the first step. Recorded as rollout.aborted.` });
      default:
        return Object.assign(base, { title: `Start the rollout of ${route}`, button: 'Start rollout', message: 'rollout started from the dashboard',
          what: `${route} goes to stage canary at the first step, ${ro ? fmtWeight(ro.steps[0]) : 'the first weight'} of users, and the controller judges it from there (now ${at}). Recorded as rollout.started.` });
    }
  }

  /** Which commands the controller accepts in each status (it answers 409 otherwise). */
  const ROLLOUT_COMMANDS = {
    pause: ['running', 'waiting'],
    resume: ['paused'],
    promote: ['running', 'waiting', 'paused'],
    abort: ['running', 'waiting', 'paused', 'soaking'],
    start: ['rolled_back', 'aborted', 'completed'],
  };

  // ---- a route: numbers, actions, charts, events

  function routeView(name) {
    let current = null;
    let els = {};
    let formReady = false;
    /** The route's entry of GET /api/v1/diffs, and the sample on show (its id). */
    let shadowData = null;
    let shownSample = null;
    let shadowSig = '';
    let protectionSig = '';
    /** The route's rollout (GET /api/v1/rollouts), its rollout.* events by id, the newest id read, the row opened. */
    let rollout = null;
    const rolloutEvents = new Map();
    let lastEventId = null;
    let openEvent = null;
    let rolloutSig = '';
    let historySig = '';
    /** The route's [route.rollout] as the running file writes it, and the config events it was read after. */
    let rolloutCfg = null;
    let cfgKey = null;

    function drawProtection(r) {
      const p = r.protection;
      const sig = JSON.stringify(p);
      if (sig === protectionSig) return;
      protectionSig = sig;
      els.purge.hidden = !(p && p.cache);
      els.protectionNote.replaceChildren(...(p && protectionConfigured(p)
        ? ['Counters since this ficus started. Priority ',
          h('b', { id: 'protection-priority', dataset: { priority: p.priority } }, p.priority),
          `: ${PRIORITY_HELP[p.priority] || ''}.`]
        : []));
      els.protection.replaceChildren(...protectionBody(p));
    }

    function drawShadow(diffs) {
      if (diffs instanceof Error) {
        shadowData = null;
        shadowSig = '';
        els.reset.hidden = true;
        els.shadowNote.textContent = '';
        els.shadow.replaceChildren(h('p', { class: 'muted' }, `The comparisons could not be read: ${diffs.message}`));
        return;
      }
      const d = diffs[0] || null;
      shadowData = d;
      // Redraw only when something changed, so an idle page keeps its focus and selection.
      const sig = `${JSON.stringify(d)}|${shownSample}`;
      if (sig === shadowSig) return;
      shadowSig = sig;
      const rep = d && d.report;
      els.reset.hidden = !rep && !(d && d.mirroring);
      els.shadowNote.textContent = d && (d.mirroring || rep)
        ? 'Legacy answers every client; modern gets a copy of the mirrored requests and both answers are compared field by field. Fields that legacy also changes between two answers are noise.'
        : '';
      keepFocus(els.shadow, () => els.shadow.replaceChildren(...shadowBody(d, name, openSample, shownSample)));
    }

    /** Shows sample `id`; `n` is its number among its field's samples (1, 2...). */
    async function openSample(id, n) {
      shownSample = id;
      for (const b of els.shadow.querySelectorAll('button.sample-link')) b.setAttribute('aria-pressed', String(b.dataset.sample === String(id)));
      els.sample.hidden = false;
      els.sample.replaceChildren(h('p', { class: 'muted' }, `Loading sample ${id}…`));
      let s;
      try {
        s = await api(`/api/v1/diffs/samples/${encodeURIComponent(id)}`);
      } catch (e) {
        if (shownSample === id) els.sample.replaceChildren(closeButton(), problemNote(e));
        return;
      }
      if (shownSample !== id) return;
      els.sample.replaceChildren(closeButton(), ...samplePanel(s, n, verdictIn(shadowData, s.endpoint)));
      els.sample.scrollIntoView({ block: 'start' });
      const title = $('shadow-sample-title');
      if (title) title.focus({ preventScroll: true });
    }

    function closeButton() {
      return h('button', { type: 'button', class: 'small sample-close', onclick: closeSample }, 'Close sample');
    }

    function closeSample() {
      const id = shownSample;
      shownSample = null;
      els.sample.hidden = true;
      els.sample.replaceChildren();
      for (const b of els.shadow.querySelectorAll('button.sample-link')) b.setAttribute('aria-pressed', 'false');
      const back = id !== null && els.shadow.querySelector(`button.sample-link[data-sample="${id}"]`);
      if (back) back.focus();
    }

    /** Reads the route's events since the last refresh (all of them the first time) and keeps its rollout.* ones. */
    async function readRolloutEvents(enc) {
      const q = lastEventId === null ? `route=${enc}&limit=500` : `route=${enc}&after=${lastEventId}&limit=500`;
      const events = await api(`/api/v1/events?${q}`);
      for (const e of events) {
        if (lastEventId === null || e.id > lastEventId) lastEventId = e.id;
        if (isRolloutEvent(e)) rolloutEvents.set(e.id, e);
      }
      if (lastEventId === null) lastEventId = 0;
      if (rolloutEvents.size > 1000) {
        const ids = [...rolloutEvents.keys()].sort((a, b) => a - b);
        for (const id of ids.slice(0, ids.length - 1000)) rolloutEvents.delete(id);
      }
    }

    /** Newest first. */
    const rolloutHistory = () => [...rolloutEvents.values()].sort((a, b) => b.id - a.id);

    function drawRollout(ro, failed) {
      const events = rolloutHistory();
      rollout = ro;
      for (const [cmd, b] of Object.entries(els.rolloutButtons)) {
        const ok = Boolean(ro) && ROLLOUT_COMMANDS[cmd].includes(ro.status);
        b.disabled = !ok;
        b.title = !ro ? 'no rollout runs for this route'
          : ok ? '' : `the rollout is ${rolloutStatusLabel(ro.status)}: ${cmd} needs it ${ROLLOUT_COMMANDS[cmd].map(rolloutStatusLabel).join(' or ')}`;
      }
      els.rolloutActions.hidden = !ro;
      if (!ro) {
        rolloutSig = '';
        els.rolloutNote.textContent = '';
        const why = failed
          ? `The rollouts could not be read: ${failed.message}.`
          : rolloutCfg
            ? 'The file gives this route a [route.rollout], but no rollout controller reports it yet: it starts at the controller\'s next tick (ficus run and ficus demo run one).'
            : 'No rollout: this route\'s weight changes only by hand (Promote, Set…). Add [route.rollout] to walk it through weight steps on evidence, with automatic rollback: see docs/rollout.md.';
        els.rolloutBody.replaceChildren(h('p', { class: 'muted', id: 'rollout-none' }, why));
      } else {
        // Why it is in this state: the newest event that put it there (a hold changes nothing).
        const cause = ro.status === 'running' ? null : events.find((e) => e.kind !== 'rollout.hold' && e.data && e.data.rollout && e.data.rollout.status === ro.status);
        els.rolloutNote.replaceChildren(
          h('span', { id: 'rollout-status', class: `rollout-status rollout-${ro.status}`, dataset: { status: ro.status, step: ro.step }, title: ROLLOUT_STATUS_HELP[ro.status] || null }, rolloutStatusLabel(ro.status)),
          ROLLOUT_ACTIVE.includes(ro.status)
            ? ` · step ${ro.step + 1} of ${ro.steps.length}${ro.weight === null || ro.weight === undefined ? '' : ` at ${fmtWeight(ro.weight)} of users`} · ${fmtDuration(ro.in_step_s)} in the step`
            : ` at step ${ro.step + 1} of ${ro.steps.length}${ro.weight === null || ro.weight === undefined ? '' : ` (${fmtWeight(ro.weight)})`}`,
          cause ? h('span', { title: cause.message }, ` · since ${fmtTime(cause.at)}, ${cause.actor}: “${cause.message.length > 160 ? cause.message.slice(0, 157) + '…' : cause.message}”`) : ` · ${ROLLOUT_STATUS_HELP[ro.status] || ''}`);
        const settings = rolloutCfg ? [
          rolloutCfg.interval !== undefined ? `interval ${rolloutCfg.interval}` : null,
          rolloutCfg.min_requests !== undefined ? `min_requests ${num(rolloutCfg.min_requests, 0)} per side` : null,
          Array.isArray(rolloutCfg.manual) && rolloutCfg.manual.length ? `manual ${rolloutCfg.manual.map(fmtWeight).join(', ')}` : null,
          rolloutCfg.max_step_time !== undefined ? `max_step_time ${rolloutCfg.max_step_time}` : null,
          typeof rolloutCfg.on_rollback === 'string' ? `on_rollback ${rolloutCfg.on_rollback}` : null,
        ].filter(Boolean) : [];
        // The verdict: the controller's last judgement of this step, or the newest event's.
        let verdict = ro.last_verdict;
        let caption = 'last judged this step';
        if (!verdict) {
          const e = events.find((x) => x.data && x.data.verdict);
          if (e) { verdict = e.data.verdict; caption = `from ${e.kind} at ${fmtTime(e.at)}`; }
        }
        const { in_step_s: _ignored, ...stable } = ro;
        const sig = JSON.stringify([stable, Math.floor(ro.in_step_s), verdict && !ro.last_verdict ? caption : '', settings, [...manualSteps(ro, rolloutCfg, events)]]);
        if (sig !== rolloutSig) {
          rolloutSig = sig;
          keepFocus(els.rolloutBody, () => els.rolloutBody.replaceChildren(
            stepTimeline(ro, rolloutCfg, events, current),
            settings.length ? h('p', { class: 'muted small rollout-settings' }, `[route.rollout] in the file: ${settings.join(' · ')}`) : null,
            h('h3', { id: 'rollout-verdict-title' }, 'Verdict'),
            verdict ? verdictBlock(verdict, 'rollout-verdict', caption)
              : h('p', { class: 'muted', id: 'rollout-verdict' }, ro.status === 'running' ? 'Not judged yet in this step: the controller judges every second.' : 'No verdict for this step.')));
        }
      }
      drawHistory(events);
    }

    function drawHistory(events) {
      const rows = foldHolds(events).slice(0, 60);
      const sig = JSON.stringify([rows.map((x) => [x.event.id, x.count]), openEvent]);
      if (sig === historySig) return;
      historySig = sig;
      els.rolloutHistoryWrap.hidden = !events.length;
      const stepText = (e) => {
        const st = e.data && e.data.rollout;
        if (!st || !Number.isInteger(st.step)) return '';
        // The step it is at after the event (a promotion's verdict judged the step before).
        const w = rollout && rollout.steps[st.step] !== undefined ? rollout.steps[st.step] : null;
        return `${st.step + 1}${w !== undefined && w !== null ? ` (${fmtWeight(w)})` : ''}`;
      };
      const body = [];
      for (const row of rows) {
        const e = row.event;
        const open = openEvent === e.id;
        const toggle = () => { openEvent = open ? null : e.id; drawHistory(rolloutHistory()); };
        body.push(h('tr', { class: `rollout-row${open ? ' is-open' : ''}`, dataset: { event: e.id, kind: e.kind, count: row.count }, onclick: (ev) => { if (!ev.target.closest('button')) toggle(); } },
          h('td', { class: 'nowrap', title: new Date(e.at).toISOString() },
            h('button', { type: 'button', class: 'linklike', 'aria-expanded': String(open), 'aria-controls': open ? 'rollout-evidence' : null, dataset: { focus: `rollout-event-${e.id}` }, onclick: toggle }, fmtDateTime(e.at)),
            row.count > 1 ? h('div', { class: 'muted small' }, `${row.count} holds since ${fmtTime(row.oldest.at)}`) : h('div', { class: 'muted small' }, ago(e.at))),
          h('td', {}, kindBadge(e.kind), row.count > 1 ? h('span', { class: 'muted small' }, ` ×${row.count}`) : null),
          h('td', { class: 'num' }, stepText(e)),
          h('td', {}, e.actor),
          h('td', { class: 'message' }, e.message,
            e.data && e.data.verdict ? h('div', { class: 'small' }, decisionBadge(e.data.verdict.decision), h('span', { class: 'muted' }, open ? ' the verdict\'s numbers below' : ' click for the verdict\'s numbers')) : null)));
        if (open) {
          body.push(h('tr', { class: 'rollout-evidence-row' }, h('td', { colspan: 5 }, eventEvidence(e, row))));
        }
      }
      keepFocus(els.rolloutHistory, () => els.rolloutHistory.replaceChildren(...body));
      els.rolloutHistoryNote.textContent = events.length > rows.reduce((n, x) => n + x.count, 0)
        ? `The newest ${rows.length} rows; every event is under Events (kind rollout.*).` : '';
    }

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
        els.shadow = h('div', { id: 'route-shadow' });
        els.shadowNote = h('p', { class: 'sub' });
        els.sample = h('section', { class: 'panel sample-panel', id: 'shadow-sample', 'aria-labelledby': 'shadow-sample-title', hidden: true });
        els.reset = h('button', { type: 'button', class: 'danger', id: 'reset-diffs', hidden: true, onclick: () => confirmAction(resetDiffsAction(name, shadowData, () => closeSample())) }, 'Reset comparisons…');
        els.protection = h('div', { id: 'route-protection' });
        els.protectionNote = h('p', { class: 'sub' });
        els.purge = h('button', { type: 'button', class: 'danger', id: 'purge-cache', hidden: true, onclick: () => current && confirmAction(purgeCacheAction(current)) }, 'Purge cache…');
        els.rolloutNote = h('p', { class: 'sub', id: 'rollout-summary' });
        els.rolloutBody = h('div', { id: 'route-rollout-body' });
        els.rolloutButtons = {};
        for (const [cmd, label, cls] of [['pause', 'Pause…', ''], ['resume', 'Resume…', ''], ['promote', 'Promote step…', 'primary'], ['abort', 'Abort…', 'danger'], ['start', 'Start…', 'primary']]) {
          els.rolloutButtons[cmd] = h('button', { type: 'button', class: cls || null, id: `rollout-${cmd}`, disabled: true, onclick: () => confirmAction(rolloutAction(name, cmd, rollout, rolloutCfg)) }, label);
        }
        els.rolloutActions = h('div', { class: 'action-buttons rollout-actions', hidden: true }, Object.values(els.rolloutButtons));
        els.rolloutHistory = h('tbody');
        els.rolloutHistoryNote = h('p', { class: 'muted small' });
        els.rolloutHistoryWrap = h('div', { hidden: true },
          h('h3', { id: 'rollout-history-title' }, 'History'),
          h('p', { class: 'muted small' }, 'Newest first; click a row for its evidence. Consecutive holds at one step are folded into one row.'),
          h('table', { class: 'events rollout-history', id: 'rollout-history', 'aria-labelledby': 'rollout-history-title' },
            h('thead', {}, h('tr', {}, ['Time', 'Kind', 'Step', 'Actor', 'Message'].map((t, i) => h('th', { scope: 'col', class: i === 2 ? 'num' : null }, t)))),
            els.rolloutHistory),
          els.rolloutHistoryNote);
        root.append(
          h('p', { class: 'crumb' }, h('a', { href: '#/' }, '← Migration map'), ' · ',
            h('a', { href: `#/slo/${encodeURIComponent(name)}`, id: 'route-slo-link', title: `${name}'s service-level objectives: error budget, burn rates, alert rules and alerts` }, 'SLOs')),
          h('div', { class: 'page-head' }, h('div', {}, h('div', { class: 'title-row' }, els.title, els.badges), els.meta)),
          els.error,
          h('section', { class: 'panel actions-panel', 'aria-label': 'Change this route' },
            h('div', { class: 'action-buttons' }, els.rollback, els.promote),
            setForm),
          els.cards,
          h('section', { 'aria-labelledby': 'route-rollout-title', class: 'rollout-section', id: 'route-rollout' },
            h('div', { class: 'section-head section-head-actions' },
              h('div', {}, h('h2', { id: 'route-rollout-title' }, 'Rollout'), els.rolloutNote),
              els.rolloutActions),
            els.rolloutBody,
            els.rolloutHistoryWrap),
          h('section', { 'aria-labelledby': 'route-protection-title', class: 'protection-section' },
            h('div', { class: 'section-head section-head-actions' },
              h('div', {}, h('h2', { id: 'route-protection-title' }, 'Protection'), els.protectionNote),
              els.purge),
            els.protection),
          h('section', { 'aria-labelledby': 'charts-title' },
            h('div', { class: 'section-head' }, els.chartTitle = h('h2', { id: 'charts-title' }, 'Last 15 minutes'), els.chartNote),
            els.charts),
          h('section', { 'aria-labelledby': 'route-shadow-title', class: 'shadow-section' },
            h('div', { class: 'section-head section-head-actions' },
              h('div', {}, h('h2', { id: 'route-shadow-title' }, 'Shadow comparison'), els.shadowNote),
              els.reset),
            els.shadow,
            els.sample),
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
        const [r, applied, reverted, jobs, diffs, rollouts] = await Promise.all([
          api(`/api/v1/routes/${enc}?seconds=${CHART_SECONDS}`),
          api('/api/v1/events?kind=config.applied&limit=50').catch(() => []),
          api('/api/v1/events?kind=config.reverted&limit=50').catch(() => []),
          api('/api/v1/verify').catch(() => []),
          api(`/api/v1/diffs?route=${enc}`).catch((err) => err),
          api('/api/v1/rollouts').catch((err) => err),
          readRolloutEvents(enc).catch(() => null),
        ]);
        // The file's [route.rollout], read again when a config version is applied or reverted.
        const key = applied.concat(reverted).reduce((m, e) => Math.max(m, e.id), 0);
        if (key !== cfgKey) {
          try {
            const cfg = await api('/api/v1/config');
            rolloutCfg = scanRolloutConfig(cfg.text, name);
            cfgKey = key;
          } catch (_) { /* keep what was read; try again next refresh */ }
        }
        const mine = jobs.filter((j) => j.route === name);
        const histories = await Promise.all(mine.map((j) => api(`/api/v1/verify/${encodeURIComponent(j.job)}?limit=10`).catch(() => ({ ...j, runs: [] }))));
        current = r;
        const ro = Array.isArray(rollouts) ? rollouts.find((x) => x.route === name) || null : null;
        els.error.replaceChildren();
        document.title = `${r.name} · ficus`;
        els.badges.replaceChildren(...[...stageCell(r), overrideTag(r), rolloutTag(ro)].filter(Boolean));
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
        if (ro && ROLLOUT_ACTIVE.includes(ro.status)) {
          const hand = 'a rollout owns this route\'s weight: a change by hand pauses it (the Rollout section below promotes it a step)';
          for (const b of [els.promote, els.rollback]) b.title = b.title ? `${b.title}; ${hand}` : hand;
        }
        if (!formReady) {
          els.stage.value = r.stage;
          els.weight.value = String(r.weight);
          formReady = true;
        }
        els.cards.replaceChildren(statCard('legacy', r.legacy, r), statCard('modern', r.modern, r),
          h('div', { class: 'card share-card' }, h('h3', {}, 'Answered by modern'), shareBar(r), h('p', { class: 'muted' }, `configured: ${r.stage}${r.stage === 'canary' ? ' ' + fmtWeight(r.weight) + ' of users' : ''}`)));
        drawProtection(r);
        const markers = markersFor(r.events.concat([...rolloutEvents.values()].filter((e) => e.kind !== 'rollout.hold')), applied.concat(reverted));
        drawCharts(els.charts, els.chartTitle, els.chartNote, r, markers);
        els.integrity.replaceChildren(...(histories.length ? histories.map(verifyHistory)
          : [h('p', { class: 'muted' }, 'No [[verify]] job names this route: add one to ficus.toml to compare its tables on a schedule.')]));
        drawShadow(diffs);
        drawRollout(ro, rollouts instanceof Error ? rollouts : null);
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

  // ---- a route's shadow comparison: counters, field tree per endpoint, samples

  const KIND_HELP = {
    value: 'same type, different value',
    type: 'different JSON types, or JSON on one side only',
    missing: 'present in legacy, absent in modern',
    extra: 'present in modern only',
    length: 'arrays of different lengths',
    order: 'the same elements in another order',
  };
  const VERDICT_HELP = {
    real: 'modern differs from legacy more often than legacy differs from itself',
    noise: 'differs no more often than legacy differs from itself (timestamps, random ids)',
    equal: 'never differed',
  };
  const verdictBadge = (v, help) => h('span', { class: `verdict verdict-${v}`, title: (help || VERDICT_HELP)[v] || null }, v);
  /**
   * How the field tree names what it compares: the shadow comparison's legacy against modern
   * by default; a replay's (replayWords) the reference against the target.
   */
  const SHADOW_WORDS = {
    pair: 'legacy-vs-modern',
    noisePair: 'legacy-vs-legacy',
    other: 'modern',
    noNoise: 'no legacy-vs-legacy comparison yet ([route.shadow] noise_sample)',
    noiseNote: '· these fields differ about as often between two answers of legacy: not counted in the rate',
    same: 'modern answers like legacy here',
    heading: 'h3',
    verdictHelp: VERDICT_HELP,
  };
  const diffKind = (k) => h('span', { class: 'diff-kind', title: KIND_HELP[k] || null }, k);

  /** Re-runs `redraw` (which replaces `container`'s children) keeping the focus on the same control. */
  function keepFocus(container, redraw) {
    const a = document.activeElement;
    const key = a && container.contains(a) && a.dataset ? a.dataset.focus : null;
    redraw();
    if (!key) return;
    const again = [...container.querySelectorAll('[data-focus]')].find((el) => el.dataset.focus === key);
    if (again) again.focus({ preventScroll: true });
  }

  /** A field path with its parent dimmed: `$.items[*]` `.price`. */
  function pathLabel(path) {
    const m = path.match(/(\.[^.[\]"]+|\[(?:\*|\d+|"(?:[^"\\]|\\.)*")\])$/);
    if (!m || m.index === 0) return h('code', { class: 'path' }, h('b', {}, path));
    return h('code', { class: 'path' }, h('span', { class: 'path-parent' }, path.slice(0, m.index)), h('b', {}, m[0]));
  }

  function shadowCounters(d) {
    const c = d.counters;
    const dropped = droppedTotal(c);
    const row = (k, v, cls, title) => [h('dt', { title: title || null }, k), h('dd', { class: cls || null, title: title || null, dataset: { counter: k } }, v)];
    return h('div', { class: 'card shadow-counters', id: 'shadow-counters' },
      h('h3', {}, 'Mirror', h('span', { class: 'muted' }, ` · since this ficus started · ${d.mirroring ? 'mirroring' : 'not mirroring now'}`)),
      h('dl', { class: 'stats' },
        row('mirrored', num(c.mirrored, 0), '', 'copies queued for modern'),
        row('compared', num(c.compared, 0), '', 'legacy-vs-modern comparisons made'),
        row('differing', num(c.differing, 0), '', 'comparisons with at least one difference, noise included'),
        row('noise sample', num(c.noise_compared, 0), '', 'legacy asked a second time and compared with itself'),
        row('dropped', num(dropped, 0), dropped ? 'warn' : '', 'copies not compared: the mirror queue was full, a body was over [shadow] max_body, the exchange with legacy did not complete, or ficus was stopping'),
        row('modern failed', num(c.failed, 0), c.failed ? 'bad' : '', 'mirrored calls modern did not answer (connect error, timeout): compared as the 502 or 504 a client would have seen')),
      dropped ? h('p', { class: 'small warn', id: 'shadow-dropped' }, `dropped: ${dropReasons(c)}`) : null);
  }

  function shadowBody(d, route, openSample, selected) {
    const c = d ? d.counters : null;
    if (!d || (!d.mirroring && !d.report && !c.mirrored && !droppedTotal(c))) {
      return [h('p', { class: 'muted', id: 'shadow-off' }, `${route} does not mirror: in stage shadow (or canary with [route.shadow] canary = true) and with a modern upstream, ficus sends modern a copy of the requests legacy answers and compares the two responses.`)];
    }
    const out = [shadowCounters(d)];
    const rep = d.report;
    if (!rep || !rep.compared) {
      out.push(h('p', { class: 'muted', id: 'shadow-waiting' }, d.mirroring
        ? 'No comparison since the last reset: waiting for traffic. Only mirrored requests are compared: the route\'s sample of users, safe methods (unless shadow_writes), bodies within [shadow] max_body.'
        : 'No comparisons recorded.'));
      return out;
    }
    out.push(h('p', { class: 'shadow-summary', id: 'shadow-summary', dataset: { rate: rep.rate, compared: rep.compared } },
      h('span', { class: `diffs-rate ${rateClass(rep.rate)}` }, fmtDiffRate(rep.rate)),
      ` real-difference rate (the route's worst real field) over ${num(rep.compared, 0)} comparisons since the last reset; `,
      `${num(rep.differing, 0)} had some difference (noise included); ${num(rep.noise_compared, 0)} legacy-vs-legacy comparisons measured the noise.`,
      d.mirroring ? null : h('span', { class: 'warn' }, ' Not mirroring now: these comparisons are from before; reset them when they no longer matter.')));
    for (const ep of rep.endpoints) out.push(endpointBlock(ep, openSample, selected));
    return out;
  }

  /**
   * One endpoint's field tree: real differences first, by rate, then the noise under its own
   * heading. `openSample` null: the samples' ids are shown but cannot be opened (a replay's).
   */
  function endpointBlock(ep, openSample, selected, words) {
    const w = words || SHADOW_WORDS;
    const real = ep.fields.filter((f) => f.verdict === 'real');
    const noise = ep.fields.filter((f) => f.verdict !== 'real');
    const rows = (fields) => fields.map((f) => fieldRow(f, ep, openSample, selected, w));
    const none = !ep.fields.length
      ? `No difference in ${num(ep.compared, 0)} comparisons.`
      : `No real difference: ${w.same}${noise.length ? ', apart from the noise below' : ''}.`;
    return h('div', { class: 'endpoint', dataset: { endpoint: ep.endpoint, rate: ep.rate } },
      h(w.heading, {}, h('code', {}, ep.endpoint),
        h('span', { class: 'muted' }, ` · ${num(ep.compared, 0)} compared · ${num(ep.differing, 0)} with a difference · real rate `),
        h('span', { class: rateClass(ep.rate) }, fmtDiffRate(ep.rate)),
        ep.last_ms ? h('span', { class: 'muted', title: fmtDateTime(ep.last_ms) }, ` · last compared ${fmtTime(ep.last_ms)}`) : null),
      h('table', { class: 'field-tree', 'aria-label': `fields of ${ep.endpoint} that differ, real differences first` },
        h('thead', {}, h('tr', {}, ['Field', 'Kind', 'Rate', 'Noise rate', 'Verdict', 'Samples'].map((t, i) => h('th', { scope: 'col', class: i === 2 || i === 3 ? 'num' : null }, t)))),
        h('tbody', { class: 'fields-real' }, real.length ? rows(real) : h('tr', {}, h('td', { colspan: 6, class: 'muted' }, none))),
        noise.length ? h('tbody', { class: 'fields-noise' },
          h('tr', { class: 'noise-head' }, h('th', { colspan: 6, scope: 'rowgroup' }, `Noise (${noise.length}) `,
            h('span', { class: 'muted' }, w.noiseNote))),
          rows(noise)) : null));
  }

  /**
   * The noise a field was judged against, as `ficus diffs` shows it: the endpoint's own
   * legacy-vs-legacy rate, or the route's pooled one (marked "route") while the endpoint has
   * too few comparisons of its own; "—" before any.
   */
  function noiseCell(f, ratio, w) {
    if (!(f.noise_compared > 0)) {
      return h('td', { class: 'num noise', title: w.noNoise }, h('span', { class: 'muted' }, '—'));
    }
    const pooled = f.noise_scope === 'route';
    const title = pooled
      ? `differs in ${f.noise_differing} of the route's ${f.noise_compared} ${w.noisePair} comparisons (pooled over its endpoints: this one has too few of its own); over the whole route, ${w.other} differs here in ${fmtDiffRate(f.route_rate ?? 0)} of the comparisons`
      : `differs in ${f.noise_differing} of ${f.noise_compared} ${w.noisePair} comparisons`;
    return h('td', { class: 'num noise', title, dataset: { scope: f.noise_scope } },
      fmtDiffRate(f.noise_rate), pooled ? h('span', { class: 'muted small' }, ' (route)') : null,
      ratio(f.noise_differing, f.noise_compared));
  }

  function fieldRow(f, ep, openSample, selected, w) {
    const ratio = (a, b) => h('div', { class: 'muted small' }, `${num(a, 0)} / ${num(b, 0)}`);
    return h('tr', { class: `field field-${f.verdict}`, dataset: { path: f.path, kind: f.kind, verdict: f.verdict, rate: f.rate } },
      h('th', { scope: 'row', class: 'field-path' }, pathLabel(f.path)),
      h('td', {}, diffKind(f.kind)),
      h('td', { class: 'num field-rate', title: `differs in ${f.differing} of ${ep.compared} ${w.pair} comparisons` },
        h('span', { class: f.verdict === 'real' ? rateClass(f.rate) : null }, fmtDiffRate(f.rate)), ratio(f.differing, ep.compared)),
      noiseCell(f, ratio, w),
      h('td', {}, verdictBadge(f.verdict, w.verdictHelp)),
      h('td', { class: 'samples' }, f.sample_ids.length && !openSample
        ? h('span', { class: 'muted small sample-ids', title: w.samplesHelp || null }, f.sample_ids.map((id) => `#${id}`).join(' '))
        : f.sample_ids.length
        ? f.sample_ids.map((id, n) => h('button', {
          type: 'button',
          class: 'sample-link small',
          dataset: { sample: id, focus: `sample-${id}` },
          'aria-pressed': String(id === selected),
          'aria-controls': 'shadow-sample',
          'aria-label': `sample ${n + 1} of ${f.path} (${f.kind}): legacy and modern side by side`,
          title: `sample ${id}`,
          onclick: () => openSample(id, n + 1),
        }, `#${n + 1}`))
        : h('span', { class: 'muted small' }, 'none kept')));
  }

  /** (path, kind) → the field's verdict on `endpoint` in the route's report, or null. */
  function verdictIn(d, endpoint) {
    const ep = d && d.report && d.report.endpoints.find((e) => e.endpoint === endpoint);
    return (path, kind) => {
      const f = ep && ep.fields.find((x) => x.path === path && x.kind === kind);
      return f ? f.verdict : null;
    };
  }

  function resetDiffsAction(name, d, done) {
    const rep = d && d.report;
    return {
      title: `Reset comparisons of ${name}`,
      what: `Forgets ${name}'s ${rep ? num(rep.compared, 0) + ' comparisons' : 'comparisons'}, their field rates and samples, in memory and in the store, and records a shadow.reset event. The mirror keeps comparing new traffic from zero: reset after fixing what modern got wrong.`,
      message: 'comparisons reset from the dashboard',
      button: 'Reset comparisons',
      danger: true,
      path: `/api/v1/diffs/${encodeURIComponent(name)}/reset`,
      payload: (message) => ({ message }),
      done,
    };
  }

  /**
   * A JSON text as pretty-printed lines, each with the concrete path of the value it shows
   * (`$.items[1].price`, the way ficus-compare writes a difference's `at`), so differences
   * can be marked by path rather than by searching text. Numbers and strings keep their
   * source spelling (no rounding of big ids). null when the text is not JSON.
   */
  function jsonLines(text) {
    try { JSON.parse(text); } catch (_) { return null; }
    let i = 0;
    const skip = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
    const str = () => { const s = i++; while (text[i] !== '"') { if (text[i] === '\\') i++; i++; } i++; return text.slice(s, i); };
    const items = (close, item) => {
      const out = [];
      i++;
      skip();
      if (text[i] === close) { i++; return out; }
      for (;;) {
        out.push(item());
        skip();
        if (text[i++] === close) return out;
      }
    };
    const value = () => {
      skip();
      const c = text[i];
      if (c === '{') return { obj: items('}', () => { skip(); const k = str(); skip(); i++; return [k, value()]; }) };
      if (c === '[') return { arr: items(']', value) };
      if (c === '"') return { raw: str() };
      const s = i;
      while (i < text.length && !',]} \t\n\r'.includes(text[i])) i++;
      return { raw: text.slice(s, i) };
    };
    const member = (base, key) => (/^[A-Za-z0-9_-]+$/.test(key) ? `${base}.${key}` : `${base}[${JSON.stringify(key)}]`);
    const lines = [];
    const emit = (node, path, depth, prefix, comma) => {
      const pad = '  '.repeat(depth);
      if (node.raw !== undefined) { lines.push({ path, text: pad + prefix + node.raw + comma }); return; }
      const [open, close, kids] = node.obj ? ['{', '}', node.obj] : ['[', ']', node.arr];
      if (!kids.length) { lines.push({ path, text: pad + prefix + open + close + comma }); return; }
      lines.push({ path, text: pad + prefix + open });
      kids.forEach((kid, n) => {
        const sep = n === kids.length - 1 ? '' : ',';
        if (node.obj) emit(kid[1], member(path, JSON.parse(kid[0])), depth + 1, kid[0] + ': ', sep);
        else emit(kid, `${path}[${n}]`, depth + 1, '', sep);
      });
      lines.push({ path, text: pad + close + comma });
    };
    try {
      emit(value(), '$', 0, '', '');
    } catch (_) {
      return null; // nested too deep for the stack: shown as text
    }
    return lines;
  }

  /** Whether a body line at `linePath` shows (part of) the difference `d` on this side. */
  function lineDiffers(linePath, d) {
    if (linePath === d.at) return true;
    // A changed value, type, or a member present on one side: the whole subtree. Length
    // and order: the array's own lines (its elements are compared one by one).
    if (d.kind === 'length' || d.kind === 'order') return false;
    return linePath.startsWith(d.at + '.') || linePath.startsWith(d.at + '[');
  }

  const valueCell = (v) => (v === null || v === undefined
    ? h('td', { class: 'muted absent' }, 'absent')
    : h('td', {}, h('code', { class: 'value' }, v)));

  function sampleSide(side, resp, diffs, verdictOf) {
    const present = (d) => (side === 'legacy' ? d.left : d.right) !== null && (side === 'legacy' ? d.left : d.right) !== undefined;
    const statusDiffers = diffs.some((d) => d.path === 'status');
    const headerDiffs = new Set(diffs.filter((d) => d.path.startsWith('header.')).map((d) => d.path.slice('header.'.length)));
    const bodyDiffers = diffs.some((d) => d.path === 'body');
    const bodyDiffs = diffs.filter((d) => d.at.startsWith('$') && present(d));
    const lines = resp.body ? jsonLines(resp.body) : null;
    let body;
    if (!resp.body) {
      body = h('p', { class: 'muted sample-empty' }, '(empty body)');
    } else if (lines) {
      let marked = 0;
      body = h('pre', { class: 'sample-body', tabindex: 0, dataset: { side, format: 'json' }, 'aria-label': `${side} body, pretty-printed; lines that differ are marked` },
        lines.map((l) => {
          const hits = bodyDiffs.filter((d) => lineDiffers(l.path, d));
          if (!hits.length) return h('span', { class: 'line' }, l.text + '\n');
          marked++;
          // Noise (legacy differs from itself there too) is marked, but lighter.
          const noise = hits.every((d) => verdictOf(d.path, d.kind) === 'noise');
          return h('mark', { class: `line hl${noise ? ' hl-noise' : ''}`, dataset: { path: l.path }, title: hits.map((d) => `${d.at}: ${d.kind} (legacy ${d.left ?? 'absent'}, modern ${d.right ?? 'absent'})`).join('\n') }, l.text + '\n');
        }));
      body.dataset.marked = marked;
    } else {
      body = h('pre', { class: `sample-body${bodyDiffers ? ' differs' : ''}`, tabindex: 0, dataset: { side, format: 'text' }, 'aria-label': `${side} body${bodyDiffers ? ' (differs)' : ''}` }, resp.body);
    }
    return h('div', { class: `sample-side sample-${side}`, dataset: { side } },
      h('h4', {}, h('span', { class: `swatch swatch-${side}` }), side === 'legacy' ? ' Legacy' : ' Modern'),
      h('p', { class: `sample-status${statusDiffers ? ' hl' : ''}`, dataset: { status: resp.status } }, 'HTTP ', h('b', {}, String(resp.status)), statusDiffers ? h('span', { class: 'visually-hidden' }, ' (differs)') : null),
      h('details', { class: 'sample-headers', open: headerDiffs.size > 0 },
        h('summary', {}, `headers (${resp.headers.length})${headerDiffs.size ? ' · some differ' : ''}`),
        h('table', { class: 'headers' }, h('tbody', {}, resp.headers.map(([k, v]) => h('tr', { class: headerDiffs.has(k.toLowerCase()) ? 'hl' : null },
          h('th', { scope: 'row' }, k), h('td', {}, v)))))),
      body,
      resp.truncated ? h('p', { class: 'muted small' }, 'body cut at the sample limit (16 KiB)') : null);
  }

  /** The children of the sample panel: what was asked, what differs, both answers side by side. */
  function samplePanel(s, n, verdictOf) {
    const diffs = s.differences || [];
    const req = s.data.request;
    return [
      h('h3', { id: 'shadow-sample-title', tabindex: -1 }, n ? `Sample #${n} of ` : 'Sample of ', pathLabel(s.path), ' ', diffKind(s.kind)),
      h('p', { class: 'muted small sample-meta' }, `${s.endpoint} · ${fmtDateTime(s.at_ms)} · id ${s.id} (ficus diffs show ${s.id})`),
      h('p', { class: 'sample-request' }, h('code', {}, `${req.method} ${req.uri}`),
        req.headers.length ? h('details', {}, h('summary', {}, `request headers (${req.headers.length})`),
          h('table', { class: 'headers' }, h('tbody', {}, req.headers.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v)))))) : null,
        req.body ? h('pre', { class: 'sample-body' }, req.body) : null),
      h('table', { class: 'sample-differences', id: 'sample-differences' },
        h('caption', {}, `${diffs.length} difference${diffs.length === 1 ? '' : 's'} in this exchange${diffs.length >= 256 ? ' (the first 256)' : ''}`),
        h('thead', {}, h('tr', {}, ['At', 'Kind', 'Legacy', 'Modern', 'Field verdict'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, diffs.map((d) => {
          const v = verdictOf(d.path, d.kind);
          return h('tr', { class: `${d.path === s.path && d.kind === s.kind ? 'this-field' : ''}${v === 'noise' ? ' diff-noise' : ''}` || null, dataset: { at: d.at, path: d.path, kind: d.kind, verdict: v || '' } },
            h('th', { scope: 'row' }, h('code', {}, d.at)), h('td', {}, diffKind(d.kind)), valueCell(d.left), valueCell(d.right),
            h('td', {}, v ? verdictBadge(v) : h('span', { class: 'muted small', title: 'not in the current report (reset since?)' }, '—')));
        }))),
      h('div', { class: 'sample-sides' }, sampleSide('legacy', s.data.legacy, diffs, verdictOf), sampleSide('modern', s.data.modern, diffs, verdictOf)),
    ];
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
      // Holds repeat while a step waits for evidence: they would hide the changes.
      if (seen.has(e.id) || e.kind === 'rollout.hold') continue;
      seen.add(e.id);
      const d = e.data || {};
      let label;
      if (e.kind === 'route.rollback') label = 'rollback';
      else if (e.kind === 'rollout.promoted') label = d.weight && d.weight.to !== undefined && d.weight.to !== null ? `→ ${fmtWeight(d.weight.to)}` : 'promoted';
      else if (e.kind === 'rollout.rolled_back') label = 'rolled back';
      else if (e.kind === 'rollout.started') label = d.weight && d.weight.to !== undefined && d.weight.to !== null ? `rollout ${fmtWeight(d.weight.to)}` : 'rollout';
      else if (isRolloutEvent(e)) label = e.kind.slice('rollout.'.length).replace('_', ' ');
      else if (e.kind === 'route.set') label = 'set';
      else if (e.kind === 'config.applied') label = `v${e.config_version ?? '?'}`;
      else if (e.kind === 'config.reverted') label = `revert v${e.config_version ?? '?'}`;
      else if (e.kind === 'shadow.reset') label = 'diffs reset';
      else if (e.kind === 'cache.purged') label = 'purge';
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

  /** Pixels apart under which markers are drawn as one (the width of a marker's hover area). */
  const MARKER_GROUP_PX = 10;

  /**
   * Markers (sorted by time) grouped where their lines would be closer than MARKER_GROUP_PX:
   * each group drawn once at its latest change, labelled `label +N`, titled with every change.
   */
  function markerGroups(markers, xOf) {
    const groups = [];
    for (const mk of markers) {
      const x = xOf(mk.t);
      const g = groups[groups.length - 1];
      if (g && x - g.firstX < MARKER_GROUP_PX) g.members.push(mk);
      else groups.push({ firstX: x, members: [mk] });
    }
    return groups.map(({ members }) => {
      const last = members[members.length - 1];
      const n = members.length;
      return {
        x: xOf(last.t),
        kind: last.kind,
        count: n,
        label: n > 1 ? `${last.label} +${n - 1}` : last.label,
        title: members.map((m) => m.title).join('\n'),
      };
    });
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

  /** Time-axis ticks [t, label] over the last minutes: about six, labelled hh:mm(:ss). */
  function shortTimeTicks(t0, t1) {
    const step = tickStep(t1 - t0);
    const out = [];
    for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      const d = new Date(t * 1000);
      out.push([t, step < 60 ? fmtTime(t * 1000) : `${pad(d.getHours())}:${pad(d.getMinutes())}`]);
    }
    return out;
  }

  /**
   * A line chart. `c`: id, title, unit, width, t0 and t1 (unix s), series [{label, color,
   * dash, points: [[t, v]]}], markers; optional: yTicks (ascending values, the first and last
   * the axis' ends; default 0 to a round maximum), yFormat, xTicks ([t, label]; default
   * shortTimeTicks), maxGap (seconds between points still joined; default 1), hold (the
   * readout shows the latest point at or before the cursor, not that second's), valueFormat,
   * timeFormat (the readout's), refLines ([{v, cls, title}]), ariaLabel, emptyText.
   */
  function chart(c) {
    const W = c.width;
    const H = 190;
    const m = { l: 52, r: 16, t: 34, b: 22 };
    const iw = W - m.l - m.r;
    const ih = H - m.t - m.b;
    let yTicks = c.yTicks;
    if (!yTicks) {
      let max = 0;
      for (const s of c.series) for (const [t, v] of s.points) if (v !== null && t >= c.t0 && v > max) max = v;
      const top = niceMax(max);
      yTicks = [0, 1, 2, 3, 4].map((i) => (top * i) / 4);
    }
    const ymin = yTicks[0];
    const ymax = yTicks[yTicks.length - 1];
    const yFormat = c.yFormat || ((v) => num(v, 2));
    const timeFormat = c.timeFormat || ((t) => fmtTime(t * 1000));
    const maxGap = c.maxGap ?? 1;
    const X = (t) => m.l + ((t - c.t0) / (c.t1 - c.t0)) * iw;
    const Y = (v) => m.t + ih - ((v - ymin) / (ymax - ymin)) * ih;
    const root = svg('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': c.ariaLabel || `${c.title}, per side, from ${fmtTime(c.t0 * 1000)} to ${fmtTime(c.t1 * 1000)}`, class: 'chart-svg' });

    yTicks.forEach((v, i) => {
      const y = Y(v);
      root.append(svg('line', { x1: m.l, x2: W - m.r, y1: y, y2: y, class: i === 0 ? 'axis' : 'grid' }));
      root.append(svg('text', { x: m.l - 6, y: y + 4, class: 'tick', 'text-anchor': 'end' }, yFormat(v)));
    });
    for (const ref of c.refLines || []) {
      root.append(svg('line', { x1: m.l, x2: W - m.r, y1: Y(ref.v), y2: Y(ref.v), class: `ref-line ${ref.cls || ''}` }, ref.title ? svg('title', {}, ref.title) : null));
    }
    for (const [t, label] of c.xTicks || shortTimeTicks(c.t0, c.t1)) {
      const x = X(t);
      root.append(svg('line', { x1: x, x2: x, y1: m.t, y2: m.t + ih, class: 'grid grid-v' }));
      root.append(svg('text', { x, y: H - 6, class: 'tick', 'text-anchor': 'middle' }, label));
    }

    // Markers: a dashed line per change; labels take the first of two lanes above the plot
    // where they do not overlap the previous one. Changes closer together than a marker is
    // wide (a rollback and its events in the same second) are one marker: the latest one's
    // line and label with "+N", every change in its title.
    const laneEnd = [-Infinity, -Infinity];
    for (const mk of markerGroups(c.markers.filter((mk) => mk.t >= c.t0 && mk.t <= c.t1 + 1), (t) => X(Math.min(t, c.t1)))) {
      const x = mk.x;
      const w = 7 * mk.label.length + 6;
      const right = x + 3 + w > W;
      const [from, to] = right ? [x - 3 - w, x] : [x, x + 3 + w];
      let lane = laneEnd.findIndex((end) => end < from);
      if (lane < 0) lane = laneEnd[0] <= laneEnd[1] ? 0 : 1;
      laneEnd[lane] = to;
      root.append(svg('g', { class: `marker marker-${mk.kind}${mk.count > 1 ? ' marker-group' : ''}`, tabindex: 0, 'aria-label': mk.title, 'data-count': mk.count },
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
        const gap = prevT !== null && t - prevT > maxGap;
        d += `${pen && !gap ? 'L' : 'M'}${X(t).toFixed(1)},${Y(v).toFixed(1)}`;
        pen = true;
        prevT = t;
        n++;
      }
      drawn += n;
      if (n) root.append(svg('path', { d, class: 'series', stroke: s.color, 'stroke-dasharray': s.dash || null, dataset: { side: s.label, points: n } }));
    }
    if (!drawn) root.append(svg('text', { x: m.l + iw / 2, y: m.t + ih / 2, class: 'empty', 'text-anchor': 'middle' }, c.emptyText || 'no data in the last 15 minutes'));

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
      readout.replaceChildren(h('b', {}, timeFormat(t)), ...c.series.map((s) => {
        let p;
        if (c.hold) for (const q of s.points) { if (q[0] > t) break; p = q; }
        else p = s.points.find((q) => q[0] === t);
        const v = p ? p[1] : null;
        const shown = v === null || v === undefined ? '—' : c.valueFormat ? c.valueFormat(v) : c.unit === 'ms' ? fmtMs(v) : num(v, 2) + c.unit;
        return h('span', {}, h('span', { class: 'swatch', style: { background: s.color } }), ` ${s.label} ${shown}`);
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
          ['config.applied', 'config.reverted', 'route.set', 'route.rollback', 'shadow.reset', 'cache.purged', 'breaker.open', 'breaker.half_open', 'breaker.closed', ...ROLLOUT_KINDS, 'slo.firing', 'slo.resolved', 'flag.set', 'flag.reset', 'record.started', 'record.stopped', ...MIGRATION_KINDS].map((k) => h('option', { value: k }, k)));
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

  // ---- the fleet: every gateway on the store

  const nodeState = (s) => h('span', { class: `node-state node-${s}` }, s);

  function fleetView() {
    let tbody, head, local;
    return {
      mount(root) {
        head = h('p', { class: 'sub', id: 'fleet-summary' }, 'Loading…');
        tbody = h('tbody');
        local = h('p', { class: 'muted small', id: 'fleet-local' });
        root.append(
          h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Fleet'), head)),
          h('table', { class: 'events fleet', id: 'fleet' },
            h('thead', {}, h('tr', {}, ['Node', 'State', 'Host', 'Admin API', 'Config', 'Revision', 'Apply lag', 'Req/s', 'Heartbeat', 'Up since', 'Drift'].map((t) => h('th', { scope: 'col' }, t)))),
            tbody),
          local);
      },
      async refresh() {
        const f = await api('/api/v1/fleet');
        const up = f.nodes.filter((n) => n.state === 'up').length;
        const lead = f.nodes.find((n) => n.leader);
        const behind = f.nodes.filter((n) => n.state === 'up' && n.revision_skew > 0).length;
        head.replaceChildren(
          `${up} of ${f.nodes.length} node(s) up on a ${f.store} store at revision ${f.revision}; `,
          lead ? h('span', {}, 'leader ', h('strong', {}, lead.name), ` (epoch ${f.leader.epoch})`) : h('strong', { class: 'bad' }, 'no leader'),
          behind ? h('span', { class: 'warn' }, ` · ${behind} node(s) behind the store`) : '',
          f.stale ? h('span', { class: 'bad' }, ` · ${f.stale}`) : '');
        tbody.replaceChildren(...f.nodes.map((n) => h('tr', { dataset: { node: n.id, state: n.state }, class: n.this ? 'this-node' : null },
          h('td', {}, h('strong', {}, n.name), n.leader ? h('span', { class: 'leader-badge', title: 'runs the rollout controller, verify jobs, webhook delivery and retention' }, 'leader') : null,
            n.this ? h('span', { class: 'muted small' }, ' (this page)') : null, h('div', { class: 'muted small' }, n.id)),
          h('td', {}, nodeState(n.state)),
          h('td', {}, `${n.host} · pid ${n.pid}`),
          h('td', {}, n.admin_url ? h('a', { href: n.admin_url, rel: 'noopener' }, n.admin_url) : '-'),
          h('td', {}, n.config_version ? `v${n.config_version}` : '-'),
          h('td', { class: n.revision_skew > 0 ? 'warn' : null }, n.revision_skew > 0 ? `${n.revision} (${n.revision_skew} behind)` : String(n.revision)),
          h('td', {}, `${num(n.apply_lag_ms, 0)} ms`),
          h('td', {}, fmtRate(n.rate)),
          h('td', {}, `${(n.heartbeat_age_ms / 1000).toFixed(1)} s ago`),
          h('td', {}, fmtDateTime(n.started_at)),
          h('td', { class: n.drift ? 'warn drift' : 'muted' }, n.drift || '-'))));
        const l = f.local;
        local.replaceChildren(l
          ? `This node: changes heard ${f.store === 'sqlite' ? 'locally (a SQLite store has one node)' : !l.listen ? 'by polling ([fleet] listen = false)' : l.listener_up ? 'by LISTEN, and polling' : 'by polling only (LISTEN is down)'}; store ${l.store_ok ? 'answers' : 'does not answer' + (l.store_error ? `: ${l.store_error}` : '')}; traffic seconds sent ${num(l.seconds_sent, 0)}, received ${num(l.seconds_received, 0)}, dropped ${num(l.seconds_dropped, 0)}.`
          : '');
      },
      failed(e) {
        tbody.replaceChildren(h('tr', {}, h('td', { colspan: 11 }, problemNote(e))));
      },
    };
  }

  // ---- service-level objectives (GET /api/v1/slo, GET /api/v1/slo/ROUTE)

  const SLO_SCOPE_HELP = {
    route: 'counts each client request once, as the client saw it (after fallbacks and retries)',
    legacy: 'counts every call ficus made to the legacy side',
    modern: 'counts every call ficus made to the modern side',
  };
  /** Relative tolerance of a burn rate reaching a factor, as the evaluator has it. */
  const FACTOR_TOLERANCE = 1e-9;

  /** "5m", "1h", "3d": the window names of `ficus slo` and the metrics. */
  function windowName(s) {
    if (s % 86400 === 0) return `${s / 86400}d`;
    if (s % 3600 === 0) return `${s / 3600}h`;
    return `${Math.round(s / 60)}m`;
  }
  /** "99.9 % available", "99 % under 250 ms". */
  function sloObjective(spec) {
    const o = `${num(spec.objective, 4)} %`;
    return spec.sli.kind === 'latency' ? `${o} under ${fmtMs(spec.sli.threshold_us / 1000)}` : `${o} available`;
  }
  function sloObjectiveHelp(spec) {
    if (spec.sli.kind === 'latency') return `bad: answered slower than ${num(spec.sli.threshold_us / 1000, 3)} ms (to the response head), whatever the status; the error budget is ${fmtRatio(1 - spec.objective / 100)} of the requests`;
    const extra = [spec.sli.bad_429 ? '429' : null, spec.sli.bad_4xx ? 'any other 4xx' : null].filter(Boolean);
    return `bad: every 5xx (ficus's own 502, 503 and 504 included)${extra.length ? ', and ' + extra.join(' and ') : ''}; the error budget is ${fmtRatio(1 - spec.objective / 100)} of the requests`;
  }
  const sloWindow = (spec) => (spec.window.kind === 'rolling' ? `${spec.window.days} d rolling` : 'calendar month');
  const sloWindowHelp = (spec) => (spec.window.kind === 'rolling'
    ? `the objective and the error budget count over the last ${spec.window.days} days, sliding`
    : 'the objective and the error budget count over the current calendar month (UTC): the budget is whole again on the 1st');
  const scopeBadge = (scope) => h('span', { class: `slo-scope slo-scope-${scope}`, title: SLO_SCOPE_HELP[scope] || null }, scope);

  /** A good ratio as a percentage, never rounded up to 100 %: "99.337 %". */
  function fmtSli(x) {
    if (x === null || x === undefined) return '—';
    return `${num(Math.floor(Number(x) * 1e5 + 1e-6) / 1e3, 3)} %`;
  }
  const fmtBudget = (b) => `${num(b * 100, 1)} %`;
  const fmtBurn = (x) => (x === null || x === undefined ? '—' : `${num(x, x >= 10 ? 1 : 2)}×`);
  /** Green above 50 % of the budget left, amber from 10 %, red below (and overspent). */
  const budgetLevel = (b) => (b > 0.5 ? 'ok' : b >= 0.1 ? 'warn' : 'bad');
  /** 40 s, 5 h 12 min, 15 d 7 h, 2.5 y. */
  function fmtSpan(s) {
    const t = Math.max(0, Math.round(Number(s)));
    if (t >= 365 * 86400) return `${num(t / (365 * 86400), 1)} y`;
    if (t >= 2 * 86400) {
      const hours = Math.floor((t % 86400) / 3600);
      return `${Math.floor(t / 86400)} d${hours ? ` ${hours} h` : ''}`;
    }
    return fmtDuration(t);
  }
  /** The time to exhaustion: "never" (no burn over the last hour), "spent", or how long. */
  const fmtExhaustion = (s) => (s === null || s === undefined ? 'never' : s <= 0 ? 'spent' : fmtSpan(s));
  const burnOver = (ev, seconds) => (ev.burn_rates || []).find((w) => w.seconds === seconds) || null;
  /** Today: the time; before: the date and time. */
  function fmtSince(ms) {
    return new Date(ms).toDateString() === new Date().toDateString() ? fmtTime(ms) : fmtDateTime(ms);
  }

  function budgetBar(b, what) {
    const level = budgetLevel(b);
    const pct = Math.max(0, Math.min(100, b * 100));
    const text = b < 0 ? `${fmtBudget(b)} overspent` : fmtBudget(b);
    const fill = h('span', { class: `budget-fill budget-${level}` });
    fill.style.width = `${pct}%`;
    return h('div', { class: 'budget', dataset: { budget: b, level } },
      h('div', { class: 'budget-bar', role: 'meter', 'aria-label': `error budget left of ${what}`, 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': pct.toFixed(1), 'aria-valuetext': `${text} of the error budget left` }, fill),
      h('span', { class: `budget-label budget-label-${level}` }, text));
  }

  /** PAGE and TICKET badges with since when, or a muted "none". */
  function alertBadges(s) {
    const ev = s.evaluation;
    const out = [];
    for (const sev of ['page', 'ticket']) {
      const since = s[`${sev}_since`];
      if ((since === null || since === undefined) && !(ev && ev[sev])) continue;
      const known = since !== null && since !== undefined;
      out.push(h('span', {
        class: `slo-alert slo-alert-${sev}`,
        dataset: known ? { severity: sev, since } : { severity: sev },
        title: `${sev} alert firing${known ? ` since ${fmtDateTime(since * 1000)} (${ago(since * 1000)})` : ''}: ${sev === 'page' ? 'the budget goes in hours or days at this rate' : 'look at it during working hours'}`,
      }, sev.toUpperCase(), known ? h('span', { class: 'slo-alert-since' }, ` since ${fmtSince(since * 1000)}`) : null));
    }
    return out.length ? out : [h('span', { class: 'muted small', title: 'no burn-rate rule fires' }, 'none')];
  }

  /** The summary line of both SLO views: how many, firing, how fresh. */
  function sloSummary(list) {
    const ages = list.map((s) => s.age_ms).filter((a) => a !== null && a !== undefined);
    const firing = list.filter((s) => (s.page_since ?? null) !== null || (s.ticket_since ?? null) !== null).length;
    const routes = new Set(list.map((s) => s.spec.route)).size;
    if (!list.length) return ['No SLO configured'];
    return [
      `${list.length} SLO${list.length === 1 ? '' : 's'} on ${routes} route${routes === 1 ? '' : 's'}`,
      firing ? h('span', { class: 'bad' }, ` · ${firing} with an alert firing`) : ' · no alert firing',
      ages.length ? ` · evaluated by the leader ${fmtSpan(Math.min(...ages) / 1000)} ago` : ' · not evaluated yet',
    ];
  }

  /** What a change of redraws: everything but the age, and the budget's last point to the minute. */
  function sloSig(s) {
    const { age_ms: _age, budget, ...rest } = s;
    const b = budget ? budget.map((p, i) => (i === budget.length - 1 ? [Math.floor(p.t / 60), p.budget_remaining] : [p.t, p.budget_remaining])) : null;
    return JSON.stringify([rest, b]);
  }

  const SLO_COLUMNS = [
    ['Route', null, null],
    ['SLO', null, null],
    ['Scope', 'which requests it counts: route (as clients saw them), legacy or modern (the calls to that side)', null],
    ['Objective', null, null],
    ['Window', 'the period the objective and the error budget count over', null],
    ['SLI', 'the share of good requests over the window', 'num'],
    ['SLI 5 min', 'the share of good requests over the last 5 minutes', 'num'],
    ['Budget left', 'the share of the window\'s error budget not spent yet: 100 % with nothing spent, negative when overspent', null],
    ['Burn 1 h', 'the burn rate over the last hour: 1× spends exactly the budget over the window, 14.4× spends 2 % of a 30-day budget in an hour', 'num'],
    ['Budget gone in', 'when the budget is spent if the last hour\'s error rate and the window\'s traffic go on', 'num'],
    ['Alerts', 'burn-rate alerts firing: PAGE (wake someone up) and TICKET (working hours)', null],
  ];

  function sloRow(s) {
    const spec = s.spec;
    const ev = s.evaluation;
    const cells = [
      h('td', {}, h('a', { href: `#/slo/${encodeURIComponent(spec.route)}`, class: 'slo-route-link route-name', title: `${spec.route}'s SLOs: the budget over the window, burn rates, rules, alerts`, dataset: { focus: `slo-route-${s.id}` } }, spec.route)),
      h('td', {}, h('strong', {}, spec.name)),
      h('td', {}, scopeBadge(spec.scope)),
      h('td', { class: 'slo-objective', title: sloObjectiveHelp(spec) }, sloObjective(spec)),
      h('td', { class: 'slo-window nowrap', title: sloWindowHelp(spec) }, sloWindow(spec)),
    ];
    if (!ev) {
      cells.push(h('td', { colspan: 5, class: 'muted slo-pending', title: 'the leader evaluates every SLO every [slo] evaluate_every (default 5 s)' }, 'not evaluated yet'));
    } else {
      const b1h = burnOver(ev, 3600);
      const below = ev.sli !== null && ev.sli * 100 < ev.objective;
      cells.push(
        h('td', { class: `num slo-sli ${below ? 'bad' : ''}`, title: `${num(ev.window.total, 0)} requests, ${num(ev.window.bad, 0)} bad, since ${fmtDateTime(ev.window_start * 1000)}${below ? ': below the objective' : ''}` },
          fmtSli(ev.sli), h('div', { class: 'muted small' }, `${num(ev.window.total, 0)} req.`)),
        h('td', { class: 'num slo-sli5m', title: ev.sli_5m === null ? 'no request in the last 5 minutes' : null }, fmtSli(ev.sli_5m)),
        h('td', { class: 'slo-budget' }, budgetBar(ev.budget_remaining, s.id)),
        h('td', { class: `num slo-burn ${b1h && b1h.burn_rate > 1 ? 'warn' : ''}`, title: b1h ? `${num(b1h.counts.total, 0)} requests, ${num(b1h.counts.bad, 0)} bad over the last hour` : null }, fmtBurn(b1h && b1h.burn_rate)),
        h('td', { class: `num slo-tte ${ev.time_to_exhaustion_s !== null && ev.time_to_exhaustion_s <= 0 ? 'bad' : ''}`, title: ev.time_to_exhaustion_s === null ? 'nothing bad over the last hour: the budget does not run out at this rate' : ev.time_to_exhaustion_s <= 0 ? 'the error budget of the window is spent' : `at the last hour's burn rate: around ${fmtDateTime((ev.at + ev.time_to_exhaustion_s) * 1000)}` }, fmtExhaustion(ev.time_to_exhaustion_s)));
    }
    cells.push(h('td', {}, h('div', { class: 'slo-alerts' }, alertBadges(s))));
    const data = {
      slo: s.id,
      route: spec.route,
      evaluated: String(Boolean(ev)),
      page: String((s.page_since ?? null) !== null),
      ticket: String((s.ticket_since ?? null) !== null),
    };
    if (ev) Object.assign(data, { total: ev.window.total, bad: ev.window.bad });
    return h('tr', { dataset: data }, cells);
  }

  function noSloNote(route) {
    return h('div', { class: 'note note-info', id: 'slo-none' },
      h('strong', {}, route ? `No SLO configured for ${route}.` : 'No SLO configured.'),
      h('p', {}, 'Give a route an objective with ', h('code', {}, '[[route.slo]]'), ' in the config file (or every route without one with ', h('code', {}, '[[slo.default]]'), '), then ', h('code', {}, 'ficus plan'), ' and ', h('code', {}, 'ficus apply'), ':'),
      h('pre', { class: 'slo-example' }, `[[route]]\nname = "${route || 'orders'}"\n# ...\n\n[[route.slo]]\nname = "availability"\nobjective = 99.9          # percent of good requests\n# sli = "latency", threshold = "250ms"; window = "30d" or "calendar-month"; scope = "modern"`));
  }

  function sloView() {
    let tbody, head, note, table, sig = '';
    return {
      mount(root) {
        head = h('p', { class: 'sub', id: 'slo-summary' }, 'Loading…');
        note = h('div');
        tbody = h('tbody');
        table = h('table', { class: 'events slo-table', id: 'slo', hidden: true },
          h('caption', { class: 'visually-hidden' }, 'Every SLO with its objective, SLI, error budget left, burn rate and alerts'),
          h('thead', {}, h('tr', {}, SLO_COLUMNS.map(([t, title, cls]) => h('th', { scope: 'col', title, class: cls }, t)))),
          tbody);
        root.append(
          h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Service-level objectives'), head)),
          note,
          table,
          h('p', { class: 'muted small' }, 'As the leader last evaluated them, from the per-minute counts every node writes to the store. A route\'s page has its budget over the window, its burn rates and alert rules, and its alerts.'));
      },
      async refresh() {
        const list = await api('/api/v1/slo');
        head.replaceChildren(...sloSummary(list));
        const s = JSON.stringify(list.map(sloSig));
        if (s === sig) return;
        sig = s;
        table.hidden = !list.length;
        note.replaceChildren(...(list.length ? [] : [noSloNote(null)]));
        keepFocus(tbody, () => tbody.replaceChildren(...list.map(sloRow)));
      },
      failed(e) {
        sig = '';
        note.replaceChildren(problemNote(e));
      },
    };
  }

  /** Time-axis ticks [t, label] over hours to weeks: about six, on whole hours or local days. */
  function longTimeTicks(t0, t1) {
    const span = t1 - t0;
    const step = [300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400].find((x) => span / x <= 7) || 14 * 86400;
    const out = [];
    if (step < 86400) {
      for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
        const d = new Date(t * 1000);
        out.push([t, `${pad(d.getHours())}:${pad(d.getMinutes())}`]);
      }
      return out;
    }
    const d = new Date(t0 * 1000);
    d.setHours(0, 0, 0, 0);
    while (d.getTime() / 1000 < t0) d.setDate(d.getDate() + 1);
    for (; d.getTime() / 1000 <= t1; d.setDate(d.getDate() + step / 86400)) {
      out.push([d.getTime() / 1000, d.toLocaleDateString('en-US', { month: 'short', day: 'numeric' })]);
    }
    return out;
  }

  /** The budget left over the window (`s.budget`, hourly, from 100 %) as a chart in `container`. */
  function drawBudget(container, s, alerts, id) {
    const raw = (s.budget || []).filter((p) => p.budget_remaining !== null && p.budget_remaining !== undefined);
    if (!raw.length) {
      container.replaceChildren(h('p', { class: 'muted' }, 'No budget history: the store has no SLI minutes for this SLO yet.'));
      return;
    }
    // A point closes an hour; the hours before it without traffic left the budget as it was.
    const points = [];
    for (const p of raw) {
      const prev = points[points.length - 1];
      const hourStart = Math.ceil(p.t / 3600) * 3600 - 3600;
      if (prev && hourStart > prev[0]) points.push([hourStart, prev[1]]);
      points.push([p.t, p.budget_remaining]);
    }
    const t0 = raw[0].t;
    const last = points[points.length - 1];
    const t1 = Math.max(last[0], s.evaluation ? s.evaluation.at : 0, t0 + 60);
    if (t1 > last[0]) points.push([t1, last[1]]);
    const low = Math.min(0, ...points.map((p) => p[1]));
    let yTicks = [0, 0.25, 0.5, 0.75, 1];
    if (low < 0) {
      const step = niceMax((1 - low) / 4);
      yTicks = [];
      for (let v = Math.floor(low / step) * step; v < 1 + step / 2; v += step) yTicks.push(Math.round(v * 1e9) / 1e9);
      if (yTicks[yTicks.length - 1] < 1) yTicks.push(yTicks[yTicks.length - 1] + step);
    }
    const markers = alerts.filter((e) => e.at / 1000 >= t0).map((e) => {
      const sev = e.data && e.data.severity ? e.data.severity : '';
      return {
        t: e.at / 1000,
        label: `${sev} ${e.kind === 'slo.firing' ? 'fired' : 'resolved'}`.trim(),
        kind: e.kind.replace(/\./g, '-'),
        title: `${fmtDateTime(e.at)} ${e.kind}: ${e.message}`,
      };
    }).sort((a, b) => a.t - b.t);
    const level = budgetLevel(last[1]);
    container.replaceChildren(chart({
      id,
      title: 'Error budget left',
      unit: '%',
      t0,
      t1,
      width: Math.max(320, container.clientWidth || 900),
      markers,
      series: [{ label: 'budget left', color: level === 'ok' ? '#1a7f37' : level === 'warn' ? '#9a6700' : '#c62828', points }],
      yTicks,
      yFormat: (v) => `${num(v * 100, 1)} %`,
      xTicks: longTimeTicks(t0, t1),
      maxGap: Infinity,
      hold: true,
      valueFormat: fmtBudget,
      timeFormat: (t) => fmtDateTime(t * 1000),
      refLines: [{ v: 0, cls: 'zero-line', title: '0 %: the budget is spent; below, overspent' }],
      ariaLabel: `Error budget left of ${s.id}, from 100 % on ${fmtDateTime(t0 * 1000)} to ${fmtBudget(last[1])} on ${fmtDateTime(t1 * 1000)}`,
    }));
  }

  /** The burn rate over each window, marked where it reaches a factor of a rule on that window. */
  function burnTable(s) {
    const ev = s.evaluation;
    const rows = ev.burn_rates.map((w) => {
      const name = windowName(w.seconds);
      const rules = (ev.rules || []).filter((r) => r.long_s === w.seconds || r.short_s === w.seconds);
      const reached = rules.filter((r) => w.burn_rate !== null && w.burn_rate >= r.factor * (1 - FACTOR_TOLERANCE));
      const ruleText = (r) => `${r.severity} ${windowName(r.long_s)}/${windowName(r.short_s)} ${fmtBurn(r.factor)}`;
      return h('tr', { class: reached.length ? 'burn-hot' : null, dataset: { window: name, seconds: w.seconds, hot: String(reached.length > 0) } },
        h('th', { scope: 'row' }, name),
        h('td', { class: 'num' }, num(w.counts.total, 0)),
        h('td', { class: 'num' }, num(w.counts.bad, 0)),
        h('td', {
          class: `num burn-rate ${reached.length ? 'bad' : w.burn_rate > 1 ? 'warn' : ''}`,
          title: w.burn_rate === null ? 'no request in this window'
            : `${fmtRatio(w.counts.bad / w.counts.total)} bad, against a budget of ${fmtRatio(1 - ev.objective / 100)}${rules.length ? `; rules on this window: ${rules.map(ruleText).join(', ')}` : ''}`,
        }, fmtBurn(w.burn_rate), reached.length ? h('span', { class: 'burn-mark' }, ` ≥ ${fmtBurn(Math.min(...reached.map((r) => r.factor)))}`) : null));
    });
    return h('table', { class: 'events burn-rates', 'aria-label': `burn rate per window of ${s.id}` },
      h('caption', {}, 'Burn rate per window'),
      h('thead', {}, h('tr', {}, ['Window', 'Requests', 'Bad', 'Burn rate'].map((t, i) => h('th', { scope: 'col', class: i ? 'num' : null }, t)))),
      h('tbody', {}, rows));
  }

  /** Each burn-rate rule: its windows' rates, its factor and whether it fires. */
  function rulesTable(s) {
    const ev = s.evaluation;
    const rate = (w) => h('td', { class: 'num', title: `${num(w.counts.total, 0)} requests, ${num(w.counts.bad, 0)} bad over ${windowName(w.seconds)}` },
      fmtBurn(w.burn_rate), h('div', { class: 'muted small' }, `${windowName(w.seconds)} · ${num(w.counts.total, 0)} req.`));
    const rows = ev.rules.map((r) => {
      const state = r.firing ? 'firing' : r.guarded ? 'guarded' : 'ok';
      return h('tr', { class: `rule rule-${state}`, dataset: { severity: r.severity, long: r.long_s, short: r.short_s, state } },
        h('th', { scope: 'row' }, h('span', { class: `slo-sev slo-sev-${r.severity}` }, r.severity.toUpperCase())),
        h('td', { class: 'nowrap' }, `${windowName(r.long_s)} / ${windowName(r.short_s)}`),
        h('td', { class: 'num' }, `≥ ${fmtBurn(r.factor)}`),
        rate(r.long),
        rate(r.short),
        h('td', {}, state === 'firing' ? h('span', { class: 'rule-state rule-state-firing' }, 'firing')
          : state === 'guarded' ? h('span', { class: 'rule-state rule-state-guarded', title: `a window holds fewer than ${num(s.spec.min_requests, 0)} requests (min_requests): the rule cannot fire` }, 'too little traffic')
            : h('span', { class: 'rule-state rule-state-ok' }, 'ok')));
    });
    return h('table', { class: 'events slo-rules', 'aria-label': `burn-rate rules of ${s.id}` },
      h('caption', {}, 'Alert rules: both windows at or above the factor'),
      h('thead', {}, h('tr', {}, ['Severity', 'Long / short', 'Factor', 'Long', 'Short', 'State'].map((t, i) => h('th', { scope: 'col', class: i >= 2 && i <= 4 ? 'num' : null }, t)))),
      h('tbody', {}, rows));
  }

  function complianceBlock(s) {
    const months = s.compliance || [];
    if (!months.length) return h('p', { class: 'muted small slo-compliance-none' }, 'Past calendar months: none with requests in the store yet.');
    return h('table', { class: 'events slo-compliance', 'aria-label': `compliance of ${s.id} per past calendar month` },
      h('caption', {}, 'Past calendar months (UTC; as far back as the store keeps minutes: the oldest can be partial)'),
      h('thead', {}, h('tr', {}, ['Month', 'Requests', 'Bad', 'SLI', 'Objective'].map((t, i) => h('th', { scope: 'col', class: i && i < 4 ? 'num' : null }, t)))),
      h('tbody', {}, months.map((c) => h('tr', { dataset: { month: c.month_start, met: String(c.met) } },
        h('th', { scope: 'row' }, new Date(c.month_start * 1000).toISOString().slice(0, 7)),
        h('td', { class: 'num' }, num(c.total, 0)),
        h('td', { class: 'num' }, num(c.bad, 0)),
        h('td', { class: 'num' }, fmtSli(c.sli)),
        h('td', {}, c.met === null || c.met === undefined ? h('span', { class: 'muted' }, '—')
          : h('span', { class: `slo-met slo-met-${c.met ? 'yes' : 'no'}` }, c.met ? 'met' : 'missed'))))));
  }

  function sloCard(s, i, alerts) {
    const spec = s.spec;
    const ev = s.evaluation;
    const titleId = `slo-title-${i}`;
    const stat = (label, value, title, extra) => h('div', { class: 'slo-stat', title: title || null }, h('dt', {}, label), h('dd', {}, value), extra || null);
    const b1h = ev ? burnOver(ev, 3600) : null;
    return h('section', { class: 'card slo-card', 'aria-labelledby': titleId, dataset: { slo: s.id, evaluated: String(Boolean(ev)) } },
      h('div', { class: 'slo-card-head' },
        h('div', {},
          h('h2', { id: titleId }, spec.name, ' ', scopeBadge(spec.scope)),
          h('p', { class: 'sub' }, h('span', { class: 'slo-objective', title: sloObjectiveHelp(spec) }, sloObjective(spec)), ' · ',
            h('span', { class: 'slo-window', title: sloWindowHelp(spec) }, sloWindow(spec)),
            ` · alerts need ${num(spec.min_requests, 0)} requests in both windows of a rule`)),
        h('div', { class: 'slo-alerts' }, alertBadges(s))),
      ev ? h('dl', { class: 'slo-stats' },
        stat('SLI over the window', fmtSli(ev.sli), `since ${fmtDateTime(ev.window_start * 1000)}`, h('dd', { class: 'muted small' }, `${num(ev.window.total, 0)} requests, ${num(ev.window.bad, 0)} bad`)),
        stat('SLI 5 min', fmtSli(ev.sli_5m)),
        stat('Budget left', budgetBar(ev.budget_remaining, s.id)),
        stat('Burn 1 h', fmtBurn(b1h && b1h.burn_rate), '1× spends exactly the budget over the window'),
        stat('Budget gone in', h('span', { class: 'slo-tte' }, fmtExhaustion(ev.time_to_exhaustion_s)), 'at the last hour\'s burn rate and the window\'s traffic'))
        : h('p', { class: 'muted slo-pending' }, 'Not evaluated yet: the leader evaluates every SLO every [slo] evaluate_every.'),
      h('div', { class: 'slo-budget-chart' }),
      ev ? h('div', { class: 'slo-tables' }, burnTable(s), rulesTable(s)) : null,
      complianceBlock(s));
  }

  function sloAlertRow(e) {
    const d = e.data || {};
    return h('tr', { dataset: Object.assign({ event: e.id, kind: e.kind }, d.slo ? { slo: d.slo } : {}, d.severity ? { severity: d.severity } : {}) },
      h('td', { class: 'nowrap', title: new Date(e.at).toISOString() }, fmtDateTime(e.at), h('div', { class: 'muted small' }, ago(e.at))),
      h('td', { class: 'nowrap' }, kindBadge(e.kind), d.severity ? h('span', { class: `slo-sev slo-sev-${d.severity}` }, ` ${String(d.severity).toUpperCase()}`) : null),
      h('td', {}, d.slo ? h('code', {}, d.slo) : '—'),
      h('td', { class: 'message' }, e.message));
  }

  function sloRouteView(route) {
    let head, error, box, alertsBody, alertsNote;
    const cards = new Map();
    let order = null;
    let alertSig = '';
    return {
      mount(root) {
        head = h('p', { class: 'sub', id: 'slo-route-summary' }, 'Loading…');
        error = h('div');
        box = h('div', { class: 'slo-cards', id: 'slo-cards' });
        alertsBody = h('tbody');
        alertsNote = h('p', { class: 'muted small' });
        root.append(
          h('p', { class: 'crumb' }, h('a', { href: '#/slo' }, '← SLOs'), ' · ', h('a', { href: `#/routes/${encodeURIComponent(route)}` }, `${route}'s route page`)),
          h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, `SLOs of ${route}`), head)),
          error,
          box,
          h('section', { 'aria-labelledby': 'slo-alerts-title' },
            h('h2', { id: 'slo-alerts-title' }, 'Alerts of this route'),
            h('table', { class: 'events', id: 'slo-alerts' },
              h('thead', {}, h('tr', {}, ['Time', 'Alert', 'SLO', 'Message'].map((t) => h('th', { scope: 'col' }, t)))),
              alertsBody),
            alertsNote));
      },
      async refresh() {
        const d = await api(`/api/v1/slo/${encodeURIComponent(route)}`);
        error.replaceChildren();
        document.title = `SLOs of ${route} · ficus`;
        head.replaceChildren(...sloSummary(d.slos));
        const ids = d.slos.map((s) => s.id).join('\n');
        if (ids !== order) {
          order = ids;
          cards.clear();
          box.replaceChildren(...(d.slos.length ? [] : [noSloNote(route)]));
        }
        d.slos.forEach((s, i) => {
          const mine = d.alerts.filter((e) => e.data && e.data.slo === s.id);
          const sig = JSON.stringify([sloSig(s), mine.map((e) => e.id)]);
          const had = cards.get(s.id);
          if (had && had.sig === sig) return;
          const el = sloCard(s, i, mine);
          if (had) had.el.replaceWith(el);
          else box.append(el);
          cards.set(s.id, { el, sig });
          drawBudget(el.querySelector('.slo-budget-chart'), s, mine, `slo-budget-${i}`);
        });
        const asig = d.alerts.map((e) => e.id).join(',');
        if (asig !== alertSig) {
          alertSig = asig;
          alertsBody.replaceChildren(...(d.alerts.length ? d.alerts.map(sloAlertRow)
            : [h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No SLO alert has fired for this route.'))]));
          alertsNote.textContent = d.alerts.length ? 'slo.firing and slo.resolved events, newest first (the latest 50); every event is under Events.' : '';
        }
      },
      failed(e) {
        error.replaceChildren(problemNote(e));
      },
    };
  }

  // ---- feature flags (GET /api/v1/flags, GET /api/v1/flags/KEY; the kill switch: POST /api/v1/flags/KEY/set and /reset)

  const FLAG_STATE_HELP = {
    enabled: 'OFREP serves a value: by the rules, the default variant, or the override',
    disabled: 'OFREP answers no value (reason DISABLED): every SDK uses its code default',
  };
  const FLAG_REASON_HELP = {
    STATIC: 'a flag without rules, or the kill switch: every context gets the same variant',
    TARGETING_MATCH: 'a rule\'s conditions all held',
    SPLIT: 'a rule\'s split put the context in this variant\'s bucket',
    DEFAULT: 'no rule matched: the default variant',
    DISABLED: 'the flag is disabled: no value, the SDK\'s code default applies',
    ERROR: 'the evaluation failed (a split without a targeting key, for one): no value, the SDK\'s code default applies',
  };
  const SEMVER_HELP = { '^': 'same major version', '~': 'same major and minor version' };
  /** A flag's variants' bar colors, in the order of its variants. */
  const VARIANT_COLORS = ['#1f6feb', '#1a7f37', '#6222b0', '#9a6700', '#0a7f8c', '#c2410c', '#8a6d3b', '#414a55'];

  /** "variant off, disabled": what a flag override sets, as `ficus flag list` prints it. */
  function flagOverrideText(o) {
    const parts = [];
    if (o.variant !== null && o.variant !== undefined) parts.push(`variant ${o.variant}`);
    if (o.enabled === true) parts.push('enabled');
    if (o.enabled === false) parts.push('disabled');
    return parts.join(', ');
  }
  /** What a flag override does, in a sentence (the badge's help and the banner's). */
  function flagOverrideHelp(o, key) {
    const parts = [];
    if (o.variant !== null && o.variant !== undefined) parts.push(`every context gets ${o.variant}, whatever the rules say (reason STATIC, metadata ficusOverride: true)`);
    if (o.enabled === false) parts.push('no value is served (reason DISABLED): SDKs use their code default');
    if (o.enabled === true) parts.push('switched on, whatever the file says');
    return `a runtime override (dashboard, ficus flag set or the API), on every node: ${parts.join('; ')}. It wins until Back to the file (ficus flag reset ${key}) or until a config version changes this flag`;
  }
  function flagStateBadge(enabled) {
    const s = enabled ? 'enabled' : 'disabled';
    return h('span', { class: `flag-state flag-state-${s}`, title: FLAG_STATE_HELP[s] }, s);
  }
  const flagOverrideTag = (o, key) => (o
    ? h('span', { class: 'override flag-override', dataset: { override: flagOverrideText(o) }, title: flagOverrideHelp(o, key) }, `override · ${flagOverrideText(o)}`)
    : null);
  const hasVariantOverride = (o) => Boolean(o) && o.variant !== null && o.variant !== undefined;
  /** boolean, string, number or object: the kind of a flag's values (all variants share one). */
  function valueKind(variants) {
    const v = Object.values(variants || {})[0];
    if (typeof v === 'boolean') return 'boolean';
    if (typeof v === 'string') return 'string';
    if (typeof v === 'number') return 'number';
    return 'object';
  }
  /** "12.5 %": a share of a whole (0 to 1). */
  const fmtShare = (x) => `${num(x * 100, x > 0 && x < 0.001 ? 3 : 1)} %`;
  const fmtPerSecond = (x) => (x === null || x === undefined ? '—' : `${fmtRate(x)}/s`);

  /**
   * Per-second rates of cumulative counters between two refreshes: `rate(id, count, now)`
   * is null the first time an id is seen and after its counter fell (the node restarted).
   * A refresh sooner than half a poll after the last (right after a change) keeps the last
   * rate rather than dividing by a few milliseconds.
   */
  function rateMemory() {
    const seen = new Map();
    return (id, count, now) => {
      const prev = seen.get(id);
      if (prev && count >= prev.count && now - prev.at < POLL_MS / 2) return prev.rate;
      const rate = !prev || count < prev.count ? null : ((count - prev.count) * 1000) / (now - prev.at);
      seen.set(id, { count, at: now, rate });
      return rate;
    };
  }

  // -- a rule, readably: "when plan in [pro, team] and appVersion >= 2.1.0 → on"

  /** A value in a condition: strings bare, everything else as JSON. */
  const condValue = (v) => (typeof v === 'string' && v !== '' ? v : JSON.stringify(v));
  const condList = (xs) => `[${(xs || []).map(condValue).join(', ')}]`;

  /** One condition (flagd's operators, as ficus-flags serializes them). */
  function conditionText(c) {
    const op = c.op || {};
    const name = Object.keys(op)[0];
    const x = op[name];
    const a = c.attribute;
    switch (name) {
      case 'eq': return `${a} = ${condValue(x)}`;
      case 'not_eq':
      case 'ne': return `${a} != ${condValue(x)}`;
      case 'in': return `${a} in ${condList(x)}`;
      case 'not_in': return `${a} not in ${condList(x)}`;
      case 'starts_with': return `${a} starts with ${JSON.stringify(x)}`;
      case 'ends_with': return `${a} ends with ${JSON.stringify(x)}`;
      case 'sem_ver': return `${a} ${x[0]} ${x[1]}${SEMVER_HELP[x[0]] ? ` (${SEMVER_HELP[x[0]]})` : ''}`;
      case 'num': return `${a} ${x[0]} ${condValue(x[1])}`;
      case 'exists': return x ? `${a} is present` : `${a} is absent`;
      default: return `${a} ${JSON.stringify(op)}`;
    }
  }

  /** What a rule resolves to: a variant, or a split as percentages with its bucketing. */
  function outcomeText(then) {
    if (!then) return '?';
    if (typeof then.variant === 'string') return then.variant;
    const f = then.fractional;
    if (!f || !Array.isArray(f.split)) return JSON.stringify(then);
    const total = f.split.reduce((n, [, w]) => n + Number(w), 0);
    const parts = f.split.map(([v, w]) => `${v} ${total > 0 ? `${num((Number(w) * 100) / total, 2)} %` : '?'}`);
    const seed = f.hash && typeof f.hash === 'object' && f.hash.flagd_custom_seed !== undefined ? `, seed ${JSON.stringify(f.hash.flagd_custom_seed)}` : '';
    return `${parts.join(' · ')}, by ${f.bucketBy || 'targetingKey'}${seed}`;
  }

  function ruleItem(r, i) {
    const split = Boolean(r.then && r.then.fractional);
    const when = r.when && r.when.length ? `when ${r.when.map(conditionText).join(' and ')}` : i === 0 ? 'everyone' : 'everyone else';
    const f = split ? r.then.fractional : null;
    const title = split
      ? `a sticky split: each ${f.bucketBy ? `${f.bucketBy} (or, without one, targeting key)` : 'targeting key'} is hashed into a bucket as flagd's fractional does; weights ${f.split.map(([v, w]) => `${v} ${w}`).join(', ')}; without a targeting key: TARGETING_KEY_MISSING`
      : 'every condition must hold; an attribute the context lacks does not match (except "is absent")';
    return h('li', { class: 'flag-rule', dataset: { rule: i, then: split ? 'split' : 'variant' }, title },
      h('span', { class: 'flag-rule-text' }, `${when} → ${outcomeText(r.then)}`),
      h('span', { class: 'muted small', title: FLAG_REASON_HELP[split ? 'SPLIT' : 'TARGETING_MATCH'] }, ` · ${split ? 'SPLIT' : 'TARGETING_MATCH'}`));
  }

  // -- the list

  const FLAG_COLUMNS = [
    ['Flag', null, null],
    ['Kind', 'the type of its values: boolean, string, number or object (every variant has the same)', null],
    ['State', 'enabled: OFREP serves a value; disabled: no value (reason DISABLED), SDKs use their code default', null],
    ['Default', 'the variant served when no rule matches', null],
    ['Variants', null, null],
    ['Rules', 'targeting rules, tried in order: the first whose conditions all hold decides', 'num'],
    ['Override', 'a runtime change (dashboard, ficus flag set, the API) laid over the file: it wins until Back to the file or until a config version changes the flag', null],
    ['Evaluations', 'OFREP evaluations this node answered since it started', 'num'],
    ['Rate', 'evaluations per second on this node between the last two refreshes', 'num'],
  ];

  function flagRow(f, rate) {
    const o = f.override || null;
    const killed = hasVariantOverride(o);
    return h('tr', { class: o ? 'is-overridden' : null, dataset: { flag: f.key, enabled: String(f.enabled), evaluations: f.evaluations, override: o ? flagOverrideText(o) : '', rate: rate === null ? '' : rate } },
      h('td', {}, h('a', { href: `#/flags/${encodeURIComponent(f.key)}`, class: 'flag-link route-name', title: `${f.key}: its variants, rules, evaluations by variant, and the kill switch`, dataset: { focus: `flag-${f.key}` } }, f.key)),
      h('td', {}, h('span', { class: 'flag-kind' }, f.kind)),
      h('td', {}, flagStateBadge(f.enabled)),
      h('td', { class: 'flag-default', title: killed ? `the override's variant: every context gets ${o.variant}` : null }, h('code', {}, f.default)),
      h('td', { class: 'flag-variant-list' }, f.variants.map((v, i) => [i ? ', ' : null, h('code', {}, v)])),
      h('td', { class: 'num flag-rules-count' }, killed
        ? h('span', { class: 'muted', title: 'set aside while the override serves one variant to everyone; the flag\'s page shows the file\'s rules' }, 'set aside')
        : String(f.rules)),
      h('td', {}, o ? flagOverrideTag(o, f.key) : h('span', { class: 'muted' }, '—')),
      h('td', { class: 'num flag-evaluations' }, num(f.evaluations, 0)),
      h('td', { class: 'num flag-rate', title: rate === null ? 'needs two refreshes' : 'between the last two refreshes' }, fmtPerSecond(rate)));
  }

  function flagsSummary(list, rates) {
    if (!list.length) return ['No flag configured'];
    const disabled = list.filter((f) => !f.enabled).length;
    const overridden = list.filter((f) => f.override).length;
    const total = list.reduce((n, f) => n + f.evaluations, 0);
    const known = rates.filter((r) => r !== null);
    return [
      `${list.length} flag${list.length === 1 ? '' : 's'}`,
      disabled ? ` · ${disabled} disabled` : '',
      overridden ? h('span', { class: 'warn' }, ` · ${overridden} overridden at runtime`) : ' · no override',
      ` · ${num(total, 0)} evaluation${total === 1 ? '' : 's'} answered by this node since it started`,
      known.length === list.length ? ` · ${fmtPerSecond(known.reduce((n, r) => n + r, 0))}` : '',
    ];
  }

  function noFlagNote() {
    return h('div', { class: 'note note-info', id: 'flags-none' },
      h('strong', {}, 'No feature flag configured.'),
      h('p', {}, 'Add a ', h('code', {}, '[[flag]]'), ' to the config file (see docs/flags.md), then ', h('code', {}, 'ficus plan'), ' and ', h('code', {}, 'ficus apply'), '; the ', h('code', {}, '[ofrep]'), ' listener serves the flags to OpenFeature SDKs:'),
      h('pre', { class: 'slo-example' }, '[[flag]]\nkey = "new-checkout"\nvariants = { on = true, off = false }\ndefault = "off"\n\n[[flag.rule]]\nwhen = [{ attribute = "plan", in = ["pro", "team"] }]\nvariant = "on"\n\n[ofrep]\nbind = "127.0.0.1:8016"'));
  }

  function flagsView() {
    let tbody, head, note, table, sig = '';
    const rate = rateMemory();
    return {
      mount(root) {
        head = h('p', { class: 'sub', id: 'flags-summary' }, 'Loading…');
        note = h('div');
        tbody = h('tbody');
        table = h('table', { class: 'events flags-table', id: 'flags', hidden: true },
          h('caption', { class: 'visually-hidden' }, 'Every feature flag with its kind, state, default, variants, rules, runtime override and this node\'s evaluations'),
          h('thead', {}, h('tr', {}, FLAG_COLUMNS.map(([t, title, cls]) => h('th', { scope: 'col', title, class: cls }, t)))),
          tbody);
        root.append(
          h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Feature flags'), head)),
          note,
          table,
          h('p', { class: 'muted small' }, 'The config\'s [[flag]]s as they run, runtime overrides included, the same on every node; OFREP serves them on each node\'s [ofrep] listener. Evaluations are this node\'s since it started. A flag\'s page has its rules, its evaluations by variant and the kill switch.'));
      },
      async refresh() {
        const list = await api('/api/v1/flags');
        const now = Date.now();
        const rates = list.map((f) => rate(f.key, f.evaluations, now));
        head.replaceChildren(...flagsSummary(list, rates));
        const s = JSON.stringify([list, rates]);
        if (s === sig) return;
        sig = s;
        table.hidden = !list.length;
        note.replaceChildren(...(list.length ? [] : [noFlagNote()]));
        keepFocus(tbody, () => tbody.replaceChildren(...list.map((f, i) => flagRow(f, rates[i]))));
      },
      failed(e) {
        sig = '';
        note.replaceChildren(problemNote(e));
      },
    };
  }

  // -- one flag: variants, rules, evaluations by variant, the kill switch

  function flagServeAction(f, variant) {
    const has = f.variants && Object.prototype.hasOwnProperty.call(f.variants, variant);
    return {
      title: `Kill switch on ${f.key}: serve ${variant} to everyone`,
      what: `Every context gets ${f.key} = ${variant}${has ? ` (${JSON.stringify(f.variants[variant])})` : ''}, whatever the rules say, on every node within a second: reason STATIC, metadata ficusOverride: true.${f.enabled ? '' : ' The flag is disabled: it serves no value until it is enabled.'} It stays until Back to the file, or until a config version changes this flag. Recorded as a flag.set event.`,
      message: `${variant} served to everyone from the dashboard`,
      button: `Serve ${variant} to everyone`,
      danger: true,
      path: `/api/v1/flags/${encodeURIComponent(f.key)}/set`,
      payload: (message) => ({ variant, message }),
    };
  }

  function flagSwitchAction(f, enabled) {
    return {
      title: `${enabled ? 'Enable' : 'Disable'} ${f.key}`,
      what: enabled
        ? `OFREP serves ${f.key}'s value again (${hasVariantOverride(f.override) ? `${f.override.variant} to everyone, the override's` : 'by its rules and default'}), on every node within a second. The switch stays on until Back to the file, or until a config version changes this flag. Recorded as a flag.set event.`
        : `OFREP answers ${f.key} with no value (reason DISABLED), on every node within a second: every SDK uses its code default. It stays off until Enable or Back to the file, or until a config version changes this flag. Recorded as a flag.set event.`,
      message: `${enabled ? 'enabled' : 'disabled'} from the dashboard`,
      button: enabled ? `Enable ${f.key}` : `Disable ${f.key}`,
      danger: !enabled,
      path: `/api/v1/flags/${encodeURIComponent(f.key)}/set`,
      payload: (message) => ({ enabled, message }),
    };
  }

  function flagResetAction(f) {
    const file = f.file || f;
    return {
      title: `Back to the file: ${f.key}`,
      what: `Drops the runtime override of ${f.key} (${f.override ? flagOverrideText(f.override) : 'none'}): it follows the config file again, on every node within a second: default ${file.defaultVariant}, ${(file.rules || []).length} rule${(file.rules || []).length === 1 ? '' : 's'}, ${file.enabled === false ? 'disabled' : 'enabled'}. Recorded as a flag.reset event.`,
      message: 'back to the file from the dashboard',
      button: 'Back to the file',
      danger: false,
      path: `/api/v1/flags/${encodeURIComponent(f.key)}/reset`,
      payload: (message) => ({ message }),
    };
  }

  /** The banner of an overridden flag: what the override does, who set it, and the file's definition. */
  function overrideBanner(f, setEvent) {
    const o = f.override;
    const file = f.file || f;
    const value = (v) => (f.variants && Object.prototype.hasOwnProperty.call(f.variants, v) ? ` (${JSON.stringify(f.variants[v])})` : '');
    const lines = [];
    if (hasVariantOverride(o)) lines.push(h('strong', { class: 'flag-banner-head' }, `Kill switch: every context gets ${o.variant}${value(o.variant)}, whatever the rules say.`));
    if (o.enabled === false) lines.push(h('strong', { class: 'flag-banner-head' }, 'Disabled at runtime: OFREP answers no value (reason DISABLED); every SDK uses its code default.'));
    if (o.enabled === true) lines.push(h('strong', { class: 'flag-banner-head' }, `Enabled at runtime${file.enabled === false ? ': the file has it disabled' : ''}.`));
    const rules = (file.rules || []).length;
    return [
      ...lines,
      h('p', {}, hasVariantOverride(o) ? 'Reason STATIC, metadata ficusOverride: true, on every node. ' : 'On every node. ',
        'A runtime override: it wins until ', h('b', {}, 'Back to the file'), ` (ficus flag reset ${f.key}), or until a config version changes this flag.`),
      setEvent ? h('p', { class: 'small', id: 'flag-override-event', dataset: { event: setEvent.id } },
        `Set by ${setEvent.actor} at ${fmtDateTime(setEvent.at)} (${ago(setEvent.at)}): “${setEvent.message}” · event #${setEvent.id}`) : null,
      h('p', { class: 'flag-file', id: 'flag-file', dataset: { default: file.defaultVariant, rules, enabled: String(file.enabled !== false) } },
        'In the file: default ', h('code', {}, file.defaultVariant), `, ${rules} rule${rules === 1 ? '' : 's'}, ${file.enabled === false ? 'disabled' : 'enabled'}.`),
    ];
  }

  /** This node's evaluations of the flag by variant, with their reasons: [{variant, count, reasons: [[reason, count]]}]. */
  function evaluationsByVariant(f) {
    const by = new Map(Object.keys(f.variants || {}).map((v) => [v, { variant: v, count: 0, reasons: [] }]));
    for (const e of f.evaluations || []) {
      if (!by.has(e.variant)) by.set(e.variant, { variant: e.variant, count: 0, reasons: [] });
      const b = by.get(e.variant);
      b.count += e.count;
      b.reasons.push([e.reason, e.count]);
    }
    // No value served (disabled, errors) last, and only when it happened.
    const none = by.get('');
    by.delete('');
    const out = [...by.values()];
    if (none) out.push(none);
    return out;
  }

  function evaluationRow(b, total, rate, color) {
    const share = total ? b.count / total : 0;
    const fill = h('span', { class: 'flag-bar-fill' });
    fill.style.width = `${(share * 100).toFixed(2)}%`;
    fill.style.background = b.variant === '' ? '#9aa3ad' : color;
    const label = b.variant === '' ? 'no value' : b.variant;
    return h('tr', { dataset: { variant: b.variant, count: b.count, share, rate: rate === null ? '' : rate } },
      h('th', { scope: 'row' }, b.variant === ''
        ? h('span', { class: 'muted', title: 'evaluations that served no variant: the flag disabled, or an error; SDKs used their code default' }, '(no value)')
        : h('code', {}, b.variant)),
      h('td', { class: 'flag-bar-cell' }, h('div', { class: 'flag-bar', role: 'meter', 'aria-label': `share of ${label} in this node's evaluations`, 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': (share * 100).toFixed(1) }, fill)),
      h('td', { class: 'num flag-eval-count' }, num(b.count, 0)),
      h('td', { class: 'num flag-eval-share' }, total ? fmtShare(share) : '—'),
      h('td', { class: 'num flag-eval-rate', title: rate === null ? 'needs two refreshes' : 'between the last two refreshes' }, fmtPerSecond(rate)),
      h('td', {}, b.reasons.length
        ? h('div', { class: 'flag-reasons' }, b.reasons.map(([reason, n]) => h('span', { class: `flag-reason flag-reason-${reason}`, dataset: { reason, count: n }, title: FLAG_REASON_HELP[reason] || null }, `${reason} ${num(n, 0)}`)))
        : h('span', { class: 'muted' }, '—')));
  }

  function flagView(key) {
    const enc = encodeURIComponent(key);
    const rate = rateMemory();
    let current = null;
    let els = {};
    let variantSig = '';
    let headSig = '';
    let bannerSig = '';
    let tableSig = '';
    let rulesSig = '';

    function drawControls(f) {
      const names = Object.keys(f.variants || {});
      const s = names.join('\n');
      // Rebuilt only when the variants change, so a choice survives the refreshes.
      if (s !== variantSig) {
        variantSig = s;
        const file = f.file || f;
        const o = f.override;
        const want = hasVariantOverride(o) ? o.variant : file.defaultVariant;
        els.variant.replaceChildren(...names.map((v) => h('option', { value: v }, `${v} (${JSON.stringify(f.variants[v])})`)));
        if (names.includes(want)) els.variant.value = want;
      }
      els.disable.disabled = !f.enabled;
      els.disable.title = f.enabled ? 'no value for anyone: every SDK uses its code default' : 'already disabled';
      els.enable.disabled = f.enabled;
      els.enable.title = f.enabled ? 'already enabled' : 'serve the flag\'s value again';
      els.reset.hidden = !f.override;
    }

    function drawRules(f) {
      const o = f.override || null;
      const file = f.file || f;
      const s = JSON.stringify([file.rules, file.defaultVariant, o, f.enabled]);
      if (s === rulesSig) return;
      rulesSig = s;
      const rules = file.rules || [];
      const aside = hasVariantOverride(o);
      const items = rules.map(ruleItem);
      items.push(h('li', { class: 'flag-rule flag-rule-default', dataset: { rule: 'default' }, title: 'the default variant: when no rule matches (and for a split without a targeting key)' },
        h('span', { class: 'flag-rule-text' }, `${rules.length ? 'no rule matched' : 'everyone'} → ${file.defaultVariant}`),
        h('span', { class: 'muted small' }, ` · ${rules.length ? 'DEFAULT' : 'STATIC'}`)));
      els.rulesNote.textContent = aside
        ? `Set aside while the kill switch serves ${o.variant} to everyone: the file's rules, as they run again after Back to the file.`
        : !f.enabled
          ? 'The flag is disabled: nothing is evaluated, every evaluation answers DISABLED with no value. The rules apply once it is enabled.'
          : 'Tried in order: the first whose conditions all hold decides; an attribute the context lacks does not match.';
      els.rules.replaceChildren(h('ol', { class: `flag-rules${aside ? ' set-aside' : ''}`, id: 'flag-rules' }, items));
    }

    function drawEvaluations(f, now) {
      const rows = evaluationsByVariant(f);
      const total = rows.reduce((n, b) => n + b.count, 0);
      const totalRate = rate('', total, now);
      const names = Object.keys(f.variants || {});
      els.evalNote.replaceChildren(...(total
        ? [`${num(total, 0)} evaluation${total === 1 ? '' : 's'} answered by this node since it started · ${fmtPerSecond(totalRate)} between the last two refreshes`]
        : [`No evaluation on this node yet: OFREP clients evaluate it with POST /ofrep/v1/evaluate/flags/${key} on the [ofrep] listener.`]));
      els.evals.replaceChildren(...rows.map((b) => {
        const i = names.indexOf(b.variant);
        return evaluationRow(b, total, rate(`v:${b.variant}`, b.count, now), VARIANT_COLORS[(i < 0 ? names.length : i) % VARIANT_COLORS.length]);
      }));
      els.evalTable.dataset.total = total;
    }

    return {
      mount(root) {
        els.title = h('h1', {}, key);
        els.badges = h('div', { class: 'badges' });
        els.sub = h('p', { class: 'sub', id: 'flag-summary' }, 'Loading…');
        els.error = h('div');
        els.banner = h('div', { class: 'note flag-banner', id: 'flag-override', role: 'status', hidden: true });
        els.variant = h('select', { id: 'flag-variant' });
        els.serve = h('button', { type: 'button', class: 'danger', id: 'flag-serve', title: 'the kill switch: this variant for every context, whatever the rules say', onclick: () => current && els.variant.value && confirmAction(flagServeAction(current, els.variant.value)) }, 'Serve to everyone…');
        els.disable = h('button', { type: 'button', class: 'danger', id: 'flag-disable', onclick: () => current && confirmAction(flagSwitchAction(current, false)) }, 'Disable…');
        els.enable = h('button', { type: 'button', id: 'flag-enable', onclick: () => current && confirmAction(flagSwitchAction(current, true)) }, 'Enable…');
        els.reset = h('button', { type: 'button', class: 'primary', id: 'flag-reset', hidden: true, title: 'drop the runtime override: the flag follows the config file again', onclick: () => current && confirmAction(flagResetAction(current)) }, 'Back to the file…');
        els.variants = h('tbody');
        els.rules = h('div', { id: 'flag-rules-box' });
        els.rulesNote = h('p', { class: 'sub' });
        els.evals = h('tbody');
        els.evalNote = h('p', { class: 'sub', id: 'flag-evaluations-summary' });
        els.evalTable = h('table', { class: 'events flag-evaluations', id: 'flag-evaluations', 'aria-labelledby': 'flag-evaluations-title' },
          h('thead', {}, h('tr', {}, [
            ['Variant', null, null],
            ['Share', 'the variant\'s share of this node\'s evaluations of the flag', null],
            ['Evaluations', 'since this node started', 'num'],
            ['%', null, 'num'],
            ['Rate', 'evaluations per second between the last two refreshes', 'num'],
            ['Reasons', 'why the variant was served: STATIC, TARGETING_MATCH, SPLIT, DEFAULT, DISABLED, ERROR', null],
          ].map(([t, title, cls]) => h('th', { scope: 'col', title, class: cls }, t)))),
          els.evals);
        root.append(
          h('p', { class: 'crumb' }, h('a', { href: '#/flags' }, '← Flags')),
          h('div', { class: 'page-head' }, h('div', {}, h('div', { class: 'title-row' }, els.title, els.badges), els.sub)),
          els.error,
          els.banner,
          h('section', { class: 'panel actions-panel flag-controls', id: 'flag-controls', 'aria-label': 'Kill switch: change this flag at runtime' },
            h('div', { class: 'action-buttons' }, h('label', { for: 'flag-variant' }, 'Variant'), els.variant, els.serve),
            h('div', { class: 'action-buttons' }, els.disable, els.enable, els.reset),
            h('p', { class: 'muted small flag-controls-help' }, 'A runtime override of the file, on every node within a second, recorded as a flag.set event with your reason; OFREP clients with an event stream are told to refetch.')),
          h('section', { 'aria-labelledby': 'flag-variants-title' },
            h('h2', { id: 'flag-variants-title' }, 'Variants'),
            h('table', { class: 'events flag-variants', id: 'flag-variants', 'aria-labelledby': 'flag-variants-title' },
              h('thead', {}, h('tr', {}, ['Variant', 'Value', ''].map((t) => h('th', { scope: 'col' }, t)))),
              els.variants)),
          h('section', { 'aria-labelledby': 'flag-rules-title' },
            h('div', { class: 'section-head' }, h('h2', { id: 'flag-rules-title' }, 'Rules'), els.rulesNote),
            els.rules),
          h('section', { 'aria-labelledby': 'flag-evaluations-title' },
            h('div', { class: 'section-head' }, h('h2', { id: 'flag-evaluations-title' }, 'Evaluations on this node'), els.evalNote),
            els.evalTable));
      },
      async refresh() {
        const f = await api(`/api/v1/flags/${enc}`);
        const now = Date.now();
        const o = f.override || null;
        // Who set the override, and why: the newest flag.set event of this flag.
        const setEvent = o
          ? await api('/api/v1/events?kind=flag.set&limit=100').then((evs) => evs.find((e) => e.data && e.data.flag === key) || null).catch(() => null)
          : null;
        current = f;
        els.error.replaceChildren();
        document.title = `${key} · flags · ficus`;
        const file = f.file || f;
        const head = JSON.stringify([f.enabled, o, file.defaultVariant, Object.keys(f.variants || {}), (file.rules || []).length, f.metadata]);
        if (head !== headSig) {
          headSig = head;
          els.badges.replaceChildren(...[flagStateBadge(f.enabled), flagOverrideTag(o, key)].filter(Boolean));
          const n = Object.keys(f.variants || {}).length;
          const rules = (file.rules || []).length;
          const meta = Object.entries(f.metadata || {});
          els.sub.replaceChildren(
            h('span', { class: 'flag-kind' }, valueKind(f.variants)),
            ` · ${n} variant${n === 1 ? '' : 's'} · default `, h('code', {}, file.defaultVariant),
            ` · ${rules} rule${rules === 1 ? '' : 's'}${hasVariantOverride(o) ? ' (set aside)' : ''}`,
            meta.length ? h('span', { class: 'flag-metadata', title: 'OFREP metadata, returned with every evaluation' }, ` · metadata ${meta.map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ')}`) : null);
        }
        const banner = JSON.stringify([o, file.defaultVariant, (file.rules || []).length, file.enabled, setEvent && setEvent.id]);
        if (banner !== bannerSig) {
          bannerSig = banner;
          els.banner.hidden = !o;
          els.banner.dataset.override = o ? flagOverrideText(o) : '';
          els.banner.replaceChildren(...(o ? overrideBanner(f, setEvent) : []));
        }
        drawControls(f);
        const table = JSON.stringify([f.variants, file.defaultVariant, o]);
        if (table !== tableSig) {
          tableSig = table;
          els.variants.replaceChildren(...Object.entries(f.variants || {}).map(([v, value]) => h('tr', { dataset: { variant: v } },
            h('th', { scope: 'row' }, h('code', {}, v)),
            h('td', {}, h('code', { class: 'flag-value' }, JSON.stringify(value))),
            h('td', {},
              v === file.defaultVariant ? h('span', { class: 'flag-tag', title: 'served when no rule matches' }, 'default') : null,
              hasVariantOverride(o) && v === o.variant ? h('span', { class: 'flag-tag flag-tag-served', title: flagOverrideHelp(o, key) }, 'served to everyone') : null))));
        }
        drawRules(f);
        drawEvaluations(f, now);
      },
      failed(e) {
        els.error.replaceChildren(problemNote(e));
      },
    };
  }

  // ---- recordings (GET /api/v1/record; POST /api/v1/record/ROUTE/start and /stop)

  const RECORD_STATE_HELP = {
    recording: 'this node writes the route\'s sampled exchanges to its [record] dir',
    ended: 'a runtime recording whose time (--for) is over: nothing more is recorded until the next start',
    stopped: 'stopped at runtime (ficus record stop, the dashboard, the API): the stop wins over the route\'s [route.record] until the next start',
    off: 'not recording now: the counts are from before, since this node started',
  };
  const RECORD_SOURCE_HELP = {
    config: 'the route\'s [route.record] in the config file',
    runtime: 'started at runtime (ficus record start, the dashboard, the API): it wins over the file (whose redaction rules stay) until it ends or is stopped',
  };
  /** The dropped reasons of GET /api/v1/record, in its order: key, label, what happened. */
  const RECORD_DROPS = [
    ['queue_full', 'queue full', 'the writer\'s queue ([record] queue) was full'],
    ['body_over_cap', 'body over cap', 'a body was larger than the route\'s max_body and it says over_cap = "drop"'],
    ['disk_full', 'disk full', 'a write failed, or this node\'s recordings reached [record] max_total'],
    ['max_size', 'max size', 'the route\'s recording reached its max_size on this node'],
    ['redaction_failed', 'redaction failed', 'a JSON redaction rule could not reach a body (cut at max_body, or not JSON though it says so): left out, never written raw'],
    ['incomplete', 'incomplete', 'the client did not get the whole response, or the request was an upgrade (WebSocket)'],
  ];
  const RECORD_COLUMNS = [
    ['Route', null, null],
    ['State', 'recording, ended (its time is over), stopped (at runtime) or off', null],
    ['Source', 'config: the route\'s [route.record]; runtime: ficus record start, the dashboard or the API', null],
    ['Sample', 'the share of the route\'s sticky keys recorded: a user is either recorded or not', 'num'],
    ['Time left', 'until a runtime recording\'s end (--for)', 'num'],
    ['Requests', 'requests of the route this node saw while it recorded, since it started: they add up to the next four columns', 'num'],
    ['= Recorded', 'exchanges written to the recording files', 'num'],
    ['+ Sampled out', 'left out by the sample (their sticky key is not in it)', 'num'],
    ['+ Dropped', 'not recorded, by reason (below the number)', 'num'],
    ['+ In progress', 'taken, not counted yet: waiting for the response\'s end or in the writer\'s queue (a block is written at least every second)', 'num'],
    ['Rate', 'exchanges recorded per second between the last two refreshes', 'num'],
    ['Size', 'bytes this node wrote for the route, and its max_size', 'num'],
    ['Files', 'recording files this node opened for the route (rotated at [record] rotate_bytes or rotate_every)', 'num'],
    ['', null, null],
  ];

  const recordStateBadge = (state) => h('span', { class: `rec-state rec-state-${state}`, title: RECORD_STATE_HELP[state] || null }, state);

  /** The time left of a recording: text and tooltip. */
  function recordTimeLeft(r, now) {
    if (r.state === 'recording') {
      if (r.until_ms === null || r.until_ms === undefined) {
        return r.source === 'runtime'
          ? { text: 'until stopped', title: 'started without a time (--for): it records until stopped' }
          : { text: 'while configured', title: 'as long as the route has its [route.record] (or until a runtime stop)' };
      }
      const left = (r.until_ms - now) / 1000;
      return { text: left >= 1 ? fmtSpan(left) : 'ending', title: `until ${fmtDateTime(r.until_ms)}` };
    }
    if (r.state === 'ended') return { text: 'ended', title: r.until_ms ? `its time ended at ${fmtDateTime(r.until_ms)}` : null };
    return { text: '—', title: 'not recording' };
  }

  function recordStartAction(route, spec, rec) {
    const r = rec && rec.routes.find((x) => x.route === route);
    const payload = {};
    if (spec.sample !== null) payload.sample = spec.sample;
    if (spec.for) payload.for = spec.for;
    if (spec.max_size) payload.max_size = spec.max_size;
    const parts = [
      `${spec.sample === null ? '100' : num(spec.sample, 2)} % of its sticky keys`,
      spec.for ? `for ${spec.for}` : 'until stopped',
      spec.max_size ? `at most ${spec.max_size} on each node` : 'at most the route\'s max_size (1 GiB unless its [route.record] says otherwise) on each node',
    ];
    const now = r && r.state === 'recording' ? ` It records now (${r.source || 'config'}, ${num(r.sample_percent, 2)} %): this start replaces that.` : '';
    return {
      title: `Start recording ${route}`,
      what: `Route ${route} records ${parts.join(', ')}, on every node within a second, each into its own [record] dir.${now} A runtime start wins over the route's [route.record] (its redaction rules stay) until it ends or is stopped. Recorded as a record.started event.`,
      message: 'recording started from the dashboard',
      button: `Start recording ${route}`,
      danger: false,
      path: `/api/v1/record/${encodeURIComponent(route)}/start`,
      payload: (message) => Object.assign({}, payload, { message }),
    };
  }

  function recordStopAction(r) {
    return {
      title: `Stop recording ${r.route}`,
      what: `Route ${r.route} stops recording on every node within a second (here: ${num(r.recorded, 0)} exchanges recorded, ${fmtBytes(r.bytes)} in ${num(r.files, 0)} file${r.files === 1 ? '' : 's'}; the files stay). The stop wins over the route's [route.record] until the next start. Recorded as a record.stopped event.`,
      message: 'recording stopped from the dashboard',
      button: `Stop recording ${r.route}`,
      danger: true,
      path: `/api/v1/record/${encodeURIComponent(r.route)}/stop`,
      payload: (message) => ({ message }),
    };
  }

  function recordRow(r, rate, now, onPrefill) {
    const dropped = r.dropped || {};
    const reasons = RECORD_DROPS.filter(([k]) => Number(dropped[k]) > 0);
    const sum = r.recorded + r.sampled_out + r.dropped_total + r.in_progress;
    const op = (s) => h('span', { class: 'rec-op', 'aria-hidden': 'true' }, s);
    const left = recordTimeLeft(r, now);
    const action = r.state === 'recording'
      ? h('button', { type: 'button', class: 'danger small record-stop', dataset: { route: r.route, focus: `record-stop-${r.route}` }, title: `stop recording ${r.route} on every node (a record.stopped event)`, onclick: () => confirmAction(recordStopAction(r)) }, 'Stop…')
      : h('button', { type: 'button', class: 'small record-prefill', dataset: { route: r.route, focus: `record-prefill-${r.route}` }, title: `choose ${r.route} in the Start recording form`, onclick: () => onPrefill(r.route) }, 'Start…');
    return h('tr', {
      class: `rec-row rec-${r.state}`,
      dataset: {
        route: r.route, state: r.state, source: r.source || '', sample: r.sample_percent ?? '', until: r.until_ms ?? '',
        requests: r.requests, recorded: r.recorded, sampledOut: r.sampled_out, dropped: r.dropped_total, inProgress: r.in_progress,
        addsUp: String(sum === r.requests), bytes: r.bytes, files: r.files, rate: rate === null ? '' : rate,
      },
    },
    h('td', {}, h('a', { href: `#/routes/${encodeURIComponent(r.route)}`, class: 'route-name rec-route', title: `${r.route}'s page` }, r.route)),
    h('td', {}, recordStateBadge(r.state)),
    h('td', { class: 'rec-source' }, r.source
      ? h('span', { class: `rec-source-tag rec-source-${r.source}`, title: RECORD_SOURCE_HELP[r.source] || null }, r.source)
      : h('span', { class: 'muted', title: 'not recording now' }, '—')),
    h('td', { class: 'num rec-sample' }, r.sample_percent === null || r.sample_percent === undefined ? h('span', { class: 'muted' }, '—') : `${num(r.sample_percent, 2)} %`),
    h('td', { class: 'num rec-left', title: left.title }, left.text),
    h('td', { class: `num rec-requests${sum === r.requests ? '' : ' warn'}`, title: sum === r.requests ? `${num(r.requests, 0)} = ${num(r.recorded, 0)} + ${num(r.sampled_out, 0)} + ${num(r.dropped_total, 0)} + ${num(r.in_progress, 0)}` : 'read while counters moved: the next refresh adds up' }, num(r.requests, 0)),
    h('td', { class: 'num rec-recorded' }, op('= '), num(r.recorded, 0)),
    h('td', { class: 'num rec-sampled-out' }, op('+ '), num(r.sampled_out, 0)),
    h('td', { class: `num rec-dropped${r.dropped_total ? ' warn' : ''}` }, op('+ '), num(r.dropped_total, 0),
      reasons.length ? h('div', { class: 'rec-drops' }, reasons.map(([k, label, help]) => h('span', { class: 'rec-drop', dataset: { reason: k, count: dropped[k] }, title: help }, `${num(dropped[k], 0)} ${label}`))) : null),
    h('td', { class: 'num rec-in-progress' }, op('+ '), num(r.in_progress, 0)),
    h('td', { class: 'num rec-rate', title: rate === null ? 'needs two refreshes' : 'between the last two refreshes' }, fmtPerSecond(rate)),
    h('td', { class: 'num rec-size', title: `${num(r.bytes, 0)} bytes` }, fmtBytes(r.bytes),
      r.max_size ? h('div', { class: 'muted small' }, `of ${fmtBytes(r.max_size)}`) : null),
    h('td', { class: 'num rec-files' }, num(r.files, 0)),
    h('td', { class: 'actions' }, action));
  }

  function recordingsSummary(rec) {
    const n = rec.routes.length;
    if (!n) return ['No route records on this node'];
    const recording = rec.routes.filter((r) => r.state === 'recording').length;
    const recorded = rec.routes.reduce((s, r) => s + r.recorded, 0);
    return [
      `${n} route${n === 1 ? '' : 's'}`,
      recording ? ` · ${recording} recording now` : ' · none recording now',
      ` · ${num(recorded, 0)} exchange${recorded === 1 ? '' : 's'} recorded by this node since it started`,
    ];
  }

  function noRecordingNote() {
    return h('div', { class: 'note note-info', id: 'recordings-none' },
      h('strong', {}, 'No route records on this node.'),
      h('p', {}, 'Give a route a ', h('code', {}, '[route.record]'), ' in the config file (then ', h('code', {}, 'ficus plan'), ' and ', h('code', {}, 'ficus apply'),
        '), or start one at runtime with the form above or ', h('code', {}, 'ficus record start ROUTE --sample 10% --for 1h -m "why"'), '; see docs/record-replay.md:'),
      h('pre', { class: 'slo-example' }, '[[route]]\nname = "orders"\n# ...\n[route.record]\nsample = 10                 # percent of sticky keys (default 100)\nmax_size = "1GiB"           # per node\nredact = { headers = ["x-api-key"], json = ["card.number"] }\n\n[record]                    # node-local\ndir = "recordings"          # default: beside the config file'));
  }

  function recordingsView() {
    let head, nodeLine, note, table, tbody, form, routeSelect, sample, forInput, maxSize;
    let current = null;
    let sig = '';
    let routesSig = '';
    const rate = rateMemory();

    function prefill(route) {
      routeSelect.value = route;
      form.scrollIntoView({ block: 'nearest' });
      sample.focus();
    }

    function drawRouteSelect(names, rec) {
      const s = names.join('\n');
      if (s === routesSig) return;
      routesSig = s;
      const had = routeSelect.value;
      routeSelect.replaceChildren(...names.map((n) => h('option', { value: n }, n)));
      // Keep the operator's choice; else the first route that does not record.
      const idle = names.find((n) => !rec.routes.some((r) => r.route === n && r.state === 'recording'));
      if (names.includes(had)) routeSelect.value = had;
      else if (idle) routeSelect.value = idle;
    }

    return {
      mount(root) {
        head = h('p', { class: 'sub', id: 'recordings-summary' }, 'Loading…');
        nodeLine = h('p', { class: 'sub', id: 'recordings-node' });
        note = h('div');
        tbody = h('tbody');
        table = h('table', { class: 'events recordings-table', id: 'recordings', hidden: true },
          h('caption', { class: 'visually-hidden' }, 'This node\'s recordings per route: state, source, sample, time left, the counts that add up to the requests, size and files'),
          h('thead', {}, h('tr', {}, RECORD_COLUMNS.map(([t, title, cls]) => h('th', { scope: 'col', title, class: cls }, t === '' ? h('span', { class: 'visually-hidden' }, 'Actions') : t)))),
          tbody);
        routeSelect = h('select', { id: 'record-route', required: true, title: 'the route to record (GET /api/v1/routes)' });
        sample = h('input', { id: 'record-sample', type: 'number', min: 0.01, max: 100, step: 0.01, inputmode: 'decimal', placeholder: '100', title: 'percent of the route\'s sticky keys recorded (default 100)' });
        forInput = h('input', { id: 'record-for', type: 'text', size: 8, spellcheck: 'false', placeholder: 'until stopped', title: 'how long: 30m, 1h, 744h at most (31 days); empty: until stopped' });
        maxSize = h('input', { id: 'record-max-size', type: 'text', size: 8, spellcheck: 'false', placeholder: '1GiB', title: 'the recording\'s size cap on each node, at least 1MiB; empty: the route\'s max_size (default 1GiB)' });
        form = h('form', { class: 'record-form', id: 'record-start-form', onsubmit: (ev) => {
          ev.preventDefault();
          const route = routeSelect.value;
          if (!route) return;
          const s = sample.value.trim() === '' ? null : Number(sample.value);
          if (s !== null && !(s > 0 && s <= 100)) { sample.setCustomValidity('a percentage above 0, at most 100'); sample.reportValidity(); return; }
          sample.setCustomValidity('');
          confirmAction(recordStartAction(route, { sample: s, for: forInput.value.trim(), max_size: maxSize.value.trim() }, current));
        } },
        h('label', { for: 'record-route' }, 'Route'), routeSelect,
        h('label', { for: 'record-sample' }, 'Sample %'), sample,
        h('label', { for: 'record-for' }, 'For'), forInput,
        h('label', { for: 'record-max-size' }, 'Max size'), maxSize,
        h('button', { type: 'submit', class: 'primary', id: 'record-start', title: 'asks for a reason (and the token): a record.started event that every node acts on' }, 'Start recording…'));
        root.append(
          h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Recordings'), head, nodeLine)),
          h('section', { class: 'panel actions-panel record-controls', id: 'record-controls', 'aria-label': 'Start recording a route at runtime' },
            form,
            h('p', { class: 'muted small record-controls-help' }, 'A runtime recording on every node within a second (ficus record start), recorded as a record.started event with your reason; it wins over the route\'s [route.record] until its time is over or it is stopped. Sampling is by the route\'s sticky key.')),
          note,
          table,
          h('p', { class: 'muted small' }, 'This node\'s recordings only (the node whose admin API the page reads): each node records its own share of the traffic into its own [record] dir. The counts are since this node started. Replay a file with ficus replay FILE --target URL (see Replays).'));
      },
      async refresh() {
        const [rec, routes] = await Promise.all([
          api('/api/v1/record'),
          api('/api/v1/routes').catch(() => null),
        ]);
        const now = Date.now();
        current = rec;
        if (routes) drawRouteSelect(routes.routes.map((r) => r.name), rec);
        head.replaceChildren(...recordingsSummary(rec));
        nodeLine.dataset.node = rec.node;
        nodeLine.dataset.dir = rec.dir;
        nodeLine.dataset.totalBytes = rec.total_bytes;
        nodeLine.dataset.maxTotal = rec.max_total;
        nodeLine.replaceChildren('Node ', h('strong', {}, rec.node), ' writes to ', h('code', { id: 'recordings-dir' }, rec.dir), ' · ',
          h('span', { id: 'recordings-total', title: `${num(rec.total_bytes, 0)} bytes of every recording this node wrote since it started; beyond [record] max_total, exchanges are dropped (disk full)` },
            `${fmtBytes(rec.total_bytes)} written of ${fmtBytes(rec.max_total)} ([record] max_total)`));
        const rates = rec.routes.map((r) => rate(r.route, r.recorded, now));
        const s = JSON.stringify([rec.routes, rates, rec.routes.map((r) => recordTimeLeft(r, now).text)]);
        if (s === sig) return;
        sig = s;
        table.hidden = !rec.routes.length;
        note.replaceChildren(...(rec.routes.length ? [] : [noRecordingNote()]));
        keepFocus(tbody, () => tbody.replaceChildren(...rec.routes.map((r, i) => recordRow(r, rates[i], now, prefill))));
      },
      failed(e) {
        sig = '';
        note.replaceChildren(problemNote(e));
      },
    };
  }

  // ---- replay runs (GET /api/v1/replays, GET /api/v1/replays/ID: ficus replay ... --save)

  const REFERENCE_LABEL = { none: 'not compared', recording: 'the recording', 'compare-with': 'a second target' };
  const REFERENCE_HELP = {
    none: 'replayed without --compare: statuses and latency only',
    recording: '--compare: each replayed response against the one recorded',
    'compare-with': '--compare-with URL: each request sent to a second target too, whose answers are the reference',
  };
  const REPLAY_VERDICT_HELP = {
    real: 'the target differs from the reference more often than two answers to the same request differ',
    noise: 'differs no more often than two answers to the same request (timestamps, random ids)',
    equal: 'never differed',
  };
  /** The field tree's wording for a replay compared against `reference`. */
  function replayWords(reference) {
    const recording = reference === 'recording';
    return {
      pair: recording ? 'recorded-vs-replayed' : 'reference-vs-target',
      noisePair: recording ? 'target-vs-target' : 'reference-vs-reference',
      other: 'the target',
      noNoise: 'no noise comparison (--noise-sample 0, or no safe request)',
      noiseNote: `· these fields differ about as often between two answers ${recording ? 'of the target' : 'of the reference'} to the same request: not counted in the rate`,
      same: `the target answers like ${recording ? 'the recording' : 'the reference'} here`,
      heading: 'h4',
      verdictHelp: REPLAY_VERDICT_HELP,
      samplesHelp: 'the ids of the samples the replay kept while it ran: a saved report has their ids, not the exchanges',
    };
  }
  const VERDICT_RANK = { real: 0, noise: 1, equal: 2 };
  const KIND_RANK = ['value', 'type', 'missing', 'extra', 'length', 'order'];
  const byText = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  /**
   * A comparison's routes, endpoints and fields in the order `ficus diffs` and the shadow
   * comparison rank them: routes and endpoints by their worst real rate; fields real first,
   * then noise, each by rate (then path and kind).
   */
  function rankComparison(routes) {
    const field = (a, b) => (VERDICT_RANK[a.verdict] ?? 3) - (VERDICT_RANK[b.verdict] ?? 3) || b.rate - a.rate || byText(a.path, b.path) || KIND_RANK.indexOf(a.kind) - KIND_RANK.indexOf(b.kind);
    return (routes || []).map((r) => Object.assign({}, r, {
      endpoints: (r.endpoints || []).map((ep) => Object.assign({}, ep, { fields: [...(ep.fields || [])].sort(field) }))
        .sort((a, b) => b.rate - a.rate || byText(a.endpoint, b.endpoint)),
    })).sort((a, b) => b.rate - a.rate || byText(a.route, b.route));
  }

  const REPLAY_COLUMNS = [
    ['Run', 'the run\'s id: ficus replays show ID', null],
    ['When', 'when it was saved', null],
    ['Who', 'the actor that saved it (ficus replay --save)', null],
    ['Recording', 'the file replayed', null],
    ['Target', 'where the requests were sent', null],
    ['Against', 'what the answers were compared with: the recording (--compare), a second target (--compare-with), or nothing', null],
    ['Sent', 'requests sent', 'num'],
    ['Real', 'fields with a real difference (beyond the noise) in the comparison', 'num'],
  ];

  function realCell(real, reference, cls) {
    if (reference === 'none') return h('td', { class: `num ${cls}`, title: REFERENCE_HELP.none }, h('span', { class: 'muted' }, '—'));
    return h('td', { class: `num ${cls}`, title: real ? 'fields whose difference is real: see the run' : 'no field differs beyond the noise' },
      real ? h('span', { class: 'replay-real-count bad' }, `${num(real, 0)} real`) : h('span', { class: 'ok' }, '0'));
  }

  function replayRow(run) {
    return h('tr', { class: run.real > 0 ? 'has-real' : null, dataset: { replay: run.id, real: run.real, sent: run.sent, reference: run.reference } },
      h('td', {}, h('a', { href: `#/replays/${run.id}`, class: 'replay-link route-name', title: `replay #${run.id}: its summary and its ranked fields`, dataset: { focus: `replay-${run.id}` } }, `#${run.id}`)),
      h('td', { class: 'nowrap', title: new Date(run.at).toISOString() }, fmtDateTime(run.at), h('div', { class: 'muted small' }, ago(run.at))),
      h('td', {}, run.actor),
      h('td', { class: 'replay-file' }, h('code', {}, run.file)),
      h('td', { class: 'replay-target' }, h('code', {}, run.target)),
      h('td', { class: 'replay-against', title: REFERENCE_HELP[run.reference] || null }, REFERENCE_LABEL[run.reference] || run.reference),
      h('td', { class: 'num replay-sent' }, num(run.sent, 0)),
      realCell(run.real, run.reference, 'replay-real'));
  }

  function noReplayNote() {
    return h('div', { class: 'note note-info', id: 'replays-none' },
      h('strong', {}, 'No replay run kept yet.'),
      h('p', {}, 'Replay a recording against a target, compare the answers with the recording and keep the report here with ', h('code', {}, '--save'), ' (see docs/record-replay.md):'),
      h('pre', { class: 'slo-example' }, 'ficus replay FILE --target URL --compare --save\n# or against a second target: --compare-with URL\n# ficus replays lists the kept runs'));
  }

  function replaysView() {
    let head, note, table, tbody, sig = '';
    return {
      mount(root) {
        head = h('p', { class: 'sub', id: 'replays-summary' }, 'Loading…');
        note = h('div');
        tbody = h('tbody');
        table = h('table', { class: 'events replays-table', id: 'replays', hidden: true },
          h('caption', { class: 'visually-hidden' }, 'Kept replay runs, newest first, with the recording, the target, what it was compared against and its real differences'),
          h('thead', {}, h('tr', {}, REPLAY_COLUMNS.map(([t, title, cls]) => h('th', { scope: 'col', title, class: cls }, t)))),
          tbody);
        root.append(
          h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Replays'), head)),
          note,
          table,
          h('p', { class: 'muted small' }, 'Runs of ficus replay saved with --save, newest first (the latest 100), shared by every node through the store. A run\'s page has its summary and its fields ranked like the shadow comparison.'));
      },
      async refresh() {
        const runs = await api('/api/v1/replays');
        const real = runs.filter((r) => r.real > 0).length;
        head.replaceChildren(...(runs.length
          ? [`${runs.length} run${runs.length === 1 ? '' : 's'} kept`, real ? h('span', { class: 'bad' }, ` · ${real} with real differences`) : ' · no real difference']
          : ['No replay run kept']));
        const s = JSON.stringify(runs);
        if (s === sig) return;
        sig = s;
        table.hidden = !runs.length;
        note.replaceChildren(...(runs.length ? [] : [noReplayNote()]));
        keepFocus(tbody, () => tbody.replaceChildren(...runs.map(replayRow)));
      },
      failed(e) {
        sig = '';
        note.replaceChildren(problemNote(e));
      },
    };
  }

  /** Microseconds as the replay report prints them: "1.234 ms". */
  const fmtUs = (us) => (us === null || us === undefined ? '—' : fmtMs(Number(us) / 1000));

  /** A counter of the run's summary, its raw number in data-value. */
  function replayStat(key, label, value, shown, cls, title) {
    return h('div', { class: 'prot-stat', title: title || null },
      h('dt', {}, label),
      h('dd', { class: cls || null, dataset: { counter: key, value: value === null || value === undefined ? '' : value } }, shown));
  }

  function replaySummary(rep) {
    const errors = rep.errors || [];
    const nErrors = errors.reduce((n, e) => n + Number(e.count), 0);
    const sk = rep.skipped || {};
    const skipped = [['filter', 'by filter or route'], ['unsafe', 'unsafe (--unsafe allow sends them)'], ['truncated_body', 'with a body cut at the recording\'s cap']]
      .filter(([k]) => Number(sk[k]) > 0);
    const lat = rep.latency || null;
    const late = rep.lateness || null;
    const requests = h('div', { class: 'card prot-card', id: 'replay-requests' },
      h('h3', {}, 'Requests'),
      h('dl', { class: 'prot-stats' },
        replayStat('planned', 'planned', rep.planned, num(rep.planned, 0), null, 'requests the recording had for this replay (after --route, --filter and --duration)'),
        replayStat('sent', 'sent', rep.sent, num(rep.sent, 0)),
        replayStat('answered', 'answered', rep.answered, num(rep.answered, 0)),
        replayStat('errors', 'errors', nErrors, num(nErrors, 0), nErrors ? 'bad' : null, 'sent but not answered: connect, timeout, reset, closed, other'),
        replayStat('dropped_in_flight', 'dropped', rep.dropped_in_flight, num(rep.dropped_in_flight || 0, 0), rep.dropped_in_flight ? 'warn' : null, 'not sent: due while --max-in-flight requests were in flight (replays before connection pooling; now such requests wait)'),
        rep.connections ? replayStat('waited', 'waited', rep.connections.waited, num(rep.connections.waited || 0, 0), null, `waited for one of the target's connections (${rep.connections.opened} opened, at most ${rep.connections.max}); their lateness shows it`) : null),
      nErrors ? h('p', { class: 'small bad', id: 'replay-errors' }, `errors: ${errors.filter((e) => e.count > 0).map((e) => `${num(e.count, 0)} ${e.kind}`).join(', ')}`) : null,
      h('p', { class: 'small muted', id: 'replay-skipped', dataset: { filter: sk.filter || 0, unsafe: sk.unsafe || 0, truncated: sk.truncated_body || 0 } },
        skipped.length ? `skipped: ${skipped.map(([k, label]) => `${num(sk[k], 0)} ${label}`).join(', ')}` : 'nothing skipped'));
    const latency = h('div', { class: 'card prot-card', id: 'replay-latency' },
      h('h3', {}, 'Latency', h('span', { class: 'muted', title: 'measured from the time each request was due, so a slow target shows as latency, not as a slower send rate' }, ' · from the due time')),
      lat ? h('dl', { class: 'prot-stats' },
        replayStat('p50_us', 'p50', lat.p50_us, fmtUs(lat.p50_us)),
        replayStat('p99_us', 'p99', lat.p99_us, fmtUs(lat.p99_us)),
        replayStat('p999_us', 'p99.9', lat.p999_us, fmtUs(lat.p999_us)),
        replayStat('max_us', 'max', lat.max_us, fmtUs(lat.max_us)))
        : h('p', { class: 'muted' }, 'No answer: no latency.'),
      h('p', { class: 'small', id: 'replay-lateness', title: 'how late the dispatcher released requests after their due time: large values mean the replaying machine could not keep the schedule' },
        late ? `send lateness: p50 ${fmtUs(late.p50_us)} · p99 ${fmtUs(late.p99_us)} · max ${fmtUs(late.max_us)}` : 'send lateness: —'));
    const timing = h('div', { class: 'card prot-card', id: 'replay-timing' },
      h('h3', {}, 'Timing'),
      h('dl', { class: 'prot-stats' },
        replayStat('rate_per_s', 'rate', rep.rate_per_s, `${fmtRate(rep.rate_per_s || 0)}/s`, null, 'requests sent per second while sending'),
        replayStat('sending_s', 'sending', rep.sending_s, fmtSeconds(rep.sending_s) || '—', null, 'from the first request sent to the last'),
        replayStat('schedule_s', 'schedule', rep.schedule_s, fmtSeconds(rep.schedule_s) || '—', null, 'the span of the schedule (as recorded, --speed, --rate or --ramp)'),
        replayStat('took_s', 'took', rep.took_s, fmtSeconds(rep.took_s) || '—', null, 'the whole run, the last answers included')));
    return h('div', { class: 'prot-cards replay-cards', id: 'replay-summary' }, requests, latency, timing);
  }

  function replayStatuses(rep) {
    const statuses = rep.statuses || [];
    const mismatches = rep.mismatches || [];
    const n = Number(rep.status_mismatches) || 0;
    return [
      h('p', { id: 'replay-statuses' }, h('b', {}, 'Statuses: '), statuses.length
        ? statuses.map((s, i) => [i ? ' · ' : null, h('span', { class: `replay-status${s.status >= 500 ? ' bad' : ''}`, dataset: { status: s.status, count: s.count } }, `${s.status} ×${num(s.count, 0)}`)])
        : h('span', { class: 'muted' }, 'none')),
      h('p', { id: 'replay-mismatch-summary', dataset: { count: n } },
        h('b', {}, 'Status differs from the recording: '), h('span', { class: n ? 'warn' : 'ok' }, num(n, 0)),
        n && mismatches.length ? h('span', { class: 'muted' }, ` · the most frequent${mismatches.length >= 10 ? ' 10' : ''}:`) : null),
      mismatches.length ? h('table', { class: 'events replay-mismatches', id: 'replay-mismatches' },
        h('thead', {}, h('tr', {}, ['Recorded', 'Replayed', 'Count'].map((t, i) => h('th', { scope: 'col', class: i === 2 ? 'num' : null }, t)))),
        h('tbody', {}, mismatches.map((m) => h('tr', { dataset: { recorded: m.recorded, replayed: m.replayed, count: m.count } },
          h('td', {}, String(m.recorded)), h('td', {}, `→ ${m.replayed}`), h('td', { class: 'num' }, num(m.count, 0)))))) : null,
    ];
  }

  function replayComparison(run) {
    const c = run.report && run.report.comparison;
    if (!c) {
      return [h('p', { class: 'muted', id: 'replay-not-compared' }, 'Not compared: replay with --compare (against the recording) or --compare-with URL (against a second target), and --save, to see the fields that differ.')];
    }
    const words = replayWords(c.against || run.reference);
    const routes = rankComparison(c.routes);
    const real = routes.reduce((n, r) => n + r.endpoints.reduce((m, ep) => m + ep.fields.filter((f) => f.verdict === 'real').length, 0), 0);
    const out = [h('p', { class: 'shadow-summary', id: 'replay-comparison-summary', dataset: { compared: c.compared, real, against: c.against } },
      `Compared against ${REFERENCE_LABEL[c.against] || c.against}: ${num(c.compared, 0)} responses`,
      Number(c.skipped_truncated) ? `; ${num(c.skipped_truncated, 0)} recorded ${Number(c.skipped_truncated) === 1 ? 'body' : 'bodies'} cut at the recording's cap not compared` : '',
      Number(c.reference_failed) ? h('span', { class: 'warn' }, `; ${num(c.reference_failed, 0)} reference calls failed`) : '',
      '. ', real ? h('span', { class: 'bad' }, `${real} real field${real === 1 ? '' : 's'}`) : h('span', { class: 'ok' }, 'No real difference'),
      ': ranked like the shadow comparison, real differences first by rate, then the noise.')];
    if (!routes.length) out.push(h('p', { class: 'muted' }, 'No response was compared.'));
    for (const r of routes) {
      out.push(h('section', { class: 'replay-route', dataset: { route: r.route, rate: r.rate }, 'aria-label': `fields of ${r.route}` },
        h('h3', {}, r.route, h('span', { class: 'muted' }, ` · ${num(r.compared, 0)} compared · ${num(r.differing, 0)} with a difference · real rate `),
          h('span', { class: rateClass(r.rate) }, fmtDiffRate(r.rate))),
        r.endpoints.map((ep) => endpointBlock(ep, null, null, words))));
    }
    return out;
  }

  function replayView(id) {
    let title, badges, meta, error, body, sig = '';
    return {
      mount(root) {
        title = h('h1', {}, `Replay #${id}`);
        badges = h('div', { class: 'badges' });
        meta = h('p', { class: 'sub', id: 'replay-meta' }, 'Loading…');
        error = h('div');
        body = h('div', { id: 'replay' });
        root.append(
          h('p', { class: 'crumb' }, h('a', { href: '#/replays' }, '← Replays')),
          h('div', { class: 'page-head' }, h('div', {}, h('div', { class: 'title-row' }, title, badges), meta)),
          error,
          body);
      },
      async refresh() {
        const run = await api(`/api/v1/replays/${id}`);
        error.replaceChildren();
        document.title = `replay #${id} · ficus`;
        const s = JSON.stringify(run);
        // A kept run does not change: draw it once (the "ago" too).
        if (s === sig) return;
        sig = s;
        const rep = run.report || {};
        badges.replaceChildren(run.reference === 'none'
          ? h('span', { class: 'replay-badge replay-badge-none', title: REFERENCE_HELP.none }, 'not compared')
          : run.real > 0
            ? h('span', { class: 'replay-badge replay-badge-real', title: 'fields whose difference is beyond the noise' }, `${num(run.real, 0)} real difference${run.real === 1 ? '' : 's'}`)
            : h('span', { class: 'replay-badge replay-badge-clean', title: 'no field differs beyond the noise' }, 'no real difference'));
        meta.dataset.reference = run.reference;
        meta.replaceChildren(h('code', {}, run.file), ' → ', h('code', {}, run.target),
          ` · against ${REFERENCE_LABEL[run.reference] || run.reference} · saved by ${run.actor} at ${fmtDateTime(run.at)} (${ago(run.at)})`);
        // replaceChildren would show a null as the text "null": leave absent parts out.
        body.replaceChildren(...[
          rep.torn ? h('div', { class: 'note note-warn', id: 'replay-torn' }, h('strong', {}, `The recording ends in a torn block at byte ${num(rep.torn.offset, 0)}`), h('p', {}, `${rep.torn.why}: the exchanges before it were replayed.`)) : null,
          replaySummary(rep),
          h('section', { 'aria-labelledby': 'replay-statuses-title' },
            h('h2', { id: 'replay-statuses-title' }, 'Statuses'),
            replayStatuses(rep)),
          h('section', { 'aria-labelledby': 'replay-comparison-title', class: 'shadow-section', id: 'replay-comparison' },
            h('h2', { id: 'replay-comparison-title' }, 'Comparison'),
            replayComparison(run)),
        ].filter(Boolean));
      },
      failed(e) {
        error.replaceChildren(problemNote(e));
      },
    };
  }

  // ---------------------------------------------------------------- migration plans (GET /api/v1/migrations)

  const MIGRATION_STATUS_HELP = {
    running: 'the current step\'s action runs, or its gate is judged, on every tick of the leader\'s controller',
    waiting: 'the current step is manual: it waits for Advance (ficus migration advance) before it starts',
    paused: 'paused by an operator (or after Back): nothing runs until Resume, which starts the step over',
    blocked: 'a gate found a fault, a command failed or the step timed out: Advance tries the step again, Back takes its way back',
    completed: 'every step is done',
  };
  const MIGRATION_KINDS = ['migration.started', 'migration.waiting', 'migration.step.started', 'migration.step.done', 'migration.gate', 'migration.blocked', 'migration.paused', 'migration.resumed', 'migration.advanced', 'migration.back', 'migration.switched', 'migration.verify.requested', 'migration.contract.running', 'migration.completed', 'migration.throttled', 'migration.unthrottled', 'migration.requested', 'migration.refused'];

  const migrationStatusBadge = (status) => h('span', { class: `mig-status mig-status-${status}`, dataset: { status }, title: MIGRATION_STATUS_HELP[status] || null }, status);
  const checkBadge = (ok) => h('span', { class: `outcome ${ok ? 'outcome-pass' : 'outcome-fail'}` }, ok ? 'ok' : 'not');

  /** Where the plan is, in one line. */
  function migrationWhere(p) {
    const n = p.steps.length;
    if (p.status === 'completed') return `all ${n} step${n === 1 ? '' : 's'} done · since ${fmtDateTime(p.since_ms)} (${ago(p.since_ms)})`;
    const s = p.steps[p.step];
    return `step ${p.step + 1} of ${n}: ${p.step_name}${s && s.kind !== p.step_name ? ` (${s.kind})` : ''}, ${p.started ? 'begun' : 'not begun'} · since ${fmtDateTime(p.since_ms)} (${ago(p.since_ms)})`;
  }

  /** The routes, write routes and verify jobs of a plan. */
  function migrationScope(p) {
    const writes = p.write_routes.join(', ') !== p.routes.join(', ');
    return [
      'routes ', p.routes.map((r, i) => [i ? ', ' : null, routeLink(r)]),
      writes ? [' · write routes ', p.write_routes.map((r, i) => [i ? ', ' : null, routeLink(r)])] : null,
      ' · verify ', p.verify.length ? p.verify.map((j, i) => [i ? ', ' : null, h('code', {}, j)]) : h('span', { class: 'muted' }, 'none'),
    ];
  }

  /** The step strip: expand → dual_write → … → contract, done, current and pending, manual marked. */
  function migrationStrip(p) {
    return h('ol', { class: 'rollout-steps mig-steps', 'aria-label': `the steps of ${p.name}` }, p.steps.map((s, i) => {
      const current = s.state === 'current';
      const cls = current ? `step-current mig-step-${p.status}` : s.state === 'done' ? 'step-done' : 'step-upcoming';
      const note = s.state === 'done' ? '✓ done'
        : current ? `${p.status}${p.status === 'running' || p.status === 'blocked' ? (p.started ? ' · begun' : ' · not begun') : ''}`
          : i === p.step + 1 ? 'next' : 'pending';
      return h('li', {
        class: `step mig-step ${cls}${s.manual ? ' step-manual' : ''}`,
        dataset: Object.assign({ step: s.name, kind: s.kind, state: s.state }, s.manual ? { manual: 'true' } : {}),
        'aria-current': current ? 'step' : null,
        title: `step ${i + 1} of ${p.steps.length}, ${s.kind}: ${s.action}${s.manual ? '; manual: it waits for Advance before it starts' : ''}`,
      },
      h('span', { class: 'step-n muted small' }, `${i + 1} · ${s.kind}`, s.manual ? [' ', h('span', { class: 'step-manual-tag' }, 'manual')] : null),
      h('span', { class: 'mig-step-name' }, s.name),
      h('span', { class: 'step-note small' }, note));
    }));
  }

  /**
   * Which step the view's gate belongs to, in words. The view's gate is the controller's
   * latest: the current step's once it began, else the one before it (its passing gate), or
   * on a node that does not lead the newest recorded (`fromTimeline`: that event's step).
   */
  function gateCaption(p, fromTimeline) {
    const last = p.steps[p.steps.length - 1];
    if (p.status === 'completed') return `of the last step, ${last ? last.name : '?'}`;
    if (p.started) return `of step ${p.step_name}`;
    const before = fromTimeline || (p.step > 0 ? p.steps[p.step - 1].name : null);
    return before ? `of step ${before}, before step ${p.step_name} began` : `latest, before step ${p.step_name} began`;
  }

  /** The list's gate line: outcome, when, and the failing checks. */
  function gateLine(p) {
    const g = p.gate;
    if (!g) return h('div', { class: 'mig-gate muted', dataset: { outcome: '' } }, 'Gate: not judged yet');
    const failing = (g.checks || []).filter((c) => !c.ok);
    return h('div', { class: 'mig-gate', dataset: { outcome: g.outcome } },
      h('span', {}, 'Gate: '), outcomeBadge(g.outcome), h('span', { class: 'small' }, ` ${gateCaption(p, null)} · ${fmtTime(g.at_ms)}`),
      failing.length
        ? h('ul', { class: 'mig-failing' }, failing.map((c) => h('li', { dataset: { check: c.name } }, h('b', {}, c.name), ': ', c.detail)))
        : h('span', { class: 'small' }, ` · ${(g.checks || []).length} check${(g.checks || []).length === 1 ? '' : 's'} ok`));
  }

  /** The throttle's state; null for a plan without [migration.throttle] (or read from a node that does not lead). */
  function throttleLine(t, id) {
    if (!t) return null;
    return h('div', { class: `mig-throttle${t.paused ? ' mig-throttle-paused' : ''}`, id: id || null, dataset: { paused: String(t.paused), pauses: t.pauses } },
      h('b', {}, 'Throttle: '),
      t.paused ? h('span', { class: 'warn' }, `paused${t.since_ms ? ` since ${fmtTime(t.since_ms)}` : ''}`) : h('span', { class: 'ok' }, 'not paused'),
      t.reason ? h('span', { class: 'mig-throttle-reason' }, ` · ${t.reason}`) : null,
      h('span', { class: 'muted small' }, ` · ${num(t.pauses, 0)} pause${t.pauses === 1 ? '' : 's'} since this node leads`));
  }

  function migrationCard(p) {
    return h('section', { class: `panel mig-card mig-card-${p.status}`, dataset: { migration: p.name, status: p.status, step: p.step }, 'aria-label': `migration plan ${p.name}` },
      h('div', { class: 'mig-card-head' },
        h('a', { href: `#/migrations/${encodeURIComponent(p.name)}`, class: 'route-name mig-link', title: `${p.name}: its steps in words, the gate's checks, the timeline and the commands`, dataset: { focus: `migration-${p.name}` } }, p.name),
        migrationStatusBadge(p.status),
        h('span', { class: 'mig-where small' }, migrationWhere(p))),
      h('p', { class: 'muted small mig-scope' }, migrationScope(p)),
      migrationStrip(p),
      gateLine(p),
      throttleLine(p.throttle, null),
      p.live ? null : h('p', { class: 'muted small mig-not-live' }, 'As last recorded: this node does not walk the plan (the leader does), or has not looked at it yet.'));
  }

  function noMigrationNote() {
    return h('div', { class: 'note note-info', id: 'migrations-none' },
      h('strong', {}, 'No migration plan.'),
      h('p', {}, 'A ', h('code', {}, '[[migration]]'), ' in the config file couples a route\'s stages with the data steps under it (expand, dual_write, backfill, verify, switch_reads, switch_writes, contract), each with a gate, a timeout and a way back; ', h('code', {}, 'ficus run'), ' walks it on the leader (see docs/migrations.md):'),
      h('pre', { class: 'slo-example' }, '[[migration]]\nname = "orders-v2"\nroutes = ["orders"]\nverify = ["orders-table"]\n\n[[migration.step]]\nkind = "expand"\nrun = ["psql", "-f", "expand.sql"]\n\n[[migration.step]]\nkind = "switch_reads"\nmanual = true\nsoak = "10m"'));
  }

  function migrationsView() {
    let head, note, list, sig = '';
    return {
      mount(root) {
        head = h('p', { class: 'sub', id: 'migrations-summary' }, 'Loading…');
        note = h('div');
        list = h('div', { class: 'mig-list', id: 'migrations' });
        root.append(
          h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Migrations'), head)),
          note,
          list,
          h('p', { class: 'muted small' }, 'The config\'s [[migration]] plans as the leader walks them: one step at a time, each with its action, its gate (the evidence it needs), its timeout and its way back. A plan\'s page has the steps in words, the gate\'s checks, the timeline of its events and the commands (advance, pause, resume, back).'));
      },
      async refresh() {
        const plans = await api('/api/v1/migrations');
        const count = (s) => plans.filter((p) => p.status === s).length;
        const parts = ['blocked', 'waiting', 'paused', 'running', 'completed'].filter((s) => count(s)).map((s) => `${count(s)} ${s}`);
        head.replaceChildren(...(plans.length
          ? [`${plans.length} plan${plans.length === 1 ? '' : 's'} · `, count('blocked') ? h('span', { class: 'bad' }, parts.join(', ')) : parts.join(', ')]
          : ['No migration plan']));
        const s = JSON.stringify(plans);
        if (s === sig) return;
        sig = s;
        note.replaceChildren(...(plans.length ? [] : [noMigrationNote()]));
        keepFocus(list, () => list.replaceChildren(...plans.map(migrationCard)));
      },
      failed(e) {
        sig = '';
        note.replaceChildren(problemNote(e));
      },
    };
  }

  // -- one plan: its steps in words, the gate's checks, the timeline, the commands

  /** The statuses in which the controller accepts each command (it answers 409 otherwise). */
  const MIGRATION_COMMANDS = {
    advance: { label: 'Advance…', needs: 'waiting or blocked', accepts: (p) => p.status === 'waiting' || p.status === 'blocked' },
    pause: { label: 'Pause…', needs: 'running, waiting or blocked', accepts: (p) => ['running', 'waiting', 'blocked'].includes(p.status) },
    resume: { label: 'Resume…', needs: 'paused', accepts: (p) => p.status === 'paused' },
    back: { label: 'Back…', needs: 'not completed, with a step begun or done', accepts: (p) => p.status !== 'completed' && (p.started || p.step > 0) },
  };

  function migrationAction(p, command) {
    const cur = p.steps[p.step] || null;
    const stepText = cur ? `step ${cur.name} (${cur.kind})` : 'no step';
    const spec = MIGRATION_COMMANDS[command];
    const refused = spec.accepts(p) ? '' : ` The controller accepts ${command} when the plan is ${spec.needs}; it is ${p.status} now, so it will likely refuse it (409) and change nothing.`;
    const base = { path: `/api/v1/migrations/${encodeURIComponent(p.name)}/${command}`, payload: (message) => ({ message }), danger: false };
    switch (command) {
      case 'advance':
        return Object.assign(base, { title: `Advance ${p.name}`, button: 'Advance', message: `${p.name}: advanced from the dashboard`,
          what: `${cur ? `${p.status === 'blocked' ? 'Tries' : 'Starts'} ${stepText} ${p.status === 'blocked' ? 'again from its start' : 'now'}: ${cur.action}.` : 'The plan has no step left.'} Recorded as migration.advanced.${refused}` });
      case 'pause':
        return Object.assign(base, { title: `Pause ${p.name}`, button: 'Pause', message: `${p.name}: paused from the dashboard`,
          what: `Nothing of ${p.name} runs until Resume (now at ${stepText}): a running command is killed and the step starts over on Resume. Recorded as migration.paused.${refused}` });
      case 'resume':
        return Object.assign(base, { title: `Resume ${p.name}`, button: 'Resume', message: `${p.name}: resumed from the dashboard`,
          what: `${cur ? `${stepText} starts over: ${cur.action}.` : ''} Recorded as migration.resumed.${refused}` });
      default: {
        // The step undone: the current one if it began, else the one before it.
        const target = p.started ? cur : p.step > 0 ? p.steps[p.step - 1] : null;
        return Object.assign(base, { title: `Back: ${p.name}`, button: 'Take the way back', danger: true, message: `${p.name}: taken back from the dashboard`,
          what: `${target ? `Takes the way back of step ${target.name} (${target.kind}): ${target.way_back}. The plan is then paused at that step.` : 'No step has run yet: there is nothing to take back.'} Recorded as migration.back.${refused}` });
      }
    }
  }

  /** A gate's checks: ok or not, name, detail. */
  function checksTable(checks) {
    if (!checks || !checks.length) return h('p', { class: 'muted small' }, 'No check: nothing to judge in this step (or it has just begun).');
    return h('table', { class: 'gates mig-checks' },
      h('thead', {}, h('tr', {}, ['', 'Check', 'Detail'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, checks.map((c) => h('tr', { class: `mig-check gate-${c.ok ? 'pass' : 'fail'}`, dataset: { check: c.name, ok: String(c.ok) } },
        h('td', {}, checkBadge(c.ok)),
        h('th', { scope: 'row' }, h('code', {}, c.name)),
        h('td', { class: 'gate-detail mig-check-detail' }, c.detail)))));
  }

  /** A command's outcome: the command, its exit, its time and the tails of its output. */
  function outputBlock(o) {
    const exit = o.timed_out ? 'timed out'
      : o.error ? `could not run: ${o.error}`
        : o.exit_code === null || o.exit_code === undefined ? 'killed by a signal' : `exit code ${o.exit_code}`;
    const ok = !o.timed_out && !o.error && o.exit_code === 0;
    const tail = (name, text) => h('div', { class: 'mig-tail' },
      h('div', { class: 'muted small' }, `${name} (its last bytes)`),
      text ? h('pre', { class: `mig-${name}` }, text) : h('pre', { class: `mig-${name} muted` }, '(empty)'));
    return h('div', { class: 'mig-output', dataset: { exit: o.exit_code === null || o.exit_code === undefined ? '' : o.exit_code, timedOut: String(Boolean(o.timed_out)) } },
      h('p', { class: 'small' }, h('b', {}, 'Command '), h('code', { class: 'mig-command' }, o.command), ' · ',
        h('span', { class: `mig-exit ${ok ? 'ok' : 'bad'}` }, exit), ` · ${fmtMs(Number(o.elapsed_ms))}`),
      tail('stdout', o.stdout), tail('stderr', o.stderr));
  }

  /** What a way back did: a note, the routes it put back, or its command's outcome. */
  function wayBackBlock(w) {
    if (w.command !== undefined) return outputBlock(w);
    if (Array.isArray(w.routes)) {
      return h('p', { class: 'small mig-way-back' }, h('b', {}, 'Way back: '), w.routes.length
        ? w.routes.map(([r, stage, weight], i) => [i ? ', ' : null, `${r} back to ${stage}${stage === 'canary' ? ` ${fmtWeight(weight)}` : ''}`])
        : 'no route to put back');
    }
    return h('p', { class: 'small mig-way-back' }, h('b', {}, 'Way back: '), w.note || JSON.stringify(w));
  }

  const hasEvidence = (e) => Boolean(e.data && (e.data.gate || e.data.output || e.data.way_back || e.data.throttle));

  /** An event's evidence, opened under its row. */
  function migrationEvidence(e) {
    const d = e.data || {};
    const t = d.throttle || null;
    return h('div', { class: 'mig-evidence', dataset: { event: e.id } },
      d.gate ? [h('p', { class: 'small' }, h('b', {}, 'Gate '), outcomeBadge(d.gate.outcome), ` · judged at ${fmtTime(d.gate.at_ms)}`), checksTable(d.gate.checks)] : null,
      d.output ? outputBlock(d.output) : null,
      d.way_back ? wayBackBlock(d.way_back) : null,
      t ? h('p', { class: 'small mig-throttle-evidence' }, h('b', {}, 'Throttle: '), t.reason || '', Array.isArray(t.actions) && t.actions.length ? ` · ${t.actions.join(', ')}` : '') : null);
  }

  function migrationView(name) {
    const enc = encodeURIComponent(name);
    let current = null;
    const els = {};
    /** The timeline rows opened (event ids), kept across refreshes. */
    const open = new Set();
    let timeline = [];
    let headSig = '';
    let stepsSig = '';
    let gateSig = '';
    let timelineSig = '';

    function drawTimeline() {
      const sig = JSON.stringify([timeline.map((e) => e.id), [...open]]);
      if (sig === timelineSig) return;
      timelineSig = sig;
      const rows = [];
      for (const e of timeline) {
        const d = e.data || {};
        const can = hasEvidence(e);
        const isOpen = can && open.has(e.id);
        const toggle = () => { if (open.has(e.id)) open.delete(e.id); else open.add(e.id); drawTimeline(); };
        const step = d.step || (d.migration && d.migration.step_name) || '';
        const what = [d.gate ? `gate ${d.gate.outcome}` : null, d.output ? 'command output' : null, d.way_back ? 'way back' : null, d.throttle ? 'throttle' : null].filter(Boolean).join(', ');
        rows.push(h('tr', { class: `mig-event${can ? ' mig-event-open-able' : ''}${isOpen ? ' is-open' : ''}`, dataset: { event: e.id, kind: e.kind, evidence: can ? 'true' : null, open: isOpen ? 'true' : null }, onclick: can ? (ev) => { if (!ev.target.closest('button, a')) toggle(); } : null },
          h('td', { class: 'nowrap', title: new Date(e.at).toISOString() },
            can ? h('button', { type: 'button', class: 'linklike mig-event-time', 'aria-expanded': String(isOpen), dataset: { focus: `mig-event-${e.id}` }, onclick: toggle }, fmtDateTime(e.at)) : h('span', { class: 'mig-event-time' }, fmtDateTime(e.at)),
            h('div', { class: 'muted small' }, ago(e.at))),
          h('td', {}, kindBadge(e.kind)),
          h('td', { class: 'mig-event-step' }, step ? h('code', {}, step) : h('span', { class: 'muted' }, '—')),
          h('td', { class: 'mig-event-actor' }, e.actor, typeof d.actor === 'string' && d.actor !== e.actor ? h('div', { class: 'muted small' }, `command by ${d.actor}`) : null),
          h('td', { class: 'message mig-event-message' }, e.message,
            can ? h('div', { class: 'muted small' }, isOpen ? `${what} below` : `click for its evidence: ${what}`) : null)));
        if (isOpen) rows.push(h('tr', { class: 'mig-evidence-row rollout-evidence-row' }, h('td', { colspan: 5 }, migrationEvidence(e))));
      }
      els.timelineNote.textContent = timeline.length ? 'Newest first; click a row with evidence (a gate\'s checks, a command\'s output) to open it.' : '';
      keepFocus(els.timeline, () => els.timeline.replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No event for this plan yet: the leader records one when it first looks at the plan.'))])));
    }

    return {
      mount(root) {
        els.title = h('h1', {}, name);
        els.badges = h('div', { class: 'badges' });
        els.sub = h('p', { class: 'sub', id: 'migration-summary' }, 'Loading…');
        els.scope = h('p', { class: 'muted small', id: 'migration-scope' });
        els.error = h('div');
        els.buttons = {};
        for (const [cmd, spec] of Object.entries(MIGRATION_COMMANDS)) {
          els.buttons[cmd] = h('button', { type: 'button', id: `migration-${cmd}`, class: cmd === 'back' ? 'danger' : cmd === 'advance' ? 'primary' : null, dataset: { command: cmd }, onclick: () => current && confirmAction(migrationAction(current, cmd)) }, spec.label);
        }
        els.steps = h('ol', { class: 'mig-step-list', id: 'migration-steps' });
        els.strip = h('div', { id: 'migration-strip' });
        els.gate = h('div', { id: 'migration-gate' });
        els.throttle = h('div');
        els.timeline = h('tbody');
        els.timelineNote = h('p', { class: 'sub' });
        root.append(
          h('p', { class: 'crumb' }, h('a', { href: '#/migrations' }, '← Migrations')),
          h('div', { class: 'page-head' }, h('div', {}, h('div', { class: 'title-row' }, els.title, els.badges), els.sub, els.scope)),
          els.error,
          h('section', { class: 'panel actions-panel mig-controls', id: 'migration-controls', 'aria-label': 'Steer this plan' },
            h('div', { class: 'action-buttons' }, Object.values(els.buttons)),
            h('p', { class: 'muted small' }, 'Each command is an audited migration.* event with your reason, acted on by the leader. Advance starts a waiting step or tries a blocked one again; Pause stops the plan (the step starts over on Resume); Back takes the current step\'s way back, or the previous step\'s when the current one has not begun.')),
          els.strip,
          els.throttle,
          h('section', { 'aria-labelledby': 'migration-gate-title' },
            h('h2', { id: 'migration-gate-title' }, 'Gate'),
            els.gate),
          h('section', { 'aria-labelledby': 'migration-steps-title' },
            h('h2', { id: 'migration-steps-title' }, 'Steps'),
            els.steps),
          h('section', { 'aria-labelledby': 'migration-timeline-title' },
            h('div', { class: 'section-head' }, h('h2', { id: 'migration-timeline-title' }, 'Timeline'), els.timelineNote),
            h('table', { class: 'events mig-timeline', id: 'migration-timeline', 'aria-labelledby': 'migration-timeline-title' },
              h('thead', {}, h('tr', {}, ['Time', 'Kind', 'Step', 'Actor', 'Message'].map((t) => h('th', { scope: 'col' }, t)))),
              els.timeline)));
      },
      async refresh() {
        const p = await api(`/api/v1/migrations/${enc}`);
        current = p;
        timeline = Array.isArray(p.timeline) ? p.timeline : [];
        els.error.replaceChildren();
        document.title = `${name} · migrations · ficus`;
        for (const [cmd, b] of Object.entries(els.buttons)) {
          const spec = MIGRATION_COMMANDS[cmd];
          const ok = spec.accepts(p);
          b.dataset.accepted = String(ok);
          b.classList.toggle('mig-unlikely', !ok);
          b.title = ok ? '' : `the plan is ${p.status}: the controller accepts ${cmd} when it is ${spec.needs} (it would answer 409)`;
        }
        const { timeline: _t, gate: _g, ...rest } = p;
        const head = JSON.stringify(rest);
        if (head !== headSig) {
          headSig = head;
          els.badges.replaceChildren(migrationStatusBadge(p.status));
          els.sub.dataset.status = p.status;
          els.sub.dataset.step = p.step;
          els.sub.replaceChildren(migrationWhere(p), h('span', { class: 'muted' }, ` · ${MIGRATION_STATUS_HELP[p.status] || ''}`));
          els.scope.replaceChildren(h('span', {}, migrationScope(p), p.live ? null : ' · as last recorded: this node does not walk the plan (the leader does), or has not looked at it yet'));
          els.strip.replaceChildren(migrationStrip(p));
          els.throttle.replaceChildren(...[throttleLine(p.throttle, 'migration-throttle')].filter(Boolean));
        }
        const steps = JSON.stringify([p.steps, p.status]);
        if (steps !== stepsSig) {
          stepsSig = steps;
          els.steps.replaceChildren(...p.steps.map((s, i) => h('li', { class: `mig-step-item mig-step-item-${s.state}`, dataset: Object.assign({ step: s.name, kind: s.kind, state: s.state }, s.manual ? { manual: 'true' } : {}) },
            h('div', { class: 'mig-step-item-head' },
              h('b', { class: 'mig-step-item-name' }, `${i + 1}. ${s.name}`), ' ',
              h('span', { class: 'diff-kind' }, s.kind), ' ',
              h('span', { class: `mig-state mig-state-${s.state}` }, s.state === 'current' ? `current · ${p.status}` : s.state),
              s.manual ? h('span', { class: 'step-manual-tag', title: 'waits for Advance before it starts' }, 'manual') : null,
              h('span', { class: 'muted small' }, ` · timeout ${fmtSeconds(s.timeout_s) || '—'}`)),
            h('p', { class: 'mig-action' }, h('span', { class: 'muted' }, 'Action: '), s.action),
            h('p', { class: 'mig-way-back-text' }, h('span', { class: 'muted' }, 'Way back: '), s.way_back))));
        }
        const fromTimeline = timeline.find((e) => e.data && e.data.gate);
        const gate = JSON.stringify([p.gate, p.started, p.step_name, p.status, fromTimeline && fromTimeline.id]);
        if (gate !== gateSig) {
          gateSig = gate;
          const g = p.gate;
          els.gate.dataset.outcome = g ? g.outcome : '';
          els.gate.replaceChildren(...(g
            ? [h('p', { class: 'mig-gate-head' }, outcomeBadge(g.outcome), ` ${gateCaption(p, p.live ? null : fromTimeline && fromTimeline.data.step)} · judged at ${fmtDateTime(g.at_ms)}`), checksTable(g.checks)]
            : [h('p', { class: 'muted' }, p.status === 'waiting' ? 'No gate yet: the step waits for Advance.' : 'No gate judged yet in this step.')]));
        }
        drawTimeline();
      },
      failed(e) {
        els.error.replaceChildren(problemNote(e));
      },
    };
  }

  // ---------------------------------------------------------------- start

  updateTokenButton();
  window.addEventListener('hashchange', router);
  router();
})();
