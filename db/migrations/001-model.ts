// The behaviour model written by `rehearse ingest` and read by the plan.
// Ids in these tables are keyed pseudonyms unless the user ingested with --keep-ids.
export const modelSchema = `
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- One row per ingested file. sha256 of the decompressed content makes re-ingest a no-op.
CREATE TABLE sources (
  id INTEGER PRIMARY KEY,
  path TEXT NOT NULL,
  sha256 TEXT NOT NULL UNIQUE,
  format TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  lines INTEGER NOT NULL,
  accepted INTEGER NOT NULL,
  rejected INTEGER NOT NULL,
  rejected_reasons TEXT NOT NULL DEFAULT '{}',
  ingested_at TEXT NOT NULL
);

CREATE TABLE actors (
  id INTEGER PRIMARY KEY,
  pseudonym TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL CHECK (role IN ('learner', 'proctor', 'other')),
  client_family TEXT
);

-- Learner and proctor sessions, derived from all ingested requests.
CREATE TABLE sessions (
  id INTEGER PRIMARY KEY,
  actor_id INTEGER NOT NULL REFERENCES actors(id) ON DELETE CASCADE,
  role TEXT NOT NULL CHECK (role IN ('learner', 'proctor')),
  pseudonym TEXT NOT NULL,
  start_ms INTEGER NOT NULL,
  end_ms INTEGER NOT NULL,
  publish_topic TEXT,
  control_topic TEXT,
  publishes INTEGER NOT NULL DEFAULT 0,
  messages INTEGER NOT NULL DEFAULT 0,
  polls INTEGER NOT NULL DEFAULT 0,
  controls INTEGER NOT NULL DEFAULT 0,
  errors INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_by_start ON sessions(start_ms);

-- A proctor session's roster: the learner sessions whose topics it long-polled.
CREATE TABLE rosters (
  proctor_session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  learner_session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  PRIMARY KEY (proctor_session_id, learner_session_id)
) WITHOUT ROWID;

-- What each session did, in order, precise enough to replay it (at_ms from session start).
CREATE TABLE timeline (
  session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  at_ms INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('publish', 'control', 'poll', 'error')),
  messages INTEGER NOT NULL DEFAULT 0,
  duration_ms INTEGER NOT NULL DEFAULT 0,
  status INTEGER NOT NULL DEFAULT 200,
  target_session_id INTEGER REFERENCES sessions(id) ON DELETE CASCADE
);
CREATE INDEX timeline_by_session ON timeline(session_id, at_ms);

-- Fitted empirical distributions: exact summary over all values, samples a sorted
-- Float64Array (little-endian) of at most 100k values drawn uniformly and deterministically.
CREATE TABLE distributions (
  name TEXT PRIMARY KEY,
  unit TEXT NOT NULL,
  count INTEGER NOT NULL,
  mean REAL NOT NULL,
  p50 REAL NOT NULL,
  p90 REAL NOT NULL,
  p99 REAL NOT NULL,
  max REAL NOT NULL,
  samples BLOB NOT NULL
);

-- Learner sessions starting in each minute of the recorded day: the surge curve.
CREATE TABLE arrivals (
  minute_ms INTEGER PRIMARY KEY,
  learners INTEGER NOT NULL
) WITHOUT ROWID;
`;
