// dgdr UI: vanilla JS, no dependencies, nothing loaded from elsewhere. Data come from the plugin's JSON
// endpoints; text is always set with textContent (messages and names come from the cluster).
'use strict';

const SVGNS = 'http://www.w3.org/2000/svg';
const metaValue = (n) => document.querySelector(`meta[name="${n}"]`).content;

const S = {
  mode: metaValue('dgdr-mode'),
  ns: metaValue('dgdr-namespace'),
  name: metaValue('dgdr-name'),
  token: metaValue('dgdr-token'),
  view: null,
  chosen: -1,         // index into view.candidates
  chartView: 'tput',  // tput: tokens/s/GPU vs tokens/s/user; ttft: tokens/s/GPU vs TTFT
  filter: 'front',
  sort: { key: 'tpsUser', dir: 1 },
  timer: 0,
  points: [],         // candidate indexes plotted, by x
  rows: [],           // candidate indexes in the table, in order
};

// ---------- small helpers ----------
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  for (const k of kids.flat()) if (k != null && k !== false) el.append(k instanceof Node ? k : String(k));
  return el;
}
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVGNS, tag);
  setAttrs(el, attrs);
  for (const k of kids.flat()) if (k != null && k !== false) el.append(k instanceof Node ? k : String(k));
  return el;
}
function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
}
const $ = (id) => document.getElementById(id);
const nf = (d) => new Intl.NumberFormat(undefined, { minimumFractionDigits: d, maximumFractionDigits: d });
const fmt = (v, d = 1) => (v == null || !isFinite(v) ? '—' : nf(d).format(v));
// pct writes a probability as a percentage with at most d decimals.
const pct = (p, d = 0) => (p == null || !isFinite(p) ? '—' : new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: d }).format(p));
const fmtTime = (t) => (t ? new Date(t).toLocaleString() : '');
const enc = encodeURIComponent;

function banner(msg) {
  const b = $('banner');
  b.hidden = !msg;
  b.textContent = msg || '';
}
function toast(msg) {
  const d = h('div', null, msg);
  $('toast').append(d);
  setTimeout(() => d.remove(), 6000);
}

