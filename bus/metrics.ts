// The bus's counters and their Prometheus text rendering (GET /metrics). Tests read the same
// numbers through RunningBus.stats().

import { faultNames, type FaultName } from './faults.js';

export interface BusStats {
  /** Subscribe requests waiting for a message right now. */
  openPolls: number;
  publishRequests: number;
  /** Messages accepted by publish (including those a drop fault then discarded). */
  publishedMessages: number;
  subscribeRequests: number;
  /** Message copies sent in subscribe answers (fan-out counts each subscriber). */
  deliveredMessages: number;
  retainedMessages: number;
  topics: number;
  /** Messages removed by retention. */
  trimmedMessages: number;
  /** Delayed messages held aside, not yet visible. */
  delayedPending: number;
  /** Messages waiting in the `service` fault's queue, not yet visible. */
  serviceQueued: number;
  responses4xx: number;
  responses5xx: number;
  faults: Record<FaultName, number>;
}

export function emptyStats(): BusStats {
  return {
    openPolls: 0,
    publishRequests: 0,
    publishedMessages: 0,
    subscribeRequests: 0,
    deliveredMessages: 0,
    retainedMessages: 0,
    topics: 0,
    trimmedMessages: 0,
    delayedPending: 0,
    serviceQueued: 0,
    responses4xx: 0,
    responses5xx: 0,
    faults: Object.fromEntries(faultNames.map((f) => [f, 0])) as Record<FaultName, number>,
  };
}

export function renderMetrics(s: BusStats, rssBytes: number): string {
  const lines: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter', help: string, samples: Array<[string, number]>): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
  };
  metric('rehearse_bus_open_polls', 'gauge', 'Subscribe requests waiting for a message.', [['', s.openPolls]]);
  metric('rehearse_bus_publish_requests_total', 'counter', 'Publish requests answered 200.', [['', s.publishRequests]]);
  metric('rehearse_bus_published_messages_total', 'counter', 'Messages accepted by publish.', [['', s.publishedMessages]]);
  metric('rehearse_bus_subscribe_requests_total', 'counter', 'Subscribe requests accepted.', [['', s.subscribeRequests]]);
  metric('rehearse_bus_delivered_messages_total', 'counter', 'Message copies sent to subscribers.', [['', s.deliveredMessages]]);
  metric('rehearse_bus_retained_messages', 'gauge', 'Messages held by retention over all topics.', [['', s.retainedMessages]]);
  metric('rehearse_bus_topics', 'gauge', 'Topics known to the bus.', [['', s.topics]]);
  metric('rehearse_bus_trimmed_messages_total', 'counter', 'Messages removed by retention.', [['', s.trimmedMessages]]);
  metric('rehearse_bus_delayed_pending', 'gauge', 'Messages held by the delay fault, not yet visible.', [['', s.delayedPending]]);
  metric('rehearse_bus_service_queue', 'gauge', 'Messages waiting for the service fault\'s server, not yet visible.', [['', s.serviceQueued]]);
  metric('rehearse_bus_http_responses_total', 'counter', 'Error answers by status class.', [
    ['{class="4xx"}', s.responses4xx],
    ['{class="5xx"}', s.responses5xx],
  ]);
  metric(
    'rehearse_bus_faults_total',
    'counter',
    'Injected faults: messages dropped, duplicated, delayed, queued behind another (service); answers held (latency); requests failed (error), stalled, refused by --max-polls.',
    faultNames.map((f) => [`{fault="${f}"}`, s.faults[f]]),
  );
  metric('process_resident_memory_bytes', 'gauge', 'Resident set size of the bus process.', [['', rssBytes]]);
  return lines.join('\n') + '\n';
}
