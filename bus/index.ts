// Public API of the embedded Event bus (protocol v1, docs/protocol.md): start it in-process,
// parse the CLI's fault and retention syntaxes.

export { startBus, type RunningBus } from './server.js';
export { busDefaults, parseRetention, resolveBusOptions, type BusOptions, type RetentionOptions } from './options.js';
export { FaultInjector, faultNames, mergeFaults, parseFault, type FaultConfig, type FaultName } from './faults.js';
export type { BusStats } from './metrics.js';
