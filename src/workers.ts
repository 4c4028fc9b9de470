import type { Config } from './config.js';
import type { Db } from './db/database.js';
import type { Logger } from './logger.js';
import { loadPhiHashKey } from './identity/secrets.js';
import { createModelProvider } from './members/model-store.js';
import { createBatchFlowProducer, createBatchQueue, reconcileBatchJobs, startBatchDispatcher, startBatchWorker } from './batch/queue.js';
import { restoreLockouts } from './policy/limits.js';
import { createReviewQueue, reconcileReviewTimers, startOutboxRelay } from './review/outbox-relay.js';
import { startReviewWorker } from './review/sla.js';
import { createRedis } from './redis.js';
import { runPeriodically } from './periodic.js';

/**
 * The background work of member-match: the review outbox relay and review worker (SLA escalation), and the
 * batch worker (chunks of bulk matches and roster reconciliations) with its dispatcher, and the queue
 * reconciler that rebuilds from Postgres what Redis lost (docs/redis-loss.md).
 */
export async function startWorkers(config: Config, db: Db, logger: Logger): Promise<{ stop(): Promise<void> }> {
  const queue = createReviewQueue(config.redisUrl, config.redisKeyPrefix);
  queue.on('error', (error: Error) => logger.warn({ errName: error.name }, 'review queue connection problem'));
  const relay = startOutboxRelay(db, queue, logger);
  const reviewWorker = startReviewWorker(db, config.redisUrl, config.redisKeyPrefix, logger);

  // The match guards' counters (src/policy/limits.ts) are shared with the API through Redis.
  const redis = createRedis(config.redisUrl, config.redisKeyPrefix);
  redis.on('error', (error: Error) => logger.warn({ errName: error.name }, 'guards redis connection problem'));
  const batchDeps = { db, redis, config, logger, phiHashKey: await loadPhiHashKey(db, config.phiHashKey), matchModel: await createModelProvider(db) };
  const flow = createBatchFlowProducer(config.redisUrl, config.redisKeyPrefix);
  flow.on('error', (error: Error) => logger.warn({ errName: error.name }, 'batch flow connection problem'));
  const dispatcher = startBatchDispatcher(db, flow, logger, config.batch.retentionHours);
  const batchWorker = startBatchWorker(batchDeps, logger);
  const batchQueue = createBatchQueue(config.redisUrl, config.redisKeyPrefix);
  batchQueue.on('error', (error: Error) => logger.warn({ errName: error.name }, 'batch queue connection problem'));
  const reconciler = startQueueReconciler(
    {
      jobs: () => reconcileBatchJobs(db, batchQueue, flow),
      reviewTimers: () => reconcileReviewTimers(db, queue),
      lockouts: () => restoreLockouts(db, redis),
    },
    logger,
    config.queueReconcileSeconds * 1_000,
  );
  return {
    async stop() {
      await relay.stop();
      await dispatcher.stop();
      await reconciler.stop();
      await Promise.all([reviewWorker.close(), batchWorker.close()]).catch(() => undefined);
      await Promise.all([queue.close(), flow.close(), batchQueue.close()]).catch(() => undefined);
      redis.disconnect();
    },
  };
}

/**
 * The queue reconciler: Postgres is the source of truth and Redis only schedules, so every `intervalMs` it
 * recreates what Redis no longer holds — the flow of a dispatched batch job still queued or running, the SLA
 * timer of an open review case, the Redis copy of a lockout in force — and logs what it rebuilt. Every step is
 * idempotent (ids derived from the job or case, `SET NX`), so each worker process runs its own reconciler; a
 * step that fails (Redis down) does not keep the others from running, and the whole is retried next tick.
 */
export function startQueueReconciler(
  steps: Record<string, () => Promise<number>>,
  logger: Logger,
  intervalMs: number,
): { stop(): Promise<void> } {
  return runPeriodically(
    async () => {
      const outcomes = await Promise.allSettled(Object.values(steps).map((step) => step()));
      const rebuilt = Object.fromEntries(Object.keys(steps).map((name, i) => [name, outcomes[i]!.status === 'fulfilled' ? outcomes[i]!.value : 0]));
      if (Object.values(rebuilt).some((n) => n > 0)) logger.warn({ rebuilt }, 'queue reconciler rebuilt entries missing from Redis');
      const failed = outcomes.find((o) => o.status === 'rejected');
      if (failed) throw failed.reason;
    },
    { intervalMs, logger, failing: 'queue reconciler cannot reach the queue; will retry', recovered: 'queue reconciler recovered' },
  );
}
