// Capacity searches (`rehearse capacity`): one run whose load rose stage by stage. run_capacity
// holds the answer (one row per capacity run; a run without one is a plain replay), run_stages
// each stage's verdict on its own window, so runs, report and compare read them back.
export const capacitySchema = `
CREATE TABLE run_capacity (
  run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
  capacity REAL,                      -- the highest multiplier that passed; NULL when none did
  generator_bound INTEGER NOT NULL,   -- 1: the search stopped because the generator was the bottleneck
  knee REAL,                          -- multiplier where delivery p95 starts rising; NULL when it did not
  search TEXT NOT NULL,               -- JSON: from, to, step, stageMs, settleMs, refine
  answer TEXT NOT NULL                -- JSON: the answer without its stages (text, firstFailure, knee, passesUpTo)
);

CREATE TABLE run_stages (
  run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  stage INTEGER NOT NULL,             -- order the stages ran in (refine stages follow the main ones)
  multiplier REAL NOT NULL,
  refine INTEGER NOT NULL,
  start_ms INTEGER NOT NULL,          -- ms since the run started (replay time)
  end_ms INTEGER NOT NULL,
  judged_from_ms INTEGER NOT NULL,    -- start + settle: pairs scheduled from here to end_ms are judged
  pass INTEGER NOT NULL,
  generator_bound INTEGER NOT NULL,
  result TEXT NOT NULL,               -- JSON: the stage's verdict (latency, lost, duplicates, errors, clauses, target health)
  PRIMARY KEY (run_id, stage)
) WITHOUT ROWID;
`;