async function getJSON(url) {
  const r = await fetch(url, { headers: { Accept: 'application/json' } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
  return body;
}

// ---------- candidates ----------
function kind(c) {
  if (!c.predicted) return 'rejected';
  if (c.front) return 'front';
  return c.config.meetsSLA ? 'dominated' : 'infeasible';
}
function ttftClass(c) {
  const r = c.config.ttftMs / S.view.request.ttftMs;
  return r <= 0.5 ? 't1' : r <= 1 ? 't2' : r <= 2 ? 't3' : 't4';
}
function layout(c) {
  // Describe is "backend mode layout".
  return c.describe.split(' ').slice(2).join(' ');
}
function statusText(c) {
  if (!c.predicted) return (c.reasons || []).join(', ') || 'rejected';
  const parts = [];
  if (S.view.selected >= 0 && S.view.candidates[S.view.selected] === c) parts.push(S.view.meetsSLA ? 'recommended' : 'closest');
  if (c.front) parts.push('Pareto front');
  else if (c.config.meetsSLA) parts.push('dominated');
  const misses = (c.reasons || []).filter((r) => r === 'ttft' || r === 'itl').map((r) => r.toUpperCase());
  if (misses.length) parts.push('misses ' + misses.join(' and '));
  return parts.join(', ') || 'meets the SLA';
}
function pickArg(c) {
  if (c.pick == null) return null;
  return c.pick < 0 ? '' : ` --pick ${c.pick}`;
}
function nsArg() { return S.ns ? ` -n ${S.ns}` : ''; }

// ---------- loading ----------
async function start() {
  $('mode-badge').textContent = S.mode === 'plan' ? 'offline plan · no cluster' : `namespace ${S.ns || 'default'}`;
  wireStatic();
  if (S.mode === 'plan') return load('/api/plan');
  if (S.name) return load(`/api/dgdrs/${enc(S.name)}`);
  return loadList();
}

async function loadList() {
  clearTimeout(S.timer);
  $('list').hidden = false;
  $('detail').hidden = true;
  crumbs();
  try {
    const data = await getJSON('/api/dgdrs');
    banner('');
    const tb = $('list-table').tBodies[0];
    tb.replaceChildren(...data.items.map((d) => h('tr', null,
      h('td', null, h('a', { href: `/?dgdr=${enc(d.name)}` }, d.name)),
      h('td', null, d.model), h('td', null, d.backend), h('td', null, d.phase),
      h('td', null, d.dgdName || ''), h('td', null, fmtTime(d.created)))));
    $('list-empty').hidden = data.items.length > 0;
    $('list-table').hidden = data.items.length === 0;
  } catch (e) {
    banner(`Listing DGDRs failed: ${e.message}`);
  }
  S.timer = setTimeout(loadList, 5000);
}

async function load(url) {
  clearTimeout(S.timer);
  let v;
  try {
    v = await getJSON(url);
    banner('');
  } catch (e) {
    banner(`Reading ${S.name || 'the plan'} failed: ${e.message}`);
    S.timer = setTimeout(() => load(url), 5000);
    return;
  }
  if (!S.view || S.view.version !== v.version) render(v);
  $('live').hidden = !(v.refreshMs > 0 && v.refreshMs < 10000);
  if (v.refreshMs > 0) S.timer = setTimeout(() => load(url), v.refreshMs);
}

function crumbs() {
  const c = $('crumbs');
  c.replaceChildren();
  if (S.mode === 'plan') return;
  c.append(h('a', { href: '/' }, `All DGDRs`));
  if (S.name) c.append(' / ', h('span', { 'aria-current': 'page' }, S.name));
}

// ---------- rendering ----------
function render(v) {
  // Keep what the user was doing across a refresh: the chosen candidate and the focused point or row.
  const active = document.activeElement;
  const refocus = active && active.dataset && active.dataset.i != null ? { where: active.closest('svg') ? 'pt' : 'row', i: +active.dataset.i } : null;
  const first = !S.view;
  S.view = v;
  if (S.chosen >= v.candidates.length) S.chosen = -1;
  if (S.chosen < 0) S.chosen = v.selected;
  if (first && v.candidates.length && v.candidates.filter((c) => c.front).length === 0) S.filter = 'predicted';
  $('filter').value = S.filter;

  $('list').hidden = true;
  $('detail').hidden = false;
  crumbs();
  $('title').textContent = v.mode === 'plan' ? `Plan: ${v.request.model}` : `${v.name}`;
  document.title = `dgdr · ${v.mode === 'plan' ? 'plan ' + v.request.model : v.name}`;
  renderRequest(v);
  renderStatus(v);
  $('explanation').textContent = v.explanation || '';
  // Which calibration the predictions used: unknown (hidden) without the search document.
  $('calibration').hidden = !v.calibration;
  $('calibration').textContent = v.calibration ? `Calibration: ${v.calibration}` : '';
  $('note').hidden = !v.note;
  $('note').textContent = v.note || '';
  $('rejected').textContent = v.rejected && v.rejected.length
    ? `Rejected: ${v.rejected.map((r) => `${r.count} ${r.reason}`).join(', ')} (${v.predicted} predicted${v.method ? ', ' + v.method : ''}).`
    : `${v.predicted} predicted${v.method ? ' (' + v.method + ')' : ''}.`;
  renderChart();
  renderTable();
  renderDetails();
  if (refocus) {
    const sel = refocus.where === 'pt' ? `#chart .pt[data-i="${refocus.i}"]` : `#cands tr[data-i="${refocus.i}"]`;
    const el = document.querySelector(sel);
    if (el) { el.tabIndex = 0; el.focus({ preventScroll: true }); }
  }
}

function renderRequest(v) {
  const r = v.request;
  const rows = [
    ['Model', r.model],
    ['Backend', r.backend],
    ['Workload', `ISL ${r.isl} · OSL ${r.osl} tokens`],
    // The confidence is said only when it is not the default, the predictions as they are (as plan prints it).
    ['SLA', `TTFT ≤ ${fmt(r.ttftMs, 0)} ms · ITL ≤ ${fmt(r.itlMs, 1)} ms${r.confidence && r.confidence !== 0.5 ? ` at ${pct(r.confidence, 1)} confidence` : ''}`],
    ['Strategy', r.searchStrategy + (v.mode === 'plan' ? ' (offline, this machine)' : '')],
  ];
  if (v.mode !== 'plan') rows.push(['Auto-apply', r.autoApply ? 'yes' : 'no'], ['Autoscaling', r.autoScaling ? 'Planner' : 'no']);
  if (r.gpu) rows.push(['GPUs', `${r.totalGPUs ? r.totalGPUs + ' × ' : ''}${r.gpu}${r.gpusPerNode ? ` (${r.gpusPerNode} per node)` : ''}`]);
  if (r.image) rows.push(['Image', r.image]);
  if (r.modelCache) rows.push(['Model cache', r.modelCache]);
  if (v.dgdName) rows.push(['DGD', v.dgdName]);
  if (v.deployment) rows.push(['Replicas', `${v.deployment.availableReplicas}/${v.deployment.replicas} available`]);
  $('request').replaceChildren(...rows.flatMap(([k, val]) => [h('dt', null, k), h('dd', null, val)]));
}

const stepIcon = { done: '✓', current: '●', failed: '✕', todo: '', skipped: '–' };
function renderStatus(v) {
  const card = $('status-card');
  card.hidden = v.mode === 'plan';
  if (v.mode === 'plan') return;
  $('timeline').replaceChildren(...v.timeline.map((st) => h('li', { class: st.state, 'data-phase': st.phase, 'aria-current': st.state === 'current' ? 'step' : null },
    h('span', { class: 'dot', 'aria-hidden': 'true' }, stepIcon[st.state]),
    h('span', null, st.phase), h('span', { class: 'sr' }, ` (${st.state})`),
    st.time ? h('time', { datetime: st.time }, fmtTime(st.time)) : (st.state === 'skipped' ? h('time', null, 'on promote') : null))));
  const conds = v.conditions || [];
  $('conditions').hidden = conds.length === 0;
  $('conditions').tBodies[0].replaceChildren(...conds.map((c) => h('tr', null,
    h('td', null, c.type), h('td', null, c.status), h('td', null, c.reason || ''), h('td', null, c.message || ''),
    h('td', null, c.time ? h('time', { datetime: c.time }, fmtTime(c.time)) : ''))));
}

// ---------- chart ----------
const W = 760, H = 440, M = { l: 68, r: 18, t: 18, b: 48 };

function niceTicks(max, n = 6) {
  if (!(max > 0)) return [0, 1];
  const raw = max / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw);
  const ticks = [0];
  // The last tick is at or above max, so no point falls outside the plot.
  while (ticks[ticks.length - 1] < max) ticks.push(+(ticks.length * step).toPrecision(12));
  return ticks;
}

function axes() {
  const r = S.view.request;
  if (S.chartView === 'ttft') {
    return {
      x: (c) => c.config.ttftMs, xLabel: 'TTFT (ms) — lower is better', limit: r.ttftMs,
      limitLabel: `TTFT ≤ ${fmt(r.ttftMs, 0)} ms`, bad: 'right',
      // The p10–p90 interval of the x value, when the prediction has one.
      xBand: (c) => (c.config.ttftP10Ms > 0 && c.config.ttftP90Ms > 0 ? [c.config.ttftP10Ms, c.config.ttftP90Ms] : null),
    };
  }
  return {
    x: (c) => c.config.tokensPerSecondPerUser, xLabel: 'tokens/s/user (= 1000 / ITL) — higher is better', limit: 1000 / r.itlMs,
    limitLabel: `ITL ≤ ${fmt(r.itlMs, 1)} ms`, bad: 'left',
    xBand: (c) => (c.config.itlP10Ms > 0 && c.config.itlP90Ms > 0 ? [1000 / c.config.itlP90Ms, 1000 / c.config.itlP10Ms] : null),
  };
}

// yBand is the p10–p90 interval of tokens/s/GPU, when the prediction has one.
function yBand(c) {
  const cf = c.config;
  return cf.tokensPerSecondPerGPUP10 > 0 && cf.tokensPerSecondPerGPUP90 > 0 ? [cf.tokensPerSecondPerGPUP10, cf.tokensPerSecondPerGPUP90] : null;
}

function renderChart() {
  const v = S.view, svg = $('chart');
  svg.replaceChildren();
  const ax = axes();
  const showDom = $('show-dominated').checked, showInf = $('show-infeasible').checked;
  const idx = [];
  v.candidates.forEach((c, i) => {
    const k = kind(c);
    if (k === 'rejected') return;
    if ((k === 'dominated' && !showDom) || (k === 'infeasible' && !showInf)) {
      if (i !== S.chosen && i !== v.selected) return;
    }
    idx.push(i);
  });
  idx.sort((a, b) => ax.x(v.candidates[a]) - ax.x(v.candidates[b]) || v.candidates[a].config.tokensPerSecondPerGPU - v.candidates[b].config.tokensPerSecondPerGPU);
  S.points = idx;

  const xs = idx.map((i) => ax.x(v.candidates[i])), ys = idx.map((i) => v.candidates[i].config.tokensPerSecondPerGPU);
  const xTicks = niceTicks(Math.max(...xs, ax.limit, 1) * 1.04);
  const yTicks = niceTicks(Math.max(...ys, 1) * 1.04);
  const xMax = xTicks[xTicks.length - 1], yMax = yTicks[yTicks.length - 1];
  const X = (x) => M.l + (x / xMax) * (W - M.l - M.r);
  const Y = (y) => H - M.b - (y / yMax) * (H - M.t - M.b);

  // The SLA limit: the side that misses it is shaded.
  const lx = X(ax.limit);
  if (ax.bad === 'left') svg.append(s('rect', { class: 'shade', x: M.l, y: M.t, width: Math.max(0, lx - M.l), height: H - M.t - M.b }));
  else svg.append(s('rect', { class: 'shade', x: lx, y: M.t, width: Math.max(0, W - M.r - lx), height: H - M.t - M.b }));

  const grid = s('g', { class: 'grid', 'aria-hidden': 'true' });
  const axis = s('g', { class: 'axis', 'aria-hidden': 'true' });
  for (const t of xTicks) {
    grid.append(s('line', { x1: X(t), x2: X(t), y1: M.t, y2: H - M.b }));
    axis.append(s('text', { x: X(t), y: H - M.b + 16, 'text-anchor': 'middle' }, fmt(t, t % 1 ? 1 : 0)));
  }
  for (const t of yTicks) {
    grid.append(s('line', { x1: M.l, x2: W - M.r, y1: Y(t), y2: Y(t) }));
    axis.append(s('text', { x: M.l - 6, y: Y(t) + 4, 'text-anchor': 'end' }, fmt(t, t % 1 ? 1 : 0)));
  }
  axis.append(s('line', { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b }), s('line', { x1: M.l, x2: M.l, y1: M.t, y2: H - M.b }));
  axis.append(s('text', { class: 'title', x: (M.l + W - M.r) / 2, y: H - 10, 'text-anchor': 'middle' }, ax.xLabel));
  axis.append(s('text', { class: 'title', x: -(M.t + H - M.b) / 2, y: 16, transform: 'rotate(-90)', 'text-anchor': 'middle' }, 'tokens/s/GPU — higher is better'));
  svg.append(grid, axis);
  svg.append(s('line', { class: 'limit', x1: lx, x2: lx, y1: M.t, y2: H - M.b }),
    s('text', { class: 'limit-label', x: lx + (ax.bad === 'left' ? 6 : -6), y: M.t + 14, 'text-anchor': ax.bad === 'left' ? 'start' : 'end' }, ax.limitLabel));

  // The front as a line, in the tokens/s/user view where it is monotone.
  if (S.chartView === 'tput') {
    const front = idx.filter((i) => v.candidates[i].front);
    if (front.length > 1) svg.append(s('polyline', { class: 'frontline', 'aria-hidden': 'true', points: front.map((i) => `${X(ax.x(v.candidates[i]))},${Y(v.candidates[i].config.tokensPerSecondPerGPU)}`).join(' ') }));
  }

  // Error bars: the p10–p90 intervals of the front's predictions (measured points have none), under
  // the points and cut at the plot's edges (a TTFT p90 can be several times the prediction).
  if ($('show-intervals').checked) {
    const bars = s('g', { class: 'errbars', 'aria-hidden': 'true' });
    const cx = (x) => Math.min(Math.max(x, 0), xMax), cy = (y) => Math.min(Math.max(y, 0), yMax);
    for (const i of idx) {
      const c = v.candidates[i];
      if (!c.front) continue;
      const xb = ax.xBand(c), yb = yBand(c);
      if (!xb && !yb) continue;
      const x = X(ax.x(c)), y = Y(c.config.tokensPerSecondPerGPU);
      const g = s('g', { class: 'errbar', 'data-i': i });
      if (xb) g.append(s('line', { class: 'xbar', x1: X(cx(xb[0])), x2: X(cx(xb[1])), y1: y, y2: y }));
      if (yb) g.append(s('line', { class: 'ybar', x1: x, x2: x, y1: Y(cy(yb[0])), y2: Y(cy(yb[1])) }));
      bars.append(g);
    }
    svg.append(bars);
  }

  // Points: rejected-by-SLA first, dominated, then the front on top.
  const layer = { infeasible: s('g', null), dominated: s('g', null), front: s('g', null) };
  const rove = S.points.includes(S.chosen) ? S.chosen : S.points[0];
  for (const i of idx) {
    const c = v.candidates[i], k = kind(c);
    const x = X(ax.x(c)), y = Y(c.config.tokensPerSecondPerGPU);
    const g = s('g', {
      class: `pt ${k} ${ttftClass(c)}`, 'data-i': i, transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`,
      tabindex: i === rove ? 0 : -1, role: 'button', 'aria-pressed': i === S.chosen ? 'true' : 'false',
      'aria-label': `${c.describe}: ${fmt(c.config.tokensPerSecondPerGPU)} tokens/s/GPU, ${fmt(c.config.tokensPerSecondPerUser)} tokens/s/user, TTFT ${fmt(c.config.ttftMs)} ms; ${statusText(c)}`,
    });
    g.append(s('circle', { class: 'hit', r: 9 }));
    if (k === 'front') g.append(s('circle', { r: 6 }));
    else if (k === 'dominated') g.append(s('circle', { r: 3.5 }));
    else g.append(s('path', { d: 'M-3.5,-3.5L3.5,3.5M-3.5,3.5L3.5,-3.5' }));
    layer[k].append(g);
  }
  svg.append(layer.infeasible, layer.dominated, layer.front);

  // The recommendation and the user's choice are marked on top.
  const at = (i) => [X(ax.x(v.candidates[i])), Y(v.candidates[i].config.tokensPerSecondPerGPU)];
  if (v.selected >= 0 && idx.includes(v.selected)) {
    const [x, y] = at(v.selected);
    svg.append(s('circle', { class: 'sel-ring', cx: x, cy: y, r: 11, 'aria-hidden': 'true' }),
      s('text', { class: 'sel-label', x: x + 14, y: y - 10, 'aria-hidden': 'true' }, v.meetsSLA ? 'recommended' : 'closest'));
  }
  svg.append(s('circle', { id: 'chosen-ring', class: 'chosen-ring', r: 11, visibility: 'hidden', 'aria-hidden': 'true' }));
  placeChosenRing();
  svg.append(s('circle', { id: 'focus-ring', class: 'focus-ring', r: 13, visibility: 'hidden', 'aria-hidden': 'true' }));
  if (!idx.length) {
    svg.append(s('text', { class: 'title', x: (M.l + W - M.r) / 2, y: (M.t + H - M.b) / 2, 'text-anchor': 'middle' },
      v.mode === 'plan' ? 'No configuration could be predicted.' : 'No results yet: the chart fills in when profiling completes.'));
  }
  renderLegend();
}

// placeChosenRing marks the user's choice (the recommendation has its own mark).
function placeChosenRing() {
  const ring = $('chosen-ring'), pt = document.querySelector(`#chart .pt[data-i="${S.chosen}"]`);
  if (!ring) return;
  if (!pt || S.chosen === S.view.selected) { ring.setAttribute('visibility', 'hidden'); return; }
  const m = /translate\(([^,]+),([^)]+)\)/.exec(pt.getAttribute('transform'));
  ring.setAttribute('cx', m[1]);
  ring.setAttribute('cy', m[2]);
  ring.setAttribute('visibility', 'visible');
}

function renderLegend() {
  const r = S.view.request;
  const sw = (inner) => s('svg', { width: 16, height: 16, viewBox: '-8 -8 16 16', 'aria-hidden': 'true' }, inner);
  // Classes, not style attributes: the page's Content-Security-Policy allows no inline styles.
  const shape = (k, cls) => s('g', { class: `${k} ${cls}` }, k === 'front' ? s('circle', { r: 5 })
    : k === 'dominated' ? s('circle', { r: 3.5 }) : s('path', { d: 'M-3.5,-3.5L3.5,3.5M-3.5,3.5L3.5,-3.5' }));
  const t = r.ttftMs;
  $('legend').replaceChildren(
    h('li', null, sw(shape('front', 'fg')), 'Pareto front'),
    h('li', null, sw(shape('dominated', 'fg')), 'dominated'),
    h('li', null, sw(shape('infeasible', 'fg')), 'misses the SLA'),
    h('li', null, sw(shape('front', 't1')), `TTFT ≤ ${fmt(t / 2, 0)} ms`),
    h('li', null, sw(shape('front', 't2')), `≤ ${fmt(t, 0)} ms`),
    h('li', null, sw(shape('front', 't3')), `≤ ${fmt(2 * t, 0)} ms`),
    h('li', null, sw(shape('front', 't4')), `> ${fmt(2 * t, 0)} ms`),
    h('li', null, sw(s('g', { class: 'errbar' }, s('line', { x1: -7, x2: 7, y1: 0, y2: 0 }), s('line', { x1: 0, x2: 0, y1: -7, y2: 7 }))),
      'p10–p90 interval (predictions)'),
  );
}

function showTooltip(i, el) {
  const c = S.view.candidates[i], tip = $('tooltip');
  const cf = c.config;
  const lines = [
    `TTFT ${fmt(cf.ttftMs)} ms · ITL ${fmt(cf.itlMs, 2)} ms`,
    `${fmt(cf.tokensPerSecondPerGPU)} tokens/s/GPU · ${fmt(cf.tokensPerSecondPerUser)} tokens/s/user`,
    `${cf.gpus} GPUs, ${cf.replicas} replica${cf.replicas === 1 ? '' : 's'}`,
    statusText(c),
  ];
  if (cf.ttftP90Ms > 0 && cf.itlP90Ms > 0) {
    lines.splice(2, 0, `p10–p90: TTFT ${fmt(cf.ttftP10Ms)}–${fmt(cf.ttftP90Ms)} ms · ITL ${fmt(cf.itlP10Ms, 2)}–${fmt(cf.itlP90Ms, 2)} ms`);
  }
  if (c.detail) lines.push(c.detail);
  tip.replaceChildren(h('b', null, c.describe), ...lines.map((l) => h('div', null, l)));
  tip.hidden = false;
  const wrap = $('chart-wrap').getBoundingClientRect(), b = el.getBoundingClientRect();
  let left = b.left - wrap.left + 16, top = b.top - wrap.top + 12;
  if (left + 340 > wrap.width) left = Math.max(0, b.left - wrap.left - 350);
  tip.style.left = `${left}px`;
  tip.style.top = `${top}px`;
  const ring = $('focus-ring');
  if (ring && document.activeElement === el) {
    const m = /translate\(([^,]+),([^)]+)\)/.exec(el.getAttribute('transform'));
    ring.setAttribute('cx', m[1]); ring.setAttribute('cy', m[2]); ring.setAttribute('visibility', 'visible');
  }
}
function hideTooltip() {
  $('tooltip').hidden = true;
  const ring = $('focus-ring');
  if (ring) ring.setAttribute('visibility', 'hidden');
}

function moveFocus(list, selector, cur, delta, end) {
  if (!list.length) return;
  let p = list.indexOf(cur);
  if (end === 'home') p = 0;
  else if (end === 'end') p = list.length - 1;
  else p = Math.min(list.length - 1, Math.max(0, (p < 0 ? 0 : p) + delta));
  const next = document.querySelector(selector(list[p]));
  if (!next) return;
  rove(selector('').replace(/\[data-i=""\]/, ''), next);
  next.focus();
  next.scrollIntoView?.({ block: 'nearest' });
}

function keyNav(e, list, selector) {
  const el = e.target.closest('[data-i]');
  if (!el) return;
  const i = +el.dataset.i;
  const keys = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1, PageDown: 10, PageUp: -10 };
  if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); choose(i); return; }
  if (e.key === 'Home' || e.key === 'End') { e.preventDefault(); moveFocus(list, selector, i, 0, e.key.toLowerCase()); return; }
  if (keys[e.key] != null) { e.preventDefault(); moveFocus(list, selector, i, keys[e.key]); }
}

