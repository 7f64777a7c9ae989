// The shapes of a stored run, shared by the runtime (writer) and runs/compare/report (readers).

export interface LatencyMs {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** How a run was asked for: the columns a runs row, its summary and the runs list all show. */
export interface RunSettings {
  release: string | null;
  target: string;
  scale: number;
  mode: string;
  window: string;
  speed: number;
  seed: number;
}

/** What `rehearse replay --json` prints and runs.summary stores. */
export interface RunSummary extends RunSettings {
  run: number;
  /** The protocol spoken to the target ('v1', 'nchan', 'bayeux', 'profile:NAME', 'module:NAME'); absent on runs stored before targets had protocols (v1). */
  protocol?: string;
  /** How the run ended; absent on older runs. */
  status?: RunStatus;
  durationS: number;
  learners: number;
  proctors: number;
  /** Messages the target accepted. */
  published: number;
  /** Message-subscriber pairs that should be delivered (the denominator). */
  expected: number;
  /** Pairs delivered at least once. */
  delivered: number;
  /** Extra deliveries beyond the first. */
  duplicates: number;
  /** Pairs not delivered within the loss limit (15 s). */
  lost: number;
  /** Fraction of expected pairs delivered within the target (2 s). */
  withinTarget: number;
  latencyMs: LatencyMs;
  streams: { learner: StreamSummary; control: StreamSummary };
  requests: {
    publish: number;
    subscribe: number;
    errors: number;
    retries: number;
    /** Polls that ended with nothing (absent on older runs). */
    emptyPolls?: number;
    /** Errors grouped as 'publish HTTP 503', 'poll network ECONNREFUSED', with one detail each (absent on older runs). */
    errorsByKind?: Record<string, { count: number; example: string }>;
  };
  scheduleLagMs: LatencyMs;
  /** True when the generator, not the target, limited the run (schedule lag or event-loop delay too high). */
  generatorBound: boolean;
  /** Present when the run was split into shards (--workers, or shards merged by `rehearse merge`): how many, and which are in it. */
  shards?: { count: number; indexes: number[] };
  pass: boolean;
  verdict: Verdict;
}

export interface StreamSummary {
  expected: number;
  delivered: number;
  duplicates: number;
  lost: number;
  withinTarget: number;
  latencyMs: LatencyMs;
}

export interface VerdictClause {
  /** As written in the SLO expression, e.g. 'p95<=2s'. */
  expression: string;
  observed: number;
  pass: boolean;
}

export interface Verdict {
  pass: boolean;
  slo: string;
  clauses: VerdictClause[];
  /** Why a run failed beyond its clauses (nothing accepted, most requests failed, generator-bound). */
  reasons: string[];
}

export type RunStatus = 'running' | 'finished' | 'interrupted' | 'failed';

export interface RunSecond {
  second: number;
  virtualUsers: number;
  openPolls: number;
  publishes: number;
  subscribes: number;
  deliveries: number;
  duplicates: number;
  lost: number;
  errors: number;
  retries: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  scheduleLagP99Ms: number | null;
  loopDelayP99Ms: number | null;
  /** That second's first deliveries as a compressed base64 HDR histogram (microseconds); null when none or stored before migration 006. */
  deliveryHistogram?: string | null;
}

/** One value of the target's /metrics scraped during a run (run_scrapes). */
export interface ScrapeSample {
  atMs: number;
  metric: string;
  /** Canonical exposition form without braces, keys sorted: `code="200",method="GET"`; '' when none. */
  labels: string;
  value: number;
}
