import type { Config } from './config.js';
import type { Db } from './db/database.js';
import type { Logger } from './logger.js';
import { createReviewQueue, startOutboxRelay } from './review/outbox-relay.js';
import { startReviewWorker } from './review/sla.js';

/** The background work of member-match: the review outbox relay and the review worker (SLA escalation). */
export function startWorkers(config: Config, db: Db, logger: Logger): { stop(): Promise<void> } {
  const queue = createReviewQueue(config.redisUrl, config.redisKeyPrefix);
  queue.on('error', (error: Error) => logger.warn({ errName: error.name }, 'review queue connection problem'));
  const relay = startOutboxRelay(db, queue, logger);
  const worker = startReviewWorker(db, config.redisUrl, config.redisKeyPrefix, logger);
  return {
    async stop() {
      await relay.stop();
      await worker.close().catch(() => undefined);
      await queue.close().catch(() => undefined);
    },
  };
}