// ---------- table ----------
const columns = [
  { key: 'pick', label: '#', num: true, get: (c) => (c.pick == null ? Infinity : c.pick), show: (c) => (c.pick == null ? '' : c.pick < 0 ? 'sel' : c.pick) },
  { key: 'backend', label: 'Backend', get: (c) => c.config.backend },
  { key: 'mode', label: 'Mode', get: (c) => c.config.mode },
  { key: 'layout', label: 'Layout', get: (c) => layout(c) },
  { key: 'gpus', label: 'GPUs', num: true, get: (c) => c.config.gpus },
  { key: 'ttft', label: 'TTFT ms', num: true, get: (c) => c.config.ttftMs, show: (c) => (c.predicted ? fmt(c.config.ttftMs) : '—') },
  { key: 'itl', label: 'ITL ms', num: true, get: (c) => c.config.itlMs, show: (c) => (c.predicted ? fmt(c.config.itlMs, 2) : '—') },
  { key: 'tpsGPU', label: 'tokens/s/GPU', num: true, get: (c) => c.config.tokensPerSecondPerGPU, show: (c) => (c.predicted ? fmt(c.config.tokensPerSecondPerGPU) : '—') },
  { key: 'tpsUser', label: 'tokens/s/user', num: true, get: (c) => c.config.tokensPerSecondPerUser, show: (c) => (c.predicted ? fmt(c.config.tokensPerSecondPerUser) : '—') },
  { key: 'status', label: 'Status', get: (c) => statusText(c), show: (c) => c.detail && !c.predicted ? `${statusText(c)}: ${c.detail}` : statusText(c) },
];

