// The report's capacity section: for a run stored by `rehearse capacity`, the answer, a table of
// its stages and three curves against the multiplier (delivery latency with the SLO lines and the
// knee, lost/duplicates/errors, throughput). Data from db/capacity-store.ts; the curves are drawn
// by capacityScript in the page, with the same uPlot the rest of the report uses.

import { readCapacity, type StoredCapacity } from '../db/capacity-store.js';
import type { Db } from '../db/open.js';
import { escapeHtml as e } from './html.js';

export interface CapacityStagePoint {
  multiplier: number;
  refine: boolean;
  pass: boolean;
  generatorBound: boolean;
  expected: number;
  p50: number;
  p95: number;
  p99: number;
  lost: number;
  duplicates: number;
  errors: number;
  deliveriesPerS: number;
  requestsPerS: number;
  /** The failing clause, or '' when the stage passed. */
  failure: string;
}

export interface CapacityReport {
  answer: string;
  capacity: number | null;
  generatorBound: boolean;
  knee: number | null;
  firstFailure: { multiplier: number; clause: string; stream: string } | null;
  search: StoredCapacity['search'];
  slo: string;
  targetMs: number;
  lossLimitMs: number;
  /** Ascending by multiplier (refine stages in their place). */
  stages: CapacityStagePoint[];
}

const num = (v: unknown, fallback = 0): number => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);

/** The capacity section's data for a run; null for a plain replay. */
export function loadCapacityReport(db: Db, runId: number): CapacityReport | null {
  const c = readCapacity(db, runId);
  if (!c) return null;
  const a = c.answer;
  const stages = c.stages
    .map((s): CapacityStagePoint => {
      const r = s.result as {
        latencyMs?: { p50?: number; p95?: number; p99?: number };
        throughput?: { deliveriesPerS?: number; requestsPerS?: number };
        failure?: { clause?: string } | null;
      } & Record<string, unknown>;
      return {
        multiplier: s.multiplier,
        refine: s.refine,
        pass: s.pass,
        generatorBound: s.generatorBound,
        expected: num(r.expected),
        p50: num(r.latencyMs?.p50),
        p95: num(r.latencyMs?.p95),
        p99: num(r.latencyMs?.p99),
        lost: num(r.lost),
        duplicates: num(r.duplicates),
        errors: num(r.errors),
        deliveriesPerS: num(r.throughput?.deliveriesPerS),
        requestsPerS: num(r.throughput?.requestsPerS),
        failure: s.pass ? '' : String(r.failure?.clause ?? ''),
      };
    })
    .sort((x, y) => x.multiplier - y.multiplier);
  const ff = a.firstFailure as { multiplier?: number; clause?: string; stream?: string } | null | undefined;
  return {
    answer: String(a.text ?? ''),
    capacity: c.capacity,
    generatorBound: c.generatorBound,
    knee: c.knee,
    firstFailure: ff && typeof ff.multiplier === 'number' ? { multiplier: ff.multiplier, clause: String(ff.clause ?? ''), stream: String(ff.stream ?? 'all') } : null,
    search: c.search,
    slo: String(a.slo ?? ''),
    targetMs: num(a.targetMs, 2000),
    lossLimitMs: num(a.lossLimitMs, 15_000),
    stages,
  };
}

const x = (m: number): string => `${Math.round(m * 1000) / 1000}x`;
const ms = (v: number): string => (v >= 1000 ? `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)} s` : `${+v.toFixed(1)} ms`);

/** The section's markup ('' for a plain replay): the answer, the curves' places and the stage table. */
export function capacitySectionHtml(c: CapacityReport | null | undefined): string {
  if (!c) return '';
  const headline = c.capacity === null ? 'none' : c.generatorBound ? `>= ${x(c.capacity)}` : x(c.capacity);
  const rows = c.stages
    .map(
      (s) =>
        `<tr class="${s.generatorBound ? 'bound' : s.pass ? 'pass' : 'fail'}"><td>${e(x(s.multiplier))}${s.refine ? ' (refine)' : ''}</td><td>${
          s.generatorBound ? 'generator-bound' : s.pass ? 'pass' : `fail: ${e(s.failure)}`
        }</td><td>${e(ms(s.p50))}</td><td>${e(ms(s.p95))}</td><td>${e(ms(s.p99))}</td><td>${s.lost}</td><td>${s.duplicates}</td><td>${s.errors}</td><td>${Math.round(
          s.deliveriesPerS,
        )}</td><td>${s.expected}</td></tr>`,
    )
    .join('');
  const search = `${x(c.search.from)} to ${x(c.search.to)} by ${c.search.step}, ${Math.round(c.search.stageMs / 1000)} s stages (${Math.round(c.search.settleMs / 1000)} s settle)${
    c.search.refine ? ', refined' : ''
  }`;
  return `<section id="capacity"><h2>Capacity</h2>
<div class="keys"><div class="key ${c.capacity === null ? 'verdict fail' : 'verdict pass'}"><span class="label">capacity</span><span class="value" data-key="capacity">${e(headline)}</span></div>
<div class="key"><span class="label">knee (p95 starts rising)</span><span class="value" data-key="knee">${c.knee === null ? '-' : e(x(c.knee))}</span></div>
<div class="key"><span class="label">first failure</span><span class="value" data-key="firstFailure">${c.firstFailure ? e(`${c.firstFailure.clause} at ${x(c.firstFailure.multiplier)}`) : '-'}</span></div></div>
<p data-key="capacityAnswer">${e(c.answer)}</p>
<p class="muted">Search: ${e(search)}; SLO ${e(c.slo)}. Each stage is judged on the pairs scheduled after its settle time.</p>
<div class="chart" id="chart-capacity-latency"></div>
<div class="grid2"><div class="chart" id="chart-capacity-failures"></div><div class="chart" id="chart-capacity-throughput"></div></div>
<table class="capacity"><thead><tr><th>multiplier</th><th>verdict</th><th>p50</th><th>p95</th><th>p99</th><th>lost</th><th>dup</th><th>errors</th><th>deliveries/s</th><th>pairs</th></tr></thead><tbody>${rows}</tbody></table>
</section>`;
}

