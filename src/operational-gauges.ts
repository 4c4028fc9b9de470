import type { Queue } from 'bullmq';
import { sql } from 'kysely';
import type { Db } from './db/database.js';
import {
  collectErrors,
  onScrape,
  queueJobs,
  queueOldestWaiting,
  reviewCasesOpen,
  reviewCasesOverdue,
  reviewOldestOpen,
  tenantsLocked,
} from './metrics.js';

/**
 * The shared state an operator watches, read when /metrics is scraped (src/metrics.ts): BullMQ depth and the
 * age of the oldest waiting job per queue (Redis), open and overdue review cases and tenants locked out
 * (Postgres). Registered by each API process (src/service.ts) for the queues it holds; returns the unregister.
 * Counts only: no case, job or tenant is named.
 */
export function trackOperationalState(db: Db, queues: readonly Queue[]): () => void {
  const stops = [
    ...queues.map((queue) => onScrape(() => readQueue(queue))),
    onScrape(() => readReviewCases(db)),
    onScrape(() => readLockouts(db)),
  ];
  return () => stops.forEach((stop) => stop());
}

const JOB_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed'] as const;

async function readQueue(queue: Queue): Promise<void> {
  try {
    const [counts, oldest] = await Promise.all([queue.getJobCounts(...JOB_STATES), queue.getJobs(['waiting'], 0, 0, true)]);
    for (const state of JOB_STATES) queueJobs.set({ queue: queue.name, state }, counts[state] ?? 0);
    // A job's wait starts when it became ready: a delayed job (an SLA timer) only once its delay ran out.
    const job = oldest[0];
    const readyAt = job ? job.timestamp + (job.delay ?? 0) : Date.now();
    queueOldestWaiting.set({ queue: queue.name }, Math.max(0, (Date.now() - readyAt) / 1000));
  } catch {
    for (const state of JOB_STATES) queueJobs.remove({ queue: queue.name, state });
    queueOldestWaiting.remove({ queue: queue.name });
    collectErrors.inc({ source: queue.name });
  }
}

const OPEN_STATUSES = ['pending', 'claimed', 'awaiting-confirmation'] as const;

async function readReviewCases(db: Db): Promise<void> {
  try {
    const { rows } = await sql<{ status: string; open: number; overdue: number; oldest: number | null }>`
      SELECT status, count(*)::int AS open, count(*) FILTER (WHERE sla_due_at < now())::int AS overdue,
             extract(epoch FROM now() - min(created_at))::float8 AS oldest
      FROM review_cases WHERE status <> 'decided' GROUP BY status`.execute(db);
    for (const status of OPEN_STATUSES) reviewCasesOpen.set({ status }, rows.find((r) => r.status === status)?.open ?? 0);
    reviewCasesOverdue.set(rows.reduce((n, r) => n + r.overdue, 0));
    reviewOldestOpen.set(Math.max(0, ...rows.map((r) => r.oldest ?? 0)));
  } catch {
    reviewCasesOpen.reset();
    reviewCasesOverdue.reset();
    reviewOldestOpen.reset();
    collectErrors.inc({ source: 'review-cases' });
  }
}

async function readLockouts(db: Db): Promise<void> {
  try {
    const { rows } = await sql<{ locked: number }>`SELECT count(*)::int AS locked FROM tenant_lockouts WHERE until > now()`.execute(db);
    tenantsLocked.set(rows[0]?.locked ?? 0);
  } catch {
    tenantsLocked.reset();
    collectErrors.inc({ source: 'lockouts' });
  }
}