function visible(c, i) {
  if (i === S.chosen) return true;
  switch (S.filter) {
    case 'front': return c.front;
    case 'meets': return c.predicted && c.config.meetsSLA;
    case 'predicted': return c.predicted;
    default: return true;
  }
}

function renderTable() {
  const v = S.view, t = $('cands');
  const headRow = t.tHead.rows[0];
  // The header is built once (a focused header button survives re-sorting); only aria-sort changes.
  if (!headRow.cells.length) {
    headRow.append(...columns.map((col) => h('th', { scope: 'col', class: col.num ? 'num' : null },
      h('button', { type: 'button', 'data-key': col.key }, col.label))));
  }
  columns.forEach((col, k) => headRow.cells[k].setAttribute('aria-sort',
    S.sort.key === col.key ? (S.sort.dir > 0 ? 'ascending' : 'descending') : 'none'));
  const col = columns.find((c) => c.key === S.sort.key) || columns[0];
  const idx = v.candidates.map((c, i) => i).filter((i) => visible(v.candidates[i], i));
  idx.sort((a, b) => {
    const x = col.get(v.candidates[a]), y = col.get(v.candidates[b]);
    const d = typeof x === 'string' ? x.localeCompare(y) : x - y;
    return (d || a - b) * (d ? S.sort.dir : 1);
  });
  S.rows = idx;
  const rove = idx.includes(S.chosen) ? S.chosen : idx[0];
  t.tBodies[0].replaceChildren(...idx.map((i) => {
    const c = v.candidates[i];
    return h('tr', {
      'data-i': i, tabindex: i === rove ? 0 : -1, 'aria-selected': i === S.chosen ? 'true' : 'false',
      class: c.predicted ? null : 'rejected',
    }, columns.map((cl) => h('td', { class: cl.num ? 'num' : null }, cl.show ? cl.show(c) : cl.get(c))));
  }));
  $('count').textContent = `${idx.length} of ${v.candidates.length}`;
}