/**
 * Draws the capacity curves from the page's embedded data (data.capacity). Plain ES2020 text,
 * run after the report's own script: it uses the page's uPlot and registers its charts in
 * window.rehearseCharts like every other chart.
 */
export const capacityScript = String.raw`
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var c = data.capacity;
  if (!c || !c.stages || c.stages.length === 0) return;
  var charts = window.rehearseCharts || (window.rehearseCharts = []);
  var xs = c.stages.map(function (s) { return s.multiplier; });
  function col(f) { return c.stages.map(f); }
  function fmtMs(v) { return v == null ? '-' : v >= 1000 ? (v / 1000).toFixed(1) + ' s' : (+v.toFixed(1)) + ' ms'; }
  function fmtNum(v) { return v == null ? '-' : String(+v.toFixed(1)); }
  function line(label, color, fmt, dash) {
    // Legends show the last stage's value without hovering, so a screenshot carries the numbers.
    var s = { label: label, stroke: color, width: 2, points: { show: true, size: 6 }, value: function (u, v, sidx, idx) {
      if (idx == null) { var col = u.data[sidx]; v = col[col.length - 1]; }
      return fmt(v);
    } };
    if (dash) { s.dash = dash; s.width = 1; s.points = { show: false }; }
    return s;
  }
  // The knee and the first failure as vertical lines, labelled, so a screenshot carries them.
  function markers(u) {
    var ctx = u.ctx;
    var marks = [];
    if (c.knee != null) marks.push({ x: c.knee, color: '#7c3aed', text: 'knee ' + c.knee + 'x' });
    if (c.firstFailure) marks.push({ x: c.firstFailure.multiplier, color: '#dc2626', text: 'first failure ' + c.firstFailure.multiplier + 'x' });
    marks.forEach(function (m, i) {
      var px = u.valToPos(m.x, 'x', true);
      ctx.save();
      ctx.strokeStyle = m.color;
      ctx.fillStyle = m.color;
      ctx.lineWidth = 2 * devicePixelRatio;
      ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
      ctx.beginPath();
      ctx.moveTo(px, u.bbox.top);
      ctx.lineTo(px, u.bbox.top + u.bbox.height);
      ctx.stroke();
      ctx.font = (11 * devicePixelRatio) + 'px sans-serif';
      ctx.fillText(m.text, px + 4 * devicePixelRatio, u.bbox.top + (14 + 14 * i) * devicePixelRatio);
      ctx.restore();
    });
  }
  function make(name, id, series, cols, yLabel) {
    var el = document.getElementById(id);
    if (!el) return;
    var opts = {
      width: Math.max(320, el.clientWidth || 600),
      height: 260,
      scales: { x: { time: false } },
      axes: [{ label: 'multiplier of the recorded load', values: function (u, t) { return t.map(function (v) { return v + 'x'; }); } }, { label: yLabel }],
      series: [{ label: 'multiplier', value: function (u, v) { return v == null ? 'last stage' : v + 'x'; } }].concat(series),
      legend: { live: true },
      hooks: { draw: [markers] },
    };
    var u = new uPlot(opts, [xs].concat(cols), el);
    charts.push({ name: name, chart: u });
  }
  make('capacity:latency', 'chart-capacity-latency', [
    line('p50', '#059669', fmtMs), line('p95', '#2563eb', fmtMs), line('p99', '#d97706', fmtMs),
    line('SLO target ' + fmtMs(c.targetMs), '#dc2626', fmtMs, [6, 4]), line('loss limit ' + fmtMs(c.lossLimitMs), '#6b7280', fmtMs, [2, 4]),
  ], [col(function (s) { return s.p50; }), col(function (s) { return s.p95; }), col(function (s) { return s.p99; }),
      col(function () { return c.targetMs; }), col(function () { return c.lossLimitMs; })], 'delivery latency (ms), over expected pairs');
  make('capacity:failures', 'chart-capacity-failures', [line('lost', '#dc2626', fmtNum), line('duplicates', '#7c3aed', fmtNum), line('errors', '#d97706', fmtNum)],
    [col(function (s) { return s.lost; }), col(function (s) { return s.duplicates; }), col(function (s) { return s.errors; })], 'per stage window');
  make('capacity:throughput', 'chart-capacity-throughput', [line('deliveries/s', '#2563eb', fmtNum), line('requests/s', '#059669', fmtNum)],
    [col(function (s) { return s.deliveriesPerS; }), col(function (s) { return s.requestsPerS; })], 'per second');
})();
`;
