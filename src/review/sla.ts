import { Worker, type Job } from 'bullmq';
import { sql } from 'kysely';
import { appendAuditEvent } from '../audit/audit-trail.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../logger.js';
import { reviewEscalations } from '../metrics.js';
import { redisConnection } from '../shared/redis-connection.js';
import { CASE_JOB, REVIEW_QUEUE, SLA_JOB } from './outbox-relay.js';

/**
 * The review worker: consumes the `review` queue. A case announcement needs nothing more (claims go through
 * Postgres); an SLA check that fires while its case is still open escalates it — priority up, so it is
 * claimed first, and an audit event — and records when (`sla_escalated_at`).
 *
 * With `once`, a case already escalated by its SLA timer is left alone: that is how the timer runs, so a timer
 * that the queue reconciler re-armed after a Redis loss (or that two reconcilers re-armed at once) never
 * escalates a case twice.
 */
export async function escalateIfOpen(db: Db, caseId: string, options: { once?: boolean } = {}): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const escalated = await sql<{ id: string; priority: number }>`
      UPDATE review_cases SET priority = priority + 1, version = version + 1, updated_at = now(), sla_escalated_at = coalesce(sla_escalated_at, now())
      WHERE id = ${caseId} AND status <> 'decided' ${options.once ? sql`AND sla_escalated_at IS NULL` : sql``} RETURNING id, priority`.execute(trx);
    const row = escalated.rows[0];
    if (!row) return false;
    reviewEscalations.inc();
    await appendAuditEvent(trx, {
      operation: 'review-sla',
      outcome: 'failure',
      reasonCode: 'sla-overdue-escalated',
      details: { reviewCase: row.id, priority: row.priority },
    });
    return true;
  });
}

export function startReviewWorker(db: Db, redisUrl: string, keyPrefix: string, logger: Logger): Worker {
  const worker = new Worker(
    REVIEW_QUEUE,
    async (job: Job<{ caseId: string }>) => {
      if (job.name === SLA_JOB && (await escalateIfOpen(db, job.data.caseId, { once: true }))) {
        logger.warn({ reviewCase: job.data.caseId }, 'review case overdue: escalated');
      }
      return job.name === CASE_JOB ? 'announced' : 'checked';
    },
    { prefix: `${keyPrefix}bull`, connection: { ...redisConnection(redisUrl), maxRetriesPerRequest: null }, concurrency: 4 },
  );
  worker.on('error', (error: Error) => logger.warn({ errName: error.name }, 'review worker connection problem'));
  return worker;
}
