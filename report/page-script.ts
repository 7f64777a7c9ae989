// The browser side of the HTML report: reads the embedded JSON and draws the uPlot charts.
// Kept as plain ES2020 text (the report has no build step of its own); it never builds markup
// from data: labels reach the page through uPlot, which sets textContent.

export const pageScript = String.raw`
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var charts = [];
  window.rehearseCharts = charts;
  var palette = ['#2563eb', '#d97706', '#dc2626', '#7c3aed', '#059669', '#db2777', '#0891b2', '#65a30d'];
  var A = data.runs[0];
  var B = data.runs[1] || null;

  function unionSeconds(runs) {
    var set = {};
    var out = [];
    runs.forEach(function (r) { r.seconds.second.forEach(function (s) { if (!set[s]) { set[s] = true; out.push(s); } }); });
    out.sort(function (a, b) { return a - b; });
    return out;
  }
  function align(xs, run, field, positiveOnly) {
    var at = {};
    run.seconds.second.forEach(function (s, i) { at[s] = run.seconds[field][i]; });
    return xs.map(function (x) {
      var v = at[x];
      if (v === undefined || v === null) return null;
      if (positiveOnly && !(v > 0)) return null;
      return v;
    });
  }
  function fmtMs(v) {
    if (v == null) return '-';
    if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 1) + ' s';
    if (v >= 1) return (+v.toFixed(1)) + ' ms';
    return (+v.toFixed(2)) + ' ms';
  }
  function fmtNum(v) {
    if (v == null) return '-';
    if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1) + 'M';
    if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(0) + 'k';
    return String(+v.toFixed(2));
  }
  // Legends show values without hovering: under the cursor the hovered point's, otherwise the
  // chart's resting point (the last second with a value, or a chosen percentile), so a printed
  // or screenshotted report still carries the numbers.
  function lastIdx(u, sidx) {
    var col = u.data[sidx];
    for (var i = col.length - 1; i >= 0; i--) if (col[i] != null) return i;
    return null;
  }
  function nearestIdx(xs, x) {
    var best = null;
    xs.forEach(function (v, i) { if (best === null || Math.abs(v - x) < Math.abs(xs[best] - x)) best = i; });
    return best;
  }
  function legendValue(fmt, restIdx) {
    return function (u, v, sidx, idx) {
      if (idx == null) {
        var i = restIdx(u, sidx);
        v = i == null ? null : u.data[sidx][i];
      }
      return v == null ? '-' : fmt(v);
    };
  }
  function series(label, color, dashed, width, fmt, restIdx) {
    var s = { label: label, stroke: color, width: width || 1.5, spanGaps: false, points: { show: false } };
    if (dashed) s.dash = [6, 4];
    s.value = legendValue(fmt || fmtNum, restIdx || lastIdx);
    return s;
  }
  function timeX() {
    return { label: 'second', value: function (u, v, sidx, idx) { return idx == null ? 'last value' : v + 's'; } };
  }
  function make(name, el, opts, cols) {
    var width = Math.max(320, el.clientWidth || 600);
    opts.width = width;
    opts.height = opts.height || 260;
    // A dashed series (the --vs run) gets a dashed legend marker too.
    opts.legend = { live: true, markers: { dash: function (u, i) { return u.series[i].dash ? 'dashed' : 'solid'; } } };
    var u = new uPlot(opts, cols, el);
    charts.push({ name: name, chart: u });
    return u;
  }
  function timeAxis() { return { label: 'seconds into the run', values: function (u, ticks) { return ticks.map(function (t) { return t + 's'; }); } }; }
  // With --vs, every series names its run: id and release (cut short; uPlot sets it as text).
  function runTag(r) {
    if (!B) return '';
    var t = r.title.length > 28 ? r.title.slice(0, 27) + '…' : r.title;
    return ' ' + t + (r === B ? ' (baseline)' : '');
  }

  // 1. Delivery latency percentiles over time, with the 2 s target and the 15 s loss limit.
  (function () {
    var el = document.getElementById('chart-latency');
    if (!el) return;
    var xs = unionSeconds(data.runs);
    var cols = [xs];
    var ser = [timeX()];
    var fields = [['p50', 'p50'], ['p95', 'p95'], ['p99', 'p99'], ['max', 'max']];
    data.runs.forEach(function (r, ri) {
      fields.forEach(function (f, fi) {
        if (ri === 1 && (f[0] === 'p50' || f[0] === 'max')) return;
        cols.push(align(xs, r, f[0], true));
        ser.push(series(f[1] + runTag(r), palette[fi], ri === 1, 1.5, fmtMs));
      });
    });
    cols.push(xs.map(function () { return data.targetMs; }));
    ser.push({ label: 'target 2 s', stroke: '#16a34a', width: 1, dash: [2, 3], value: legendValue(fmtMs, lastIdx) });
    cols.push(xs.map(function () { return data.lossLimitMs; }));
    ser.push({ label: 'lost after 15 s', stroke: '#991b1b', width: 1, dash: [2, 3], value: legendValue(fmtMs, lastIdx) });
    make('latency', el, {
      title: 'Delivery latency per second: percentiles of the deliveries in that second (log scale)',
      scales: { x: { time: false }, y: { distr: 3, log: 10 } },
      axes: [timeAxis(), { label: 'latency', size: 70, values: function (u, t) { return t.map(fmtMs); } }],
      series: ser,
    }, cols);
  })();

  // 2. Throughput: publishes, deliveries, errors and retries per second.
  (function () {
    var el = document.getElementById('chart-throughput');
    if (!el) return;
    var xs = unionSeconds(data.runs);
    var cols = [xs];
    var ser = [timeX()];
    var fields = [['publishes', 'publishes/s'], ['deliveries', 'deliveries/s'], ['errors', 'errors/s'], ['retries', 'retries/s']];
    data.runs.forEach(function (r, ri) {
      fields.forEach(function (f, fi) {
        cols.push(align(xs, r, f[0], false));
        ser.push(series(f[1] + runTag(r), palette[fi], ri === 1));
      });
    });
    make('throughput', el, {
      title: 'Requests and deliveries per second',
      scales: { x: { time: false } },
      axes: [timeAxis(), { label: 'per second', size: 60, values: function (u, t) { return t.map(fmtNum); } }],
      series: ser,
    }, cols);
  })();

  // 3. Virtual users and open long-polls.
  (function () {
    var el = document.getElementById('chart-users');
    if (!el) return;
    var xs = unionSeconds(data.runs);
    var cols = [xs];
    var ser = [timeX()];
    data.runs.forEach(function (r, ri) {
      cols.push(align(xs, r, 'virtualUsers', false));
      ser.push(series('virtual users' + runTag(r), palette[0], ri === 1));
      cols.push(align(xs, r, 'openPolls', false));
      ser.push(series('open polls' + runTag(r), palette[4], ri === 1));
    });
    make('users', el, {
      title: 'Virtual users and open polls',
      scales: { x: { time: false } },
      axes: [timeAxis(), { size: 60, values: function (u, t) { return t.map(fmtNum); } }],
      series: ser,
    }, cols);
  })();

  // 4. Latency distribution from the HDR histograms: latency by percentile, tail stretched.
  (function () {
    var el = document.getElementById('chart-distribution');
    if (!el) return;
    var xs = data.percentileQuantiles.map(function (q) { return -Math.log10(1 - q); });
    var cols = [xs];
    // At rest the legend reads p99: the tail is what this chart is for.
    var p99x = -Math.log10(1 - 0.99);
    var atP99 = function () { return nearestIdx(xs, p99x); };
    var pctOf = function (x) { return (+(100 * (1 - Math.pow(10, -x))).toFixed(3)) + '%'; };
    var ser = [{ label: 'percentile', value: function (u, x, sidx, idx) { return idx == null ? pctOf(p99x) : x == null ? '-' : pctOf(x); } }];
    var streams = [['all', 'all'], ['learner', 'learner events'], ['control', 'proctor control']];
    data.runs.forEach(function (r, ri) {
      streams.forEach(function (s, si) {
        var values = r.percentiles[s[0]];
        if (!values) return;
        if (ri === 1 && s[0] !== 'all') return;
        cols.push(values.map(function (v) { return v > 0 ? v : null; }));
        ser.push(series(s[1] + runTag(r), palette[si], ri === 1, 2, fmtMs, atP99));
      });
    });
    if (cols.length === 1) { el.textContent = 'No latency histogram stored for this run.'; return; }
    make('distribution', el, {
      title: 'Delivery latency by percentile (whole run)',
      scales: { x: { time: false }, y: { distr: 3, log: 10 } },
      axes: [
        { label: 'percentile', splits: function () { return [0, 1, 2, 3, 4]; }, values: function (u, t) { return t.map(function (x) { return (+(100 * (1 - Math.pow(10, -x))).toFixed(3)) + '%'; }); } },
        { label: 'latency', size: 70, values: function (u, t) { return t.map(fmtMs); } },
      ],
      series: ser,
    }, cols);
  })();

  // 5. Fidelity: model and run quantile curves per distribution.
  data.runs[0].fidelity.rows.forEach(function (row, i) {
    var el = document.getElementById('chart-fidelity-' + i);
    if (!el) return;
    var xs = data.fidelityQuantiles.map(function (q) { return q * 100; });
    var cols = [xs];
    var atMedian = function () { return nearestIdx(xs, 50); };
    var fmt = row.unit === 'ms' ? fmtMs : fmtNum;
    var ser = [{ label: 'quantile', value: function (u, x, sidx, idx) { return idx == null ? xs[atMedian()].toFixed(1) + '%' : x == null ? '-' : x.toFixed(1) + '%'; } }];
    if (row.curve.model) { cols.push(row.curve.model); ser.push(series('model', '#6b7280', false, 2, fmt, atMedian)); }
    cols.push(row.curve.run); ser.push(series('run' + runTag(A), palette[0], false, 2, fmt, atMedian));
    if (B) {
      var other = B.fidelity.rows.filter(function (x) { return x.name === row.name; })[0];
      if (other) { cols.push(other.curve.run); ser.push(series('run' + runTag(B), palette[1], true, 2, fmt, atMedian)); }
    }
    make('fidelity:' + row.name, el, {
      title: row.label, height: 200,
      scales: { x: { time: false } },
      axes: [{ values: function (u, t) { return t.map(function (x) { return x + '%'; }); } },
             { size: 60, values: function (u, t) { return t.map(row.unit === 'ms' ? fmtMs : fmtNum); } }],
      series: ser,
    }, cols);
  });

  // 6. Target health: the client's view, then what the target itself reported.
  (function () {
    var el = document.getElementById('chart-client-view');
    if (!el) return;
    var xs = unionSeconds([A]);
    make('client-view', el, {
      title: 'Client view: deliveries and errors per second', height: 200,
      scales: { x: { time: false } },
      axes: [timeAxis(), { size: 60, values: function (u, t) { return t.map(fmtNum); } }],
      series: [timeX(), series('deliveries/s', palette[1]), series('errors/s', palette[2])],
    }, [xs, align(xs, A, 'deliveries', false), align(xs, A, 'errors', false)]);
  })();
  A.scrapes.forEach(function (chart, i) {
    var el = document.getElementById('chart-scrape-' + i);
    if (!el) return;
    var set = {};
    var xs = [];
    chart.series.forEach(function (s) { s.atS.forEach(function (t) { if (!set[t]) { set[t] = true; xs.push(t); } }); });
    xs.sort(function (a, b) { return a - b; });
    var cols = [xs];
    var ser = [timeX()];
    chart.series.forEach(function (s, si) {
      var at = {};
      s.atS.forEach(function (t, k) { at[t] = s.values[k]; });
      cols.push(xs.map(function (t) { var v = at[t]; return v === undefined ? null : v; }));
      var l = s.labels === '' ? chart.metric : s.labels;
      ser.push({ label: l, stroke: palette[si % palette.length], width: 1.5, spanGaps: true, value: legendValue(fmtNum, lastIdx) });
    });
    make('scrape:' + chart.metric, el, {
      title: chart.metric + (chart.rate ? ' (per second)' : ''), height: 200,
      scales: { x: { time: false } },
      axes: [timeAxis(), { size: 60, values: function (u, t) { return t.map(fmtNum); } }],
      series: ser,
    }, cols);
  });

  window.addEventListener('resize', function () {
    charts.forEach(function (c) {
      var w = c.chart.root.parentNode.clientWidth;
      if (w > 0) c.chart.setSize({ width: w, height: c.chart.height });
    });
  });
  requestAnimationFrame(function () { requestAnimationFrame(function () { window.rehearseReady = true; }); });
})();
`;