// ---------- details and actions ----------
function renderDetails() {
  const v = S.view, box = $('details');
  const c = v.candidates[S.chosen];
  const exp = $('export'), dep = $('deploy');
  if (!c) {
    box.replaceChildren(h('p', { class: 'help' }, v.candidates.length ? 'Choose a point or a row.' : 'No results yet.'));
    setActions(null);
    return;
  }
  const cf = c.config, r = v.request;
  const perReplica = (cf.workers || []).reduce((n, w) => n + w.count * w.tp * w.pp * Math.max(w.dp || 1, 1), 0);
  const kv = [
    ['Backend', cf.backend], ['Mode', cf.mode === 'disagg' ? 'disaggregated (prefill + decode)' : 'aggregated'],
    ['Replicas', cf.replicas], ['GPUs', `${cf.gpus} (${perReplica} per replica)`],
  ];
  if (cf.weightDtype) kv.push(['Precision', `weights ${cf.weightDtype}, KV cache ${cf.kvDtype || cf.weightDtype}`]);
  if (c.predicted) {
    kv.push(
      ['TTFT', `${fmt(cf.ttftMs)} ms (target ${fmt(r.ttftMs, 0)})`],
      ['ITL', `${fmt(cf.itlMs, 2)} ms (target ${fmt(r.itlMs, 1)})`],
      ['Throughput', `${fmt(cf.tokensPerSecondPerGPU)} tokens/s/GPU · ${fmt(cf.tokensPerSecondPerGPU * cf.gpus, 0)} tokens/s in all`],
      ['Per user', `${fmt(cf.tokensPerSecondPerUser)} tokens/s`],
    );
    // The search gives the probability of meeting each target for its pick alone.
    const p = v.slaProbability;
    if (p && S.chosen === v.selected) kv.push(['P(meets SLA)', `TTFT ${pct(p.ttft)} · ITL ${pct(p.itl)} (from the p10–p90 intervals)`]);
  }
  kv.push(['Status', statusText(c)]);
  if (c.detail) kv.push(['Why', c.detail]);
  const workers = h('table', { class: 'data compact' },
    h('caption', null, 'Workers (one replica)'),
    h('thead', null, h('tr', null, ['Role', 'Count', 'TP', 'PP', 'DP', 'EP', 'Batch'].map((x) => h('th', { scope: 'col', class: x === 'Role' ? null : 'num' }, x)))),
    h('tbody', null, (cf.workers || []).map((w) => h('tr', null,
      h('td', null, w.role), ...[w.count, w.tp, w.pp, w.dp || 1, w.ep, w.batch || '—'].map((x) => h('td', { class: 'num' }, x))))));
  box.replaceChildren(
    h('h3', { id: 'chosen-name' }, c.describe),
    h('dl', { class: 'kv', id: 'chosen-kv' }, kv.flatMap(([k, val]) => [h('dt', null, k), h('dd', null, String(val))])),
    workers);
  setActions(c);
}

