import { Queue } from 'bullmq';
import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { Logger } from '../logger.js';

/**
 * The outbox relay: publishes review cases, written to `review_outbox` in the same transaction as the case,
 * to the BullMQ `review` queue. The case id is the job id, so publishing twice never makes two jobs; a row is
 * marked published only after Redis took the job, so with Redis down nothing is lost — the relay catches up
 * when it returns.
 */

export const REVIEW_QUEUE = 'review';

export function createReviewQueue(redisUrl: string, keyPrefix: string): Queue {
  const url = new URL(redisUrl);
  return new Queue(REVIEW_QUEUE, {
    prefix: `${keyPrefix}bull`,
    connection: {
      host: url.hostname,
      port: Number(url.port || 6379),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      // Fail fast while Redis is down: the outbox keeps the work, the relay retries.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
    },
  });
}

const PUBLISH_TIMEOUT_MS = 3_000;

async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('review queue did not answer in time')), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Publishes up to `batch` unpublished rows; returns how many. Throws (and publishes nothing) if Redis fails. */
export async function relayOnce(db: Db, queue: Queue, batch = 100): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const rows = await sql<{ id: string; case_id: string }>`
      SELECT id, case_id FROM review_outbox WHERE published_at IS NULL ORDER BY id LIMIT ${batch} FOR UPDATE SKIP LOCKED`.execute(trx);
    if (rows.rows.length === 0) return 0;
    // BullMQ waits for a connection rather than failing: bound the wait, so a dead Redis fails this batch.
    await withTimeout(
      queue.addBulk(rows.rows.map((r) => ({ name: 'review-case', data: { caseId: r.case_id }, opts: { jobId: r.case_id, removeOnComplete: true } }))),
      PUBLISH_TIMEOUT_MS,
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
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  let failing = false;
  const tick = () => {
    running = (async () => {
      try {
        while (!stopped && (await relayOnce(db, queue)) > 0);
        if (failing) logger.info('review outbox relay recovered');
        failing = false;
      } catch (error) {
        if (!failing) logger.warn({ errName: (error as Error).name }, 'review outbox relay cannot publish; will retry');
        failing = true;
      }
    })();
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  tick();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
