// Mapping warnings an ingest printed for a file (ingest/mapping-checks.ts), kept with its
// summary so `rehearse model` readers and later audits see them too: a JSON array, NULL for none.
export const sourceWarningsSchema = `ALTER TABLE sources ADD COLUMN warnings TEXT;`;
