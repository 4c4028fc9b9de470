import { Queue } from 'bullmq';
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import { withDeadline } from '../deadline.js';
import type { Logger } from '../logger.js';
import { runPeriodically } from '../periodic.js';
import { redisConnection } from '../shared/redis-connection.js';

/**
 * The outbox relay: publishes review cases, written to `review_outbox` in the same transaction as the case,
 * to the BullMQ `review` queue. The case id is the job id, so publishing twice never makes two jobs; a row is
 * marked published only after Redis took the job, so with Redis down nothing is lost — the relay catches up
 * when it returns.
 */

export const REVIEW_QUEUE = 'review';
export const CASE_JOB = 'review-case';
export const SLA_JOB = 'sla-check';

export function createReviewQueue(redisUrl: string, keyPrefix: string): Queue {
  return new Queue(REVIEW_QUEUE, {
    prefix: `${keyPrefix}bull`,
    connection: {
      ...redisConnection(redisUrl),
      // Fail fast while Redis is down: the outbox keeps the work, the relay retries.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
    },
  });
}

const PUBLISH_TIMEOUT_MS = 3_000;

/** Publishes up to `batch` unpublished rows; returns how many. Throws (and publishes nothing) if Redis fails. */
export async function relayOnce(db: Db, queue: Queue, batch = 100): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const rows = await sql<{ id: string; case_id: string; sla_due_at: Date }>`
      SELECT o.id, o.case_id, c.sla_due_at FROM review_outbox o JOIN review_cases c ON c.id = o.case_id
      WHERE o.published_at IS NULL ORDER BY o.id LIMIT ${batch} FOR UPDATE OF o SKIP LOCKED`.execute(trx);
    if (rows.rows.length === 0) return 0;
    // Each case: its announcement, and a job delayed until its SLA deadline that escalates it if still open.
    // BullMQ waits for a connection rather than failing: bound the wait, so a dead Redis fails this batch.
    await withDeadline(
      queue.addBulk(
        rows.rows.flatMap((r) => [
          { name: CASE_JOB, data: { caseId: r.case_id }, opts: { jobId: r.case_id, removeOnComplete: true } },
          {
            name: SLA_JOB,
            data: { caseId: r.case_id },
            opts: { jobId: `sla-${r.case_id}`, delay: Math.max(0, new Date(r.sla_due_at).getTime() - Date.now()), removeOnComplete: true },
          },
        ]),
      ),
      PUBLISH_TIMEOUT_MS,
      'review queue did not answer in time',
    );
    await trx
      .updateTable('review_outbox')
      .set({ published_at: new Date() })
      .where('id', '=', sql<string>`any(${rows.rows.map((r) => r.id)}::bigint[])`)
      .execute();
    return rows.rows.length;
  });
}

/** Runs the relay every `intervalMs` until stopped; a failure is logged and retried on the next tick. */
export function startOutboxRelay(db: Db, queue: Queue, logger: Logger, intervalMs = 1_000): { stop(): Promise<void> } {
  return runPeriodically(
    async (isStopped) => {
      while (!isStopped() && (await relayOnce(db, queue)) > 0);
    },
    { intervalMs, logger, failing: 'review outbox relay cannot publish; will retry', recovered: 'review outbox relay recovered' },
  );
}
