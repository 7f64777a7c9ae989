// The model without a row per request (issue 13): each session keeps its requests packed in one
// blob (db/session-pack.ts), actors keep what roles are decided from as mergeable counts, and
// distributions keep exact counts per value, so an ingest updates the model with the file it
// reads instead of rebuilding it from every request stored. `requests` stays, written only with
// `ingest --keep-requests`. Derived tables of 001 are replaced; a database that held requests is
// left stale, and `rehearse ingest --rebuild` rebuilds the new tables from them.
export const compactModelSchema = `
DROP TABLE timeline;
DROP TABLE rosters;
DROP TABLE sessions;
DROP TABLE actors;
DELETE FROM distributions;
DELETE FROM arrivals;
DELETE FROM meta WHERE key = 'model.overview';
INSERT OR REPLACE INTO meta (key, value) SELECT 'model.stale', '1' WHERE EXISTS (SELECT 1 FROM requests);

-- Every actor seen, with the counts its role is decided from (docs/model.md, Roles).
CREATE TABLE actors (
  id INTEGER PRIMARY KEY,
  role TEXT NOT NULL CHECK (role IN ('learner', 'proctor', 'other')),
  requests INTEGER NOT NULL DEFAULT 0,
  publishes INTEGER NOT NULL DEFAULT 0
);
-- Requests per actor, operation (1 publish, 2 subscribe) and topic, whatever the status.
CREATE TABLE actor_topics (
  actor INTEGER NOT NULL,
  op INTEGER NOT NULL,
  topic INTEGER NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (actor, op, topic)
) WITHOUT ROWID;
CREATE TABLE actor_clients (
  actor INTEGER NOT NULL,
  client INTEGER NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (actor, client)
) WITHOUT ROWID;

-- Sessions of every actor ('other' ones too: a later file may make the actor a learner).
-- records: the session's requests, packed (db/session-pack.ts); targets: a proctor session's
-- control targets, packed. Topics are ids rows.
CREATE TABLE sessions (
  id INTEGER PRIMARY KEY,
  actor_id INTEGER NOT NULL,
  session_key INTEGER,
  role TEXT NOT NULL CHECK (role IN ('learner', 'proctor', 'other', 'new')),
  start_ms INTEGER NOT NULL,
  end_ms INTEGER NOT NULL,
  publish_topic INTEGER,
  control_topic INTEGER,
  publishes INTEGER NOT NULL DEFAULT 0,
  messages INTEGER NOT NULL DEFAULT 0,
  polls INTEGER NOT NULL DEFAULT 0,
  controls INTEGER NOT NULL DEFAULT 0,
  errors INTEGER NOT NULL DEFAULT 0,
  roster_size INTEGER,
  lead_time_ms INTEGER,
  records BLOB NOT NULL,
  targets BLOB
);
CREATE INDEX sessions_by_actor ON sessions(actor_id, end_ms);
CREATE INDEX sessions_by_key ON sessions(session_key) WHERE session_key IS NOT NULL;
CREATE INDEX sessions_by_role_start ON sessions(role, start_ms);

CREATE TABLE rosters (
  proctor_session_id INTEGER NOT NULL,
  learner_session_id INTEGER NOT NULL,
  PRIMARY KEY (proctor_session_id, learner_session_id)
) WITHOUT ROWID;
CREATE INDEX rosters_by_learner ON rosters(learner_session_id);

-- Every distribution's values as counts per (whole) value: merged exactly by adding counts.
-- 'distributions' keeps the summary and samples read from them.
CREATE TABLE distribution_counts (
  name TEXT NOT NULL,
  value INTEGER NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (name, value)
) WITHOUT ROWID;

-- Each recorded day (in the model's zone) with its peaks.
CREATE TABLE days (
  day TEXT PRIMARY KEY,
  start_ms INTEGER NOT NULL,
  end_ms INTEGER NOT NULL,
  learner_sessions INTEGER NOT NULL,
  proctor_sessions INTEGER NOT NULL,
  peak_concurrent INTEGER NOT NULL,
  peak_at_ms INTEGER NOT NULL,
  peak_arrivals INTEGER NOT NULL,
  peak_arrivals_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
`;