function setActions(c) {
  const v = S.view, exp = $('export'), dep = $('deploy');
  const arg = c ? pickArg(c) : null;
  const ok = v.canAct && c && arg != null;
  exp.setAttribute('aria-disabled', ok ? 'false' : 'true');
  dep.disabled = !ok;
  if (ok) {
    exp.href = `/api/dgdrs/${enc(v.name)}/export${c.pick >= 0 ? `?pick=${c.pick}` : ''}`;
    exp.setAttribute('download', '');
    exp.removeAttribute('tabindex');
  } else {
    exp.removeAttribute('href');
    exp.removeAttribute('download');
    exp.tabIndex = 0;
  }
  let why = '';
  if (!v.canAct) why = v.why || '';
  else if (c && arg == null) why = 'Only points of the stored Pareto front (the # column) can be exported or deployed, as with --pick.';
  $('why').textContent = why;
  // The command lines these buttons stand for (an offline plan has none).
  $('cli').parentElement.hidden = v.mode === 'plan';
  $('cli').textContent = !c || arg == null ? '—'
    : `kubectl dgdr export ${v.name}${nsArg()}${arg}  ·  kubectl dgdr promote ${v.name}${nsArg()}${arg}`;
}

// choose makes candidate i the chosen one. The chart and the table are updated in place (their
// elements, focus and hover stay); they are redrawn only when i is not shown in them.
function choose(i) {
  if (!S.view || i < 0 || i >= S.view.candidates.length) return;
  S.chosen = i;
  const pt = document.querySelector(`#chart .pt[data-i="${i}"]`);
  if (pt) {
    for (const el of document.querySelectorAll('#chart .pt[aria-pressed="true"]')) el.setAttribute('aria-pressed', 'false');
    pt.setAttribute('aria-pressed', 'true');
    rove('#chart .pt', pt);
    placeChosenRing();
  } else {
    renderChart();
  }
  const row = document.querySelector(`#cands tr[data-i="${i}"]`);
  if (row) {
    for (const el of document.querySelectorAll('#cands tr[aria-selected="true"]')) el.setAttribute('aria-selected', 'false');
    row.setAttribute('aria-selected', 'true');
    rove('#cands tbody tr', row);
    if (!row.contains(document.activeElement)) row.scrollIntoView?.({ block: 'nearest' });
  } else {
    renderTable();
  }
  renderDetails();
}

