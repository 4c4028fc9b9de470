import type { Config } from './config.js';
import type { Db } from './db/database.js';
import type { Logger } from './logger.js';
import { loadPhiHashKey } from './identity/secrets.js';
import { createModelProvider } from './members/model-store.js';
import { createBatchFlowProducer, startBatchDispatcher, startBatchWorker } from './batch/queue.js';
import { createReviewQueue, startOutboxRelay } from './review/outbox-relay.js';
import { startReviewWorker } from './review/sla.js';
import { createRedis } from './redis.js';

/**
 * The background work of member-match: the review outbox relay and review worker (SLA escalation), and the
 * batch worker (chunks of bulk matches and roster reconciliations) with its dispatcher.
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
  return {
    async stop() {
      await relay.stop();
      await dispatcher.stop();
      await Promise.all([reviewWorker.close(), batchWorker.close()]).catch(() => undefined);
      await Promise.all([queue.close(), flow.close()]).catch(() => undefined);
      redis.disconnect();
    },
  };
}
