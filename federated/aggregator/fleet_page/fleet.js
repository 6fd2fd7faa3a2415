// The fleet page: draws /api/fleet (ReleaseAdmin.GetFleet's JSON) every few
// seconds. Every text from the fleet (device ids, details devices sent) goes
// in as text, never as markup.
'use strict';

const REFRESH_MS = 5000;
const SVG = 'http://www.w3.org/2000/svg';
const FAILURES = ['REFUSED', 'SMOKE_FAILED', 'ROLLED_BACK', 'EVAL_FAILED', 'LIVE_FAILED'];

// The token comes in the URL's fragment (#token=...), which browsers never send.
const token = new URLSearchParams(location.hash.slice(1)).get('token');

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function badge(text) { return el('span', { class: 'badge ' + text }, text); }

function ago(unixMs, nowMs) {
  if (!unixMs) return 'never';
  const s = Math.max(0, Math.round((nowMs - unixMs) / 1000));
  if (s < 90) return s + ' s ago';
  if (s < 5400) return Math.round(s / 60) + ' min ago';
  return Math.round(s / 3600) + ' h ago';
}

function percent(part, whole) { return whole > 0 ? (100 * part / whole).toFixed(1) + '%' : '–'; }

function evaluationText(e) {
  if (!e) return null;
  const parts = [];
  if (Number(e.examples) > 0) {
    parts.push('eval loss ' + e.loss.toFixed(4) + ' vs ' + e.baseline_loss.toFixed(4) +
               ' (x' + (e.loss / e.baseline_loss).toFixed(3) + ')');
  }
  if (Number(e.cases) > 0) {
    parts.push('exact match ' + e.exact_matches + '/' + e.cases + ' vs ' + e.baseline_exact_matches + '/' + e.cases);
  }
  return parts.length ? parts.join(', ') : null;
}

function liveText(live, before) {
  if (!live || Number(live.requests) === 0) return null;
  const n = Number(live.requests), b = before ? Number(before.requests) : 0;
  let text = n + ' requests since the swap: errors ' + percent(Number(live.errors), n) +
             ', refusals ' + percent(Number(live.refusals), n);
  if (Number(live.ttft_samples) > 0) text += ', TTFT p99 ' + Math.round(1000 * live.ttft_p99_seconds) + ' ms';
  if (before && b > 0) {
    text += ' (before: ' + b + ' requests, refusals ' + percent(Number(before.refusals), b) + ')';
  }
  return text;
}

// Eval loss per version: a line over the versions that have one.
function lossChart(versions) {
  const points = versions.filter(v => typeof v.eval_loss === 'number')
                         .map(v => ({ x: Number(v.version), y: v.eval_loss }));
  if (points.length === 0) return el('p', { class: 'empty' }, 'No version has an eval loss yet (the model needs eval_data).');
  const width = 440, height = 190, left = 48, right = 12, top = 12, bottom = 30;
  const xs = points.map(p => p.x), ys = points.map(p => p.y);
  const xMin = Math.min(...xs), xMax = Math.max(...xs);
  let yMin = Math.min(...ys), yMax = Math.max(...ys);
  if (yMax - yMin < 1e-9) { yMin -= 0.5; yMax += 0.5; }
  const x = v => left + (xMax === xMin ? (width - left - right) / 2 : (v - xMin) / (xMax - xMin) * (width - left - right));
  const y = v => top + (1 - (v - yMin) / (yMax - yMin)) * (height - top - bottom);
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, width: '100%', role: 'img',
                             'aria-label': 'eval loss per version', class: 'loss-chart' });
  chart.append(svg('line', { class: 'axis', x1: left, y1: height - bottom, x2: width - right, y2: height - bottom }));
  chart.append(svg('line', { class: 'axis', x1: left, y1: top, x2: left, y2: height - bottom }));
  for (const v of [yMin, (yMin + yMax) / 2, yMax]) {
    chart.append(svg('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end' }, v.toFixed(3)));
  }
  for (const p of points) {
    chart.append(svg('text', { x: x(p.x), y: height - bottom + 16, 'text-anchor': 'middle' }, 'v' + p.x));
  }
  chart.append(svg('polyline', { class: 'series', points: points.map(p => `${x(p.x)},${y(p.y)}`).join(' ') }));
  for (const p of points) {
    const dot = svg('circle', { class: 'point', cx: x(p.x), cy: y(p.y), r: 3.5 });
    dot.append(svg('title', {}, `version ${p.x}: eval loss ${p.y.toFixed(4)}`));
    chart.append(dot);
  }
  return chart;
}

// The rollout's devices by their report: one stacked bar.
function outcomeBar(devices) {
  const counts = { installed: 0, failed: 0, waiting: 0 };
  for (const d of devices) {
    if (d.last_report === 'INSTALLED') counts.installed++;
    else if (FAILURES.includes(d.last_report)) counts.failed++;
    else counts.waiting++;
  }
  const bar = el('div', { class: 'outcome-bar', role: 'img', 'aria-label': 'devices by outcome' });
  for (const [name, n] of Object.entries(counts)) {
    if (n === 0) continue;
    const part = el('span', { class: 'part ' + name, title: `${n} ${name}` }, `${n} ${name}`);
    part.style.flexGrow = String(n);
    bar.append(part);
  }
  return bar;
}

