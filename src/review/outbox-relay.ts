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
    await addCaseJobs(queue, rows.rows.map((r) => ({ id: r.case_id, slaDueAt: r.sla_due_at })));
    await trx
      .updateTable('review_outbox')
      .set({ published_at: new Date() })
      .where('id', '=', sql<string>`any(${rows.rows.map((r) => r.id)}::bigint[])`)
      .execute();
    return rows.rows.length;
  });
}

/**
 * A case's two jobs: its announcement, and a job delayed until its SLA deadline that escalates it if still open
 * (retried if the database is briefly away). Both ids derive from the case, so adding them again adds nothing.
 * BullMQ waits for a connection rather than failing: the wait is bounded, so a dead Redis fails the call.
 */
async function addCaseJobs(queue: Queue, cases: readonly { id: string; slaDueAt: Date }[]): Promise<void> {
  await withDeadline(
    queue.addBulk(
      cases.flatMap((c) => [
        { name: CASE_JOB, data: { caseId: c.id }, opts: { jobId: c.id, removeOnComplete: true } },
        {
          name: SLA_JOB,
          data: { caseId: c.id },
          opts: {
            jobId: slaJobId(c.id),
            delay: Math.max(0, new Date(c.slaDueAt).getTime() - Date.now()),
            attempts: 10,
            backoff: { type: 'exponential', delay: 1_000 },
            removeOnComplete: true,
          },
        },
      ]),
    ),
    PUBLISH_TIMEOUT_MS,
    'review queue did not answer in time',
  );
}

const slaJobId = (caseId: string) => `sla-${caseId}`;

/**
 * The reconciler's half for review cases (Redis lost its data): every case still open whose SLA timer has not
 * fired (`sla_escalated_at` is null) and whose outbox row was published must have its SLA job in the queue;
 * where it is gone, the case's jobs are added again. Cases still in the outbox are the relay's. Answers how
 * many cases it re-armed. Safe to run in several processes at once: the job ids derive from the case, so a
 * second add of the same job is a no-op, and the timer escalates a case at most once (src/review/sla.ts).
 */
export async function reconcileReviewTimers(db: Db, queue: Queue, pageSize = 500): Promise<number> {
  let rearmed = 0;
  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const page = await sql<{ id: string; sla_due_at: Date }>`
      SELECT c.id, c.sla_due_at FROM review_cases c
      WHERE c.status <> 'decided' AND c.sla_escalated_at IS NULL AND c.id > ${after}::uuid
        AND NOT EXISTS (SELECT 1 FROM review_outbox o WHERE o.case_id = c.id AND o.published_at IS NULL)
      ORDER BY c.id LIMIT ${pageSize}`.execute(db);
    if (page.rows.length === 0) return rearmed;
    after = page.rows[page.rows.length - 1]!.id;
    const states = await withDeadline(
      Promise.all(page.rows.map((c) => queue.getJobState(slaJobId(c.id)))),
      PUBLISH_TIMEOUT_MS,
      'review queue did not answer in time',
    );
    const lost = page.rows.filter((_, i) => states[i] === 'unknown');
    if (lost.length > 0) await addCaseJobs(queue, lost.map((c) => ({ id: c.id, slaDueAt: c.sla_due_at })));
    rearmed += lost.length;
  }
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
