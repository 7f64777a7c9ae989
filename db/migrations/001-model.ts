// The behaviour model written by `rehearse ingest` and read by the plan.
// Ids in these tables are keyed pseudonyms unless the user ingested with --keep-ids.
// `requests` (with `ids`) keeps every accepted request compactly; everything below it is derived
// and rebuilt over all requests after each ingested file, so rotated files give one model.
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

-- Interned ids (pseudonyms unless --keep-ids): kind 1 actor, 2 session, 3 topic, 4 client family.
-- role: set by --role-override for actors whose raw id matched; NULL means decided by behaviour.
CREATE TABLE ids (
  id INTEGER PRIMARY KEY,
  kind INTEGER NOT NULL,
  value TEXT NOT NULL,
  role TEXT CHECK (role IN ('learner', 'proctor')),
  UNIQUE (kind, value)
);

-- Every accepted request, compactly: ids refer to ids(id); topics is a ','-joined list of ids;
-- op 0 other, 1 publish, 2 subscribe; start_ms is the request's start (epoch ms, UTC).
-- No foreign keys: written at bulk speed and only ever read whole by the model rebuild.
CREATE TABLE requests (
  source_id INTEGER NOT NULL,
  actor INTEGER NOT NULL,
  start_ms INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  op INTEGER NOT NULL,
  status INTEGER NOT NULL,
  messages INTEGER NOT NULL,
  topics TEXT NOT NULL,
  session INTEGER,
  bytes INTEGER,
  client INTEGER
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
