// Renders ReportData as one self-contained HTML file that works offline: uPlot's code and CSS
// are inlined from node_modules, the data rides along as JSON. Every string that came from logs,
// options or the target is HTML-escaped in markup; the JSON escapes `<` so it cannot end its
// script element; a CSP with script hashes refuses any script that is not ours.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { RehearseError } from '../core/errors.js';
import { readableZones } from '../core/zone.js';
import { arrows, formatChange, formatValue, type Comparison } from './compare.js';
import { formatCount, formatMs, formatPercent } from './format.js';
import { formatRunShape, runShape } from './run-shape.js';
import { pageScript } from './page-script.js';
import type { ReportData, ReportRun, RequestKind } from './report-data.js';
import { capacityScript, capacitySectionHtml } from './capacity-report.js';

const require = createRequire(import.meta.url);

let cachedAssets: { js: string; css: string } | null = null;
function uplotAssets(): { js: string; css: string } {
  if (cachedAssets) return cachedAssets;
  try {
    const js = fs.readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8');
    const css = fs.readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8');
    cachedAssets = { js, css };
    return cachedAssets;
  } catch (err) {
    throw new RehearseError('REHEARSE_INTERNAL', `cannot read the uPlot chart library from node_modules (${(err as Error).message}); reinstall rehearse.`, {
      cause: err,
    });
  }
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON safe inside <script type="application/json">: no `<` (so no `</script>` or `<!--`), no line separators. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** A script must never contain its own end tag; our inlined code is checked, not trusted. */
function inlineScript(code: string): string {
  if (/<\/script/i.test(code)) throw new RehearseError('REHEARSE_INTERNAL', 'inlined script contains </script>');
  return code;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('base64');
}

const e = escapeHtml;

export function renderReportHtml(data: ReportData): string {
  const { js, css } = uplotAssets();
  const uplotCode = inlineScript(js);
  // The capacity curves (report/capacity-report.ts) draw after the report's own charts.
  const ourCode = inlineScript(pageScript + capacityScript);
  const csp = [
    "default-src 'none'",
    `script-src 'sha256-${sha256(uplotCode)}' 'sha256-${sha256(ourCode)}'`,
    "style-src 'unsafe-inline'",
    'img-src data:',
  ].join('; ');
  const a = data.runs[0]!;
  const b = data.runs[1] ?? null;
  const title = b ? `rehearse: run ${a.title} vs ${b.title}` : `rehearse: run ${a.title}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${e(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(title)}</title>
<style>${css}</style>
<style>${pageStyle}</style>
</head>
<body>
<header>
  <h1>${e(title)}</h1>
  <p class="sub">Generated ${e(data.generatedAt)} by rehearse ${e(data.rehearseVersion)}</p>
</header>
<main>
${keyNumbers(data.runs)}
${warnings(data)}
${capacitySectionHtml(data.capacity)}
${verdicts(data.runs)}
${data.comparison ? comparisonSection(data) : ''}
${requestsSection(data.runs)}
<section>
  <h2>Delivery latency</h2>
  <div class="chart" id="chart-latency"></div>
  <div class="chart" id="chart-distribution"></div>
</section>
<section>
  <h2>Load</h2>
  <div class="grid2">
    <div class="chart" id="chart-throughput"></div>
    <div class="chart" id="chart-users"></div>
  </div>
</section>
${fidelitySection(data)}
${healthSection(a)}
${detailsSection(data.runs)}
</main>
<script type="application/json" id="report-data">${jsonForScript(data)}</script>
<script>${uplotCode}</script>
<script>${ourCode}</script>
</body>
</html>
`;
}

function keyNumbers(runs: ReportRun[]): string {
  const cards = runs.map((r, i) => {
    const f = r.figures;
    const verdictClass = f.verdict === 'pass' ? 'pass' : 'fail';
    const tag = runs.length > 1 ? `<div class="which">${i === 0 ? 'Run' : 'vs'} ${e(r.title)}</div>` : '';
    return `<div class="keys" data-run="${r.id}">
  ${tag}
  <div class="key verdict ${verdictClass}"><span class="label">verdict</span><span class="value" data-key="verdict">${e(f.verdict.toUpperCase())}</span></div>
  <div class="key"><span class="label" title="over every expected pair; a lost pair ranks last (docs/slo.md)">p95 latency, all expected pairs</span><span class="value" data-key="p95">${f.latency.all ? e(formatMs(f.latency.all.p95)) : '-'}</span></div>
  <div class="key"><span class="label">delivered within 2 s</span><span class="value" data-key="withinTarget">${f.withinTarget === null ? '-' : e(formatPercent(f.withinTarget))}</span></div>
  <div class="key"><span class="label">lost</span><span class="value" data-key="lost">${e(formatCount(f.lost))}</span></div>
  <div class="key"><span class="label">duplicates</span><span class="value" data-key="duplicates">${e(formatCount(f.duplicates))}</span></div>
  <div class="key"><span class="label">delivered of ${e(formatCount(f.expected))} expected</span><span class="value" data-key="delivered">${e(formatCount(f.delivered))}</span></div>
</div>`;
  });
  return `<section class="top">${cards.join('\n')}</section>`;
}

function warnings(data: ReportData): string {
  const items: string[] = [];
  if (data.comparison && !data.comparison.comparable) items.push(...data.comparison.warnings);
  for (const r of data.runs) {
    if (!data.comparison && r.figures.generatorBound) {
      items.push(`run ${r.id}: the load generator was itself the bottleneck, so its latencies measure rehearse, not the target`);
    }
    if (!data.comparison && r.run.status !== 'finished') items.push(`run ${r.id} did not finish (status ${r.run.status})`);
  }
  if (items.length === 0) return '';
  const head = data.comparison && !data.comparison.comparable ? 'These runs are not comparable' : 'Read with care';
  return `<section class="warning"><h2>${e(head)}</h2><ul>${items.map((w) => `<li>${e(w)}</li>`).join('')}</ul></section>`;
}

function verdicts(runs: ReportRun[]): string {
  const blocks = runs.map((r) => {
    const v = r.verdict;
    if (!v) return `<div><h3>${e(r.title)}</h3><p>No verdict stored (run ${e(r.run.status)}).</p></div>`;
    const clauses = v.clauses
      .map((c) => `<tr class="${c.pass ? 'pass' : 'fail'}"><td>${e(c.expression)}</td><td class="num">${e(formatObserved(c.observed))}</td><td>${c.pass ? 'held' : 'FAILED'}</td></tr>`)
      .join('');
    const reasons = v.reasons.length ? `<ul>${v.reasons.map((x) => `<li>${e(x)}</li>`).join('')}</ul>` : '';
    return `<div><h3>${e(r.title)}: SLO ${e(v.slo)}</h3><table><thead><tr><th>clause</th><th>observed</th><th></th></tr></thead><tbody>${clauses}</tbody></table>${reasons}</div>`;
  });
  return `<section><h2>Verdict</h2><div class="grid2">${blocks.join('')}</div></section>`;
}

function formatObserved(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(4).replace(/0+$/, '');
}

function comparisonSection(data: ReportData): string {
  const c = data.comparison!;
  const title = (id: number) => data.runs.find((r) => r.id === id)?.title ?? `#${id}`;
  return `<section><h2>Compared with ${e(title(c.a.id))}</h2><table class="compare"><thead><tr><th>metric</th><th>${e(title(c.a.id))} (baseline)</th><th>${e(
    title(c.b.id),
  )}</th><th>change</th><th></th></tr></thead><tbody>${formatComparisonRows(c)}</tbody></table></section>`;
}

function formatComparisonRows(c: Comparison): string {
  return c.metrics
    .map((m) => {
      const cls = m.direction === 'better' ? 'better' : m.direction === 'worse' ? 'worse' : '';
      return `<tr><td>${e(m.label)}</td><td class="num">${e(formatValue(m.unit, m.a))}</td><td class="num">${e(formatValue(m.unit, m.b))}</td><td class="num">${e(formatChange(m))}</td><td class="${cls}">${e(arrows[m.direction])}</td></tr>`;
    })
    .join('');
}

const requestLabels: Record<RequestKind, string> = { publish: 'publish', poll: 'poll (includes the hold)', open: 'subscription open' };

/**
 * Like Locust's statistics and failures tabs: each kind of request's times (k6's
 * http_req_duration, split by kind), then the errors by kind with their share and an example.
 */
function requestsSection(runs: ReportRun[]): string {
  const blocks = runs.map((r) => {
    const head = runs.length > 1 ? `<h3>${e(r.title)}</h3>` : '';
    return `<div data-run="${r.id}">${head}${requestTimesTable(r)}${failuresTable(r)}</div>`;
  });
  return `<section id="requests"><h2>Requests</h2>
<p class="muted">Time from sending a request to its answer. A poll is a long-poll: its time includes the hold, the bus keeping it open until a message arrives or the poll times out, so poll times near the poll timeout are normal and say nothing about slowness; delivery latency above measures that.</p>
<div class="grid2">${blocks.join('')}</div></section>`;
}

function requestTimesTable(r: ReportRun): string {
  if (r.requestTimes.length === 0) return '<p class="muted">This run stored no request times by kind (runs before request histograms).</p>';
  const rows = r.requestTimes
    .map(
      (t) =>
        `<tr data-kind="${t.kind}"><td>${e(requestLabels[t.kind])}</td><td class="num">${e(formatCount(t.count))}</td><td class="num">${e(formatMs(t.p50))}</td><td class="num">${e(
          formatMs(t.p95),
        )}</td><td class="num">${e(formatMs(t.p99))}</td><td class="num">${e(formatMs(t.max))}</td></tr>`,
    )
    .join('');
  return `<h4>Request times</h4><table class="request-times"><thead><tr><th>request</th><th>count</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function failuresTable(r: ReportRun): string {
  if (r.failures === null) {
    return `<h4>Failures</h4><p class="muted">Errors by kind were not stored for this run (${e(formatCount(r.figures.errors))} errors in all).</p>`;
  }
  if (r.failures.length === 0) return '<h4>Failures</h4><p class="muted failures-none">No request failed.</p>';
  const rows = r.failures
    .map(
      (f) =>
        `<tr class="fail"><td>${e(f.kind)}</td><td class="num">${e(formatCount(f.count))}</td><td class="num">${f.share === null ? '-' : `${e(formatPercent(f.share))} of ${e(f.of)}`}</td><td class="example">${e(f.example)}</td></tr>`,
    )
    .join('');
  return `<h4>Failures</h4><table class="failures"><thead><tr><th>kind</th><th>count</th><th>share</th><th>example</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function fidelitySection(data: ReportData): string {
  const a = data.runs[0]!;
  const f = a.fidelity;
  const status =
    f.status === 'available'
      ? '<p>What the rehearsal sent, next to the model it replayed. KS is the two-sample Kolmogorov–Smirnov distance between the two samples: 0 is identical, below 0.1 is close.</p>'
      : `<p class="muted">Model comparison unavailable: ${e(f.reason ?? '')}. The run’s own figures are shown.</p>`;
  const shaped = f.shape && f.shape.length > 0 ? `<p>This run was shaped (${e(f.shape.join('; '))}, docs/shape.md): the model side is the shaped model, the traffic it meant to send; the recorded model is shown under each row the shape changed.</p>` : '';
  if (f.rows.length === 0) return `<section><h2>Fidelity</h2>${status}<p class="muted">This run stored no samples of what it sent.</p></section>`;
  const qHead = data.runs[0]!.fidelity.rows[0]!.quantiles.map((q) => `<th>p${Math.round(q.q * 100)} model / run</th>`).join('');
  const rows = f.rows
    .map((row) => {
      const fmt = (v: number | null) => (v === null ? '-' : row.unit === 'ms' ? formatMs(v) : formatCount(Math.round(v * 100) / 100));
      const qs = row.quantiles.map((q) => `<td class="num">${e(fmt(q.model))} / ${e(fmt(q.run))}</td>`).join('');
      const ks = row.ks === null ? '-' : row.ks.toFixed(3);
      const ksClass = row.ks === null ? '' : row.ks < 0.1 ? 'pass' : row.ks < 0.2 ? 'warn' : 'fail';
      const recorded = row.recorded ? `<div class="muted small">recorded model: ${row.recorded.map((v, i) => `p${Math.round(row.quantiles[i]!.q * 100)} ${e(fmt(v))}`).join(', ')}</div>` : '';
      const note = (row.note ? `<div class="muted small">${e(row.note)}</div>` : '') + recorded;
      return `<tr><td>${e(row.label)}${note}</td><td class="num">${e(formatCount(row.runCount))}</td>${qs}<td class="num ${ksClass}" data-ks="${e(row.name)}">${e(ks)}</td></tr>`;
    })
    .join('');
  const charts = f.rows.map((_, i) => `<div class="chart small" id="chart-fidelity-${i}"></div>`).join('');
  return `<section><h2>Fidelity: did the rehearsal look like the real day?</h2>${status}${shaped}
<table class="fidelity"><thead><tr><th>what was sent</th><th>samples</th>${qHead}<th>KS</th></tr></thead><tbody>${rows}</tbody></table>
<div class="grid3">${charts}</div></section>`;
}

function healthSection(a: ReportRun): string {
  const scrapes = a.scrapes.map((_, i) => `<div class="chart small" id="chart-scrape-${i}"></div>`).join('');
  const note = a.scrapes.length
    ? '<p>The target’s own /metrics, sampled during the run (counters as rates), beside what the clients saw.</p>'
    : '<p class="muted">The target was not scraped during this run (replay with --scrape &lt;url&gt; to see its own metrics here).</p>';
  return `<section><h2>Target health</h2>${note}<div class="grid3"><div class="chart small" id="chart-client-view"></div>${scrapes}</div></section>`;
}

function detailsSection(runs: ReportRun[]): string {
  const blocks = runs.map((r) => {
    const run = r.run;
    const rows: [string, string][] = [
      ['release', run.release ?? '-'],
      ['target', run.target],
      ['started', run.startedAt],
      ['ended', run.endedAt ?? '-'],
      ['status', run.status],
      ['scale', `${run.scale}x`],
      ['mode', run.mode],
      // Runs stored before window labels were readable say Etc/GMT-2 for UTC+2.
      ['window', readableZones(run.window)],
      ['speed', `${run.speed}x`],
      ['shape', formatRunShape(runShape(run))],
      // A split run's figures are the exact merge of its shards (docs/scale-out.md).
      ['shards', (run.shardCount ?? 1) > 1 ? `${run.shardIndex === null || run.shardIndex === undefined ? `${run.shardCount} merged` : `${run.shardIndex}/${run.shardCount}`}${run.groupId ? ` (group ${run.groupId})` : ''}` : 'one process'],
      ['seed', String(run.seed)],
      ['model', run.modelFingerprint],
      ['rehearse', run.rehearseVersion],
    ];
    const table = rows.map(([k, v]) => `<tr><th>${e(k)}</th><td>${e(v)}</td></tr>`).join('');
    return `<div><h3>Run ${e(r.title)}</h3><table class="details">${table}</table><h4>Options</h4><pre class="options">${e(
      JSON.stringify(run.options, null, 2),
    )}</pre></div>`;
  });
  return `<section><h2>Runs</h2><div class="grid2">${blocks.join('')}</div></section>`;
}

const pageStyle = `
:root { --fg: #111827; --muted: #6b7280; --line: #e5e7eb; --pass: #15803d; --fail: #b91c1c; --warn: #b45309; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #f9fafb; }
header { padding: 16px 24px 8px; background: #fff; border-bottom: 1px solid var(--line); }
h1 { font-size: 20px; margin: 0; overflow-wrap: anywhere; }
h2 { font-size: 16px; margin: 0 0 8px; }
h3 { font-size: 14px; margin: 8px 0; overflow-wrap: anywhere; }
.sub, .muted { color: var(--muted); }
.small { font-size: 12px; }
main { padding: 16px 24px 40px; max-width: 1400px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin: 0 0 16px; }
section.top { display: flex; flex-direction: column; gap: 10px; }
.keys { display: flex; flex-wrap: wrap; gap: 10px; align-items: stretch; }
.which { width: 100%; font-weight: 600; color: var(--muted); }
.key { flex: 1 1 140px; border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.key .label { display: block; color: var(--muted); font-size: 12px; }
.key .value { display: block; font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.verdict.pass { border-color: var(--pass); } .verdict.pass .value { color: var(--pass); }
.verdict.fail { border-color: var(--fail); } .verdict.fail .value { color: var(--fail); }
.warning { border-color: var(--warn); background: #fffbeb; } .warning h2 { color: var(--warn); }
table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
th { font-weight: 600; color: #374151; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.fail td, td.fail, .worse { color: var(--fail); } td.pass, .better { color: var(--pass); } td.warn { color: var(--warn); }
table.details th { width: 110px; }
table.failures td.example { font-family: ui-monospace, monospace; font-size: 12px; color: var(--fg); }
h4 { font-size: 13px; margin: 10px 0 4px; }
pre.options { background: #f3f4f6; padding: 8px; border-radius: 6px; overflow: auto; max-height: 240px; white-space: pre-wrap; overflow-wrap: anywhere; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }
.grid3 { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 12px; }
.chart { min-height: 120px; margin: 8px 0; overflow: hidden; }
.u-title { font-size: 13px !important; font-weight: 600 !important; }
.u-legend { font-size: 12px; }
`;