// rove gives el the one tab stop of its group (roving tabindex), leaving focus where it is.
function rove(group, el) {
  for (const o of document.querySelectorAll(`${group}[tabindex="0"]`)) if (o !== el) o.tabIndex = -1;
  el.tabIndex = 0;
}

// ---------- deploy ----------
let pendingPick = null;
async function openDeploy() {
  const v = S.view, c = v.candidates[S.chosen];
  if (!c || c.pick == null || !v.canAct) return;
  pendingPick = c.pick;
  const dlg = $('deploy-dialog');
  $('dlg-title').textContent = `Deploy ${c.describe}?`;
  $('dlg-summary').textContent = 'Asking the API server what would change…';
  $('dlg-error').hidden = true;
  $('dlg-diff').replaceChildren();
  $('dlg-dgd').textContent = '';
  $('dlg-diff-box').hidden = true;
  $('dlg-confirm').disabled = true;
  dlg.showModal();
  try {
    const p = await getJSON(`/api/dgdrs/${enc(v.name)}/preview${c.pick >= 0 ? `?pick=${c.pick}` : ''}`);
    const what = p.action === 'created' ? `creates DynamoGraphDeployment ${p.dgdName}`
      : p.action === 'unchanged' ? `leaves DynamoGraphDeployment ${p.dgdName} unchanged (it already is this configuration)`
        : `updates DynamoGraphDeployment ${p.dgdName}`;
    $('dlg-summary').textContent = `Deploying ${what} in namespace ${v.namespace}, and records the DGDR as Deploying. Same as: ${p.command}`;
    $('dlg-dgd').textContent = p.dgd;
    if (p.diff) {
      $('dlg-diff-box').hidden = false;
      $('dlg-diff').replaceChildren(...p.diff.split('\n').map((l) => h('span', {
        class: l.startsWith('+') && !l.startsWith('+++') ? 'add' : l.startsWith('-') && !l.startsWith('---') ? 'del' : l.startsWith('@@') ? 'hunk' : null,
      }, l + '\n')));
    }
    $('dlg-confirm').disabled = false;
    $('dlg-confirm').focus();
  } catch (e) {
    $('dlg-summary').textContent = '';
    $('dlg-error').hidden = false;
    $('dlg-error').textContent = `Cannot deploy: ${e.message}`;
  }
}

