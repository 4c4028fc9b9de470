import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics (prom-client). One registry per process; `GET /metrics` on the metrics listener
 * (`METRICS_PORT`, src/http/metrics-server.ts), never on the API port. docs/operations.md lists every series;
 * deploy/prometheus/alerts.yml and deploy/grafana/member-match.json use them (test/alert-rules.test.ts fails
 * when a rule names a series this registry does not have).
 *
 * Labels never carry identifiers, demographics or raw URLs, and every label's values come from a closed set
 * (doors, outcomes, reason codes and route patterns written in this code base, HTTP methods and statuses,
 * queue names), so no caller can grow the number of series.
 */
export const metrics = new Registry();
collectDefaultMetrics({ register: metrics });

/**
 * Gauges read from Postgres and Redis when scraped (queue depth, open review cases): each source registers a
 * refresher with `onScrape`, and those gauges' `collect` runs every refresher once per scrape (a scrape starts
 * all collectors at once; they await the same run). A refresher that fails counts a collection error and
 * leaves its series out; one still running after REFRESH_MS counts `timeout` and the scrape goes on with its
 * previous values, so a scrape never hangs on a dead Redis. Being prom-client collectors, they also run under
 * node:cluster's aggregated scrape (src/cluster.ts), where these gauges are aggregated by `max`: every process
 * reads the same shared state.
 */
type Refresher = () => Promise<void>;
const refreshers = new Set<Refresher>();
const REFRESH_MS = 2_000;
/** The refresh under way: a scrape starts every collector in the same tick, so they all share one. */
let refreshing: Promise<void> | undefined;

export function onScrape(refresher: Refresher): () => void {
  refreshers.add(refresher);
  return () => void refreshers.delete(refresher);
}

function refreshShared(): Promise<void> {
  refreshing ??= Promise.all(
    [...refreshers].map(async (refresher) => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          collectErrors.inc({ source: 'timeout' });
          resolve();
        }, REFRESH_MS);
      });
      await Promise.race([refresher(), late]).finally(() => clearTimeout(timer));
    }),
  ).then(
    () => void (refreshing = undefined),
    () => void (refreshing = undefined),
  );
  return refreshing;
}

/** Options of a gauge read from shared state at scrape time. */
const shared = { aggregator: 'max' as const, collect: refreshShared };

export const collectErrors = new Counter({
  name: 'member_match_metrics_collect_errors_total',
  help: 'scrape-time reads that failed or took too long (source: a queue name, review-cases, lockouts, timeout)',
  labelNames: ['source'] as const,
  registers: [metrics],
});

// ---- Matching ---------------------------------------------------------------------------------------------

/**
 * Resolutions by the door that asked (member-match, member-match-status, bulk-member-match, roster-reconcile):
 * a roster row is our own reconciliation, not a partner's `$member-match`, so dashboards select the door.
 */
export const matchDecisions = new Counter({
  name: 'member_match_decisions_total',
  help: 'match resolutions by door and outcome (matched, review, no-match, manual-review)',
  labelNames: ['door', 'outcome'] as const,
  registers: [metrics],
});

export const lockouts = new Counter({
  name: 'member_match_lockouts_total',
  help: 'tenant lockouts tripped by the brute-force guards, by reason (card-variants, birth-date-variants, unmatched-requests)',
  labelNames: ['reason'] as const,
  registers: [metrics],
});

export const tenantsLocked = new Gauge({
  name: 'member_match_tenants_locked',
  help: 'tenants whose matching is locked now (tenant_lockouts in force)',
  ...shared,
  registers: [metrics],
});

// ---- HTTP -------------------------------------------------------------------------------------------------

export const httpDuration = new Histogram({
  name: 'member_match_http_request_duration_seconds',
  help: 'HTTP request latency by method, Express route pattern (never the raw URL) and status',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [metrics],
});

export const refusals = new Counter({
  name: 'member_match_refusals_total',
  help: 'requests answered with an error, by reason code (the code in the OperationOutcome and the audit event) and status',
  labelNames: ['reason', 'status'] as const,
  registers: [metrics],
});

// ---- Queues and batch work --------------------------------------------------------------------------------

export const queueJobs = new Gauge({
  name: 'member_match_queue_jobs',
  help: 'BullMQ jobs per queue and state (waiting, active, delayed, prioritized, waiting-children, failed)',
  labelNames: ['queue', 'state'] as const,
  ...shared,
  registers: [metrics],
});

export const queueOldestWaiting = new Gauge({
  name: 'member_match_queue_oldest_waiting_seconds',
  help: 'age of the oldest job ready to run but not yet taken, per queue (0 when none waits)',
  labelNames: ['queue'] as const,
  ...shared,
  registers: [metrics],
});

export const batchRows = new Counter({
  name: 'member_match_batch_rows_total',
  help: 'batch rows processed by job kind and row outcome (rate() is rows per second)',
  labelNames: ['kind', 'outcome'] as const,
  registers: [metrics],
});

export const batchJobsFinished = new Counter({
  name: 'member_match_batch_jobs_finished_total',
  help: 'batch jobs finished by kind and state (completed, failed)',
  labelNames: ['kind', 'state'] as const,
  registers: [metrics],
});

export const batchChunkDuration = new Histogram({
  name: 'member_match_batch_chunk_duration_seconds',
  help: 'time to plan and commit one chunk of a batch job, by kind',
  labelNames: ['kind'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
  registers: [metrics],
});

// ---- Review -----------------------------------------------------------------------------------------------

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

export const reviewCasesOpen = new Gauge({
  name: 'member_match_review_cases_open',
  help: 'review cases not yet decided, by status (pending, claimed, awaiting-confirmation)',
  labelNames: ['status'] as const,
  ...shared,
  registers: [metrics],
});

export const reviewCasesOverdue = new Gauge({
  name: 'member_match_review_cases_overdue',
  help: 'review cases not yet decided whose SLA deadline has passed',
  ...shared,
  registers: [metrics],
});

export const reviewOldestOpen = new Gauge({
  name: 'member_match_review_oldest_open_seconds',
  help: 'age of the oldest review case not yet decided (0 when none is open)',
  ...shared,
  registers: [metrics],
});

// ---- Audit ------------------------------------------------------------------------------------------------

export const checkpointFailures = new Counter({
  name: 'member_match_audit_checkpoint_failures_total',
  help: 'audit checkpoints that could not be taken (the chain head goes unanchored until one succeeds)',
  registers: [metrics],
});

export const auditSealFailures = new Counter({
  name: 'member_match_audit_seal_failures_total',
  help: 'rounds of audit sealing that failed (committed events wait unchained until one succeeds)',
  registers: [metrics],
});

export const auditEventsSealed = new Counter({
  name: 'member_match_audit_events_sealed_total',
  help: 'audit events this process chained (appended a keyed link for)',
  registers: [metrics],
});

export const checkpointLastSuccess = new Gauge({
  name: 'member_match_audit_checkpoint_last_success_timestamp_seconds',
  help: 'when this process last took an audit checkpoint or found none was due (Unix seconds)',
  aggregator: 'max',
  registers: [metrics],
});