function rolloutCard(rollout) {
  const card = el('article', { class: 'card wide rollout' }, el('h3', {}, 'Rollout'));
  if (!rollout || rollout.stage === 'none') {
    card.append(el('p', { class: 'empty' }, 'No release yet.'));
    return card;
  }
  const p = rollout.params || {};
  card.append(el('div', { class: 'stage-line' }, badge(rollout.stage),
                 el('span', {}, `release ${rollout.release} · version ${rollout.version}` +
                                (rollout.rollback ? ' · a rollback' : '')),
                 el('span', { class: 'figures' }, `canaries ${p.canary_fraction}, soak ${p.soak_seconds} s` +
                                                  (p.require_approval ? ', then approval' : ''))));
  if (rollout.detail) card.append(el('div', { class: rollout.stage === 'halted' ? 'halt' : 'figures' }, rollout.detail));
  const devices = rollout.devices || [];
  card.append(outcomeBar(devices));
  const rows = devices.map(d => {
    const figures = [evaluationText(d.evaluation), liveText(d.live, d.live_baseline)].filter(Boolean);
    return el('tr', {},
              el('td', {}, d.device_id, d.canary ? el('span', { class: 'figures' }, ' (canary)') : null),
              el('td', {}, Number(d.serving_version) === 0 ? 'base' : 'v' + d.serving_version),
              el('td', {}, d.last_report ? badge(d.last_report) : el('span', { class: 'figures' }, 'not yet')),
              el('td', { class: 'detail' }, d.detail || '', ...figures.map(f => el('div', { class: 'figures' }, f))));
  });
  card.append(el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'device'), el('th', {}, 'serving'),
                                                  el('th', {}, 'report'), el('th', {}, 'detail and figures'))),
                 el('tbody', {}, ...rows)));
  return card;
}

function devicesCard(devices, nowMs) {
  const card = el('article', { class: 'card devices' }, el('h3', {}, 'Devices'));
  if (devices.length === 0) {
    card.append(el('p', { class: 'empty' }, 'No device has registered or asked for releases.'));
    return card;
  }
  card.append(el('table', {},
    el('thead', {}, el('tr', {}, el('th', {}, 'device'), el('th', {}, 'serving'), el('th', {}, 'last seen'),
                        el('th', {}, 'last report'))),
    el('tbody', {}, ...devices.map(d => el('tr', {},
      el('td', {}, el('span', { class: d.online ? 'dot online' : 'dot', title: d.online ? 'online' : 'offline' }),
         d.device_id),
      el('td', {}, Number(d.serving_version) === 0 ? 'base' : 'v' + d.serving_version),
      el('td', {}, ago(Number(d.last_seen_unix_ms), nowMs)),
      el('td', {}, d.last_report ? badge(d.last_report) : '–'))))));
  return card;
}

function roundsCard(rounds) {
  const card = el('article', { class: 'card rounds' }, el('h3', {}, 'Rounds'));
  if (rounds.length === 0) {
    card.append(el('p', { class: 'empty' }, 'No round yet.'));
    return card;
  }
  const latest = rounds.slice(-10).reverse();
  card.append(el('table', {},
    el('thead', {}, el('tr', {}, el('th', {}, 'round'), el('th', {}, 'state'), el('th', {}, 'participants'),
                        el('th', {}, 'outcome'))),
    el('tbody', {}, ...latest.map(r => el('tr', {}, el('td', {}, r.round_id), el('td', {}, badge(r.state)),
                                          el('td', {}, (r.participants || []).join(', ')),
                                          el('td', { class: 'detail' }, r.outcome || ''))))));
  return card;
}

function modelSection(model, nowMs) {
  const devices = model.devices || [], versions = model.versions || [], rounds = model.rounds || [];
  const online = devices.filter(d => d.online).length;
  const latest = versions.length ? versions[versions.length - 1].version : '–';
  const section = el('section', { class: 'model', 'data-model': model.model_id }, el('h2', {}, model.model_id),
    el('div', { class: 'summary' }, `${devices.length} devices, ${online} online · latest version ${latest} · ` +
                                     `${rounds.filter(r => r.state === 'closed').length} rounds closed, ` +
                                     `${rounds.filter(r => r.state === 'failed').length} failed (of the latest ${rounds.length})`));
  section.append(el('div', { class: 'grid' }, rolloutCard(model.rollout),
                    el('article', { class: 'card' }, el('h3', {}, 'Eval loss per version'), lossChart(versions)),
                    devicesCard(devices, nowMs), roundsCard(rounds)));
  return section;
}

function showProblem(text) {
  const problem = document.getElementById('problem');
  problem.textContent = text;
  problem.hidden = !text;
}

async function refresh() {
  try {
    const response = await fetch('/api/fleet', { headers: token ? { Authorization: 'Bearer ' + token } : {},
                                                 cache: 'no-store' });
    const body = await response.json();
    if (!response.ok) {
      showProblem(`The aggregator refused (${response.status}): ${body.error || response.statusText}` +
                  (token ? '' : ' — open the page as https://HOST:PORT/#token=YOUR_TOKEN'));
      return;
    }
    const nowMs = Number(body.unix_ms);
    document.getElementById('models').replaceChildren(...(body.models || []).map(m => modelSection(m, nowMs)));
    document.getElementById('updated').textContent = 'as of ' + new Date(nowMs).toLocaleTimeString();
    showProblem('');
  } catch (error) {
    showProblem('Cannot read /api/fleet: ' + error.message);
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

refresh();