async function confirmDeploy() {
  const v = S.view;
  $('dlg-confirm').disabled = true;
  try {
    const r = await fetch(`/api/dgdrs/${enc(v.name)}/deploy`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-DGDR-Token': S.token, Accept: 'application/json' },
      body: JSON.stringify({ pick: pendingPick }),
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
    $('deploy-dialog').close();
    toast(body.message);
    $('toast').dataset.last = body.message;
    load(`/api/dgdrs/${enc(v.name)}`);
  } catch (e) {
    $('dlg-error').hidden = false;
    $('dlg-error').textContent = `Deploy failed: ${e.message}`;
  }
}

// ---------- wiring ----------
function wireStatic() {
  const svg = $('chart');
  svg.addEventListener('click', (e) => { const g = e.target.closest('.pt'); if (g) choose(+g.dataset.i); });
  svg.addEventListener('keydown', (e) => keyNav(e, S.points, (i) => `#chart .pt[data-i="${i}"]`));
  svg.addEventListener('mouseover', (e) => { const g = e.target.closest('.pt'); if (g) showTooltip(+g.dataset.i, g); });
  svg.addEventListener('mouseout', (e) => { if (e.target.closest('.pt') && document.activeElement !== e.target.closest('.pt')) hideTooltip(); });
  svg.addEventListener('focusin', (e) => { const g = e.target.closest('.pt'); if (g) showTooltip(+g.dataset.i, g); });
  svg.addEventListener('focusout', hideTooltip);

  const t = $('cands');
  t.tHead.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-key]');
    if (!b) return;
    S.sort = { key: b.dataset.key, dir: S.sort.key === b.dataset.key ? -S.sort.dir : 1 };
    renderTable();
    t.tHead.querySelector(`button[data-key="${b.dataset.key}"]`).focus();
  });
  t.tBodies[0].addEventListener('click', (e) => { const tr = e.target.closest('tr[data-i]'); if (tr) { tr.focus(); choose(+tr.dataset.i); } });
  t.tBodies[0].addEventListener('keydown', (e) => keyNav(e, S.rows, (i) => `#cands tr[data-i="${i}"]`));

  $('filter').addEventListener('change', (e) => { S.filter = e.target.value; renderTable(); });
  for (const r of document.querySelectorAll('input[name="chart-view"]')) r.addEventListener('change', (e) => { S.chartView = e.target.value; renderChart(); });
  $('show-dominated').addEventListener('change', renderChart);
  $('show-infeasible').addEventListener('change', renderChart);
  $('show-intervals').addEventListener('change', renderChart);
  $('export').addEventListener('click', (e) => { if ($('export').getAttribute('aria-disabled') === 'true') e.preventDefault(); });
  $('export').addEventListener('keydown', (e) => { if (e.key === ' ') { e.preventDefault(); $('export').click(); } });
  $('deploy').addEventListener('click', openDeploy);
  $('dlg-cancel').addEventListener('click', () => $('deploy-dialog').close());
  $('dlg-confirm').addEventListener('click', confirmDeploy);
}

start();
