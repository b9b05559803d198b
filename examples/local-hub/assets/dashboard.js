// The local hub's dashboard: polls /api/dashboard and draws it. Request data is hostile, so
// every value reaches the page as a text node or an attribute value, never as markup.
'use strict';

(() => {
  const POLL_MS = 2000;
  const MAX_BARS = 24;
  const SVG = 'http://www.w3.org/2000/svg';

  const ui = {
    data: null,
    revision: null,
    paused: false,
    app: null,
    timer: null,
    busy: false,
    rendered: new Map(), // section id -> what it was drawn from
    expandedLogs: new Set(),
    expandedEndpoints: new Set(),
    openDetails: new Set(), // data-key of open <details>
    logRows: new Map(), // log id -> { row, detail, log }
    logsApp: null,
    deepLink: null,
  };
  // `?app=<app>` picks an app; `#log-<id>` opens a request log (in whichever app has it),
  // `#endpoint-<METHOD> <route>` an endpoint.
  ui.app = new URLSearchParams(location.search).get('app');
  const hash = decodeURIComponent(location.hash);
  if (hash.startsWith('#log-')) {
    ui.deepLink = hash.slice(5);
    ui.expandedLogs.add(ui.deepLink);
  } else if (hash.startsWith('#endpoint-')) {
    ui.expandedEndpoints.add(hash.slice(10));
  }

  // ---- building nodes -------------------------------------------------------------------

  function append(node, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    return append(node, children);
  }

  function s(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) node.setAttribute(k, String(v));
    }
    return append(node, children);
  }

  const byId = (id) => document.getElementById(id);

  // <details> that remember being open across redraws.
  function details(key, summary, ...content) {
    return h('details', { 'data-key': key, open: ui.openDetails.has(key) }, h('summary', null, summary), ...content);
  }
  document.addEventListener('toggle', (e) => {
    const key = e.target.getAttribute && e.target.getAttribute('data-key');
    if (!key) return;
    if (e.target.open) ui.openDetails.add(key);
    else ui.openDetails.delete(key);
  }, true);

  // ---- formatting -----------------------------------------------------------------------

  const int = (n) => Number(n || 0).toLocaleString('en-US');
  const pct = (part, total) => (total ? ((part / total) * 100).toFixed(1) + ' %' : '–');
  const pad = (n, w = 2) => String(n).padStart(w, '0');

  function clock(unix, withMs) {
    const d = new Date(unix * 1000);
    const t = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    return withMs ? `${t}.${pad(d.getMilliseconds(), 3)}` : t;
  }
  const minuteLabel = (unix) => clock(unix).slice(0, 5);

  function num(x) {
    if (x >= 100 || Number.isInteger(x)) return String(Math.round(x));
    return x >= 10 ? x.toFixed(1) : String(Number(x.toPrecision(2)));
  }

  function duration(ms) {
    if (ms >= 1000) return (ms / 1000).toFixed(2) + ' s';
    if (ms >= 10) return Math.round(ms) + ' ms';
    if (ms >= 1) return ms.toFixed(1) + ' ms';
    return ms.toFixed(2) + ' ms';
  }

  // A response-time range: the first bucket says "< 10 ms", never "0".
  function range(r) {
    if (!r) return '–';
    if (r.lower_ms <= 0) return `< ${num(r.upper_ms)} ms`;
    return `${num(r.lower_ms)}–${num(r.upper_ms)} ms`;
  }
  const rangeShort = (b) => (b.lower_ms <= 0 ? '<' + num(b.upper_ms) : num(b.lower_ms));

  function bytes(n) {
    if (n === null || n === undefined) return '–';
    if (n < 1000) return n + ' B';
    if (n < 1e6) return (n / 1e3).toFixed(1) + ' kB';
    return (n / 1e6).toFixed(1) + ' MB';
  }

  const statusClass = (code) => (code >= 500 ? '5xx' : code >= 400 ? '4xx' : code >= 300 ? '3xx' : '2xx');
  const plural = (n, one, many) => `${int(n)} ${n === 1 ? one : many || one + 's'}`;
  const endpointKey = (e) => `${e.method} ${e.route}`;
  const muted = (text) => h('p', { class: 'muted none' }, text);
  const methodBadge = (m) => h('span', { class: 'method m-' + String(m).toLowerCase() }, m);

  // ---- charts ---------------------------------------------------------------------------

  function niceTicks(max) {
    const raw = Math.max(1, max) / 4;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = Math.max(1, [1, 2, 5, 10].map((f) => f * mag).find((v) => v >= raw));
    const ticks = [];
    for (let v = 0; v < max + step; v += step) ticks.push(v);
    return ticks;
  }

  // Requests per minute, stacked by outcome.
  function trafficChart(minutes, width) {
    const H = 190;
    const P = { l: 44, r: 8, t: 12, b: 24 };
    const slots = Math.max(minutes.length, 30);
    const slotW = (width - P.l - P.r) / slots;
    const barW = Math.max(2, Math.min(26, slotW * 0.72));
    const ticks = niceTicks(Math.max(0, ...minutes.map((m) => m.requests)));
    const top = ticks[ticks.length - 1] || 1;
    const y = (v) => P.t + (H - P.t - P.b) * (1 - v / top);
    const svg = s('svg', {
      id: 'traffic-chart', 'data-chart': 'traffic', width, height: H, viewBox: `0 0 ${width} ${H}`,
      role: 'img', 'aria-label': 'Requests per minute',
    });
    for (const t of ticks) {
      svg.append(s('line', { class: 'grid', x1: P.l, x2: width - P.r, y1: y(t), y2: y(t) }));
      svg.append(s('text', { class: 'axis', x: P.l - 8, y: y(t) + 4, 'text-anchor': 'end' }, int(t)));
    }
    const every = Math.max(1, Math.ceil(64 / slotW));
    minutes.forEach((m, i) => {
      const x = P.l + i * slotW + (slotW - barW) / 2;
      const ok = m.requests - m.client_errors - m.server_errors;
      const g = s('g', {
        class: 'minute', 'data-minute': m.start, 'data-requests': m.requests,
        'data-client-errors': m.client_errors, 'data-server-errors': m.server_errors,
      }, s('title', null, `${minuteLabel(m.start)}: ${plural(m.requests, 'request')}, ${int(m.client_errors)} 4xx, ${int(m.server_errors)} 5xx`));
      g.append(s('rect', { class: 'hover', x: P.l + i * slotW, y: P.t, width: slotW, height: H - P.t - P.b }));
      let base = 0;
      for (const [cls, n] of [['ok', ok], ['c4', m.client_errors], ['c5', m.server_errors]]) {
        if (n <= 0) continue;
        g.append(s('rect', { class: 'bar ' + cls, x, y: y(base + n), width: barW, height: Math.max(1, y(base) - y(base + n)) }));
        base += n;
      }
      svg.append(g);
      if (i % every === 0) {
        svg.append(s('text', { class: 'axis', x: x + barW / 2, y: H - 6, 'text-anchor': 'middle' }, minuteLabel(m.start)));
      }
    });
    svg.append(s('line', { class: 'baseline', x1: P.l, x2: width - P.r, y1: y(0), y2: y(0) }));
    if (!minutes.some((m) => m.requests)) {
      svg.append(s('text', { class: 'axis', x: width / 2, y: H / 2, 'text-anchor': 'middle' }, 'No traffic yet: requests appear here with each sync'));
    }
    return svg;
  }

  // Merges neighbouring buckets until at most MAX_BARS remain.
  function displayBuckets(buckets) {
    let list = buckets.slice();
    while (list.length > MAX_BARS) {
      const merged = [];
      for (let i = 0; i < list.length; i += 2) {
        const a = list[i];
        const b = list[i + 1];
        merged.push(b ? { lower_ms: a.lower_ms, upper_ms: b.upper_ms, count: a.count + b.count } : a);
      }
      list = merged;
    }
    return list;
  }

  // Response-time distribution: one bar per non-empty bucket, fastest first.
  function histogram(endpoint, big) {
    const buckets = displayBuckets(endpoint.response_times);
    const W = big ? Math.max(320, buckets.length * 48) : 120;
    const H = big ? 150 : 28;
    const P = big ? { t: 18, b: 22 } : { t: 2, b: 1 };
    const max = Math.max(1, ...buckets.map((b) => b.count));
    const slot = W / Math.max(buckets.length, big ? 1 : 6);
    const barW = Math.max(2, Math.min(big ? 36 : 14, slot - 3));
    const svg = s('svg', {
      class: big ? 'histogram big' : 'histogram', width: W, height: H, viewBox: `0 0 ${W} ${H}`,
      'data-chart': 'response-times', 'data-for': endpointKey(endpoint), 'data-bars': buckets.length,
      role: 'img', 'aria-label': 'Response-time distribution',
    });
    buckets.forEach((b, i) => {
      const x = i * slot + (slot - barW) / 2;
      const hgt = Math.max(1, ((H - P.t - P.b) * b.count) / max);
      const bar = s('rect', {
        class: 'bar rt', x, y: H - P.b - hgt, width: barW, height: hgt,
        'data-bucket': `${b.lower_ms}-${b.upper_ms}`, 'data-count': b.count,
      }, s('title', null, `${range(b)}: ${plural(b.count, 'request')}`));
      svg.append(bar);
      if (big) {
        svg.append(s('text', { class: 'axis', x: x + barW / 2, y: H - 6, 'text-anchor': 'middle' }, rangeShort(b)));
        svg.append(s('text', { class: 'value', x: x + barW / 2, y: H - P.b - hgt - 4, 'text-anchor': 'middle' }, int(b.count)));
      }
    });
    svg.append(s('line', { class: 'baseline', x1: 0, x2: W, y1: H - P.b + 0.5, y2: H - P.b + 0.5 }));
    if (!buckets.length && big) svg.append(s('text', { class: 'axis', x: 0, y: H / 2 + 4 }, 'No requests yet'));
    return svg;
  }

  // 2xx/3xx/4xx/5xx as a stacked bar, plus the most frequent codes.
  function statusBreakdown(endpoint, topN) {
    const classes = { '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 };
    for (const c of endpoint.status_codes) classes[statusClass(c.code)] += c.count;
    const total = Object.values(classes).reduce((a, b) => a + b, 0);
    const W = 120;
    const bar = s('svg', { class: 'status-bar', width: W, height: 8, viewBox: `0 0 ${W} 8` });
    let x = 0;
    for (const [cls, n] of Object.entries(classes)) {
      if (!n) continue;
      const w = (W * n) / total;
      bar.append(s('rect', { class: 's' + cls[0], x, y: 0, width: w, height: 8, 'data-status-class': cls, 'data-count': n },
        s('title', null, `${cls}: ${int(n)} (${pct(n, total)})`)));
      x += w;
    }
    const codes = endpoint.status_codes.slice(0, topN);
    return h('div', { class: 'status', 'data-status-breakdown': endpointKey(endpoint) },
      total ? bar : null,
      h('span', { class: 'chips' }, codes.map((c) => h('span', {
        class: 'chip s' + String(c.code)[0], 'data-status-code': c.code, 'data-count': c.count,
        title: `${c.code}: ${plural(c.count, 'request')}`,
      }, h('b', null, c.code), ' ×', int(c.count)))),
    );
  }

  // ---- sections -------------------------------------------------------------------------

  // Redraws a section only when what it shows changed, so hovering, selecting text and open
  // <details> survive polling.
  function section(id, key, draw) {
    const json = JSON.stringify(key);
    if (ui.rendered.get(id) === json) return;
    ui.rendered.set(id, json);
    const root = byId(id);
    root.replaceChildren(...[draw()].flat(Infinity).filter(Boolean));
  }

  const isOtlp = (app) => app.protocol === 'OTLP 1.x';

  function appInfo(app) {
    const otlp = isOtlp(app);
    const bits = [
      h('h1', null, app.app),
      app.protocol ? h('span', { class: 'tag protocol', 'data-protocol': app.protocol, title: 'How the app reports to the hub' }, `protocol: ${app.protocol}`) : null,
      app.client ? h('span', { class: 'tag' }, app.client) : null,
      Object.entries(app.versions).map(([k, v]) => h('span', { class: 'tag light' }, `${k} ${v}`)),
      h('span', { class: 'muted' }, [
        plural(app.instances.length, 'instance'), ' · ', plural(app.batches, otlp ? 'metrics collection' : 'sync'),
        app.duplicates ? ` (${plural(app.duplicates, 're-sent duplicate')} ignored)` : '',
        ' · ', plural(app.log_batches, otlp ? 'traces export' : 'log file'),
        app.resources ? ` · CPU ${app.resources.cpu_percent.toFixed(1)} % · memory ${bytes(app.resources.memory_bytes)}` : '',
      ]),
    ];
    return bits;
  }

  function rejected(app) {
    const box = byId('rejected');
    box.hidden = !app.rejected.length;
    return [
      h('h2', null, `Rejected payloads (${app.rejected.length})`),
      h('ul', null, app.rejected.map((r) => h('li', null, h('b', null, r.kind), ` at ${clock(r.at)}: `, r.problems.join('; ')))),
    ];
  }

  function kpis(app) {
    const t = app.totals;
    const errors = t.client_errors + t.server_errors;
    const errorCodes = t.status_codes.filter((c) => c.code >= 400).slice(0, 3);
    const card = (id, label, value, sub, cls) =>
      h('div', { class: 'kpi ' + (cls || ''), id: 'kpi-' + id }, h('div', { class: 'kpi-label' }, label),
        h('div', { class: 'kpi-value' }, value), h('div', { class: 'kpi-sub' }, sub));
    return [
      card('requests', 'Requests', int(t.requests), `on ${plural(app.endpoints.filter((e) => e.requests).length, 'endpoint')}`),
      card('errors', 'Error rate', pct(errors, t.requests),
        errorCodes.length ? ['mostly ', errorCodes.map((c, i) => [i ? ', ' : '', h('b', null, c.code), ` ×${int(c.count)}`])] : 'no 4xx or 5xx',
        t.server_errors ? 'bad' : errors ? 'warn' : ''),
      card('p50', 'Response time p50', range(t.p50), `p95 ${range(t.p95)}`),
      card('consumers', 'Consumers', int(app.consumers.length), app.consumers.length ? 'identified by the app' : 'none identified'),
      card('logs', 'Request logs', int(app.request_logs.length), `the latest ${ui.data.limits.request_logs} are kept`),
    ];
  }

  function endpoints(app) {
    if (!app.endpoints.length) return muted('No endpoints yet: they appear when the app starts.');
    const rows = [];
    for (const e of app.endpoints) {
      const key = endpointKey(e);
      const open = ui.expandedEndpoints.has(key);
      const toggle = () => {
        if (ui.expandedEndpoints.has(key)) ui.expandedEndpoints.delete(key);
        else ui.expandedEndpoints.add(key);
        ui.rendered.delete('endpoints');
        render();
        const again = [...document.querySelectorAll('tr.endpoint')].find((r) => r.getAttribute('data-endpoint') === key);
        if (again) again.focus({ preventScroll: true });
      };
      const errors = e.client_errors + e.server_errors;
      rows.push(h('tr', {
        class: 'endpoint clickable' + (e.requests ? '' : ' idle'), tabindex: 0, 'aria-expanded': String(open),
        'data-endpoint': key, 'data-requests': e.requests, 'data-declared': String(e.declared),
        onclick: toggle, onkeydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); toggle(); } },
      },
      h('td', null, h('span', { class: 'chevron' }), methodBadge(e.method), ' ', h('span', { class: 'route' }, e.route)),
      h('td', { class: 'num' }, int(e.requests)),
      e.requests ? [
        h('td', { class: 'num' + (e.server_errors ? ' bad' : errors ? ' warn' : '') }, pct(errors, e.requests)),
        h('td', null, statusBreakdown(e, 3)),
        h('td', { class: 'num' }, range(e.p50)),
        h('td', { class: 'num' }, range(e.p95)),
        h('td', null, histogram(e, false)),
      ] : h('td', { colspan: 5, class: 'muted' }, 'No requests yet'),
      ));
      if (open) {
        rows.push(h('tr', { class: 'detail', 'data-endpoint-detail': key }, h('td', { colspan: 7 },
          h('div', { class: 'endpoint-detail' },
            h('div', null, h('h4', null, 'Response-time distribution'), histogram(e, true),
              h('p', { class: 'muted small' }, `p50 ${range(e.p50)} · p95 ${range(e.p95)} · one bar per bucket the SDK sent`)),
            h('div', null, h('h4', null, 'Status codes'),
              e.status_codes.length
                ? h('table', { class: 'mini' }, e.status_codes.map((c) => h('tr', { 'data-status-code': c.code },
                  h('td', null, h('span', { class: 'chip s' + String(c.code)[0] }, c.code)),
                  h('td', { class: 'num' }, int(c.count)), h('td', { class: 'num muted' }, pct(c.count, e.requests)))))
                : muted('None yet'),
              h('p', { class: 'muted small' }, `Request bodies ${bytes(e.request_bytes)} · response bodies ${bytes(e.response_bytes)} in total`)),
          ))));
      }
    }
    return h('table', { class: 'table', id: 'endpoints-table' },
      h('thead', null, h('tr', null, ['Endpoint', 'Requests', 'Errors', 'Status codes', 'p50', 'p95', 'Response times']
        .map((t, i) => h('th', { class: i === 1 || i === 2 || i === 4 || i === 5 ? 'num' : null }, t)))),
      h('tbody', null, rows));
  }

  function consumers(app) {
    if (!app.consumers.length) return muted('No consumers identified yet.');
    return h('table', { class: 'table' },
      h('thead', null, h('tr', null, h('th', null, 'Identifier'), h('th', null, 'Name'), h('th', null, 'Group'),
        h('th', { class: 'num' }, 'Requests'), h('th', { class: 'num' }, 'Errors'))),
      h('tbody', null, app.consumers.map((c) => h('tr', { 'data-consumer': c.identifier },
        h('td', { class: 'mono' }, c.identifier), h('td', null, c.name || ''), h('td', null, c.group || ''),
        h('td', { class: 'num' }, int(c.requests)), h('td', { class: 'num' }, pct(c.client_errors + c.server_errors, c.requests))))));
  }

  function validationErrors(app) {
    if (!app.validation_errors.length) return muted('No validation errors.');
    return h('table', { class: 'table' },
      h('thead', null, h('tr', null, h('th', null, 'Endpoint'), h('th', null, 'Location'), h('th', null, 'Message'),
        h('th', null, 'Type'), h('th', { class: 'num' }, 'Count'))),
      h('tbody', null, app.validation_errors.map((v) => h('tr', { 'data-validation-error': v.type },
        h('td', null, methodBadge(v.method), ' ', h('span', { class: 'route' }, v.route)),
        h('td', { class: 'mono' }, v.location.join('.')), h('td', null, v.message),
        h('td', { class: 'mono muted' }, v.type), h('td', { class: 'num' }, int(v.count))))));
  }

  function serverErrors(app) {
    if (!app.server_errors.length) return muted('No server errors.');
    return app.server_errors.map((e) => h('div', { class: 'server-error', 'data-server-error': e.type },
      h('div', { class: 'se-head' }, h('span', { class: 'se-type' }, e.type), h('span', { class: 'count' }, `×${int(e.count)}`)),
      h('div', { class: 'se-msg' }, e.message),
      h('div', { class: 'muted small' }, methodBadge(e.method), ' ', h('span', { class: 'route' }, e.route),
        e.consumer ? ` · consumer ${e.consumer}` : ''),
      e.traceback ? details(`se-${e.type}|${e.method}|${e.route}|${e.consumer}|${e.message.slice(0, 100)}`, 'Traceback', h('pre', { class: 'code' }, e.traceback)) : null,
    ));
  }

  function received(app) {
    if (!app.received.length) return muted('Nothing yet.');
    return app.received.map((r) => details(`rcv-${r.at}-${r.kind}`,
      [h('b', null, r.kind), ` · ${r.protocol} · ${clock(r.at)} · ${bytes(r.text.length)}`],
      h('pre', { class: 'code' }, r.text)));
  }

  // ---- request logs: rows are kept and reused by id, so new ones slide in on top without
  // disturbing what is open or where the reader is.

  function headersTable(headers) {
    if (!headers.length) return muted('No headers logged.');
    return h('table', { class: 'mini headers' }, headers.map(([k, v]) => h('tr', null, h('th', null, k), h('td', null, v))));
  }

  function bodyBlock(which, msg) {
    if (!msg.body) return muted('No body logged.');
    const b = msg.body;
    return [
      h('pre', { class: 'code body' + (b.binary ? ' muted' : ''), 'data-body': which }, b.text),
      b.truncated ? muted(`Shown in part: ${bytes(b.text.length)} of ${bytes(b.bytes)}.`) : null,
    ];
  }

  function spansBlock(spans) {
    const t0 = Math.min(...spans.map((x) => x.start));
    const t1 = Math.max(...spans.map((x) => x.end));
    const span = Math.max(t1 - t0, 1e-9);
    const depth = new Map();
    const byId2 = new Map(spans.map((x) => [x.id, x]));
    const depthOf = (x, seen = 0) => {
      if (depth.has(x.id)) return depth.get(x.id);
      const parent = x.parent_id && byId2.get(x.parent_id);
      const d = parent && seen < 32 ? depthOf(parent, seen + 1) + 1 : 0;
      depth.set(x.id, d);
      return d;
    };
    const sorted = spans.slice().sort((a, b) => a.start - b.start);
    return h('div', { class: 'waterfall' }, sorted.map((x) => {
      const bar = h('span', { class: 'wf-bar' + (x.status === 'ERROR' ? ' bad' : '') });
      bar.style.left = (((x.start - t0) / span) * 100).toFixed(2) + '%';
      bar.style.width = Math.max(0.5, ((x.end - x.start) / span) * 100).toFixed(2) + '%';
      const name = h('span', { class: 'wf-name' }, x.name);
      name.style.paddingLeft = depthOf(x) * 14 + 'px';
      const attrs = x.attributes.map(([k, v]) => `${k}=${v}`).join('  ');
      return h('div', { class: 'wf-row', 'data-span': x.name, title: attrs || null },
        name, h('span', { class: 'wf-kind muted' }, x.kind || ''),
        h('span', { class: 'wf-track' }, bar), h('span', { class: 'wf-dur num' }, duration((x.end - x.start) * 1000)));
    }));
  }

  function logDetail(log) {
    const kv = (k, v) => (v ? [h('dt', null, k), h('dd', null, v)] : null);
    return h('tr', { class: 'detail', 'data-log-detail': log.id }, h('td', { colspan: 7 }, h('div', { class: 'log-detail' },
      h('dl', { class: 'kv' }, kv('URL', log.url), kv('Route', log.route), kv('Consumer', log.consumer),
        kv('Trace', log.trace_id), kv('Request id', log.id)),
      h('div', { class: 'pair' },
        h('div', null, h('h4', null, 'Request', h('span', { class: 'muted' }, log.request.size != null ? ` · ${bytes(log.request.size)}` : '')),
          headersTable(log.request.headers), bodyBlock('request', log.request)),
        h('div', null, h('h4', null, 'Response', h('span', { class: 'muted' }, log.response.size != null ? ` · ${bytes(log.response.size)}` : '')),
          headersTable(log.response.headers), bodyBlock('response', log.response))),
      log.exception ? h('div', { class: 'exception', 'data-exception': log.exception.type },
        h('h4', null, 'Exception'), h('div', null, h('b', null, log.exception.type), ': ', log.exception.message),
        log.exception.traceback ? details('exc-' + log.id, 'Traceback', h('pre', { class: 'code' }, log.exception.traceback)) : null) : null,
      log.logs.length ? [h('h4', null, `Logs (${log.logs.length})`), h('table', { class: 'mini logs' }, log.logs.map((l) => h('tr', { 'data-log-record': l.level },
        h('td', { class: 'mono muted' }, l.time ? clock(l.time, true) : ''),
        h('td', null, h('span', { class: 'level l-' + l.level.toLowerCase() }, l.level)),
        h('td', { class: 'mono muted' }, l.logger || ''), h('td', { class: 'msg' }, l.message),
        h('td', { class: 'mono muted' }, l.location || ''))))] : null,
      log.spans.length ? [h('h4', null, `Spans (${log.spans.length})`), spansBlock(log.spans)] : null,
    )));
  }

  function logRow(log) {
    const toggle = () => {
      const entry = ui.logRows.get(log.id);
      if (ui.expandedLogs.has(log.id)) {
        ui.expandedLogs.delete(log.id);
        if (entry.detail) entry.detail.remove();
      } else {
        ui.expandedLogs.add(log.id);
        entry.detail = entry.detail || logDetail(log);
        entry.row.after(entry.detail);
      }
      entry.row.setAttribute('aria-expanded', String(ui.expandedLogs.has(log.id)));
    };
    const cls = statusClass(log.status);
    return h('tr', {
      class: 'log clickable', tabindex: 0, id: 'log-' + log.id, 'data-log-id': log.id,
      'data-status': log.status, 'aria-expanded': String(ui.expandedLogs.has(log.id)), onclick: toggle,
      onkeydown: (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); toggle(); } },
    },
    h('td', { class: 'mono muted' }, h('span', { class: 'chevron' }), clock(log.time, true)),
    h('td', null, methodBadge(log.method)),
    h('td', { class: 'path' }, h('span', { class: 'mono' }, log.path), log.route && log.route !== log.path ? h('span', { class: 'route-hint' }, log.route) : null),
    h('td', null, h('span', { class: 'chip s' + cls[0] }, log.status)),
    h('td', { class: 'num' }, duration(log.duration_ms)),
    h('td', { class: 'mono' }, log.consumer || ''),
    h('td', null, log.exception ? h('span', { class: 'chip s5', title: log.exception.type }, 'exception') : null),
    );
  }

  // What the SDK did with the app's requests (the Apitally-Request-Logs header of its posts).
  function logTotals(app) {
    const t = app.request_log_totals;
    byId('log-totals').hidden = !t;
    if (!t) return [];
    return [
      'request logs: ', h('b', null, int(t.logged)), ' logged, ', h('b', null, int(t.sampled_out)), ' sampled out, ',
      h('b', null, int(t.excluded)), ' excluded, ', h('b', { class: t.dropped ? 'bad' : null }, int(t.dropped)), ' dropped',
      h('span', { class: 'muted' }, ' · as the SDK counts them, since each of its processes started'),
    ];
  }

  function requestLogs(app) {
    const root = byId('request-logs');
    if (ui.logsApp !== app.app) {
      ui.logsApp = app.app;
      ui.logRows.clear();
      root.replaceChildren();
    }
    byId('logs-note').textContent = app.request_logs.length
      ? `Newest first · ${plural(app.request_logs.length, 'request')} (the latest ${ui.data.limits.request_logs} are kept) · click a row for headers, bodies, logs and spans`
      : '';
    if (!app.request_logs.length) {
      const hint = isOtlp(app)
        ? 'No request logs yet: each request the SDK keeps arrives as a span with the next traces export.'
        : 'No request logs yet. Turn on request logging in the SDK to see each request here.';
      const shown = root.querySelector('.none');
      if (!shown || shown.textContent !== hint) root.replaceChildren(muted(hint));
      return;
    }
    let tbody = root.querySelector('tbody');
    if (!tbody) {
      tbody = h('tbody');
      root.replaceChildren(h('table', { class: 'table logs-table', id: 'logs-table' },
        h('thead', null, h('tr', null, ['Time', 'Method', 'Path', 'Status', 'Duration', 'Consumer', '']
          .map((t) => h('th', { class: t === 'Duration' ? 'num' : null }, t)))), tbody));
    }
    const keep = new Set();
    let cursor = tbody.firstChild;
    const place = (node) => {
      if (node === cursor) cursor = cursor.nextSibling;
      else tbody.insertBefore(node, cursor);
    };
    for (const log of app.request_logs) {
      keep.add(log.id);
      let entry = ui.logRows.get(log.id);
      if (!entry) {
        entry = { row: logRow(log), detail: null };
        ui.logRows.set(log.id, entry);
      }
      place(entry.row);
      if (ui.expandedLogs.has(log.id)) {
        entry.detail = entry.detail || logDetail(log);
        place(entry.detail);
      }
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
    for (const id of ui.logRows.keys()) if (!keep.has(id)) ui.logRows.delete(id);
    if (ui.deepLink && ui.logRows.has(ui.deepLink)) {
      // Scrolls only when the linked log is not already in view.
      const { row, detail } = ui.logRows.get(ui.deepLink);
      const top = row.getBoundingClientRect().top;
      const bottom = (detail || row).getBoundingClientRect().bottom;
      const box = root.getBoundingClientRect();
      if (top < Math.max(60, box.top) || bottom > Math.min(window.innerHeight, box.bottom)) {
        row.scrollIntoView({ block: 'start' });
      }
      ui.deepLink = null;
    }
  }

  // ---- the page -------------------------------------------------------------------------

  function render() {
    const data = ui.data;
    if (!data) return;
    const apps = data.apps;
    byId('empty').hidden = apps.length > 0;
    byId('dashboard').hidden = apps.length === 0;
    if (!apps.length) {
      byId('empty-hint').textContent = `# hub v2 (SDK 0.x)\nAPITALLY_HUB_BASE_URL=${location.origin} \\\nAPITALLY_CLIENT_ID=00000000-0000-4000-8000-000000000000 your-app\n\n`
        + `# OTLP (SDK 1.x)\nAPITALLY_OTLP_ENDPOINT=${location.origin} \\\nAPITALLY_WRITE_TOKEN=apt_000000000000000000000000 your-app`;
      return;
    }
    if (ui.deepLink) {
      const owner = apps.find((a) => a.request_logs.some((l) => l.id === ui.deepLink));
      if (owner) ui.app = owner.app;
    }
    if (!apps.some((a) => a.app === ui.app)) ui.app = apps[0].app;
    const picker = byId('app-select');
    byId('app-picker').hidden = apps.length < 2;
    section('app-select', apps.map((a) => a.app), () => apps.map((a) => h('option', { value: a.app }, a.app)));
    picker.value = ui.app;
    const app = apps.find((a) => a.app === ui.app);

    section('app-info', [app.app, app.protocol, app.client, app.versions, app.instances, app.batches, app.duplicates, app.log_batches, app.resources], () => appInfo(app));
    section('rejected', [app.app, app.rejected], () => rejected(app));
    section('kpis', [app.app, app.totals, app.consumers.length, app.request_logs.length, app.endpoints.map((e) => e.requests)], () => kpis(app));
    const width = Math.max(320, byId('traffic').clientWidth || 900);
    section('traffic', [app.app, app.minutes, width], () => trafficChart(app.minutes, width));
    section('endpoints', [app.app, app.endpoints], () => endpoints(app));
    section('log-totals', [app.app, app.request_log_totals], () => logTotals(app));
    requestLogs(app);
    section('consumers', [app.app, app.consumers], () => consumers(app));
    section('validation-errors', [app.app, app.validation_errors], () => validationErrors(app));
    section('server-errors', [app.app, app.server_errors], () => serverErrors(app));
    section('received', [app.app, app.received.map((r) => [r.at, r.kind])], () => received(app));
    document.body.setAttribute('data-revision', data.revision);
  }

  function setLive(state, text) {
    byId('live').setAttribute('data-state', state);
    byId('live-text').textContent = text;
  }

  function schedule() {
    clearTimeout(ui.timer);
    if (!ui.paused) ui.timer = setTimeout(poll, POLL_MS);
  }

  async function poll() {
    if (ui.paused || ui.busy) return;
    ui.busy = true;
    try {
      const since = ui.revision ? '?since=' + encodeURIComponent(ui.revision) : '';
      const res = await fetch('/api/dashboard' + since, { cache: 'no-store', signal: AbortSignal.timeout(10000) });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const data = await res.json();
      if (!data.unchanged) {
        ui.data = data;
        ui.revision = data.revision;
        render();
      }
      if (!ui.paused) setLive('live', `Live · updated ${clock(Date.now() / 1000)}`);
    } catch (err) {
      setLive('error', 'Cannot reach the hub; retrying');
    } finally {
      ui.busy = false;
      schedule();
    }
  }

  byId('pause').addEventListener('click', () => {
    ui.paused = !ui.paused;
    const button = byId('pause');
    button.textContent = ui.paused ? 'Resume' : 'Pause';
    button.setAttribute('aria-pressed', String(ui.paused));
    if (ui.paused) {
      clearTimeout(ui.timer);
      setLive('paused', 'Paused');
    } else {
      poll();
    }
  });
  byId('app-select').addEventListener('change', (e) => {
    ui.app = e.target.value;
    history.replaceState(null, '', '?app=' + encodeURIComponent(ui.app) + location.hash);
    render();
  });
  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(render, 150);
  });

  poll();
})();
