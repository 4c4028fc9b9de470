import { Redis } from 'ioredis';

/**
 * Connections for request handling fail fast: with Redis down a request gets a 503 at once rather than
 * waiting in ioredis' offline queue. (BullMQ workers need the opposite settings and open their own.)
 */
export function createRedis(url: string, keyPrefix: string): Redis {
  return new Redis(url, {
    keyPrefix,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    lazyConnect: false,
  });
}
