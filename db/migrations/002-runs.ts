// Rehearsal runs written by `rehearse replay` and read by `runs`, `compare` and `report`.
export const runsSchema = `
CREATE TABLE runs (
  id INTEGER PRIMARY KEY,
  release TEXT,
  target TEXT NOT NULL,
  scale REAL NOT NULL,
  mode TEXT NOT NULL,
  window TEXT NOT NULL,
  speed REAL NOT NULL,
  seed INTEGER NOT NULL,
  planned_duration_ms INTEGER,
  model_fingerprint TEXT NOT NULL,
  rehearse_version TEXT NOT NULL,
  options TEXT NOT NULL,              -- every option as JSON; never header values
  started_at TEXT NOT NULL,           -- ISO 8601
  ended_at TEXT,
  status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'interrupted', 'failed')),
  pass INTEGER,                       -- 1 SLO held, 0 failed, NULL not finished
  verdict TEXT,                       -- JSON: SLO clauses with observed values, reasons
  summary TEXT                        -- JSON: the object \`replay --json\` prints
);
CREATE INDEX runs_by_release ON runs(release, id);

-- One row per second of a run, flushed every second (a SIGKILLed run keeps all but the last).
CREATE TABLE run_seconds (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  second INTEGER NOT NULL,
  virtual_users INTEGER NOT NULL,
  open_polls INTEGER NOT NULL,
  publishes INTEGER NOT NULL,
  subscribes INTEGER NOT NULL,
  deliveries INTEGER NOT NULL,
  duplicates INTEGER NOT NULL,
  lost INTEGER NOT NULL,
  errors INTEGER NOT NULL,
  retries INTEGER NOT NULL,
  p50_ms REAL,
  p95_ms REAL,
  p99_ms REAL,
  max_ms REAL,
  schedule_lag_p99_ms REAL,
  loop_delay_p99_ms REAL,
  PRIMARY KEY (run_id, second)
) WITHOUT ROWID;

-- Final HDR histograms, base64 of the compressed encoding: mergeable across runs and shards.
-- Names: 'delivery', 'delivery.learner', 'delivery.control', 'scheduleLag'.
CREATE TABLE run_histograms (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  encoded TEXT NOT NULL,
  PRIMARY KEY (run_id, name)
) WITHOUT ROWID;

-- Final counters by name ('published', 'expected', 'delivered', 'duplicates', 'lost', ...).
CREATE TABLE run_counts (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  value REAL NOT NULL,
  PRIMARY KEY (run_id, name)
) WITHOUT ROWID;

-- What the run actually sent, for fidelity against the model: sorted Float64Array samples
-- (little-endian, at most 100k each) under the model's distribution names
-- ('learnerPublishInterval', 'proctorControlInterval', 'messagesPerPublish', 'sessionDuration', 'rosterSize', ...).
CREATE TABLE run_samples (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  count INTEGER NOT NULL,
  samples BLOB NOT NULL,
  PRIMARY KEY (run_id, name)
) WITHOUT ROWID;

-- Target health: samples of the target's Prometheus /metrics taken during the run (--scrape).
CREATE TABLE run_scrapes (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  at_ms INTEGER NOT NULL,             -- ms since the run started
  metric TEXT NOT NULL,
  labels TEXT NOT NULL DEFAULT '',
  value REAL NOT NULL
);
CREATE INDEX run_scrapes_by_run ON run_scrapes(run_id, metric, at_ms);
`;
