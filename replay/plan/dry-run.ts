// The dry run: enumerates a plan once and says what the rehearsal will ask of the target
// (requests, deliveries, long-polls minute by minute) and of the generator machines.

import { formatDuration } from '../../core/duration.js';
import type { PlanMinute, PlanSummary } from '../plan-types.js';
import type { Plan } from '../plan.js';

/**
 * The generator estimate's inputs, measured by bench/replay.ts on a 2-core machine (BENCHMARKS.md:
 * 1.4-2.0 CPU-seconds per 10,000 requests, ~60 KB RSS per virtual user at 10,000 users).
 */
export const estimateAssumptions = {
  /** Generator CPU per HTTP request (publish, control or poll), including delivery checks. */
  cpuMicrosPerRequest: 180,
  /** A short request (publish/control) holds a connection this long, besides the long-polls. */
  shortRequestMs: 100,
  /** Generator memory per concurrent virtual user, and the process baseline. */
  kbPerVirtualUser: 60,
  baseMemoryMb: 80,
} as const;

const minuteMs = 60_000;

export function summarizePlan(plan: Plan): PlanSummary {
  const pollS = plan.pollDurationMs / 1000;
  const classes = new Set<string>();
  const proctorOf = new Map<string, string>(); // learner -> its proctor, while the learner is in session
  const joinedProctors = new Set<string>();
  let learners = 0;
  let proctors = 0;
  let publishes = 0;
  let messages = 0;
  let controls = 0;
  let deliveries = 0;
  let liveLearners = 0;
  let liveProctors = 0;
  let peakLearners = 0;
  let peakProctors = 0;
  let peakOpen = 0;

  const minutes: { learners: number; proctors: number; publishes: number; deliveries: number; open: number; userMs: number }[] = [];
  const minute = (m: number) => {
    while (minutes.length <= m) minutes.push({ learners: 0, proctors: 0, publishes: 0, deliveries: 0, open: 0, userMs: 0 });
    return minutes[m]!;
  };
  const secondRequests: number[] = [];
  const secondOpen: number[] = [];
  // Virtual-user time per minute (for polls/s): integrate the live count between events.
  let lastAt = 0;
  const integrate = (to: number): void => {
    const live = liveLearners + liveProctors;
    let t = lastAt;
    while (t < to) {
      const m = Math.floor(t / minuteMs);
      const next = Math.min(to, (m + 1) * minuteMs);
      const row = minute(m);
      row.userMs += live * (next - t);
      // Those in session through a minute without joins still count as its concurrency.
      row.learners = Math.max(row.learners, liveLearners);
      row.proctors = Math.max(row.proctors, liveProctors);
      row.open = Math.max(row.open, live);
      t = next;
    }
    lastAt = Math.max(lastAt, to);
  };
  const noteLive = (at: number): void => {
    const m = minute(Math.floor(at / minuteMs));
    const open = liveLearners + liveProctors;
    m.learners = Math.max(m.learners, liveLearners);
    m.proctors = Math.max(m.proctors, liveProctors);
    m.open = Math.max(m.open, open);
    peakLearners = Math.max(peakLearners, liveLearners);
    peakProctors = Math.max(peakProctors, liveProctors);
    peakOpen = Math.max(peakOpen, open);
    const s = Math.floor(at / 1000);
    while (secondOpen.length <= s) secondOpen.push(0);
    secondOpen[s] = Math.max(secondOpen[s]!, open);
  };
  const request = (at: number): void => {
    const s = Math.floor(at / 1000);
    while (secondRequests.length <= s) secondRequests.push(0);
    secondRequests[s]!++;
  };

  for (const e of plan.events()) {
    integrate(e.atMs);
    switch (e.kind) {
      case 'learnerJoin':
        classes.add(e.classId);
        learners++;
        liveLearners++;
        noteLive(e.atMs);
        break;
      case 'proctorJoin':
        classes.add(e.classId);
        proctors++;
        liveProctors++;
        joinedProctors.add(e.proctor);
        for (const l of e.roster) proctorOf.set(l, e.proctor);
        noteLive(e.atMs);
        break;
      case 'publish': {
        publishes++;
        messages += e.messages;
        const p = proctorOf.get(e.learner);
        const expected = p !== undefined && joinedProctors.has(p) ? e.messages : 0;
        deliveries += expected;
        const m = minute(Math.floor(e.atMs / minuteMs));
        m.publishes++;
        m.deliveries += expected;
        request(e.atMs);
        break;
      }
      case 'control':
        controls++;
        deliveries += e.targets.length;
        minute(Math.floor(e.atMs / minuteMs)).deliveries += e.targets.length;
        request(e.atMs);
        break;
      case 'learnerLeave':
        liveLearners--;
        proctorOf.delete(e.learner);
        break;
      case 'proctorLeave':
        liveProctors--;
        joinedProctors.delete(e.proctor);
        break;
    }
  }
  integrate(plan.durationMs);
  // The last instant belongs to no minute of its own.
  if (minutes.length > Math.ceil(plan.durationMs / minuteMs) && plan.durationMs > 0) minutes.length = Math.ceil(plan.durationMs / minuteMs);

  const perMinute: PlanMinute[] = minutes.map((m, i) => {
    const lengthS = Math.max(1e-3, Math.min(minuteMs, plan.durationMs - i * minuteMs) / 1000);
    return {
      minute: i,
      learners: m.learners,
      proctors: m.proctors,
      publishesPerS: m.publishes / lengthS,
      pollsPerS: m.userMs / 1000 / lengthS / pollS,
      deliveriesPerS: m.deliveries / lengthS,
      openPolls: m.open,
    };
  });
  let peakRequestsPerS = 0;
  for (let s = 0; s < Math.max(secondRequests.length, secondOpen.length); s++) {
    peakRequestsPerS = Math.max(peakRequestsPerS, (secondRequests[s] ?? 0) + (secondOpen[s] ?? 0) / pollS);
  }
  const a = estimateAssumptions;
  const peakShortPerS = Math.max(0, ...secondRequests);
  return {
    mode: plan.options.mode,
    scale: plan.options.scale,
    speed: plan.options.speed,
    seed: plan.options.seed,
    window: plan.window,
    durationMs: plan.durationMs,
    classes: classes.size,
    learners,
    proctors,
    publishes,
    messages,
    controls,
    expectedDeliveries: deliveries,
    peakConcurrentLearners: peakLearners,
    peakConcurrentProctors: peakProctors,
    peakOpenPolls: peakOpen,
    peakRequestsPerS: round(peakRequestsPerS, 1),
    perMinute,
    estimate: {
      generatorCpuCores: round((peakRequestsPerS * a.cpuMicrosPerRequest) / 1e6, 2),
      connections: peakOpen + Math.ceil((peakShortPerS * a.shortRequestMs) / 1000),
      memoryMb: Math.ceil(a.baseMemoryMb + (peakOpen * a.kbPerVirtualUser) / 1024),
    },
    shard: plan.options.shard,
    assumptions: { ...a, pollDurationMs: round(plan.pollDurationMs, 0) },
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const rate = (n: number): string => (n >= 100 ? int(n) : n.toFixed(1));

/** A compact terminal table; minute lists longer than `maxRows` are grouped (each row shows the group's peaks). */
export function formatPlanSummary(s: PlanSummary, maxRows = 24): string {
  const lines: string[] = [];
  const shard = s.shard && s.shard.count > 1 ? `, shard ${s.shard.index}/${s.shard.count}` : '';
  lines.push(`Plan: ${s.mode} mode, scale ${s.scale}x, speed ${s.speed}x, seed ${s.seed}${shard}`);
  lines.push(`  window       ${s.window.label}; replay lasts ${formatDuration(s.durationMs)}`);
  lines.push(`  virtual users ${int(s.learners)} learners, ${int(s.proctors)} proctors in ${int(s.classes)} classes`);
  lines.push(`  traffic      ${int(s.publishes)} publishes (${int(s.messages)} messages), ${int(s.controls)} controls, ${int(s.expectedDeliveries)} expected deliveries`);
  lines.push(
    `  peaks        ${int(s.peakConcurrentLearners)} learners, ${int(s.peakConcurrentProctors)} proctors, ${int(s.peakOpenPolls)} open long-polls, ${rate(s.peakRequestsPerS)} requests/s`,
  );
  lines.push(
    `  generator    ~${s.estimate.generatorCpuCores} CPU cores, ${int(s.estimate.connections)} connections, ~${int(s.estimate.memoryMb)} MB`,
  );
  if (s.assumptions) {
    const a = s.assumptions;
    lines.push(
      `               (assumes ${a.cpuMicrosPerRequest} µs CPU per request, one long-poll per virtual user re-polled every ${formatDuration(a.pollDurationMs)}, ${a.shortRequestMs} ms per publish/control, ${a.kbPerVirtualUser} KB per user)`,
    );
  }
  lines.push('');
  const rows = s.perMinute;
  const group = Math.max(1, Math.ceil(rows.length / maxRows));
  const header = ['minute', 'learners', 'proctors', 'publish/s', 'polls/s', 'deliver/s', 'open polls'];
  const table: string[][] = [header];
  for (let i = 0; i < rows.length; i += group) {
    const g = rows.slice(i, i + group);
    const max = (f: (m: PlanMinute) => number): number => Math.max(...g.map(f));
    table.push([
      group === 1 ? String(i) : `${i}-${i + g.length - 1}`,
      int(max((m) => m.learners)),
      int(max((m) => m.proctors)),
      rate(max((m) => m.publishesPerS)),
      rate(max((m) => m.pollsPerS)),
      rate(max((m) => m.deliveriesPerS)),
      int(max((m) => m.openPolls)),
    ]);
  }
  const widths = header.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  for (const r of table) lines.push(r.map((cell, c) => cell.padStart(widths[c]!)).join('  '));
  if (group > 1) lines.push(`(${rows.length} minutes in groups of ${group}; each row shows the group's peak)`);
  return lines.join('\n') + '\n';
}
