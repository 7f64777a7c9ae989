// Which process on which host writes a run, so readers can tell a run still going from one whose
// process was SIGKILLed and that stays 'running' forever (db/run-queries.ts shows it 'abandoned').
export const runProcessSchema = `
ALTER TABLE runs ADD COLUMN pid INTEGER;   -- the writing process; NULL for runs written before 004
ALTER TABLE runs ADD COLUMN host TEXT;     -- os.hostname() of that process
`;
