import { Counter, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics (prom-client). One registry per process; `GET /metrics` on the metrics listener
 * (`METRICS_PORT`, src/http/metrics-server.ts), never on the API port. Labels never carry identifiers or
 * demographics.
 */
export const metrics = new Registry();
collectDefaultMetrics({ register: metrics });

export const matchDecisions = new Counter({
  name: 'member_match_decisions_total',
  help: '$member-match resolutions by outcome (matched, review, no-match, manual-review)',
  labelNames: ['outcome'] as const,
  registers: [metrics],
});

export const reviewCasesOpened = new Counter({
  name: 'review_cases_opened_total',
  help: 'review cases opened (resubmissions that find their case are not counted)',
  registers: [metrics],
});

export const reviewEscalations = new Counter({
  name: 'review_sla_escalations_total',
  help: 'review cases escalated for being open past their SLA deadline',
  registers: [metrics],
});
