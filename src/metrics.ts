import { Counter, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics (prom-client). One registry per process; `GET /metrics` serves it to loopback clients
 * only (scrape through a sidecar or an internal port). Labels never carry identifiers or demographics.
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
