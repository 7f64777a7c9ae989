// Runs split into shards (--workers, or `rehearse merge` of --shard results): which rehearsal a
// run belongs to and which share of the plan it holds, so `runs` can tell a merged run (every
// shard, shard_index NULL) from one shard's own run and from a whole-plan run (both NULL).
export const runShardsSchema = `
ALTER TABLE runs ADD COLUMN group_id TEXT;          -- shared by the shards of one rehearsal; NULL for a plain run
ALTER TABLE runs ADD COLUMN shard_index INTEGER;    -- this run's shard i of i/N; NULL: all N shards merged, or no shards
ALTER TABLE runs ADD COLUMN shard_count INTEGER;    -- N; NULL for runs stored before 009 (read as 1)
`;
