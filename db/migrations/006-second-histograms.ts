// Each second's delivery latencies as a histogram, not only its percentiles: percentiles cannot
// be merged or resampled, histograms can (compare's noise estimate, merged shards).
export const secondHistogramsSchema = `
ALTER TABLE run_seconds ADD COLUMN delivery_histogram TEXT;  -- base64 compressed HDR (microseconds) of that second's first deliveries; NULL before 006 or when none
`;
