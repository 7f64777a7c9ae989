// The synthetic plan both generator benchmarks replay (bench/replay.ts, bench/generator-vs-locust.ts):
// the same scenario the Locust file in bench/locust/ implements.
import type { PlanEvent } from '../replay/plan-types.js';
import type { benchFlags, FlagSpec } from './args.js';

export interface BenchPlanShape {
  rampMs: number;
  steadyMs: number;
  publishEveryMs: number;
  controlEveryMs: number;
}

/** Classes of 24 learners and a proctor; joins spread over the ramp; no one leaves before the end. */
/** The flags both generator benchmarks take for the plan's shape. */
export const planShapeFlags = {
  ramp: { type: 'string', default: '20s' },
  steady: { type: 'string', default: '30s' },
  'publish-every': { type: 'string', default: '10s' },
  'control-every': { type: 'string', default: '30s' },
  repeat: { type: 'string', default: '1' },
} satisfies FlagSpec;

export function readPlanShape(f: ReturnType<typeof benchFlags<typeof planShapeFlags>>): BenchPlanShape & { repeat: number } {
  return {
    rampMs: f.ms('ramp'),
    steadyMs: f.ms('steady'),
    publishEveryMs: f.ms('publish-every'),
    controlEveryMs: f.ms('control-every'),
    repeat: f.number('repeat'),
  };
}

export function* benchPlan(vus: number, a: BenchPlanShape): Generator<PlanEvent> {
  const perClass = 25;
  const classes = Math.ceil(vus / perClass);
  const endMs = a.rampMs + a.steadyMs;
  const events: PlanEvent[] = [];
  let made = 0;
  for (let c = 0; c < classes && made < vus; c++) {
    const joinAt = (c / classes) * a.rampMs;
    const roster: string[] = [];
    for (let i = 0; i < perClass - 1 && made + 1 + roster.length < vus; i++) roster.push(`c${c}.l${i}`);
    events.push({ kind: 'proctorJoin', atMs: joinAt, proctor: `c${c}.p`, classId: `c${c}`, roster });
    made += 1 + roster.length;
    roster.forEach((learner, i) => {
      events.push({ kind: 'learnerJoin', atMs: joinAt + 1, learner, classId: `c${c}` });
      // Spread phases so the publish rate is smooth: vus / publishEvery per second.
      for (let t = joinAt + 1 + ((i * 7919 + c * 104729) % a.publishEveryMs); t < endMs; t += a.publishEveryMs) {
        events.push({ kind: 'publish', atMs: t, learner, messages: 1 });
      }
    });
    for (let t = joinAt + a.controlEveryMs; t < endMs; t += a.controlEveryMs) {
      events.push({ kind: 'control', atMs: t, proctor: `c${c}.p`, targets: [roster[(t / a.controlEveryMs) % roster.length | 0]!] });
    }
  }
  events.sort((x, y) => x.atMs - y.atMs);
  yield* events;
}
